// Metadata snapshots in the network (fs/SNAPSHOTS.md §3): take one, find
// the heads, fetch one back, prune old ones.
//
// Taking snapshot `seq`:
//   1. VACUUM INTO a private file from a read-only connection: a consistent
//      copy of a committed state of meta.db (WAL readers never block the
//      mount), never a copy of a live file.
//   2. zlib + seal (snapshot_format.h), stored with PutObject through the
//      ordinary data path, under the volume owner key.
//   3. Head record 'H'(seq) on every node that answers. A snapshot exists
//      once its head does: a crash before step 3 leaves only unreferenced
//      segments (fsck lists them) and the previous head still valid.
//   4. Prune: heads (then their objects) older than the newest `keep`.
//
// Thread-safety: the functions may be called from any thread (not from a
// transport callback); they block on the network.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fs/snapshot_format.h"
#include "fs/snapshot_records.h"
#include "lib/client_config.h"
#include "lib/client_identity.h"
#include "lib/cluster_client.h"

namespace shardfs::fs {

struct HeadEntry {
  StripeId id;  // the record id
  SnapshotHead head;
  std::vector<NodeInfo> holders;
};

struct HeadScan {
  std::vector<HeadEntry> heads;       // readable heads, newest first
  std::vector<std::string> problems;  // heads listed but not readable, and why
  RecordStore::Listing listing;
};

// Lists the volume's records and reads every head.
HeadScan ScanHeads(RecordStore& store);

// What a mount needs to take snapshots.
struct SnapshotParams {
  const VolumeKeys* keys = nullptr;
  ClientConfig cfg;  // the mount's; identity_file is replaced by the owner's
  std::string state_dir;
  StateId state_id{};
  std::string host;
  ClientIdentity client_identity;  // the mount's own keypair, kept in the head
  int keep = 3;
};

// A ClusterClient for snapshot objects: the mount's config, but owned by
// the volume owner key (STATE/owner.id).
Result<std::unique_ptr<ClusterClient>> ConnectSnapshotClient(const SnapshotParams& p);

// Steps 1-3. `seq` must be newer than every head. Exists when another
// writer already holds head `seq` (two lineages of one volume).
Result<SnapshotHead> TakeSnapshot(const SnapshotParams& p, RecordStore& store,
                                  ClusterClient& client, uint64_t seq);

// Step 4: deletes heads older than the newest `keep` readable ones, then
// their objects; also unreadable heads older than those. Best effort.
Status PruneSnapshots(RecordStore& store, ClusterClient& client, int keep);

// Figures read from a copy, for the head.
struct DbFigures {
  uint64_t files = 0;
  uint64_t file_bytes = 0;
  uint64_t pending_segments = 0;
};
// A consistent copy of the SQLite database at `db_path`, via VACUUM INTO
// `tmp_path` (removed afterwards), in rollback-journal mode.
Result<std::vector<uint8_t>> CopyDatabase(const std::string& db_path, const std::string& tmp_path,
                                          DbFigures* figures = nullptr);

// Fetches the blob of `head`, checks size and SHA-256, opens it: the
// database bytes. `progress` as in GetObject.
Result<std::vector<uint8_t>> FetchSnapshot(const VolumeKeys& keys, ClusterClient& client,
                                           const SnapshotHead& head,
                                           const std::function<void(uint64_t, uint64_t)>& progress);

}  // namespace shardfs::fs
