// Placement by weighted rendezvous hashing. See placement.h.
#include "lib/placement.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <string>

namespace shardfs {
namespace {

// splitmix64's finalizer: a bijective mix with full avalanche.
uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

bool Contains(std::span<const NodeId> ids, NodeId id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

struct Ranked {
  const NodeInfo* node;
  double score;
};

// Usable nodes, highest score first (ties, which need equal hashes, by id so
// the order is total). A node id listed twice counts once.
std::vector<Ranked> Rank(const StripeId& stripe, std::span<const NodeInfo> nodes,
                         uint64_t shard_size, std::span<const NodeId> excluded) {
  std::vector<Ranked> out;
  std::set<NodeId> seen;
  for (const NodeInfo& n : nodes) {
    if (!n.up || n.id == 0 || n.free_bytes < shard_size || n.free_bytes == 0) continue;
    if (Contains(excluded, n.id) || !seen.insert(n.id).second) continue;
    out.push_back({&n, PlacementScore(stripe, n.id, n.free_bytes)});
  }
  std::sort(out.begin(), out.end(), [](const Ranked& a, const Ranked& b) {
    if (a.score != b.score) return a.score > b.score;
    return a.node->id < b.node->id;
  });
  return out;
}

// Score order, but a node whose zone is taken waits while a node of an
// untaken zone remains. `taken` starts with zones already in use.
std::vector<const NodeInfo*> SpreadOrder(const std::vector<Ranked>& ranked,
                                         std::set<std::string> taken) {
  std::vector<const NodeInfo*> first, rest;
  for (const Ranked& r : ranked) {
    if (taken.insert(r.node->zone).second) {
      first.push_back(r.node);
    } else {
      rest.push_back(r.node);
    }
  }
  first.insert(first.end(), rest.begin(), rest.end());
  return first;
}

Status TooFew(size_t usable, int n, uint64_t shard_size) {
  return Status::Unavailable("only " + std::to_string(usable) + " usable node" +
                             (usable == 1 ? "" : "s") + " (up, with " + std::to_string(shard_size) +
                             " bytes free) for " + std::to_string(n) + " shards");
}

}  // namespace

double PlacementScore(const StripeId& stripe, NodeId node, uint64_t weight) {
  uint64_t a = 0, b = 0;
  for (int i = 0; i < 8; ++i) {
    a |= static_cast<uint64_t>(stripe.bytes[i]) << (8 * i);
    b |= static_cast<uint64_t>(stripe.bytes[8 + i]) << (8 * i);
  }
  const uint64_t h = Mix(a ^ Mix(b ^ Mix(node ^ 0x9e3779b97f4a7c15ULL)));
  // 53 random bits, centred in their interval: u is never 0 or 1.
  const double u = (static_cast<double>(h >> 11) + 0.5) * 0x1.0p-53;
  return -static_cast<double>(weight) / std::log(u);
}

Result<std::vector<NodeInfo>> PlaceStripe(const StripeId& stripe, std::span<const NodeInfo> nodes,
                                          int n, uint64_t shard_size,
                                          std::span<const NodeId> excluded) {
  if (n < 1) return Status::InvalidArgument("placement of " + std::to_string(n) + " shards");
  std::vector<Ranked> ranked = Rank(stripe, nodes, shard_size, excluded);
  if (ranked.size() < static_cast<size_t>(n)) return TooFew(ranked.size(), n, shard_size);
  std::vector<const NodeInfo*> order = SpreadOrder(ranked, {});
  std::vector<NodeInfo> out;
  out.reserve(n);
  for (int i = 0; i < n; ++i) out.push_back(*order[i]);
  return out;
}

Result<std::vector<NodeInfo>> PlaceStripeDegraded(const StripeId& stripe,
                                                  std::span<const NodeInfo> nodes, int n,
                                                  int max_per_node, uint64_t shard_size) {
  if (n < 1) return Status::InvalidArgument("placement of " + std::to_string(n) + " shards");
  std::vector<Ranked> ranked = Rank(stripe, nodes, shard_size, {});
  const size_t u = ranked.size();
  if (u >= static_cast<size_t>(n)) return PlaceStripe(stripe, nodes, n, shard_size);
  const size_t per_node = u == 0 ? 0 : (static_cast<size_t>(n) + u - 1) / u;
  if (u == 0 || max_per_node < 1 || per_node > static_cast<size_t>(max_per_node)) {
    const int per = std::max(max_per_node, 1);
    return Status::Unavailable(TooFew(u, n, shard_size).message() + "; at most " +
                               std::to_string(per) + " per node needs " +
                               std::to_string((n + per - 1) / per));
  }
  std::vector<const NodeInfo*> order = SpreadOrder(ranked, {});
  std::vector<NodeInfo> out;
  out.reserve(n);
  // Round-robin: consecutive indexes land on different nodes.
  for (int i = 0; i < n; ++i) out.push_back(*order[static_cast<size_t>(i) % u]);
  return out;
}

Result<NodeInfo> PlaceReplacement(const StripeId& stripe, std::span<const NodeInfo> nodes,
                                  uint64_t shard_size, std::span<const NodeId> holders,
                                  std::span<const NodeId> excluded, int max_per_node) {
  std::vector<Ranked> ranked = Rank(stripe, nodes, shard_size, excluded);
  std::set<std::string> taken_zones;
  for (const NodeInfo& n : nodes) {
    if (Contains(holders, n.id)) taken_zones.insert(n.zone);
  }
  std::vector<Ranked> fresh;
  for (const Ranked& r : ranked) {
    if (!Contains(holders, r.node->id)) fresh.push_back(r);
  }
  if (!fresh.empty()) return *SpreadOrder(fresh, taken_zones).front();
  // No fresh node: double up on the holder with the fewest shards.
  const NodeInfo* best = nullptr;
  long best_count = 0;
  for (const Ranked& r : ranked) {
    long count = std::count(holders.begin(), holders.end(), r.node->id);
    if (count >= max_per_node) continue;
    if (best == nullptr || count < best_count) {
      best = r.node;
      best_count = count;
    }
  }
  if (best == nullptr) {
    return Status::Unavailable("no node left for a replacement shard (" +
                               std::to_string(ranked.size()) + " usable, all full or at " +
                               std::to_string(max_per_node) + " shards of this stripe)");
  }
  return *best;
}

}  // namespace shardfs
