// Stripe health for status reports. See stripe_health.h.
#include "fs/stripe_health.h"

#include <algorithm>
#include <functional>
#include <map>
#include <tuple>
#include <vector>

namespace shardfs::fs {

StripeHealth AssessStripe(const Locator& loc, const std::set<NodeId>& live_nodes) {
  StripeHealth h;
  h.k = loc.k;
  h.n = loc.n();
  std::map<NodeId, int> per_node;
  for (const ShardLocation& s : loc.shards) {
    if (live_nodes.count(s.node)) ++per_node[s.node];
  }
  std::vector<int> counts;
  for (const auto& [node, c] : per_node) {
    h.live += c;
    counts.push_back(c);
  }
  h.live_nodes = static_cast<int>(counts.size());
  if (!h.readable()) return h;
  std::sort(counts.begin(), counts.end(), std::greater<int>());
  int left = h.live;
  h.spare = 0;
  for (int c : counts) {
    if (left - c < h.k) break;
    left -= c;
    ++h.spare;
  }
  return h;
}

bool WorseThan(const StripeHealth& a, const StripeHealth& b) {
  return std::tie(a.spare, a.live, a.live_nodes) < std::tie(b.spare, b.live, b.live_nodes);
}

std::string DescribeHealth(const StripeHealth& h) {
  const std::string of = std::to_string(h.live) + " of " + std::to_string(h.n);
  if (h.full()) return "stored " + of;
  if (!h.readable()) {
    return "unreadable now: " + of + " shards on live nodes, " + std::to_string(h.k) + " needed";
  }
  std::string s = "degraded: " + of + " shards on live nodes";
  if (h.live_nodes < h.live) s += ", only " + std::to_string(h.live_nodes) + " distinct";
  s += ", survives " + std::to_string(h.spare) + " more node loss" + (h.spare == 1 ? "" : "es");
  return s;
}

}  // namespace shardfs::fs
