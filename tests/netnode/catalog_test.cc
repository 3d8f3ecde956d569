// Tests for netnode/catalog: the SQLite shard index.
#include "netnode/catalog.h"

#include <doctest/doctest.h>

#include "tests/netnode/temp_dir.h"
#include "tests/netnode/test_util.h"

namespace shardfs {
namespace {

using testing::TestLocator;
using testing::TestPayload;
using testing::TestStripe;

ShardRecord Record(uint8_t first, ShardIndex idx, uint64_t size) {
  auto payload = TestPayload(16, first);
  ShardRecord r;
  r.key = ShardKey{TestStripe(first), idx};
  r.size = size;
  r.crc32c = 0xdeadbeef;
  r.sha256[0] = first;
  r.owner = "owner-" + std::to_string(first);
  r.locator = TestLocator(r.key.stripe, payload);
  r.created_ms = 1000 + first;
  r.last_verified_ms = 2000 + first;
  return r;
}

TEST_SUITE("catalog") {
  TEST_CASE("put, get, remove round trip") {
    testing::TempDir dir;
    auto cat = Catalog::Open(dir.Sub("node.db"));
    REQUIRE(cat.ok());
    ShardRecord r = Record(5, 2, 777);
    REQUIRE((*cat)->Put(r).ok());
    auto got = (*cat)->Get(r.key);
    REQUIRE(got.ok());
    REQUIRE(got->has_value());
    const ShardRecord& g = **got;
    CHECK(g.key == r.key);
    CHECK(g.size == 777);
    CHECK(g.crc32c == 0xdeadbeef);
    CHECK(g.sha256 == r.sha256);
    CHECK(g.owner == r.owner);
    CHECK(g.locator == r.locator);
    CHECK(g.created_ms == r.created_ms);
    CHECK(g.last_verified_ms == r.last_verified_ms);
    CHECK(g.state == ShardState::kOk);

    auto totals = (*cat)->GetTotals();
    REQUIRE(totals.ok());
    CHECK(totals->count == 1);
    CHECK(totals->bytes == 777);

    REQUIRE((*cat)->Remove(r.key).ok());
    got = (*cat)->Get(r.key);
    REQUIRE(got.ok());
    CHECK_FALSE(got->has_value());
    CHECK((*cat)->Remove(r.key).ok());  // absent is fine
  }

  TEST_CASE("state is kept and replaced by a new put") {
    testing::TempDir dir;
    auto cat = Catalog::Open(dir.Sub("node.db"));
    REQUIRE(cat.ok());
    ShardRecord r = Record(1, 0, 10);
    REQUIRE((*cat)->Put(r).ok());
    REQUIRE((*cat)->SetState(r.key, ShardState::kCorrupt).ok());
    CHECK((**(*cat)->Get(r.key)).state == ShardState::kCorrupt);
    REQUIRE((*cat)->Put(r).ok());
    CHECK((**(*cat)->Get(r.key)).state == ShardState::kOk);
  }

  TEST_CASE("list is ordered, paged and filtered") {
    testing::TempDir dir;
    auto cat = Catalog::Open(dir.Sub("node.db"));
    REQUIRE(cat.ok());
    std::vector<ShardRecord> rows;
    // Inserted out of order, including stripe bytes >= 0x80 (blob order is
    // unsigned memcmp, like StripeId's <=>).
    for (uint8_t first : {0x90, 0x01, 0x40}) {
      for (ShardIndex i : {3, 0, 1}) rows.push_back(Record(first, i, i + 1));
    }
    REQUIRE((*cat)->PutBatch(rows).ok());

    std::vector<ShardKey> all;
    std::optional<ShardKey> after;
    while (true) {
      auto page = (*cat)->List(std::nullopt, after, 2);
      REQUIRE(page.ok());
      if (page->empty()) break;
      CHECK(page->size() <= 2);
      for (auto& e : *page) all.push_back(e.key);
      after = page->back().key;
    }
    REQUIRE(all.size() == 9);
    for (size_t i = 1; i < all.size(); ++i) CHECK(all[i - 1] < all[i]);
    CHECK(all.front() == ShardKey{TestStripe(0x01), 0});
    CHECK(all.back() == ShardKey{TestStripe(0x90), 3});

    auto only = (*cat)->List(TestStripe(0x40), std::nullopt, 100);
    REQUIRE(only.ok());
    REQUIRE(only->size() == 3);
    CHECK((*only)[0].key.index == 0);
    CHECK((*only)[2].key.index == 3);
    CHECK((*only)[2].size == 4);
    CHECK((*only)[2].locator_version == 3);
    // Filter plus cursor inside the stripe.
    auto rest = (*cat)->List(TestStripe(0x40), ShardKey{TestStripe(0x40), 0}, 100);
    REQUIRE(rest.ok());
    CHECK(rest->size() == 2);

    auto entries = (*cat)->AllEntries();
    REQUIRE(entries.ok());
    CHECK(entries->size() == 9);
  }

  TEST_CASE("a database of another program is refused") {
    testing::TempDir dir;
    {
      Db::Options o;
      o.application_id = 0x12345678;
      o.migrations = {"CREATE TABLE x(a)"};
      REQUIRE(Db::Open(dir.Sub("node.db"), o).ok());
    }
    auto cat = Catalog::Open(dir.Sub("node.db"));
    CHECK_FALSE(cat.ok());
  }

  TEST_CASE("reopen keeps rows and schema version") {
    testing::TempDir dir;
    {
      auto cat = Catalog::Open(dir.Sub("node.db"));
      REQUIRE(cat.ok());
      REQUIRE((*cat)->Put(Record(9, 9, 99)).ok());
    }
    auto cat = Catalog::Open(dir.Sub("node.db"));
    REQUIRE(cat.ok());
    auto t = (*cat)->GetTotals();
    REQUIRE(t.ok());
    CHECK(t->bytes == 99);
  }

}  // TEST_SUITE

}  // namespace
}  // namespace shardfs
