// Tests for lib/erasure: every erasure pattern up to m is rebuilt byte-exact
// for small codes, random patterns for wide ones, and every invalid input is
// refused before ISA-L sees it.
#include "lib/erasure.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "lib/wire_format.h"

namespace shardfs {
namespace {

// n shards of shard_size bytes; data shards random, parity encoded.
struct Stripe {
  size_t shard_size;
  std::vector<std::vector<uint8_t>> bufs;
  std::vector<uint8_t*> ptrs;

  Stripe(const Codec& codec, size_t size, std::mt19937* rng) : shard_size(size) {
    bufs.assign(codec.n(), std::vector<uint8_t>(size));
    for (int i = 0; i < codec.k(); ++i) {
      for (auto& b : bufs[i]) b = static_cast<uint8_t>((*rng)());
    }
    // Parity starts as garbage so a no-op Encode would be caught.
    for (int i = codec.k(); i < codec.n(); ++i) {
      for (auto& b : bufs[i]) b = 0x5a;
    }
    for (auto& b : bufs) ptrs.push_back(b.data());
  }
  Stripe(const Stripe& o) : shard_size(o.shard_size), bufs(o.bufs) {
    for (auto& b : bufs) ptrs.push_back(b.data());
  }
  Stripe& operator=(const Stripe&) = delete;
};

std::string Join(const std::vector<int>& v) {
  std::string s;
  for (int x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
  return "{" + s + "}";
}

std::shared_ptr<const Codec> MustCreate(int k, int m) {
  auto codec = Codec::Create(k, m);
  REQUIRE_MESSAGE(codec.ok(), codec.status().ToString());
  return *codec;
}

// Erases the shards in `erased` (scribbling over them), rebuilds, and checks
// every shard against the original.
void CheckRebuild(const Codec& codec, const Stripe& original, const std::vector<int>& erased) {
  Stripe s = original;
  std::vector<uint8_t> present_bytes(codec.n(), 1);
  for (int e : erased) {
    present_bytes[e] = 0;
    for (auto& b : s.bufs[e]) b = 0xa5;
  }
  // std::vector<bool> has no contiguous storage for a span.
  std::unique_ptr<bool[]> present(new bool[codec.n()]);
  for (int i = 0; i < codec.n(); ++i) present[i] = present_bytes[i] != 0;
  Status st =
      codec.Reconstruct(s.shard_size, s.ptrs, std::span<const bool>(present.get(), codec.n()));
  REQUIRE_MESSAGE(st.ok(), st.ToString());
  for (int i = 0; i < codec.n(); ++i) {
    CAPTURE(i);
    CHECK(s.bufs[i] == original.bufs[i]);
  }
}

// Every subset of {0..n-1} with at most max_size elements, as index lists.
std::vector<std::vector<int>> Subsets(int n, int max_size) {
  std::vector<std::vector<int>> out;
  for (uint64_t mask = 0; mask < (uint64_t{1} << n); ++mask) {
    if (__builtin_popcountll(mask) > max_size) continue;
    std::vector<int> s;
    for (int i = 0; i < n; ++i) {
      if (mask >> i & 1) s.push_back(i);
    }
    out.push_back(std::move(s));
  }
  return out;
}

// Random patterns of 1..m erasures.
void CheckRandomPatterns(int k, int m, size_t shard_size, int patterns, uint32_t seed) {
  auto codec = MustCreate(k, m);
  std::mt19937 rng(seed);
  Stripe original(*codec, shard_size, &rng);
  REQUIRE(codec->Encode(shard_size, original.ptrs).ok());
  for (int p = 0; p < patterns; ++p) {
    std::vector<int> all(codec->n());
    for (int i = 0; i < codec->n(); ++i) all[i] = i;
    std::shuffle(all.begin(), all.end(), rng);
    int count = 1 + static_cast<int>(rng() % m);
    std::vector<int> erased(all.begin(), all.begin() + count);
    CAPTURE(p);
    INFO("erased ", Join(erased));
    CheckRebuild(*codec, original, erased);
  }
}

}  // namespace

TEST_SUITE("erasure") {
  TEST_CASE("every erasure pattern up to m is rebuilt exactly") {
    const std::pair<int, int> codes[] = {{1, 0}, {3, 2}, {4, 2}, {6, 3}};
    std::mt19937 rng(12345);
    for (auto [k, m] : codes) {
      auto codec = MustCreate(k, m);
      for (size_t size : {size_t{1}, size_t{7}, size_t{4097}}) {
        CAPTURE(k);
        CAPTURE(m);
        CAPTURE(size);
        Stripe original(*codec, size, &rng);
        REQUIRE(codec->Encode(size, original.ptrs).ok());
        if (m > 0) {
          // Parity was overwritten (0x5a everywhere is vanishingly unlikely).
          CHECK(original.bufs[k] != std::vector<uint8_t>(size, 0x5a));
        }
        for (const auto& erased : Subsets(k + m, m)) {
          INFO("erased ", Join(erased));
          CheckRebuild(*codec, original, erased);
        }
      }
    }
  }

  TEST_CASE("random erasure patterns on wide codes") {
    CheckRandomPatterns(10, 4, 4097, 200, 1);
    CheckRandomPatterns(16, 8, 1023, 200, 2);
  }

  TEST_CASE("k + m = 64 works") {
    CheckRandomPatterns(32, 32, 333, 20, 3);
    CheckRandomPatterns(60, 4, 65, 20, 4);
    CheckRandomPatterns(1, 63, 17, 20, 5);
    auto codec = Codec::Create(64, 0);
    CHECK(codec.ok());
  }

  TEST_CASE("too many erasures is refused") {
    auto codec = MustCreate(4, 2);
    std::mt19937 rng(7);
    Stripe s(*codec, 64, &rng);
    REQUIRE(codec->Encode(64, s.ptrs).ok());
    bool present[6] = {true, false, true, false, false, true};
    Status st = codec->Reconstruct(64, s.ptrs, present);
    CHECK(st.code() == Code::kInvalidArgument);
    CHECK(st.message().find("need 4") != std::string::npos);

    // m == 0: any missing shard is too many.
    auto plain = MustCreate(3, 0);
    Stripe p(*plain, 8, &rng);
    bool some[3] = {true, false, true};
    CHECK(plain->Reconstruct(8, p.ptrs, some).code() == Code::kInvalidArgument);
    bool all[3] = {true, true, true};
    CHECK(plain->Reconstruct(8, p.ptrs, all).ok());
  }

  TEST_CASE("invalid k and m are refused") {
    const std::pair<int, int> bad[] = {{0, 0},  {0, 2},  {-1, 1}, {1, -1},           {65, 0},
                                       {60, 5}, {1, 64}, {64, 1}, {1 << 30, 1 << 30}};
    for (auto [k, m] : bad) {
      CAPTURE(k);
      CAPTURE(m);
      auto codec = Codec::Create(k, m);
      CHECK(codec.status().code() == Code::kInvalidArgument);
    }
    CHECK(wire::kMaxShards == 64);
  }

  TEST_CASE("malformed buffers are refused before ISA-L") {
    auto codec = MustCreate(4, 2);
    std::mt19937 rng(9);
    Stripe s(*codec, 16, &rng);
    bool present[6] = {true, true, true, true, true, false};

    SUBCASE("wrong shard count") {
      std::span<uint8_t* const> five(s.ptrs.data(), 5);
      CHECK(codec->Encode(16, five).code() == Code::kInvalidArgument);
      CHECK(codec->Reconstruct(16, five, std::span<const bool>(present, 5)).code() ==
            Code::kInvalidArgument);
    }
    SUBCASE("zero shard size") {
      CHECK(codec->Encode(0, s.ptrs).code() == Code::kInvalidArgument);
      CHECK(codec->Reconstruct(0, s.ptrs, present).code() == Code::kInvalidArgument);
    }
    SUBCASE("null shard") {
      s.ptrs[2] = nullptr;
      CHECK(codec->Encode(16, s.ptrs).code() == Code::kInvalidArgument);
      CHECK(codec->Reconstruct(16, s.ptrs, present).code() == Code::kInvalidArgument);
    }
    SUBCASE("present of the wrong size") {
      CHECK(codec->Reconstruct(16, s.ptrs, std::span<const bool>(present, 4)).code() ==
            Code::kInvalidArgument);
    }
  }

  TEST_CASE("m == 0 encode is a no-op and all-present reconstruct is a no-op") {
    auto codec = MustCreate(2, 0);
    std::mt19937 rng(11);
    Stripe s(*codec, 5, &rng);
    Stripe before = s;
    CHECK(codec->Encode(5, s.ptrs).ok());
    CHECK(s.bufs == before.bufs);
  }

  TEST_CASE("ShardSize is ceil(len / k), at least 1") {
    CHECK(Codec::ShardSize(0, 4) == 1);
    CHECK(Codec::ShardSize(1, 4) == 1);
    CHECK(Codec::ShardSize(4, 4) == 1);
    CHECK(Codec::ShardSize(5, 4) == 2);
    CHECK(Codec::ShardSize(4 * 4096 + 1, 4) == 4097);
    CHECK(Codec::ShardSize(7, 1) == 7);
  }

  TEST_CASE("codec reports its shape") {
    auto codec = MustCreate(6, 3);
    CHECK(codec->k() == 6);
    CHECK(codec->m() == 3);
    CHECK(codec->n() == 9);
  }
}

}  // namespace shardfs
