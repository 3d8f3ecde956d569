// Tests for the node's self-healing parts that need no network: the
// catalog's locator adoption and scrub queries (STORAGE.md §6), the
// membership table (netnode/membership.h) fed by PEERS messages, and the
// token bucket (netnode/rate_limiter.h).
#include <doctest/doctest.h>

#include <chrono>

#include "netnode/catalog.h"
#include "netnode/membership.h"
#include "netnode/rate_limiter.h"
#include "tests/netnode/temp_dir.h"
#include "tests/netnode/test_util.h"

namespace shardfs {
namespace {

using testing::TestLocator;
using testing::TestPayload;
using testing::TestStripe;

ShardRecord Row(uint8_t first, ShardIndex idx) {
  auto payload = TestPayload(16, first);
  ShardRecord r;
  r.key = ShardKey{TestStripe(first), idx};
  r.size = payload.size();
  r.crc32c = 1;
  r.owner = "owner";
  r.locator = TestLocator(r.key.stripe, payload);
  r.created_ms = 1000;
  r.last_verified_ms = 2000 + first;
  return r;
}

}  // namespace

TEST_SUITE("repair") {
  TEST_CASE("catalog: a locator is adopted only when it supersedes") {
    testing::TempDir dir;
    auto cat = Catalog::Open(dir.Sub("node.db"));
    REQUIRE(cat.ok());
    REQUIRE((*cat)->PutBatch(std::vector<ShardRecord>{Row(1, 0), Row(1, 1), Row(2, 0)}).ok());
    Locator newer = Row(1, 0).locator;
    newer.version += 1;
    newer.shards[1].node = 0x99;
    bool changed = false;
    REQUIRE((*cat)->AdoptLocator(newer, &changed).ok());
    CHECK(changed);
    auto rows = (*cat)->StripeRows(TestStripe(1));
    REQUIRE(rows.ok());
    REQUIRE(rows->size() == 2);
    for (const ShardRecord& r : *rows) CHECK(r.locator == newer);
    // The other stripe is untouched; an older locator changes nothing.
    auto other = (*cat)->Get(ShardKey{TestStripe(2), 0});
    REQUIRE(other.ok());
    CHECK((*other)->locator.version == 3);
    REQUIRE((*cat)->AdoptLocator(Row(1, 0).locator, &changed).ok());
    CHECK_FALSE(changed);
    auto listed = (*cat)->List(TestStripe(1), std::nullopt, 10);
    REQUIRE(listed.ok());
    CHECK((*listed)[1].named_node == 0x99);
    CHECK((*listed)[0].locator_version == newer.version);
  }

  TEST_CASE("catalog: stripes page in order; scrub takes the oldest verified") {
    testing::TempDir dir;
    auto cat = Catalog::Open(dir.Sub("node.db"));
    REQUIRE(cat.ok());
    REQUIRE((*cat)
                ->PutBatch(std::vector<ShardRecord>{Row(3, 0), Row(1, 0), Row(1, 2), Row(2, 0)})
                .ok());
    auto first = (*cat)->Stripes(std::nullopt, 2);
    REQUIRE(first.ok());
    REQUIRE(first->size() == 2);
    CHECK((*first)[0] == TestStripe(1));
    auto rest = (*cat)->Stripes(first->back(), 10);
    REQUIRE(rest.ok());
    REQUIRE(rest->size() == 1);
    CHECK((*rest)[0] == TestStripe(3));

    auto due = (*cat)->LeastRecentlyVerified(2003, 10);  // verified at 2001, 2001, 2002, 2003
    REQUIRE(due.ok());
    CHECK(due->size() == 3);
    REQUIRE((*cat)->SetVerified(ShardKey{TestStripe(1), 0}, 9000).ok());
    REQUIRE((*cat)->SetState(ShardKey{TestStripe(2), 0}, ShardState::kCorrupt).ok());
    due = (*cat)->LeastRecentlyVerified(2003, 10);
    REQUIRE(due.ok());
    REQUIRE(due->size() == 1);  // verified or corrupt: not due
    CHECK((*due)[0] == ShardKey{TestStripe(1), 2});
  }

  TEST_CASE("membership: peers learned from PEERS, liveness only from direct contact") {
    MembershipOptions mo;
    mo.self_id = 1;
    mo.self_endpoint = "tcp://127.0.0.1:1";
    mo.zone = "z1";
    mo.incarnation = 100;
    mo.heartbeat = std::chrono::milliseconds(10);
    mo.suspect_after = std::chrono::milliseconds(35);
    mo.down_after = std::chrono::milliseconds(80);
    Membership m(nullptr, mo);  // never Start()ed: no heartbeat, no rpc needed

    wire::PeersRequest req;
    req.from_node = true;
    wire::PeerEntry a;
    a.node_id = 2;
    a.endpoint = "tcp://127.0.0.1:2";
    a.zone = "z2";
    a.incarnation = 5;
    wire::PeerEntry gossip = a;
    gossip.node_id = 3;
    gossip.endpoint = "tcp://127.0.0.1:3";
    req.peers = {a, gossip};
    wire::PeersReply reply = m.OnPeers(req);
    REQUIRE(reply.peers.size() == 3);
    CHECK(reply.peers[0].node_id == 1);
    CHECK(reply.peers[0].zone == "z1");
    CHECK(m.EndpointOf(3) == std::optional<std::string>("tcp://127.0.0.1:3"));

    SUBCASE("a restarted node's new endpoint wins over older gossip") {
      wire::PeersRequest restart;
      restart.from_node = true;
      wire::PeerEntry again = a;
      again.incarnation = 6;
      again.endpoint = "tcp://127.0.0.1:22";
      restart.peers = {again};
      m.OnPeers(restart);
      wire::PeersRequest stale;
      stale.peers = {a};  // gossip about the old incarnation
      m.OnPeers(stale);
      CHECK(m.EndpointOf(2) == std::optional<std::string>("tcp://127.0.0.1:22"));
    }
    SUBCASE("self is up and placeable; unknown ids are unknown") {
      CHECK(m.StateOf(1) == wire::PeerState::kUp);
      CHECK_FALSE(m.StateOf(77).has_value());
      CHECK(m.Reachable(1));
      auto nodes = m.PlacementNodes();
      REQUIRE(nodes.size() == 3);
      CHECK(nodes[0].id == 1);
      CHECK(nodes[0].up);
    }
  }

  TEST_CASE("rate limiter: bounded by its rate, unlimited at 0, stops") {
    RateLimiter unlimited(0);
    CHECK(unlimited.Acquire(1ull << 40));
    RateLimiter lim(1000000);  // 1 MB/s, starts with one second of tokens
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(lim.Acquire(1000000));
    CHECK(lim.Acquire(200000));  // waits ~0.2 s
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CHECK(s >= 0.15);
    CHECK(s < 2.0);
    lim.Stop();
    CHECK_FALSE(lim.Acquire(1));
  }

}  // TEST_SUITE

}  // namespace shardfs
