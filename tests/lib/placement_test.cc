// Tests for lib/placement: the properties issue 2 asks for (distinct nodes,
// zone spread, determinism, full and down nodes skipped, weighting,
// exclusion, too few nodes) plus degraded placement and replacements.
#include "lib/placement.h"

#include <doctest/doctest.h>

#include <map>
#include <set>

namespace shardfs {
namespace {

constexpr uint64_t kGiB = 1ull << 30;

std::vector<NodeInfo> MakeNodes(int count, int zones, uint64_t free = 100 * kGiB) {
  std::vector<NodeInfo> nodes;
  for (int i = 0; i < count; ++i) {
    NodeInfo n;
    n.id = 1000 + i;
    n.endpoint = "tcp://127.0.0.1:" + std::to_string(40000 + i);
    n.zone = "zone-" + std::to_string(i % zones);
    n.free_bytes = free;
    n.capacity_bytes = free;
    n.up = true;
    nodes.push_back(n);
  }
  return nodes;
}

StripeId Stripe(int i) {
  StripeId s;
  for (int b = 0; b < 4; ++b) s.bytes[b] = static_cast<uint8_t>(i >> (8 * b));
  s.bytes[15] = 0x5a;
  return s;
}

std::set<NodeId> Ids(const std::vector<NodeInfo>& v) {
  std::set<NodeId> s;
  for (const NodeInfo& n : v) s.insert(n.id);
  return s;
}

}  // namespace

TEST_SUITE("placement") {
  TEST_CASE("n distinct nodes") {
    auto nodes = MakeNodes(10, 10);
    for (int s = 0; s < 200; ++s) {
      CAPTURE(s);
      auto p = PlaceStripe(Stripe(s), nodes, 6, 1 << 20);
      REQUIRE(p.ok());
      CHECK(p->size() == 6);
      CHECK(Ids(*p).size() == 6);
    }
  }

  TEST_CASE("no two shards in one zone while there are at least n zones") {
    SUBCASE("exactly n zones") {
      auto nodes = MakeNodes(18, 6);  // three nodes per zone
      for (int s = 0; s < 300; ++s) {
        auto p = PlaceStripe(Stripe(s), nodes, 6, 1 << 20);
        REQUIRE(p.ok());
        std::set<std::string> zones;
        for (const NodeInfo& n : *p) zones.insert(n.zone);
        CAPTURE(s);
        CHECK(zones.size() == 6);
      }
    }
    SUBCASE("fewer zones than n: every zone used, the rest filled") {
      auto nodes = MakeNodes(12, 4);
      for (int s = 0; s < 100; ++s) {
        auto p = PlaceStripe(Stripe(s), nodes, 6, 1 << 20);
        REQUIRE(p.ok());
        std::set<std::string> zones;
        for (const NodeInfo& n : *p) zones.insert(n.zone);
        CHECK(zones.size() == 4);
        CHECK(Ids(*p).size() == 6);
      }
    }
  }

  TEST_CASE("deterministic for a given stripe and table, whatever the table order") {
    auto nodes = MakeNodes(12, 5);
    auto reversed = nodes;
    std::reverse(reversed.begin(), reversed.end());
    for (int s = 0; s < 100; ++s) {
      auto a = PlaceStripe(Stripe(s), nodes, 6, 1 << 20);
      auto b = PlaceStripe(Stripe(s), nodes, 6, 1 << 20);
      auto c = PlaceStripe(Stripe(s), reversed, 6, 1 << 20);
      REQUIRE(a.ok());
      REQUIRE(b.ok());
      REQUIRE(c.ok());
      for (int i = 0; i < 6; ++i) {
        CHECK((*a)[i].id == (*b)[i].id);
        CHECK((*a)[i].id == (*c)[i].id);
      }
    }
    // Different stripes spread over different nodes.
    std::set<NodeId> firsts;
    for (int s = 0; s < 100; ++s) firsts.insert((*PlaceStripe(Stripe(s), nodes, 1, 1))[0].id);
    CHECK(firsts.size() == 12);
  }

  TEST_CASE("full and down nodes are skipped") {
    auto nodes = MakeNodes(8, 8);
    nodes[0].up = false;
    nodes[1].free_bytes = 1000;  // less than a shard
    nodes[2].free_bytes = 0;
    nodes[3].id = 0;  // never answered a ping
    for (int s = 0; s < 200; ++s) {
      auto p = PlaceStripe(Stripe(s), nodes, 4, 1 << 20);
      REQUIRE(p.ok());
      for (const NodeInfo& n : *p) {
        CHECK(n.id != nodes[0].id);
        CHECK(n.id != nodes[1].id);
        CHECK(n.id != nodes[2].id);
        CHECK(n.id != 0);
      }
    }
  }

  TEST_CASE("weighting is roughly proportional to free space") {
    std::vector<NodeInfo> nodes = MakeNodes(3, 1);
    nodes[0].free_bytes = 1 * kGiB;
    nodes[1].free_bytes = 2 * kGiB;
    nodes[2].free_bytes = 3 * kGiB;
    std::map<NodeId, int> wins;
    constexpr int kStripes = 30000;
    for (int s = 0; s < kStripes; ++s) ++wins[(*PlaceStripe(Stripe(s), nodes, 1, 1))[0].id];
    for (int i = 0; i < 3; ++i) {
      const double share = static_cast<double>(wins[nodes[i].id]) / kStripes;
      CAPTURE(i);
      CHECK(share == doctest::Approx((i + 1) / 6.0).epsilon(0.1));
    }
  }

  TEST_CASE("excluded nodes are never chosen") {
    auto nodes = MakeNodes(8, 8);
    std::vector<NodeId> excluded = {nodes[2].id, nodes[5].id};
    for (int s = 0; s < 200; ++s) {
      auto p = PlaceStripe(Stripe(s), nodes, 6, 1, excluded);
      REQUIRE(p.ok());
      CHECK(Ids(*p).count(nodes[2].id) == 0);
      CHECK(Ids(*p).count(nodes[5].id) == 0);
    }
    auto too_many = PlaceStripe(Stripe(1), nodes, 7, 1, excluded);
    CHECK(too_many.status().IsUnavailable());
  }

  TEST_CASE("too few usable nodes is an error naming how many") {
    auto nodes = MakeNodes(5, 5);
    nodes[4].up = false;
    auto p = PlaceStripe(Stripe(1), nodes, 6, 1 << 20);
    REQUIRE_FALSE(p.ok());
    CHECK(p.status().IsUnavailable());
    CHECK(p.status().message().find("only 4 usable nodes") != std::string::npos);
    CHECK_FALSE(PlaceStripe(Stripe(1), {}, 1, 1).ok());
  }

  TEST_CASE("degraded placement doubles up within max_per_node") {
    auto nodes = MakeNodes(5, 5);
    nodes[4].up = false;  // 4 usable for 6 shards
    auto p = PlaceStripeDegraded(Stripe(3), nodes, 6, 2, 1);
    REQUIRE(p.ok());
    std::map<NodeId, int> per;
    for (const NodeInfo& n : *p) ++per[n.id];
    CHECK(per.size() == 4);
    for (auto& [id, count] : per) CHECK(count <= 2);
    // Three usable nodes can hold 6 shards at 2 each; two cannot.
    nodes[3].up = false;
    CHECK(PlaceStripeDegraded(Stripe(3), nodes, 6, 2, 1).ok());
    nodes[2].up = false;
    CHECK(PlaceStripeDegraded(Stripe(3), nodes, 6, 2, 1).status().IsUnavailable());
    // With enough nodes it is exactly PlaceStripe.
    auto all = MakeNodes(9, 9);
    auto a = PlaceStripeDegraded(Stripe(4), all, 6, 2, 1);
    auto b = PlaceStripe(Stripe(4), all, 6, 1);
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    for (int i = 0; i < 6; ++i) CHECK((*a)[i].id == (*b)[i].id);
  }

  TEST_CASE("replacement prefers a fresh node in a fresh zone, then doubles up") {
    auto nodes = MakeNodes(8, 8);
    auto p = PlaceStripe(Stripe(9), nodes, 6, 1);
    REQUIRE(p.ok());
    std::vector<NodeId> holders;
    for (int i = 1; i < 6; ++i) holders.push_back((*p)[i].id);
    std::vector<NodeId> failed = {(*p)[0].id};
    auto r = PlaceReplacement(Stripe(9), nodes, 1, holders, failed, 2);
    REQUIRE(r.ok());
    CHECK(Ids(*p).count(r->id) == 0);
    // Only holders are left: the one with fewest shards, never a failed one.
    for (NodeInfo& n : nodes) {
      if (Ids(*p).count(n.id) == 0) n.up = false;
    }
    auto d = PlaceReplacement(Stripe(9), nodes, 1, holders, failed, 2);
    REQUIRE(d.ok());
    CHECK(d->id != failed[0]);
    CHECK(std::count(holders.begin(), holders.end(), d->id) == 1);
    CHECK(PlaceReplacement(Stripe(9), nodes, 1, holders, failed, 1).status().IsUnavailable());
  }
}

}  // namespace shardfs
