// Identifier helpers. See ids.h.
#include "lib/ids.h"

#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>

namespace shardfs {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string ToHex(const uint8_t* p, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s(2 * n, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = kDigits[p[i] >> 4];
    s[2 * i + 1] = kDigits[p[i] & 15];
  }
  return s;
}

bool FromHexInto(std::string_view hex, uint8_t* out, size_t n) {
  if (hex.size() != 2 * n) return false;
  for (size_t i = 0; i < n; ++i) {
    int hi = HexValue(hex[2 * i]), lo = HexValue(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

}  // namespace

StripeId StripeId::Random() {
  StripeId id;
  if (RAND_bytes(id.bytes.data(), static_cast<int>(id.bytes.size())) != 1) {
    // Without randomness we could reuse a key; refusing to go on is the only
    // safe answer.
    std::fprintf(stderr, "shardfs: RAND_bytes failed\n");
    std::abort();
  }
  return id;
}

std::string StripeId::Hex() const { return ToHex(bytes.data(), bytes.size()); }

std::optional<StripeId> StripeId::FromHex(std::string_view hex) {
  StripeId id;
  if (!FromHexInto(hex, id.bytes.data(), id.bytes.size())) return std::nullopt;
  return id;
}

std::string NodeIdHex(NodeId id) {
  uint8_t b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(id >> (56 - 8 * i));
  return ToHex(b, 8);
}

std::optional<NodeId> NodeIdFromHex(std::string_view hex) {
  uint8_t b[8];
  if (!FromHexInto(hex, b, 8)) return std::nullopt;
  NodeId id = 0;
  for (int i = 0; i < 8; ++i) id = (id << 8) | b[i];
  return id;
}

}  // namespace shardfs
