// Tests for lib/coding.h: little-endian writers, and a Reader that fails on
// short input without moving or writing anything.
#include "lib/coding.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>

namespace shardfs {

TEST_SUITE("coding") {

TEST_CASE("integers are little-endian") {
  std::string s;
  PutU8(&s, 0x01);
  PutU16(&s, 0x0302);
  PutU32(&s, 0x07060504);
  PutU64(&s, 0x0f0e0d0c0b0a0908ULL);
  REQUIRE(s.size() == 15);
  for (size_t i = 0; i < s.size(); ++i) {
    CAPTURE(i);
    CHECK(static_cast<uint8_t>(s[i]) == i + 1);
  }
}

TEST_CASE("round trips at the edges") {
  std::string s;
  const uint64_t u64s[] = {0, 1, 0x80, 0xffffffffULL, 0x8000000000000000ULL, ~0ULL};
  const uint32_t u32s[] = {0, 1, 0x7fffffff, 0x80000000, 0xffffffff};
  const uint16_t u16s[] = {0, 1, 0x00ff, 0xff00, 0xffff};
  for (uint64_t v : u64s) PutU64(&s, v);
  for (uint32_t v : u32s) PutU32(&s, v);
  for (uint16_t v : u16s) PutU16(&s, v);
  PutU8(&s, 0);
  PutU8(&s, 0xff);
  PutBytes(&s, "abc", 3);
  PutLengthPrefixed(&s, "hello");
  PutLengthPrefixed(&s, "");

  Reader r(s);
  for (uint64_t v : u64s) {
    uint64_t got = 1;
    REQUIRE(r.GetU64(&got));
    CHECK(got == v);
  }
  for (uint32_t v : u32s) {
    uint32_t got = 1;
    REQUIRE(r.GetU32(&got));
    CHECK(got == v);
  }
  for (uint16_t v : u16s) {
    uint16_t got = 1;
    REQUIRE(r.GetU16(&got));
    CHECK(got == v);
  }
  uint8_t b = 1;
  CHECK((r.GetU8(&b) && b == 0));
  CHECK((r.GetU8(&b) && b == 0xff));
  char raw[3];
  REQUIRE(r.GetBytes(raw, 3));
  CHECK(std::string(raw, 3) == "abc");
  std::string str;
  CHECK((r.GetLengthPrefixed(&str, 5) && str == "hello"));
  CHECK((r.GetLengthPrefixed(&str, 0) && str.empty()));
  CHECK(r.remaining() == 0);
}

TEST_CASE("At helpers match the stream encoding") {
  uint8_t buf[8];
  EncodeU32At(buf, 0xdeadbeef);
  CHECK(DecodeU32At(buf) == 0xdeadbeef);
  std::string s;
  PutU32(&s, 0xdeadbeef);
  CHECK(std::string(reinterpret_cast<char*>(buf), 4) == s);

  EncodeU64At(buf, 0x0123456789abcdefULL);
  CHECK(DecodeU64At(buf) == 0x0123456789abcdefULL);
  s.clear();
  PutU64(&s, 0x0123456789abcdefULL);
  CHECK(std::string(reinterpret_cast<char*>(buf), 8) == s);
}

TEST_CASE("short input fails and leaves reader and output untouched") {
  const std::string s = "\x01\x02\x03";
  Reader r(s);
  uint32_t u32 = 42;
  uint64_t u64 = 42;
  CHECK_FALSE(r.GetU32(&u32));
  CHECK_FALSE(r.GetU64(&u64));
  CHECK(u32 == 42);
  CHECK(u64 == 42);
  CHECK(r.remaining() == 3);

  char raw[4] = {'x', 'x', 'x', 'x'};
  CHECK_FALSE(r.GetBytes(raw, 4));
  CHECK(raw[0] == 'x');
  std::string_view view = "keep";
  CHECK_FALSE(r.GetView(4, &view));
  CHECK(view == "keep");
  CHECK_FALSE(r.Skip(4));
  CHECK(r.remaining() == 3);

  uint16_t u16 = 0;
  CHECK(r.GetU16(&u16));
  CHECK(u16 == 0x0201);
  CHECK_FALSE(r.GetU16(&u16));
  CHECK(u16 == 0x0201);
  uint8_t u8 = 0;
  CHECK(r.GetU8(&u8));
  CHECK(u8 == 3);
  CHECK_FALSE(r.GetU8(&u8));
  CHECK(u8 == 3);
  CHECK(r.remaining() == 0);

  Reader empty(nullptr, 0);
  CHECK(empty.GetBytes(nullptr, 0));
  CHECK(empty.Skip(0));
  CHECK_FALSE(empty.GetU8(&u8));
}

TEST_CASE("length-prefixed strings check the limit and the input") {
  std::string s;
  PutLengthPrefixed(&s, "0123456789");
  std::string out = "untouched";

  SUBCASE("over max_len") {
    Reader r(s);
    CHECK_FALSE(r.GetLengthPrefixed(&out, 9));
    CHECK(out == "untouched");
    CHECK(r.remaining() == s.size());
  }
  SUBCASE("every truncation") {
    for (size_t len = 0; len < s.size(); ++len) {
      CAPTURE(len);
      Reader r(s.data(), len);
      CHECK_FALSE(r.GetLengthPrefixed(&out, 100));
      CHECK(out == "untouched");
      CHECK(r.remaining() == len);
    }
  }
  SUBCASE("a forged length near 4 GiB") {
    std::string forged;
    PutU32(&forged, 0xffffffff);
    forged += "abc";
    Reader r(forged);
    CHECK_FALSE(r.GetLengthPrefixed(&out, ~size_t{0}));
    CHECK(out == "untouched");
  }
}

TEST_CASE("GetView points into the input") {
  const std::string s = "abcdef";
  Reader r(s);
  std::string_view v;
  REQUIRE(r.GetView(4, &v));
  CHECK(v == "abcd");
  CHECK(v.data() == s.data());
  CHECK(r.data() == reinterpret_cast<const uint8_t*>(s.data()) + 4);
  CHECK(r.remaining() == 2);
}

}  // TEST_SUITE

}  // namespace shardfs
