// Tests for netnode/shard_store (and the shard file format, layout names
// and startup reconciliation it relies on).
#include "netnode/shard_store.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>

#include "netnode/reconcile.h"
#include "netnode/shard_file.h"
#include "tests/netnode/temp_dir.h"
#include "tests/netnode/test_util.h"

namespace shardfs {
namespace {

namespace fs = std::filesystem;
using testing::TestLocator;
using testing::TestPayload;
using testing::TestStripe;

const std::string kOwner = "owner-key-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

// Passes everything to the real disk, except that writes can be made to fail
// with ENOSPC once `fail_writes_after` more bytes have been written.
class FaultDisk final : public Disk {
 public:
  std::atomic<int64_t> fail_writes_after{-1};  // -1: never fail
  std::atomic<int> syncfs_calls{0};
  std::atomic<int> file_syncs{0};
  std::atomic<int> dir_syncs{0};

  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    ASSIGN_OR_RETURN(auto f, PosixDisk()->NewWritableFile(path));
    return std::unique_ptr<WritableFile>(new File(this, std::move(f)));
  }
  Result<std::unique_ptr<RandomAccessFile>> OpenForRead(const std::string& p) override {
    return PosixDisk()->OpenForRead(p);
  }
  Status Rename(const std::string& a, const std::string& b) override {
    return PosixDisk()->Rename(a, b);
  }
  Status Remove(const std::string& p) override { return PosixDisk()->Remove(p); }
  Status CreateDir(const std::string& p) override { return PosixDisk()->CreateDir(p); }
  Status SyncDir(const std::string& p) override {
    ++dir_syncs;
    return PosixDisk()->SyncDir(p);
  }
  Status SyncFileSystem(const std::string& p) override {
    ++syncfs_calls;
    return PosixDisk()->SyncFileSystem(p);
  }
  Result<std::vector<std::string>> ListDir(const std::string& p) override {
    return PosixDisk()->ListDir(p);
  }
  Result<DiskSpace> Space(const std::string& p) override { return PosixDisk()->Space(p); }

 private:
  class File final : public WritableFile {
   public:
    File(FaultDisk* d, std::unique_ptr<WritableFile> f) : d_(d), f_(std::move(f)) {}
    Status Append(std::span<const uint8_t> data) override {
      int64_t left = d_->fail_writes_after.load();
      if (left >= 0) {
        if (static_cast<int64_t>(data.size()) > left) {
          // Part of the data lands, as with a real full disk.
          d_->fail_writes_after = 0;
          (void)f_->Append(data.first(static_cast<size_t>(left)));
          return Status::FromErrno(ENOSPC, "writing (fault injected)");
        }
        d_->fail_writes_after = left - static_cast<int64_t>(data.size());
      }
      return f_->Append(data);
    }
    Status Sync() override {
      ++d_->file_syncs;
      return f_->Sync();
    }

   private:
    FaultDisk* d_;
    std::unique_ptr<WritableFile> f_;
  };
};

struct Fixture {
  testing::TempDir dir;
  FaultDisk disk;
  std::unique_ptr<ShardStore> store;
  std::unique_ptr<Catalog> catalog;
  size_t syncfs_min_batch = StoreOptions{}.syncfs_min_batch;

  explicit Fixture(uint64_t capacity = 0) { Open(capacity); }

  void Open(uint64_t capacity = 0) {
    catalog.reset();
    store.reset();
    StoreOptions o;
    o.data_dir = dir.Sub("data");
    o.capacity_bytes = capacity;
    o.disk = &disk;
    o.syncfs_min_batch = syncfs_min_batch;
    o.clock_ms = [] { return uint64_t{1700000000000}; };
    auto s = ShardStore::Open(std::move(o));
    REQUIRE(s.ok());
    store = std::move(*s);
    auto c = store->OpenCatalog();
    REQUIRE(c.ok());
    catalog = std::move(*c);
  }

  Status Put(const ShardKey& key, const std::vector<uint8_t>& payload,
             std::optional<uint32_t> crc = std::nullopt, const std::string& owner = kOwner) {
    PutArgs a;
    a.key = key;
    a.crc32c = crc ? *crc : Crc32c(payload);
    a.owner = owner;
    a.locator = TestLocator(key.stripe, payload);
    a.payload = payload;
    std::promise<Status> done;
    auto f = done.get_future();
    store->Put(catalog.get(), a, [&done](Status st) { done.set_value(std::move(st)); });
    return f.get();
  }

