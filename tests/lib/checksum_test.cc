// Tests for lib/checksum: CRC32C and SHA-256 known answers, CRC chaining, and
// ISA-L's accelerated CRC against a bitwise reference on odd lengths.
#include "lib/checksum.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace shardfs {
namespace {

std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string Hex(const Sha256Digest& d) {
  static const char kDigits[] = "0123456789abcdef";
  std::string s;
  for (uint8_t b : d) {
    s += kDigits[b >> 4];
    s += kDigits[b & 15];
  }
  return s;
}

// Bit-at-a-time CRC32C (reflected polynomial 0x82F63B78), the definition.
uint32_t ReferenceCrc32c(std::span<const uint8_t> data) {
  uint32_t crc = ~0u;
  for (uint8_t b : data) {
    crc ^= b;
    for (int i = 0; i < 8; ++i) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
  }
  return ~crc;
}

}  // namespace

TEST_SUITE("checksum") {
  TEST_CASE("CRC32C known answers") {
    CHECK(Crc32c(Bytes("123456789")) == 0xE3069283u);
    CHECK(Crc32c(Bytes("")) == 0u);
    CHECK(Crc32c("123456789", 9) == 0xE3069283u);
    // RFC 3720 B.4.
    std::vector<uint8_t> buf(32, 0);
    CHECK(Crc32c(buf) == 0x8A9136AAu);
    std::fill(buf.begin(), buf.end(), 0xff);
    CHECK(Crc32c(buf) == 0x62A8AB43u);
    for (int i = 0; i < 32; ++i) buf[i] = static_cast<uint8_t>(i);
    CHECK(Crc32c(buf) == 0x46DD794Eu);
    for (int i = 0; i < 32; ++i) buf[i] = static_cast<uint8_t>(31 - i);
    CHECK(Crc32c(buf) == 0x113FDB5Cu);
  }

  TEST_CASE("CRC32C chains through the seed") {
    std::string_view s = "123456789";
    for (size_t cut = 0; cut <= s.size(); ++cut) {
      CAPTURE(cut);
      uint32_t a = Crc32c(Bytes(s.substr(0, cut)));
      CHECK(Crc32c(Bytes(s.substr(cut)), a) == 0xE3069283u);
    }
    // Empty data leaves a seed unchanged.
    CHECK(Crc32c(Bytes(""), 0xE3069283u) == 0xE3069283u);
  }

  TEST_CASE("CRC32C matches the bitwise definition on odd lengths") {
    std::mt19937 rng(42);
    std::vector<uint8_t> data(70000);
    for (auto& b : data) b = static_cast<uint8_t>(rng());
    for (size_t len : {1, 3, 15, 16, 17, 63, 64, 65, 255, 256, 1023, 4097, 70000}) {
      CAPTURE(len);
      std::span<const uint8_t> d(data.data(), len);
      CHECK(Crc32c(d) == ReferenceCrc32c(d));
      // Unaligned start.
      std::span<const uint8_t> u(data.data() + 1, len - 1);
      CHECK(Crc32c(u) == ReferenceCrc32c(u));
      // Chained in three uneven parts.
      size_t a = len / 3, b = len / 2;
      uint32_t c = Crc32c(d.subspan(0, a));
      c = Crc32c(d.subspan(a, b - a), c);
      c = Crc32c(d.subspan(b), c);
      CHECK(c == Crc32c(d));
    }
  }

  TEST_CASE("SHA-256 known answers") {
    CHECK(Hex(Sha256(Bytes("abc"))) ==
          "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(Hex(Sha256(Bytes(""))) ==
          "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(Hex(Sha256(Bytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))) ==
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    std::vector<uint8_t> million(1000000, 'a');
    CHECK(Hex(Sha256(million)) ==
          "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  }
}

}  // namespace shardfs
