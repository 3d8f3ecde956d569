// StripeHealth: how well one stored stripe is protected right now, from its
// locator and the set of nodes that answer. Shared by the status xattr
// (user.shardfs.status, fs/volume_files.cc) and `shardctl stat`, so both
// say the same thing (METADATA.md §9).
//
// "stored n of n" means n shards on n distinct live nodes. A stripe written
// while fewer than n nodes were usable holds up to m shards per node
// (lib/placement.h PlaceStripeDegraded): every shard may be live, yet one
// node loss costs two of them, so it is degraded too.
//
// Thread-safety: pure functions.
#pragma once

#include <set>
#include <string>

#include "lib/ids.h"
#include "lib/locator.h"

namespace shardfs::fs {

struct StripeHealth {
  int k = 0;
  int n = 0;
  int live = 0;        // shards on live nodes
  int live_nodes = 0;  // distinct live nodes holding them
  // How many more live nodes may fail with the stripe still readable
  // (the nodes holding most shards fail first); -1 if unreadable now.
  int spare = -1;

  bool full() const { return live == n && live_nodes == n; }
  bool readable() const { return live >= k; }
};

StripeHealth AssessStripe(const Locator& loc, const std::set<NodeId>& live_nodes);

// True if `a` is worse protected than `b` (fewer spare node losses first).
bool WorseThan(const StripeHealth& a, const StripeHealth& b);

// "stored 6 of 6", "degraded: 4 of 6 shards on live nodes, survives 0 more
// node losses", "degraded: 6 of 6 shards on live nodes, only 3 distinct,
// survives 1 more node loss", "unreadable now: 3 of 6 shards on live nodes,
// 4 needed".
std::string DescribeHealth(const StripeHealth& h);

}  // namespace shardfs::fs
