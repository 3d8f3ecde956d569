// Wire constants. The format itself is specified in lib/PROTOCOL.md; this
// file only names its numbers. A change here changes PROTOCOL.md, the
// protocol version and the codec tests together.
#pragma once

#include <cstddef>
#include <cstdint>

namespace shardfs::wire {

// PROTOCOL.md §3: every header frame starts with these 4 bytes.
inline constexpr char kMagic[4] = {'S', 'H', 'F', 'S'};
inline constexpr uint8_t kProtocolVersion = 1;
// Oldest peer version this one can still talk to.
inline constexpr uint8_t kMinCompatibleVersion = 1;

// PROTOCOL.md §3: fixed part of the header frame, before the body envelope.
inline constexpr size_t kHeaderSize = 20;
// PROTOCOL.md §3.2: body envelope = u8 version, u8 compat, u32 length.
inline constexpr size_t kBodyEnvelopeSize = 6;

// Limits (PROTOCOL.md §6). A node sets ZMQ_MAXMSGSIZE to kMaxFrameSize.
inline constexpr size_t kMaxHeaderFrameSize = 64 * 1024;
inline constexpr size_t kMaxShardSize = 64 * 1024 * 1024;
inline constexpr size_t kMaxFrameSize = kMaxShardSize + kMaxHeaderFrameSize;
inline constexpr size_t kMaxStringField = 4096;
// A full page (29-byte entries) must fit in kMaxHeaderFrameSize.
inline constexpr uint32_t kMaxListLimit = 2000;
// Erasure code bounds (k >= 1, m >= 0, k + m <= kMaxShards).
inline constexpr int kMaxShards = 64;
// PROTOCOL.md §4.10: entries in one PEERS message. A sender also stops
// adding entries before the header frame would pass kMaxHeaderFrameSize.
inline constexpr uint32_t kMaxPeerEntries = 1024;

// PROTOCOL.md §3.1: flags byte.
inline constexpr uint8_t kFlagReply = 0x01;

enum class Command : uint8_t {
  kPing = 1,
  kPutShard = 2,
  kGetShard = 3,
  kDeleteShard = 4,
  kStatShard = 5,
  kListShards = 6,
  kPeers = 7,        // PROTOCOL.md §4.10: peer table exchange (membership)
  kSyncLocator = 8,  // PROTOCOL.md §4.11: newest locator of a stripe, both ways
  kNodeStats = 9,    // PROTOCOL.md §4.12: repair and scrub counters
  kListHoldings = 10,  // PROTOCOL.md §4.13: LIST_SHARDS with health per shard
};

// PROTOCOL.md §5: status codes carried by replies (never raw errno values).
enum class WireCode : uint8_t {
  kOk = 0,
  kBadRequest = 1,          // malformed or out-of-bounds request
  kUnsupportedVersion = 2,  // peer speaks a version we cannot
  kNotFound = 3,
  kCorrupt = 4,             // stored shard failed its checksum; not served
  kChecksumMismatch = 5,    // PUT payload did not match the declared CRC
  kNoSpace = 6,             // over quota or disk full; nothing was stored
  kExists = 7,              // same shard id, different content
  kDenied = 8,              // owner mismatch
  kInternal = 9,
  kBusy = 10,               // too many requests in flight from this peer
  kTooLarge = 11,
  kUnknownCommand = 12,
};

}  // namespace shardfs::wire