  std::string ShardPath(const ShardKey& k) const { return store->layout().ShardPath(k); }
  size_t TmpCount() const {
    size_t n = 0;
    for ([[maybe_unused]] auto& e : fs::directory_iterator(store->layout().TmpDir())) ++n;
    return n;
  }
};

TEST_SUITE("shard_store") {
  TEST_CASE("put, get, delete round trip") {
    Fixture f;
    ShardKey key{TestStripe(0xab), 4};
    auto payload = TestPayload(100000);
    REQUIRE(f.Put(key, payload).ok());
    CHECK(fs::exists(f.ShardPath(key)));
    CHECK(f.ShardPath(key).find("/shards/ab/" + key.stripe.Hex() + ".4") != std::string::npos);
    CHECK(f.store->Usage().used_bytes == payload.size());
    CHECK(f.store->Usage().shard_count == 1);

    auto got = f.store->Get(f.catalog.get(), key, 0, 0);
    REQUIRE(got.ok());
    CHECK(got->shard_size == payload.size());
    CHECK(got->crc32c == Crc32c(payload));
    CHECK(std::vector<uint8_t>(got->data(), got->data() + got->length) == payload);

    SUBCASE("range") {
      auto r = f.store->Get(f.catalog.get(), key, 10, 20);
      REQUIRE(r.ok());
      CHECK(r->length == 20);
      CHECK(std::equal(r->data(), r->data() + 20, payload.begin() + 10));
      CHECK(r->crc32c == Crc32c(payload.data() + 10, 20));
      auto tail = f.store->Get(f.catalog.get(), key, payload.size() - 1, 0);
      REQUIRE(tail.ok());
      CHECK(tail->length == 1);
      auto end = f.store->Get(f.catalog.get(), key, payload.size(), 0);
      REQUIRE(end.ok());  // empty range at the end
      CHECK(end->length == 0);
      CHECK(f.store->Get(f.catalog.get(), key, payload.size() + 1, 0).status().code() ==
            Code::kInvalidArgument);
      CHECK(f.store->Get(f.catalog.get(), key, 10, payload.size()).status().code() ==
            Code::kInvalidArgument);
      CHECK(f.store->Get(f.catalog.get(), key, ~uint64_t{0}, 2).status().code() ==
            Code::kInvalidArgument);
    }
    SUBCASE("delete") {
      REQUIRE(f.store->Delete(f.catalog.get(), key, kOwner).ok());
      CHECK_FALSE(fs::exists(f.ShardPath(key)));
      CHECK(f.store->Get(f.catalog.get(), key, 0, 0).status().IsNotFound());
      CHECK(f.store->Delete(f.catalog.get(), key, kOwner).IsNotFound());
      CHECK(f.store->Usage().used_bytes == 0);
      CHECK(f.store->Usage().shard_count == 0);
    }
    SUBCASE("survives a restart") {
      f.Open();
      auto again = f.store->Get(f.catalog.get(), key, 0, 0);
      REQUIRE(again.ok());
      CHECK(again->length == payload.size());
      CHECK(f.store->Usage().used_bytes == payload.size());
    }
    CHECK(f.TmpCount() == 0);
  }

  TEST_CASE("a small batch is synced file by file, a large one with syncfs") {
    // syncfs would also flush every other writer's dirty data on the disk
    // (STORAGE.md §4.1), which only pays off for many files at once.
    Fixture f;
    const int at_open = f.disk.syncfs_calls;  // startup syncs once (§5)
    const ShardKey k1{TestStripe(1), 0};
    REQUIRE(f.Put(k1, TestPayload(1000, 1)).ok());
    CHECK(f.disk.syncfs_calls == at_open);
    CHECK(f.disk.file_syncs == 1);
    CHECK(f.disk.dir_syncs >= 1);
    CHECK(fs::exists(f.ShardPath(k1)));

    f.syncfs_min_batch = 1;  // every batch is "large"
    f.Open();
    const int files_before = f.disk.file_syncs;
    const int syncfs_before = f.disk.syncfs_calls;
    const ShardKey k2{TestStripe(2), 0};
    REQUIRE(f.Put(k2, TestPayload(1000, 2)).ok());
    CHECK(f.disk.syncfs_calls == syncfs_before + 2);  // the temp files, then the renames
    CHECK(f.disk.file_syncs == files_before);
    auto got = f.store->Get(f.catalog.get(), k2, 0, 0);
    REQUIRE(got.ok());
  }

  TEST_CASE("empty shard") {
    Fixture f;
    ShardKey key{TestStripe(1), 0};
    REQUIRE(f.Put(key, {}).ok());
    auto got = f.store->Get(f.catalog.get(), key, 0, 0);
    REQUIRE(got.ok());
    CHECK(got->length == 0);
  }

  TEST_CASE("a payload that does not match its CRC is rejected and nothing is stored") {
    Fixture f;
    ShardKey key{TestStripe(2), 1};
    auto payload = TestPayload(5000);
    Status st = f.Put(key, payload, Crc32c(payload) ^ 1);
    CHECK(st.code() == Code::kCorruption);
    CHECK(st.err() == EBADMSG);
    CHECK_FALSE(fs::exists(f.ShardPath(key)));
    CHECK(f.store->Get(f.catalog.get(), key, 0, 0).status().IsNotFound());
    CHECK(f.store->Usage().used_bytes == 0);
    CHECK(f.TmpCount() == 0);
    // The key is free again.
    CHECK(f.Put(key, payload).ok());
  }

  TEST_CASE("a corrupted file is detected on get, marked and never served") {
    Fixture f;
    ShardKey key{TestStripe(3), 2};
    auto payload = TestPayload(4096);
    REQUIRE(f.Put(key, payload).ok());
    const std::string path = f.ShardPath(key);

    SUBCASE("payload byte") {
      std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
      file.seekp(-100, std::ios::end);
      char c;
      file.seekg(-100, std::ios::end);
      file.get(c);
      file.seekp(-100, std::ios::end);
      file.put(static_cast<char>(c ^ 0x01));
    }
    SUBCASE("header byte") {
      std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
      file.seekp(45);
      file.put('\x7f');
    }
    SUBCASE("truncated") { fs::resize_file(path, 100); }

    auto got = f.store->Get(f.catalog.get(), key, 0, 10);
    CHECK(got.status().code() == Code::kCorruption);
    auto rec = f.catalog->Get(key);
    REQUIRE(rec.ok());
    REQUIRE(rec->has_value());
    CHECK((**rec).state == ShardState::kCorrupt);
    CHECK(f.store->Get(f.catalog.get(), key, 0, 0).status().code() == Code::kCorruption);

    // Storing the same content again heals it; other content is refused.
    CHECK(f.Put(key, TestPayload(4096, 9)).code() == Code::kExists);
    REQUIRE(f.Put(key, payload).ok());
    auto healed = f.store->Get(f.catalog.get(), key, 0, 0);
    REQUIRE(healed.ok());
    CHECK(std::vector<uint8_t>(healed->data(), healed->data() + healed->length) == payload);
    CHECK(f.store->Usage().used_bytes == payload.size());
    CHECK(f.store->Usage().shard_count == 1);
  }

  TEST_CASE("quota refusal leaves nothing behind") {
    Fixture f(10000);
    auto a = TestPayload(6000, 1);
    REQUIRE(f.Put({TestStripe(4), 0}, a).ok());
    ShardKey big{TestStripe(4), 1};
    Status st = f.Put(big, TestPayload(4001, 2));
    CHECK(st.IsNoSpace());
    CHECK_FALSE(fs::exists(f.ShardPath(big)));
    CHECK(f.TmpCount() == 0);
    CHECK(f.store->Usage().used_bytes == 6000);
    CHECK(f.store->Usage().free_bytes == 4000);
    CHECK(f.Put(big, TestPayload(4000, 2)).ok());  // exactly full is fine
    CHECK(f.store->Usage().free_bytes == 0);
    // An identical re-put of a stored shard is still fine when full.
    CHECK(f.Put({TestStripe(4), 0}, a).ok());
  }

  TEST_CASE("ENOSPC from the disk is NoSpace and removes the temp file") {
    Fixture f;
    ShardKey key{TestStripe(5), 0};
    f.disk.fail_writes_after = 1000;
    Status st = f.Put(key, TestPayload(50000));
    CHECK(st.IsNoSpace());
    CHECK(f.TmpCount() == 0);
    CHECK_FALSE(fs::exists(f.ShardPath(key)));
    CHECK(f.store->Usage().used_bytes == 0);
    f.disk.fail_writes_after = -1;
    CHECK(f.Put(key, TestPayload(50000)).ok());
  }

  TEST_CASE("re-put of the same shard is idempotent, other content is refused") {
    Fixture f;
    ShardKey key{TestStripe(6), 3};
    auto payload = TestPayload(777);
    REQUIRE(f.Put(key, payload).ok());
    CHECK(f.Put(key, payload).ok());
    CHECK(f.store->Usage().shard_count == 1);
    CHECK(f.store->Usage().used_bytes == 777);
    CHECK(f.Put(key, TestPayload(777, 2)).code() == Code::kExists);
    CHECK(f.Put(key, TestPayload(778)).code() == Code::kExists);
  }

  TEST_CASE("concurrent puts of one shard: same content joins, other content is refused") {
    Fixture f;
    ShardKey key{TestStripe(7), 0};
    auto payload = TestPayload(300000);
    std::vector<std::future<Status>> results;
    for (int i = 0; i < 8; ++i) {
      results.push_back(std::async(std::launch::async, [&f, key, &payload] {
        auto cat = f.store->OpenCatalog();
        REQUIRE(cat.ok());
        PutArgs a;
        a.key = key;
        a.crc32c = Crc32c(payload);
        a.owner = kOwner;
        a.locator = TestLocator(key.stripe, payload);
        a.payload = payload;
        std::promise<Status> done;
        auto fut = done.get_future();
        f.store->Put(cat->get(), a, [&done](Status st) { done.set_value(st); });
        return fut.get();
      }));
    }
    for (auto& r : results) CHECK(r.get().ok());
    CHECK(f.store->Usage().shard_count == 1);
    CHECK(f.store->Usage().used_bytes == payload.size());
    CHECK(f.TmpCount() == 0);
  }

  TEST_CASE("delete by another owner is denied") {
    Fixture f;
    ShardKey key{TestStripe(8), 0};
    REQUIRE(f.Put(key, TestPayload(10)).ok());
    CHECK(f.store->Delete(f.catalog.get(), key, "someone-else").code() == Code::kPermissionDenied);
    CHECK(fs::exists(f.ShardPath(key)));
    CHECK(f.store->Get(f.catalog.get(), key, 0, 0).ok());
  }

  TEST_CASE("startup cleans temp files and reconciles catalog with files") {
    Fixture f;
    ShardKey kept{TestStripe(9), 0}, lost{TestStripe(9), 1}, orphan{TestStripe(10), 2};
    REQUIRE(f.Put(kept, TestPayload(10, 1)).ok());
    REQUIRE(f.Put(lost, TestPayload(20, 2)).ok());
    REQUIRE(f.Put(orphan, TestPayload(30, 3)).ok());
    const DataLayout layout = f.store->layout();
    f.catalog.reset();
    f.store.reset();

    // Leftovers of a crash: a temp file, a row without its file, a file without
    // its row, a foreign file and a shard file with a bad checksum.
    { std::ofstream(layout.TmpDir() + "/" + kept.ToString() + ".7.tmp") << "partial"; }
    fs::remove(layout.ShardPath(lost));
    {
      auto cat = Catalog::Open(layout.CatalogFile());
      REQUIRE(cat.ok());
      REQUIRE((*cat)->Remove(orphan).ok());
    }
    { std::ofstream(layout.ShardsDir() + "/00/notes.txt") << "hello"; }
    ShardKey rotten{TestStripe(11), 0};
    fs::copy_file(layout.ShardPath(kept), layout.ShardPath(rotten));

    f.Open();
    CHECK(f.TmpCount() == 0);
    CHECK(f.store->Get(f.catalog.get(), kept, 0, 0).ok());
    CHECK(f.store->Get(f.catalog.get(), lost, 0, 0).status().IsNotFound());
    auto re = f.store->Get(f.catalog.get(), orphan, 0, 0);
    REQUIRE(re.ok());
    CHECK(re->length == 30);
    auto st = f.catalog->Get(orphan);
    REQUIRE(st.ok());
    REQUIRE(st->has_value());
    CHECK((**st).owner == kOwner);
    CHECK((**st).locator.version == 3);
    CHECK(f.store->Usage().shard_count == 2);
    CHECK(f.store->Usage().used_bytes == 40);
    // Foreign and mismatching files were moved aside, not deleted.
    CHECK_FALSE(fs::exists(layout.ShardsDir() + "/00/notes.txt"));
    CHECK_FALSE(fs::exists(layout.ShardPath(rotten)));
    size_t quarantined = 0;
    for ([[maybe_unused]] auto& e : fs::directory_iterator(layout.QuarantineDir())) ++quarantined;
    CHECK(quarantined == 2);
  }

  TEST_CASE("shutdown leaves no temp files and refuses later puts") {
    Fixture f;
    REQUIRE(f.Put({TestStripe(12), 0}, TestPayload(10)).ok());
    f.store->Shutdown();
    CHECK(f.Put({TestStripe(12), 1}, TestPayload(10)).code() == Code::kAborted);
    CHECK(f.TmpCount() == 0);
  }

}  // TEST_SUITE

TEST_SUITE("shard_store") {
  TEST_CASE("shard names cannot escape the data dir") {
    CHECK_FALSE(DataLayout::ParseShardFileName("../../etc/passwd"));
    CHECK_FALSE(DataLayout::ParseShardFileName(std::string(32, 'a') + "/0"));
    CHECK_FALSE(DataLayout::ParseShardFileName(std::string(32, 'A') + ".0"));
    CHECK_FALSE(DataLayout::ParseShardFileName(std::string(31, 'a') + ".0"));
    CHECK_FALSE(DataLayout::ParseShardFileName(std::string(32, 'a') + ".64"));
    CHECK_FALSE(DataLayout::ParseShardFileName(std::string(32, 'a') + ".01"));
    CHECK_FALSE(DataLayout::ParseShardFileName(std::string(32, 'a') + ".-1"));
    CHECK_FALSE(DataLayout::ParseShardFileName(std::string(32, 'a') + "."));
    CHECK_FALSE(DataLayout::ParseShardFileName(std::string(32, 'a') + ".1.tmp"));
    CHECK_FALSE(DataLayout::ParseShardFileName(std::string(30, 'a') + "..." + ".0"));
    auto ok = DataLayout::ParseShardFileName(std::string(32, 'a') + ".63");
    REQUIRE(ok);
    CHECK(ok->index == 63);

    // Every name the layout builds is a plain name under root/shards/xx.
    DataLayout layout("/data/node/");
    for (int b : {0x00, 0x2e, 0x2f, 0xff}) {
      StripeId s;
      s.bytes.fill(static_cast<uint8_t>(b));
      for (int i : {0, 63}) {
        ShardKey k{s, static_cast<ShardIndex>(i)};
        std::string p = layout.ShardPath(k);
        CAPTURE(p);
        CHECK(p.rfind("/data/node/shards/", 0) == 0);
        CHECK(p.find("..") == std::string::npos);
        std::string name = p.substr(p.rfind('/') + 1);
        auto back = DataLayout::ParseShardFileName(name);
        REQUIRE(back);
        CHECK(*back == k);
      }
    }
  }

  TEST_CASE("shard file header round trip and truncation") {
    auto payload = TestPayload(64);
    ShardFileInfo info;
    info.stripe = TestStripe(0x42);
    info.index = 5;
    info.payload_size = payload.size();
    info.payload_crc32c = Crc32c(payload);
    info.created_ms = 123456789;
    info.owner = kOwner;
    info.locator = TestLocator(info.stripe, payload);
    std::string prefix = EncodeShardPrefix(info);
    auto bytes =
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(prefix.data()), prefix.size());
    auto h = DecodeShardHeader(bytes);
    REQUIRE(h.ok());
    CHECK(h->payload_offset() == prefix.size());
    ShardFileInfo back;
    REQUIRE(DecodeShardMeta(*h, bytes.subspan(shardfile::kHeaderSize), &back).ok());
    CHECK(back.owner == info.owner);
    CHECK(back.locator == info.locator);
    CHECK(back.created_ms == info.created_ms);
    CHECK(back.payload_crc32c == info.payload_crc32c);
    for (size_t n = 0; n < shardfile::kHeaderSize; ++n) {
      CAPTURE(n);
      CHECK_FALSE(DecodeShardHeader(bytes.first(n)).ok());
    }
    for (size_t n = 0; n + shardfile::kHeaderSize < prefix.size(); ++n) {
      CAPTURE(n);
      CHECK_FALSE(DecodeShardMeta(*h, bytes.subspan(shardfile::kHeaderSize, n), &back).ok());
    }
    // Any single flipped bit in the header is caught.
    for (size_t i = 0; i < shardfile::kHeaderSize; ++i) {
      std::string bad = prefix;
      bad[i] ^= 0x10;
      CAPTURE(i);
      CHECK_FALSE(
          DecodeShardHeader({reinterpret_cast<const uint8_t*>(bad.data()), bad.size()}).ok());
    }
  }

}  // TEST_SUITE

}  // namespace
}  // namespace shardfs
