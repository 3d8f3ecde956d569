// Rebuild: fetch k shards of a stripe, check each against the SHA-256 its
// owner recorded in the locator, and rebuild the missing ones with the
// erasure code (lib/erasure.h). Used by repair (shards lost with a node),
// local healing (a corrupt shard of our own) and nothing else.
//
// Why SHA-256 and not just CRC32C: a lying peer can forge bytes with a
// matching CRC, and a repairing node has no key to check the segment's GCM
// tag. A source that fails the check is skipped (and logged); another
// healthy shard is fetched in its place. The rebuilt shards are checked
// against their recorded SHA-256 too, so a rebuild either reproduces
// exactly what the owner wrote or fails (ARCHITECTURE.md, Integrity).
//
// Thread-safety: RebuildShards may run on any thread that may block (not a
// transport callback). `catalog` must belong to the calling thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "lib/locator.h"
#include "lib/status.h"
#include "lib/transport.h"
#include "netnode/catalog.h"
#include "netnode/rate_limiter.h"
#include "netnode/shard_store.h"

namespace shardfs {

// One healthy shard to read: from our own store when `local`, else by
// GET_SHARD from `endpoint`.
struct RebuildSource {
  int index = 0;
  bool local = false;
  std::string endpoint;
};

struct RebuildContext {
  RpcClient* rpc = nullptr;
  ShardStore* store = nullptr;
  Catalog* catalog = nullptr;      // the calling thread's
  RateLimiter* limiter = nullptr;  // bytes received count against it
  std::chrono::milliseconds timeout{10000};
  uint64_t* bytes_fetched = nullptr;  // incremented when non-null
};

// Shard bytes by index; shared so zero-copy PUT payloads can pin them.
using ShardBuffers = std::map<int, std::shared_ptr<std::vector<uint8_t>>>;

// The shards `wanted` (indexes of `loc`) rebuilt from `sources` (tried in
// order; local ones are free). Unavailable when fewer than k sources give
// verified bytes; Corruption when a rebuilt shard does not match its
// recorded SHA-256.
Result<ShardBuffers> RebuildShards(const Locator& loc, const std::vector<RebuildSource>& sources,
                                   const std::vector<int>& wanted, const RebuildContext& ctx);

}  // namespace shardfs
