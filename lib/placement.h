// Placement: which nodes hold the shards of a stripe.
//
// Weighted rendezvous hashing: every usable node gets a score
//   score = -w / ln(u),  u in (0,1) from a hash of (stripe id, node id),
//   w = the node's free bytes,
// and the highest scores win. The choice depends only on the stripe id and
// the node table, so every client (and later a repairing node) computes the
// same answer; adding or removing one node moves only the stripes it wins
// or loses; a node with twice the free space wins about twice as often.
//
// Zones: nodes are taken in score order, skipping a node whose zone is
// already used as long as unused zones remain; then the rest by score. So no
// two shards share a zone while there are at least n zones.
//
// Usable: up, a known id, free_bytes >= shard size, not excluded.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "lib/cluster_client.h"
#include "lib/ids.h"
#include "lib/status.h"

namespace shardfs {

// n distinct usable nodes, in shard-index order. Unavailable ("only U usable
// nodes for N shards") when fewer than n are usable.
Result<std::vector<NodeInfo>> PlaceStripe(const StripeId& stripe, std::span<const NodeInfo> nodes,
                                          int n, uint64_t shard_size,
                                          std::span<const NodeId> excluded = {});

// For when fewer than n nodes are usable (a small cluster with a node
// down): n entries, spread round-robin over the usable nodes in placement
// order, so that no node holds more than `max_per_node` shards. With
// max_per_node <= m a stripe still survives the loss of any one node.
// Unavailable when even that is impossible. Equals PlaceStripe when enough
// nodes are usable.
Result<std::vector<NodeInfo>> PlaceStripeDegraded(const StripeId& stripe,
                                                  std::span<const NodeInfo> nodes, int n,
                                                  int max_per_node, uint64_t shard_size);

// One node for a shard whose first node failed. `holders` are the nodes of
// the stripe's other shards (one entry per shard), `excluded` the nodes that
// failed. Prefers a usable node holding nothing of the stripe, in a zone the
// holders do not use; else, if allowed, the usable holder with the fewest
// shards below `max_per_node`. Unavailable if none qualifies.
Result<NodeInfo> PlaceReplacement(const StripeId& stripe, std::span<const NodeInfo> nodes,
                                  uint64_t shard_size, std::span<const NodeId> holders,
                                  std::span<const NodeId> excluded, int max_per_node);

// The rendezvous score of `node` for `stripe` with weight `weight` (> 0).
double PlacementScore(const StripeId& stripe, NodeId node, uint64_t weight);

}  // namespace shardfs
