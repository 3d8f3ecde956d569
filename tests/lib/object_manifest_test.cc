// Tests for lib/object_manifest: round trip, every truncation fails
// cleanly, consistency checks of the segment list.
#include "lib/object_manifest.h"

#include <doctest/doctest.h>

#include "lib/crypto.h"

namespace shardfs {
namespace {

Locator MakeLocator(int seed, uint32_t plain) {
  Locator l;
  l.stripe.bytes[0] = static_cast<uint8_t>(seed);
  l.k = 4;
  l.m = 2;
  l.sealed_size = plain + kSealOverhead;
  l.shard_size = (l.sealed_size + 3) / 4;
  l.shards.resize(6);
  for (int i = 0; i < 6; ++i) {
    l.shards[i].node = 100 + i;
    l.shards[i].crc32c = 7 * i + seed;
    l.shards[i].sha256[0] = static_cast<uint8_t>(i);
  }
  return l;
}

ObjectManifest Sample() {
  ObjectManifest m;
  m.file_size = 2 * 1000 + 5;
  m.segment_size = 1000;
  m.segment_count = 3;
  m.entries = {MakeLocator(1, 1000), MakeLocator(2, 1000), MakeLocator(3, 5)};
  return m;
}

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace

TEST_SUITE("object_manifest") {
  TEST_CASE("round trip") {
    ObjectManifest m = Sample();
    std::string enc;
    EncodeManifest(m, &enc);
    size_t expect = kManifestHeaderSize;
    for (const Locator& l : m.entries) expect += ManifestEntrySize(l);
    CHECK(enc.size() == expect);
    ObjectManifest back;
    REQUIRE(DecodeManifest(Bytes(enc), &back).ok());
    CHECK(back == m);
    CHECK(CheckDataSegments(back, back.entries).ok());
  }

  TEST_CASE("every truncation is Corruption") {
    std::string enc;
    EncodeManifest(Sample(), &enc);
    for (size_t n = 0; n < enc.size(); ++n) {
      CAPTURE(n);
      ObjectManifest out;
      CHECK(DecodeManifest(Bytes(enc.substr(0, n)), &out).IsCorruption());
    }
  }

  TEST_CASE("bad magic, version, level are refused") {
    std::string enc;
    EncodeManifest(Sample(), &enc);
    ObjectManifest out;
    for (size_t pos : {size_t{0}, size_t{4}}) {
      std::string bad = enc;
      bad[pos] ^= 0x5a;
      CHECK(DecodeManifest(Bytes(bad), &out).IsCorruption());
    }
    std::string deep = enc;
    deep[5] = static_cast<char>(kMaxManifestLevel + 1);
    CHECK(DecodeManifest(Bytes(deep), &out).IsCorruption());
  }

  TEST_CASE("segment list checks") {
    ObjectManifest m = Sample();
    CHECK(CheckDataSegments(m, m.entries).ok());
    ObjectManifest wrong_size = m;
    wrong_size.file_size += 1;
    CHECK(CheckDataSegments(wrong_size, m.entries).IsCorruption());
    ObjectManifest wrong_count = m;
    wrong_count.segment_count = 2;
    CHECK(CheckDataSegments(wrong_count, m.entries).IsCorruption());
    std::vector<Locator> short_middle = m.entries;
    short_middle[1] = MakeLocator(9, 999);
    ObjectManifest adjusted = m;
    adjusted.file_size -= 1;
    CHECK(CheckDataSegments(adjusted, short_middle).IsCorruption());
  }
}

}  // namespace shardfs
