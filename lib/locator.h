// Locator: where the shards of one stripe (one encrypted segment) live, and
// what they must hash to. The client keeps it in its metadata; every shard
// on a node carries a copy so nodes can repair without the client.
//
// Thread-safety: plain value type.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "lib/coding.h"
#include "lib/ids.h"

namespace shardfs {

struct ShardLocation {
  NodeId node = 0;
  uint32_t crc32c = 0;                 // of the shard's bytes (bit rot, transport)
  std::array<uint8_t, 32> sha256{};    // of the shard's bytes (repair, ARCHITECTURE.md §Integrity)
  bool operator==(const ShardLocation&) const = default;
};

struct Locator {
  StripeId stripe;
  uint32_t version = 1;  // bumped by every repair
  uint8_t k = 0;
  uint8_t m = 0;
  uint32_t shard_size = 0;   // every shard of the stripe has this length
  uint32_t sealed_size = 0;  // ciphertext length before padding, <= k*shard_size
  std::vector<ShardLocation> shards;  // exactly k+m, by shard index

  int n() const { return k + m; }
  bool operator==(const Locator&) const = default;
};

// PROTOCOL.md §4.9 (locator encoding).
void EncodeLocator(const Locator& loc, std::string* out);
// Fails (false) on short input or an inconsistent locator: k < 1,
// k + m > wire::kMaxShards, shards.size() != k + m, shard_size >
// wire::kMaxShardSize, sealed_size > k * shard_size.
bool DecodeLocator(Reader* in, Locator* loc);

// PROTOCOL.md §4.11: the total order in which locators of one stripe
// supersede each other, so that every node converges on the same one: the
// higher version wins; at equal versions (two repairs that raced) the one
// whose encoding is greater, byte by byte, wins. True when `a` supersedes `b`.
bool LocatorNewer(const Locator& a, const Locator& b);

}  // namespace shardfs
