// Tests for lib/locator.h: the encoding of PROTOCOL.md §4.9 and every
// consistency rule the decoder enforces on untrusted bytes.
#include "lib/locator.h"

#include <doctest/doctest.h>

#include <string>

#include "lib/wire_format.h"

namespace shardfs {
namespace {

Locator Sample(uint8_t k, uint8_t m) {
  Locator loc;
  for (int i = 0; i < 16; ++i) loc.stripe.bytes[i] = static_cast<uint8_t>(0xa0 + i);
  loc.version = 0x01020304;
  loc.k = k;
  loc.m = m;
  loc.shard_size = 1 << 20;
  loc.sealed_size = k * loc.shard_size - 7;
  for (int i = 0; i < k + m; ++i) {
    ShardLocation s;
    s.node = 0x1111111111111111ULL * (i + 1);
    s.crc32c = 0xc0ffee00u + i;
    for (int j = 0; j < 32; ++j) s.sha256[j] = static_cast<uint8_t>(i * 32 + j);
    loc.shards.push_back(s);
  }
  return loc;
}

std::string Encode(const Locator& loc) {
  std::string s;
  EncodeLocator(loc, &s);
  return s;
}

bool Decodes(const std::string& bytes, Locator* out = nullptr) {
  Locator tmp;
  Reader r(bytes);
  bool ok = DecodeLocator(&r, out ? out : &tmp);
  return ok;
}

}  // namespace

TEST_SUITE("locator") {

TEST_CASE("round trip") {
  const Locator loc = Sample(4, 2);
  const std::string bytes = Encode(loc);
  CHECK(bytes.size() == 30 + 44 * 6);
  Locator got;
  REQUIRE(Decodes(bytes, &got));
  CHECK(got == loc);
  CHECK(got.n() == 6);
}

TEST_CASE("layout is the one in PROTOCOL.md §4.9") {
  const Locator loc = Sample(1, 1);
  const std::string b = Encode(loc);
  auto u8 = [&](size_t i) { return static_cast<uint8_t>(b[i]); };
  CHECK(u8(0) == 0xa0);  // stripe
  CHECK(u8(15) == 0xaf);
  CHECK(u8(16) == 0x04);  // version, little-endian
  CHECK(u8(19) == 0x01);
  CHECK(u8(20) == 1);  // k
  CHECK(u8(21) == 1);  // m
  CHECK(DecodeU32At(reinterpret_cast<const uint8_t*>(b.data()) + 22) == loc.shard_size);
  CHECK(DecodeU32At(reinterpret_cast<const uint8_t*>(b.data()) + 26) == loc.sealed_size);
  CHECK(DecodeU64At(reinterpret_cast<const uint8_t*>(b.data()) + 30) == loc.shards[0].node);
  CHECK(DecodeU32At(reinterpret_cast<const uint8_t*>(b.data()) + 38) == loc.shards[0].crc32c);
  CHECK(u8(42) == 0);  // sha256[0] of shard 0
  CHECK(u8(73) == 31);
  CHECK(b.size() == 30 + 2 * 44);
}

TEST_CASE("consumes exactly its bytes and leaves the rest") {
  std::string bytes = Encode(Sample(2, 1));
  const size_t len = bytes.size();
  bytes += "tail";
  Reader r(bytes);
  Locator got;
  REQUIRE(DecodeLocator(&r, &got));
  CHECK(r.remaining() == 4);
  CHECK(len == 30 + 3 * 44);
}

TEST_CASE("every truncation fails and leaves the output untouched") {
  const std::string bytes = Encode(Sample(3, 2));
  const Locator before = Sample(1, 0);
  for (size_t len = 0; len < bytes.size(); ++len) {
    CAPTURE(len);
    Locator got = before;
    Reader r(bytes.data(), len);
    CHECK_FALSE(DecodeLocator(&r, &got));
    CHECK(got == before);
  }
}

TEST_CASE("inconsistent locators are rejected") {
  SUBCASE("k = 0") {
    Locator loc = Sample(1, 2);
    loc.k = 0;
    loc.sealed_size = 0;
    loc.shards.pop_back();
    CHECK_FALSE(Decodes(Encode(loc)));
  }
  SUBCASE("k + m over kMaxShards") {
    Locator loc = Sample(60, 5);
    CHECK_FALSE(Decodes(Encode(loc)));
  }
  SUBCASE("fewer shard entries than k + m") {
    Locator loc = Sample(2, 2);
    loc.shards.pop_back();
    CHECK_FALSE(Decodes(Encode(loc)));
  }
  SUBCASE("shard_size over the limit") {
    Locator loc = Sample(2, 1);
    loc.shard_size = wire::kMaxShardSize + 1;
    loc.sealed_size = 1;
    CHECK_FALSE(Decodes(Encode(loc)));
  }
  SUBCASE("sealed_size over k * shard_size") {
    Locator loc = Sample(2, 1);
    loc.sealed_size = 2 * loc.shard_size + 1;
    CHECK_FALSE(Decodes(Encode(loc)));
  }
}

TEST_CASE("limits themselves are accepted") {
  SUBCASE("k + m = kMaxShards, no parity") {
    Locator loc = Sample(wire::kMaxShards, 0);
    Locator got;
    REQUIRE(Decodes(Encode(loc), &got));
    CHECK(got == loc);
  }
  SUBCASE("k * shard_size beyond 32 bits does not overflow the check") {
    Locator loc = Sample(64, 0);
    loc.shard_size = wire::kMaxShardSize;
    loc.sealed_size = 0xffffffffu;
    CHECK(Decodes(Encode(loc)));
  }
  SUBCASE("sealed_size = k * shard_size, empty stripe") {
    Locator loc = Sample(2, 1);
    loc.sealed_size = 2 * loc.shard_size;
    CHECK(Decodes(Encode(loc)));
    loc.shard_size = 0;
    loc.sealed_size = 0;
    CHECK(Decodes(Encode(loc)));
  }
}

}  // TEST_SUITE

}  // namespace shardfs
