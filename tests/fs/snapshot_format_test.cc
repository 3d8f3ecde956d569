// Snapshot formats: head records, sealed blobs, volume record ids, lease
// records and the option parser (fs/SNAPSHOTS.md). Network behaviour is in
// tests/fs/test_restore.py.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "fs/network_lease.h"
#include "fs/snapshot_format.h"
#include "fs/snapshot_options.h"
#include "fs/snapshot_records.h"

namespace shardfs::fs {
namespace {

Key TestKey(uint8_t fill) {
  Key k;
  k.fill(fill);
  return k;
}

SnapshotHead SampleHead() {
  SnapshotHead h;
  h.seq = 42;
  h.created_unix_ms = 1700000000123;
  h.object.bytes.fill(7);
  h.blob_size = 1234;
  h.blob_sha256.fill(9);
  h.db_size = 99999;
  h.k = 4;
  h.m = 2;
  h.segment_size = 4 << 20;
  h.timeout_ms = 5000;
  h.state_id.fill(3);
  h.host = "desk";
  h.state_dir = "/home/u/.local/share/shardfs/abc";
  h.endpoints = {"tcp://127.0.0.1:1", "tcp://127.0.0.1:2"};
  h.identity_public = std::string(40, 'p');
  h.identity_secret = std::string(40, 's');
  h.files = 10;
  h.file_bytes = 1 << 20;
  h.pending_segments = 1;
  return h;
}

}  // namespace

TEST_SUITE("snapshot_format") {
  TEST_CASE("head round trip, appended fields skipped, truncation refused") {
    SnapshotHead h = SampleHead();
    std::string body;
    EncodeHead(h, &body);
    SnapshotHead back;
    REQUIRE(DecodeHead(body, &back).ok());
    CHECK(back.seq == h.seq);
    CHECK(back.object == h.object);
    CHECK(back.blob_sha256 == h.blob_sha256);
    CHECK(back.endpoints == h.endpoints);
    CHECK(back.identity_secret == h.identity_secret);
    CHECK(back.pending_segments == 1);
    CHECK(DecodeHead(body + "future fields", &back).ok());
    for (size_t n = 0; n < body.size(); n += 7) {
      CAPTURE(n);
      CHECK(DecodeHead(std::string_view(body).substr(0, n), &back).IsCorruption());
    }
  }

  TEST_CASE("blob seals, opens, and is bound to its key and sequence number") {
    auto keys = VolumeKeys::Derive(TestKey(1));
    REQUIRE(keys.ok());
    std::vector<uint8_t> db(100000);
    for (size_t i = 0; i < db.size(); ++i) db[i] = static_cast<uint8_t>(i % 251 < 100 ? 0 : i);
    auto blob = SealSnapshotBlob(*keys, 5, db);
    REQUIRE(blob.ok());
    CHECK(blob->size() < db.size());  // compressed
    auto back = OpenSnapshotBlob(*keys, 5, *blob);
    REQUIRE(back.ok());
    CHECK(*back == db);
    CHECK(OpenSnapshotBlob(*keys, 6, *blob).status().code() == Code::kAuthFailed);
    auto other = VolumeKeys::Derive(TestKey(2));
    REQUIRE(other.ok());
    CHECK(OpenSnapshotBlob(*other, 5, *blob).status().code() == Code::kAuthFailed);
    (*blob)[blob->size() / 2] ^= 1;
    CHECK(OpenSnapshotBlob(*keys, 5, *blob).status().code() == Code::kAuthFailed);
  }

  TEST_CASE("record ids: one prefix per key, distinct per kind and number") {
    auto a = VolumeKeys::Derive(TestKey(1));
    auto b = VolumeKeys::Derive(TestKey(2));
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    auto h1 = a->Id(kHeadRecord, 1), h2 = a->Id(kHeadRecord, 2), l1 = a->Id(kLeaseRecord, 1);
    auto bh1 = b->Id(kHeadRecord, 1);
    REQUIRE((h1.ok() && h2.ok() && l1.ok() && bh1.ok()));
    CHECK(a->HasPrefix(*h1));
    CHECK(a->HasPrefix(*l1));
    CHECK_FALSE(a->HasPrefix(*bh1));
    CHECK(!(*h1 == *h2));
    CHECK(!(*h1 == *l1));
    CHECK(h1->bytes[8] == static_cast<uint8_t>(kHeadRecord));
    CHECK(*a->Id(kHeadRecord, 1) == *h1);  // deterministic
    CHECK(a->owner.public_key.size() == 40);
    CHECK(a->owner.public_key != b->owner.public_key);
  }

  TEST_CASE("lease holder round trip") {
    LeaseHolder h;
    h.generation = 9;
    h.mount_id.fill(1);
    h.state_id.fill(2);
    h.host = "laptop";
    h.pid = 1234;
    h.state_dir = "/s";
    h.mountpoint = "/m";
    h.started_unix_ms = 5;
    std::string body;
    EncodeLeaseHolder(h, &body);
    LeaseHolder back;
    REQUIRE(DecodeLeaseHolder(body, &back).ok());
    CHECK(back.generation == 9);
    CHECK(back.state_id == h.state_id);
    CHECK(back.mountpoint == "/m");
    CHECK(DescribeHolder(back).find("host laptop, pid 1234") != std::string::npos);
    CHECK(DecodeLeaseHolder(std::string_view(body).substr(0, body.size() - 1), &back)
              .IsCorruption());
  }

  TEST_CASE("snapshot options") {
    SnapshotOptions o;
    CHECK(ApplySnapshotOption("snapshot_quiet", "5", &o).ok());
    CHECK(o.quiet_s == 5);
    CHECK(ApplySnapshotOption("break_lease", "", &o).ok());
    CHECK(o.break_lease);
    CHECK(ApplySnapshotOption("lease", "off", &o).ok());
    CHECK_FALSE(o.lease);
    CHECK(ApplySnapshotOption("snapshot_keep", "0", &o).code() == Code::kInvalidArgument);
    CHECK(ApplySnapshotOption("lease_ttl", "x", &o).code() == Code::kInvalidArgument);
    CHECK(ApplySnapshotOption("cache_size", "1G", &o).IsNotFound());
  }
}

}  // namespace shardfs::fs
