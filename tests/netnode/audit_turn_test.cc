// Tests for netnode/audit_turn: the holders of a stripe take turns, one per
// round, and each gets its turn within n rounds.
#include "netnode/audit_turn.h"

#include <doctest/doctest.h>

#include <map>

namespace shardfs {
namespace {

Locator FourPlusTwo(const StripeId& stripe, const std::vector<NodeId>& nodes) {
  Locator loc;
  loc.stripe = stripe;
  loc.k = 4;
  loc.m = 2;
  for (NodeId id : nodes) loc.shards.push_back(ShardLocation{id, 0, {}});
  return loc;
}

}  // namespace

TEST_SUITE("audit_turn") {
  TEST_CASE("rounds follow the wall clock in audit intervals") {
    using std::chrono::milliseconds;
    CHECK(AuditRound(0, milliseconds(60000)) == 0);
    CHECK(AuditRound(59999, milliseconds(60000)) == 0);
    CHECK(AuditRound(60000, milliseconds(60000)) == 1);
    CHECK(AuditRound(1700000000123, milliseconds(1000)) == 1700000000);
    CHECK(AuditRound(5, milliseconds(0)) == 5);  // a zero interval divides by 1
  }

  TEST_CASE("one holder per round, each holder once in n rounds") {
    const std::vector<NodeId> nodes = {11, 12, 13, 14, 15, 16};
    for (int s = 0; s < 50; ++s) {
      const StripeId stripe = StripeId::Random();
      const Locator loc = FourPlusTwo(stripe, nodes);
      std::map<NodeId, int> turns;
      for (uint64_t round = 1000; round < 1006; ++round) {
        int holders = 0;
        for (NodeId id : nodes) {
          if (IsOurAuditTurn(loc, id, round)) {
            ++holders;
            ++turns[id];
          }
        }
        CHECK(holders == 1);
        CHECK_FALSE(IsOurAuditTurn(loc, 99, round));  // not a holder
      }
      for (NodeId id : nodes) CHECK(turns[id] == 1);
    }
  }

  TEST_CASE("a node holding two indexes has two turns in n rounds") {
    const Locator loc = FourPlusTwo(StripeId::Random(), {11, 12, 11, 14, 15, 16});
    int turns = 0;
    for (uint64_t round = 0; round < 6; ++round) turns += IsOurAuditTurn(loc, 11, round);
    CHECK(turns == 2);
  }

  TEST_CASE("stripes spread their turns over the holders") {
    // Were the stripe ignored, one node would audit everything each round.
    const std::vector<NodeId> nodes = {11, 12, 13, 14, 15, 16};
    std::map<NodeId, int> turns;
    for (int s = 0; s < 600; ++s) {
      const Locator loc = FourPlusTwo(StripeId::Random(), nodes);
      for (NodeId id : nodes) turns[id] += IsOurAuditTurn(loc, id, 7);
    }
    for (NodeId id : nodes) {
      CHECK(turns[id] > 50);
      CHECK(turns[id] < 150);
    }
  }

  TEST_CASE("a malformed locator gives nobody a turn") {
    Locator loc = FourPlusTwo(StripeId::Random(), {11, 12, 13});  // 3 of 6 shards
    for (uint64_t round = 0; round < 6; ++round) CHECK_FALSE(IsOurAuditTurn(loc, 11, round));
  }
}

}  // namespace shardfs
