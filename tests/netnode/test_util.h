// Helpers shared by the netnode tests: shard keys, locators, payloads.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lib/checksum.h"
#include "lib/locator.h"
#include "netnode/layout.h"

namespace shardfs::testing {

inline StripeId TestStripe(uint8_t first, uint8_t last = 0) {
  StripeId s;
  for (size_t i = 0; i < s.bytes.size(); ++i) s.bytes[i] = static_cast<uint8_t>(i * 7 + 1);
  s.bytes[0] = first;
  s.bytes[15] = last;
  return s;
}

inline std::vector<uint8_t> TestPayload(size_t n, uint8_t seed = 1) {
  std::vector<uint8_t> v(n);
  uint32_t x = 2463534242u ^ seed;
  for (auto& b : v) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<uint8_t>(x);
  }
  return v;
}

// A consistent 1+1 locator for `stripe` whose shard entries describe `payload`.
inline Locator TestLocator(const StripeId& stripe, const std::vector<uint8_t>& payload) {
  Locator loc;
  loc.stripe = stripe;
  loc.version = 3;
  loc.k = 1;
  loc.m = 1;
  loc.shard_size = static_cast<uint32_t>(payload.size());
  loc.sealed_size = static_cast<uint32_t>(payload.size());
  for (int i = 0; i < 2; ++i) {
    ShardLocation s;
    s.node = 0x1122334455667788ull + i;
    s.crc32c = Crc32c(payload);
    s.sha256 = Sha256(payload);
    loc.shards.push_back(s);
  }
  return loc;
}

}  // namespace shardfs::testing
