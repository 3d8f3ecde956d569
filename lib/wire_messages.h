// Wire messages: one struct per request and reply, with encode/decode.
// The format is specified frame by frame in lib/PROTOCOL.md.
//
// A message is one header frame (fixed header + one body struct) and, for
// PUT_SHARD requests and GET_SHARD replies, a second frame with shard bytes.
// The payload frame is not encoded here: the transport sends it zero-copy.
//
// Decoders take untrusted bytes: they check every length against the input
// and the limits in wire_format.h and return Corruption, never assert.
// Unknown trailing bytes inside a body are skipped (fields are only ever
// appended; PROTOCOL.md §7).
//
// Thread-safety: pure functions over value types.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lib/ids.h"
#include "lib/locator.h"
#include "lib/status.h"
#include "lib/wire_format.h"

namespace shardfs::wire {

// ---- Header (PROTOCOL.md §3) ----
struct FrameHeader {
  uint8_t version = kProtocolVersion;  // sender's protocol version
  Command command = Command::kPing;
  bool reply = false;
  uint64_t request_id = 0;   // chosen by the requester, echoed by the reply
  WireCode status = WireCode::kOk;  // replies only
};

struct DecodedFrame {
  FrameHeader header;
  uint8_t body_version = 0;
  std::string_view body;  // the body's fields; points into the input frame
};

// Checks magic, versions (kUnsupportedVersion when the peer's compat version
// is newer than ours), the body envelope and its length.
Result<DecodedFrame> DecodeFrame(std::span<const uint8_t> frame);
inline Result<DecodedFrame> DecodeFrame(std::string_view frame) {
  return DecodeFrame(std::span<const uint8_t>(
      reinterpret_cast<const uint8_t*>(frame.data()), frame.size()));
}

// ---- Bodies (PROTOCOL.md §4) ----
struct PingRequest {
  static constexpr Command kCommand = Command::kPing;
  static constexpr bool kIsReply = false;
  bool operator==(const PingRequest&) const = default;
};
// What a node reports about its self-healing work (NODE_STATS, PROTOCOL.md
// §4.12). Counters run from the node's start.
struct NodeStats {
  static constexpr Command kCommand = Command::kNodeStats;
  static constexpr bool kIsReply = true;
  uint64_t repair_queued = 0;      // stripes waiting for repair here
  uint64_t repair_active = 0;      // stripes being repaired now
  uint64_t repaired_shards = 0;    // shards rebuilt and stored (elsewhere or healed here)
  uint64_t repaired_bytes = 0;     // bytes of those shards
  uint64_t repair_failures = 0;    // repair attempts that failed
  uint64_t scrubbed_shards = 0;    // shards re-read by the scrubber
  uint64_t corrupt_found = 0;      // shards found corrupt (scrub or GET)
  uint64_t orphans_collected = 0;  // shards deleted because a newer locator moved them
  uint64_t stripes_lost = 0;       // stripes seen at the last audit with fewer than k shards
  uint64_t audits = 0;             // stripe audits done
  bool operator==(const NodeStats&) const = default;
};

struct PingReply {
  static constexpr Command kCommand = Command::kPing;
  static constexpr bool kIsReply = true;
  NodeId node_id = 0;
  std::string zone;
  uint64_t capacity_bytes = 0;  // operator quota
  uint64_t used_bytes = 0;
  uint64_t free_bytes = 0;      // min(quota - used, disk free)
  uint64_t shard_count = 0;
  std::string public_key;       // Z85, 40 chars
  std::string endpoint;         // as the node advertises it
  bool operator==(const PingReply&) const = default;
};

struct PutShardRequest {
  static constexpr Command kCommand = Command::kPutShard;
  static constexpr bool kIsReply = false;
  StripeId stripe;
  ShardIndex index = 0;
  uint32_t crc32c = 0;     // of the payload frame; the node recomputes it
  std::string owner;       // owner's public key (Z85); only it may delete
  Locator locator;         // stripe's locator, stored beside the shard
  bool operator==(const PutShardRequest&) const = default;
};
struct PutShardReply {
  static constexpr Command kCommand = Command::kPutShard;
  static constexpr bool kIsReply = true;
  bool operator==(const PutShardReply&) const = default;
};

struct GetShardRequest {
  static constexpr Command kCommand = Command::kGetShard;
  static constexpr bool kIsReply = false;
  StripeId stripe;
  ShardIndex index = 0;
  uint64_t offset = 0;
  uint64_t length = 0;  // 0: to the end of the shard
  bool operator==(const GetShardRequest&) const = default;
};
struct GetShardReply {
  static constexpr Command kCommand = Command::kGetShard;
  static constexpr bool kIsReply = true;
  uint64_t shard_size = 0;  // whole shard, whatever range was asked
  uint32_t crc32c = 0;      // of the returned bytes (the payload frame)
  bool operator==(const GetShardReply&) const = default;
};

struct DeleteShardRequest {
  static constexpr Command kCommand = Command::kDeleteShard;
  static constexpr bool kIsReply = false;
  StripeId stripe;
  ShardIndex index = 0;
  std::string owner;  // must equal the owner recorded at PUT
  bool operator==(const DeleteShardRequest&) const = default;
};
struct DeleteShardReply {
  static constexpr Command kCommand = Command::kDeleteShard;
  static constexpr bool kIsReply = true;
  bool operator==(const DeleteShardReply&) const = default;
};

struct StatShardRequest {
  static constexpr Command kCommand = Command::kStatShard;
  static constexpr bool kIsReply = false;
  StripeId stripe;
  ShardIndex index = 0;
  bool operator==(const StatShardRequest&) const = default;
};
struct StatShardReply {
  static constexpr Command kCommand = Command::kStatShard;
  static constexpr bool kIsReply = true;
  uint64_t size = 0;
  uint32_t crc32c = 0;
  std::string owner;
  uint64_t created_unix_ms = 0;
  Locator locator;
  bool operator==(const StatShardReply&) const = default;
};

struct ListShardsRequest {
  static constexpr Command kCommand = Command::kListShards;
  static constexpr bool kIsReply = false;
  bool has_stripe_filter = false;  // only shards of `stripe_filter`
  StripeId stripe_filter;
  bool has_cursor = false;         // start strictly after (after_stripe, after_index)
  StripeId after_stripe;
  ShardIndex after_index = 0;
  uint32_t limit = 1000;           // 1..kMaxListLimit
  bool operator==(const ListShardsRequest&) const = default;
};
struct ListEntry {
  StripeId stripe;
  ShardIndex index = 0;
  uint64_t size = 0;
  uint32_t locator_version = 0;
  // LIST_HOLDINGS only (PROTOCOL.md §4.13); LIST_SHARDS neither sends nor
  // reads them.
  uint8_t k = 0;        // of the node's locator for the shard
  uint8_t m = 0;
  bool corrupt = false;  // the node found the shard corrupt; not served
  bool named = false;    // the node's newest locator names this node for this index
  bool operator==(const ListEntry&) const = default;
};
struct ListShardsReply {
  static constexpr Command kCommand = Command::kListShards;
  static constexpr bool kIsReply = true;
  std::vector<ListEntry> entries;  // ordered by (stripe, index)
  bool more = false;               // another page follows the last entry
  bool operator==(const ListShardsReply&) const = default;
};

// ---- Membership (PROTOCOL.md §4.10) ----
enum class PeerState : uint8_t {
  kUp = 0,       // answered within the suspect time
  kSuspect = 1,  // silent for longer: not given new shards, not yet repaired
  kDown = 2,     // silent past the grace period: its shards are rebuilt elsewhere
  kLeft = 3,     // said it is leaving (graceful exit): treated as down at once
};
const char* PeerStateName(PeerState s);

struct PeerEntry {
  NodeId node_id = 0;
  PeerState state = PeerState::kUp;
  uint64_t incarnation = 0;       // the node's start time, unix ms: the newer endpoint wins
  uint64_t last_seen_ms_ago = 0;  // since the sender last heard from it directly
  std::string endpoint;
  std::string zone;
  uint64_t capacity_bytes = 0;
  uint64_t used_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t shard_count = 0;
  bool operator==(const PeerEntry&) const = default;
};

struct PeersRequest {
  static constexpr Command kCommand = Command::kPeers;
  static constexpr bool kIsReply = false;
  bool from_node = false;         // peers[0] is the sending node itself
  std::vector<PeerEntry> peers;   // the sender's view (empty from clients)
  bool operator==(const PeersRequest&) const = default;
};
struct PeersReply {
  static constexpr Command kCommand = Command::kPeers;
  static constexpr bool kIsReply = true;
  std::vector<PeerEntry> peers;   // peers[0] is the answering node itself
  bool operator==(const PeersReply&) const = default;
};

// ---- Locator synchronisation (PROTOCOL.md §4.11) ----
struct SyncLocatorRequest {
  static constexpr Command kCommand = Command::kSyncLocator;
  static constexpr bool kIsReply = false;
  StripeId stripe;
  bool has_locator = false;  // offer `locator`: a holder adopts it if newer
  Locator locator;
  bool operator==(const SyncLocatorRequest&) const = default;
};
struct SyncLocatorReply {
  static constexpr Command kCommand = Command::kSyncLocator;
  static constexpr bool kIsReply = true;
  bool has_locator = false;  // false: the node holds nothing of the stripe
  Locator locator;           // its newest, after adopting the offered one
  uint64_t held_ok = 0;       // bit i: holds shard i intact (as far as it knows)
  uint64_t held_corrupt = 0;  // bit i: holds shard i but found it corrupt
  bool operator==(const SyncLocatorReply&) const = default;
};

// ---- Cluster status (PROTOCOL.md §4.12, §4.13) ----
struct NodeStatsRequest {
  static constexpr Command kCommand = Command::kNodeStats;
  static constexpr bool kIsReply = false;
  bool operator==(const NodeStatsRequest&) const = default;
};
// NodeStats (above) is the reply.

// Same fields and paging as LIST_SHARDS; the reply's entries carry k, m,
// corrupt and named as well.
struct ListHoldingsRequest : ListShardsRequest {
  static constexpr Command kCommand = Command::kListHoldings;
  bool operator==(const ListHoldingsRequest&) const = default;
};
struct ListHoldingsReply : ListShardsReply {
  static constexpr Command kCommand = Command::kListHoldings;
  bool operator==(const ListHoldingsReply&) const = default;
};

// Body of any reply whose status is not kOk.
struct ErrorBody {
  std::string message;
  bool operator==(const ErrorBody&) const = default;
};

// Body codecs, one pair per struct.
#define SHARDFS_WIRE_BODY(T)                      \
  void EncodeBody(const T& msg, std::string* out); \
  Status DecodeBody(std::string_view body, T* msg);
SHARDFS_WIRE_BODY(PingRequest)
SHARDFS_WIRE_BODY(PingReply)
SHARDFS_WIRE_BODY(PutShardRequest)
SHARDFS_WIRE_BODY(PutShardReply)
SHARDFS_WIRE_BODY(GetShardRequest)
SHARDFS_WIRE_BODY(GetShardReply)
SHARDFS_WIRE_BODY(DeleteShardRequest)
SHARDFS_WIRE_BODY(DeleteShardReply)
SHARDFS_WIRE_BODY(StatShardRequest)
SHARDFS_WIRE_BODY(StatShardReply)
SHARDFS_WIRE_BODY(ListShardsRequest)
SHARDFS_WIRE_BODY(ListShardsReply)
SHARDFS_WIRE_BODY(PeersRequest)
SHARDFS_WIRE_BODY(PeersReply)
SHARDFS_WIRE_BODY(SyncLocatorRequest)
SHARDFS_WIRE_BODY(SyncLocatorReply)
SHARDFS_WIRE_BODY(NodeStatsRequest)
SHARDFS_WIRE_BODY(NodeStats)
SHARDFS_WIRE_BODY(ListHoldingsRequest)
SHARDFS_WIRE_BODY(ListHoldingsReply)
SHARDFS_WIRE_BODY(ErrorBody)
#undef SHARDFS_WIRE_BODY

// Header + body envelope + body, for the first frame of a message.
void EncodeHeader(const FrameHeader& h, std::string* out);
void WrapBody(uint8_t body_version, std::string_view fields, std::string* out);

// The body version a message is written at (§3.2): 1 unless the struct
// says otherwise (bodies that appended fields).
template <typename Msg>
constexpr uint8_t BodyVersionOf() {
  if constexpr (requires { Msg::kBodyVersion; }) {
    return Msg::kBodyVersion;
  } else {
    return 1;
  }
}

template <typename Msg>
std::string EncodeMessage(uint64_t request_id, const Msg& msg) {
  FrameHeader h;
  h.command = Msg::kCommand;
  h.reply = Msg::kIsReply;
  h.request_id = request_id;
  std::string out;
  EncodeHeader(h, &out);
  std::string fields;
  EncodeBody(msg, &fields);
  WrapBody(BodyVersionOf<Msg>(), fields, &out);
  return out;
}

// An error reply to `command` with status `code`.
std::string EncodeError(Command command, uint64_t request_id, WireCode code,
                        std::string_view message);

// Maps between wire codes and Status (client side turns a reply into a Status).
Status StatusFromWire(WireCode code, std::string_view message);
WireCode WireCodeFromStatus(const Status& status);
const char* WireCodeName(WireCode code);

}  // namespace shardfs::wire
