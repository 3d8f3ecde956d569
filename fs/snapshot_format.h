// Metadata snapshot formats (fs/SNAPSHOTS.md §3, §4): the head record that
// names a snapshot, the sealed and compressed snapshot blob, and the local
// STATE/snapshot.state file.
//
// Head record body (inside a sealed volume record, kind 'H', number = seq),
// little-endian, fields only ever appended (decoders skip the rest):
//   u8 version (1), u64 seq, u64 created_unix_ms, 16 object id (the
//   manifest stripe of the blob, lib/object_store.h), u64 blob_size,
//   32 blob_sha256, u64 db_size, u8 k, u8 m, u32 segment_size,
//   u32 timeout_ms, 16 state_id, str host, str state_dir,
//   u32 n + n × str endpoints, str identity_public, str identity_secret,
//   u64 files, u64 file_bytes, u64 pending_segments
// (str = u32 length + bytes, at most 4096).
//
// Blob: SealSegment(snapshot key, stripe = id('S', seq), u64 db_size ‖
// zlib(db)). The GCM tag authenticates it and binds it to its sequence
// number; the head's SHA-256 lets a reader reject a wrong object before
// decrypting.
//
// Thread-safety: pure functions over value types and files.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "fs/snapshot_records.h"
#include "lib/checksum.h"
#include "lib/ids.h"
#include "lib/status.h"

namespace shardfs::fs {

using StateId = std::array<uint8_t, 16>;

struct SnapshotHead {
  uint64_t seq = 0;
  uint64_t created_unix_ms = 0;
  StripeId object;  // manifest stripe id of the blob
  uint64_t blob_size = 0;
  Sha256Digest blob_sha256{};
  uint64_t db_size = 0;
  uint8_t k = 0, m = 0;
  uint32_t segment_size = 0;
  uint32_t timeout_ms = 0;
  StateId state_id{};  // the state dir that took it
  std::string host;
  std::string state_dir;
  std::vector<std::string> endpoints;  // the mount's node list
  std::string identity_public;         // the mount's client keypair (owner of
  std::string identity_secret;         // its data shards), restored with it
  uint64_t files = 0;
  uint64_t file_bytes = 0;
  uint64_t pending_segments = 0;  // staged, not yet uploaded when taken
};

void EncodeHead(const SnapshotHead& h, std::string* out);
Status DecodeHead(std::string_view body, SnapshotHead* out);

// Compresses and seals `db` for sequence number `seq`.
Result<std::vector<uint8_t>> SealSnapshotBlob(const VolumeKeys& keys, uint64_t seq,
                                              std::span<const uint8_t> db);
// Opens, authenticates and decompresses. AuthFailed when the blob is not the
// snapshot `seq` of this key; Corruption when it does not decompress.
Result<std::vector<uint8_t>> OpenSnapshotBlob(const VolumeKeys& keys, uint64_t seq,
                                              std::span<const uint8_t> blob);

// STATE/snapshot.state: what this state dir knows about the volume's
// snapshots (SNAPSHOTS.md §4). Text, one "key value" per line.
struct SnapshotState {
  StateId state_id{};
  uint64_t last_seq = 0;     // newest snapshot this state dir took or restored
  bool clean = false;        // last mount ended with a final snapshot
  bool restored = false;     // made by shardctl restore
};
// NotFound when the file is absent.
Result<SnapshotState> ReadSnapshotState(const std::string& state_dir);
// Atomic replace (tmp, fsync, rename).
Status WriteSnapshotState(const std::string& state_dir, const SnapshotState& s);
StateId RandomStateId();
std::string Hex(std::span<const uint8_t> bytes);
// "YYYY-MM-DD HH:MM:SS" in local time, for messages naming a snapshot or a lease.
std::string FormatLocalTime(uint64_t unix_ms);

}  // namespace shardfs::fs
