// Unit tests of the state disk's reserve (fs/disk_reserve.h) and how the
// read cache yields to it (fs/read_cache.h), on the real file system of a
// temp dir: the reserve is set relative to what statvfs reports there.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <vector>

#include "fs/disk_reserve.h"
#include "fs/read_cache.h"
#include "tests/netnode/temp_dir.h"

namespace shardfs::fs {
namespace {

constexpr uint64_t kMiB = 1 << 20;

struct OpenDir {
  int fd;
  explicit OpenDir(const std::string& path) : fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY)) {}
  ~OpenDir() {
    if (fd >= 0) ::close(fd);
  }
};

uint64_t FreeOn(int fd) {
  auto free = DiskReserve::FreeBytes(fd);
  REQUIRE(free.ok());
  return *free;
}

StripeId Stripe(uint8_t b) {
  StripeId s{};
  s.bytes.fill(b);
  return s;
}

TEST_SUITE("fs_disk_reserve") {
  TEST_CASE("a claim that would eat into the reserve is ENOSPC, with the figures") {
    testing::TempDir d;
    OpenDir dir(d.path());
    REQUIRE(dir.fd >= 0);
    const uint64_t free = FreeOn(dir.fd);
    REQUIRE(free > 1024 * kMiB);

    // A reserve of all but 256 MiB of what is free: 64 MiB fit, 1 GiB does
    // not (margins wide enough for other writers on the same disk).
    DiskReserve reserve(free - 256 * kMiB, nullptr, DiskReserve::Refusals::kQuiet);
    CHECK(reserve.Claim(dir.fd, 64 * kMiB, "x").ok());
    Status st = reserve.Claim(dir.fd, 1024 * kMiB, "x");
    CHECK(st.IsNoSpace());
    CHECK(st.err() == ENOSPC);
    CHECK(st.message().find("MiB free") != std::string::npos);
    CHECK(st.message().find("disk_reserve") != std::string::npos);

    // No reserve: anything goes (the disk itself answers).
    CHECK(DiskReserve(0, nullptr, DiskReserve::Refusals::kQuiet).Claim(dir.fd, free * 2, "x").ok());
  }

  TEST_CASE("a short claim asks for room first, for what is missing") {
    testing::TempDir d;
    OpenDir dir(d.path());
    const uint64_t free = FreeOn(dir.fd);
    uint64_t asked = 0;
    int calls = 0;
    // make_room frees nothing: still refused, but it was asked for the
    // shortfall, 256 MiB (give or take other writers on the disk).
    DiskReserve reserve(
        free,
        [&](uint64_t n) {
          ++calls;
          asked = n;
          return uint64_t{0};
        },
        DiskReserve::Refusals::kQuiet);
    CHECK(reserve.Claim(dir.fd, 256 * kMiB, "x").IsNoSpace());
    CHECK(calls == 1);
    CHECK(asked >= 128 * kMiB);
    CHECK(asked <= 384 * kMiB);
  }

  TEST_CASE("the read cache shrinks for the reserve and skips what does not fit") {
    testing::TempDir d;
    auto cache = ReadCache::Open(d.Sub("cache"), 1ull << 30, 0);
    REQUIRE(cache.ok());
    std::vector<uint8_t> seg(kMiB, 7);
    for (uint8_t i = 1; i <= 4; ++i) REQUIRE((*cache)->Insert(Stripe(i), seg).ok());
    CHECK((*cache)->used_bytes() == 4 * kMiB);

    // Shrink evicts the least recently used entries first.
    std::vector<uint8_t> out(16);
    REQUIRE((*cache)->Read(Stripe(1), 0, out).ok());  // 1 is now the newest
    CHECK((*cache)->Shrink(kMiB + 1) == 2 * kMiB);
    CHECK((*cache)->used_bytes() == 2 * kMiB);
    CHECK(!(*cache)->Read(Stripe(2), 0, out).ok());
    CHECK(!(*cache)->Read(Stripe(3), 0, out).ok());
    CHECK((*cache)->Read(Stripe(1), 0, out).ok());
    CHECK((*cache)->Shrink(100 * kMiB) == 2 * kMiB);  // empties it, no more
    CHECK((*cache)->used_bytes() == 0);

    // A cache whose reserve is more than the disk has free: it caches
    // nothing, says OK (the cache is optional), and leaves no file behind.
    OpenDir dir(d.path());
    auto full = ReadCache::Open(d.Sub("full"), 1ull << 30, FreeOn(dir.fd) + 1024 * kMiB);
    REQUIRE(full.ok());
    CHECK((*full)->Insert(Stripe(9), seg).ok());
    CHECK((*full)->used_bytes() == 0);
    CHECK(!(*full)->Read(Stripe(9), 0, out).ok());
    CHECK(std::filesystem::is_empty(d.Sub("full")));
  }
}

}  // namespace
}  // namespace shardfs::fs
