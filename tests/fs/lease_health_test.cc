// Unit tests of the mount lease (fs/lease.h: one mount per state dir and per
// volume) and of stripe health for status reports (fs/stripe_health.h).
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>

#include "fs/lease.h"
#include "fs/stripe_health.h"

namespace shardfs::fs {
namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/lease_test.XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

// A volume id no real mount uses (the socket name is machine-wide).
std::string TestVolumeId() {
  return "test" + std::to_string(::getpid()) + "x" + std::to_string(std::rand());
}

TEST_SUITE("fs_lease") {
  TEST_CASE("the same state dir: refused, naming the holder's pid") {
    TempDir d;
    const std::string vol = TestVolumeId();
    auto first = Lease::Acquire(d.path + "/lease", vol);
    REQUIRE(first.ok());
    auto second = Lease::Acquire(d.path + "/lease", vol);
    REQUIRE(!second.ok());
    CHECK(second.status().code() == Code::kBusy);
    const std::string msg = second.status().message();
    CHECK(msg.find("already mounted by pid " + std::to_string(::getpid())) != std::string::npos);
    CHECK(msg.find(d.path + "/lease") != std::string::npos);
  }

  TEST_CASE("another state dir of the same volume: refused while held") {
    TempDir a, b;
    const std::string vol = TestVolumeId();
    {
      auto first = Lease::Acquire(a.path + "/lease", vol);
      REQUIRE(first.ok());
      auto second = Lease::Acquire(b.path + "/lease", vol);
      REQUIRE(!second.ok());
      const std::string msg = second.status().message();
      CAPTURE(msg);
      CHECK(second.status().code() == Code::kBusy);
      CHECK(msg.find("already mounted by pid " + std::to_string(::getpid())) !=
            std::string::npos);
      CHECK(msg.find("another state dir") != std::string::npos);
      // The refused attempt left b's lease free.
      auto other_volume = Lease::Acquire(b.path + "/lease", TestVolumeId());
      CHECK(other_volume.ok());
    }
    // Released with the first lease: both locks.
    auto again = Lease::Acquire(b.path + "/lease", vol);
    CHECK(again.ok());
  }

  TEST_CASE("many refused attempts never block") {
    TempDir a, b;
    const std::string vol = TestVolumeId();
    auto first = Lease::Acquire(a.path + "/lease", vol);
    REQUIRE(first.ok());
    for (int i = 0; i < 300; ++i) {  // more than a short listen backlog
      auto r = Lease::Acquire(b.path + "/lease", vol);
      REQUIRE(!r.ok());
    }
  }
}

Locator MakeLocator(int k, int m, const std::vector<NodeId>& nodes) {
  Locator loc;
  loc.k = static_cast<uint8_t>(k);
  loc.m = static_cast<uint8_t>(m);
  loc.shards.resize(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) loc.shards[i].node = nodes[i];
  return loc;
}

TEST_SUITE("fs_stripe_health") {
  TEST_CASE("n shards on n live nodes: stored n of n") {
    auto loc = MakeLocator(4, 2, {1, 2, 3, 4, 5, 6});
    StripeHealth h = AssessStripe(loc, {1, 2, 3, 4, 5, 6, 7});
    CHECK(h.full());
    CHECK(h.spare == 2);
    CHECK(DescribeHealth(h) == "stored 6 of 6");
  }

  TEST_CASE("m nodes down: degraded, survives no more losses") {
    auto loc = MakeLocator(4, 2, {1, 2, 3, 4, 5, 6});
    StripeHealth h = AssessStripe(loc, {1, 2, 3, 4});
    CHECK(!h.full());
    CHECK(h.readable());
    CHECK(DescribeHealth(h) == "degraded: 4 of 6 shards on live nodes, survives 0 more node losses");
  }

  TEST_CASE("doubled up on 3 nodes: every shard live, still degraded") {
    auto loc = MakeLocator(4, 2, {1, 2, 3, 1, 2, 3});
    StripeHealth h = AssessStripe(loc, {1, 2, 3, 4, 5, 6});
    CHECK(h.live == 6);
    CHECK(h.live_nodes == 3);
    CHECK(!h.full());
    CHECK(h.spare == 1);
    CHECK(DescribeHealth(h) ==
          "degraded: 6 of 6 shards on live nodes, only 3 distinct, survives 1 more node loss");
  }

  TEST_CASE("fewer than k live: unreadable now") {
    auto loc = MakeLocator(4, 2, {1, 2, 3, 4, 5, 6});
    StripeHealth h = AssessStripe(loc, {1, 2, 3});
    CHECK(!h.readable());
    CHECK(h.spare == -1);
    CHECK(DescribeHealth(h) == "unreadable now: 3 of 6 shards on live nodes, 4 needed");
  }

  TEST_CASE("worst first: fewer spare losses, then fewer live shards") {
    auto loc = MakeLocator(4, 2, {1, 2, 3, 4, 5, 6});
    StripeHealth full = AssessStripe(loc, {1, 2, 3, 4, 5, 6});
    StripeHealth one_down = AssessStripe(loc, {1, 2, 3, 4, 5});
    StripeHealth gone = AssessStripe(loc, {1});
    CHECK(WorseThan(one_down, full));
    CHECK(WorseThan(gone, one_down));
    CHECK(!WorseThan(full, full));
  }
}

}  // namespace
}  // namespace shardfs::fs
