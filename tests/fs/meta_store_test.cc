// Unit tests of the mount's metadata layer (fs/meta_store.h) on a real
// SQLite file in a temp dir: structure errors, rename flags, readdir
// cookies, segment commits and the upload/deletion queues.
#include <doctest/doctest.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "fs/meta_store.h"

namespace shardfs::fs {
namespace {

struct TempStore {
  std::string dir;
  std::unique_ptr<MetaStore> meta;
  TempStore() {
    char tmpl[] = "/tmp/meta_store_test.XXXXXX";
    dir = ::mkdtemp(tmpl);
    auto m = MetaStore::Open(dir + "/meta.db", "vol", 1 << 20, 1000, 1000);
    REQUIRE(m.ok());
    meta = std::move(m).value();
  }
  ~TempStore() {
    meta.reset();
    std::filesystem::remove_all(dir);
  }
  uint64_t Make(uint64_t parent, const std::string& name, uint32_t mode) {
    NewNode n;
    n.mode = mode;
    auto a = meta->CreateNode(parent, name, n, NowNs());
    REQUIRE(a.ok());
    return a->ino;
  }
};

TEST_SUITE("fs_meta_store") {
  TEST_CASE("root exists and is owned by the mounting user") {
    TempStore t;
    auto a = t.meta->GetAttr(kRootIno);
    REQUIRE(a.ok());
    CHECK(S_ISDIR(a->mode));
    CHECK(a->uid == 1000);
    CHECK(a->nlink == 2);
  }

  TEST_CASE("create, lookup and structural errors") {
    TempStore t;
    uint64_t d = t.Make(kRootIno, "d", S_IFDIR | 0755);
    uint64_t f = t.Make(d, "f", S_IFREG | 0644);
    CHECK(t.meta->GetAttr(kRootIno)->nlink == 3);
    CHECK(t.meta->Lookup(d, "f")->ino == f);
    NewNode n;
    n.mode = S_IFREG | 0644;
    CHECK(t.meta->CreateNode(d, "f", n, 1).status().err() == EEXIST);
    CHECK(t.meta->CreateNode(f, "x", n, 1).status().err() == ENOTDIR);
    CHECK(t.meta->CreateNode(d, std::string(256, 'a'), n, 1).status().err() == ENAMETOOLONG);
    CHECK(t.meta->Rmdir(kRootIno, "d", 1).status().err() == ENOTEMPTY);
    CHECK(t.meta->Unlink(kRootIno, "d", 1).status().err() == EISDIR);
    CHECK(t.meta->Link(d, kRootIno, "dl", 1).status().err() == EPERM);
    auto u = t.meta->Unlink(d, "f", 1);
    REQUIRE(u.ok());
    CHECK(u->nlink == 0);
    CHECK(t.meta->Rmdir(kRootIno, "d", 1).ok());
    CHECK(t.meta->GetAttr(kRootIno)->nlink == 2);
  }

  TEST_CASE("rename flags and directory loops") {
    TempStore t;
    uint64_t a = t.Make(kRootIno, "a", S_IFREG | 0644);
    uint64_t b = t.Make(kRootIno, "b", S_IFREG | 0644);
    CHECK(t.meta->Rename(kRootIno, "a", kRootIno, "b", RENAME_NOREPLACE, 1).status().err() ==
          EEXIST);
    REQUIRE(t.meta->Rename(kRootIno, "a", kRootIno, "b", RENAME_EXCHANGE, 1).ok());
    CHECK(t.meta->Lookup(kRootIno, "a")->ino == b);
    auto r = t.meta->Rename(kRootIno, "a", kRootIno, "b", 0, 1);
    REQUIRE(r.ok());
    CHECK(r->ino == a);  // a lost its name by replacement
    CHECK(r->nlink == 0);
    uint64_t d1 = t.Make(kRootIno, "d1", S_IFDIR | 0755);
    t.Make(d1, "sub", S_IFDIR | 0755);
    uint64_t sub = t.meta->Lookup(d1, "sub")->ino;
    CHECK(t.meta->Rename(kRootIno, "d1", sub, "x", 0, 1).status().err() == EINVAL);
  }

  TEST_CASE("readdir cookies survive changes") {
    TempStore t;
    for (int i = 0; i < 10; ++i) t.Make(kRootIno, "f" + std::to_string(i), S_IFREG | 0644);
    auto first = t.meta->ReadDir(kRootIno, 0, 5);
    REQUIRE(first.ok());
    REQUIRE(first->size() == 5);
    REQUIRE(t.meta->Unlink(kRootIno, "f2", 1).ok());  // already returned
    t.Make(kRootIno, "new", S_IFREG | 0644);            // appended after
    auto rest = t.meta->ReadDir(kRootIno, first->back().cookie, 100);
    REQUIRE(rest.ok());
    REQUIRE(rest->size() == 6);
    CHECK(rest->front().name == "f5");
    CHECK(rest->back().name == "new");
  }

  TEST_CASE("xattr create/replace errors") {
    TempStore t;
    uint64_t f = t.Make(kRootIno, "f", S_IFREG | 0644);
    std::vector<uint8_t> v = {1, 2};
    CHECK(t.meta->SetXattr(f, "user.a", v, XATTR_REPLACE, 1).err() == ENODATA);
    CHECK(t.meta->SetXattr(f, "user.a", v, XATTR_CREATE, 1).ok());
    CHECK(t.meta->SetXattr(f, "user.a", v, XATTR_CREATE, 1).err() == EEXIST);
    CHECK(*t.meta->GetXattr(f, "user.a") == v);
    CHECK(t.meta->RemoveXattr(f, "user.a", 1).ok());
    CHECK(t.meta->RemoveXattr(f, "user.a", 1).err() == ENODATA);
  }

  TEST_CASE("segment commit, upload and deletion queues") {
    TempStore t;
    uint64_t f = t.Make(kRootIno, "f", S_IFREG | 0644);
    SegmentUpdate u;
    u.kind = SegmentUpdate::Kind::kStaged;
    u.idx = 0;
    u.len = 100;
    u.staging_id = 7;
    REQUIRE(t.meta->CommitFile(f, 100, 5, 5, {u}, std::nullopt, false).ok());
    CHECK(t.meta->GetAttr(f)->size == 100);
    auto q = t.meta->NextUploads(10, {});
    REQUIRE(q.ok());
    REQUIRE(q->size() == 1);
    CHECK((*q)[0].staging_id == 7);
    std::vector<uint8_t> loc1 = {1, 1, 1};
    auto moved = t.meta->FinishUpload(f, 0, (*q)[0].seq, loc1, false);
    REQUIRE(moved.ok());
    CHECK(*moved);
    CHECK(*t.meta->CountPendingUploads() == 0);
    // A rewrite: the old locator is deleted only once the new one is stored.
    u.staging_id = 8;
    REQUIRE(t.meta->CommitFile(f, 100, 6, 6, {u}, std::nullopt, false).ok());
    CHECK(t.meta->NextDeletions(10, 0)->empty());
    q = t.meta->NextUploads(10, {});
    std::vector<uint8_t> loc2 = {2, 2, 2};
    // Superseded while in flight: the new locator itself goes to deletion.
    CHECK_FALSE(*t.meta->FinishUpload(f, 0, (*q)[0].seq - 1, loc2, false));
    auto dels = t.meta->NextDeletions(10, 0);
    REQUIRE(dels->size() == 1);
    CHECK((*dels)[0].locator == loc2);
    REQUIRE(t.meta->FinishDeletion((*dels)[0].id).ok());
    CHECK(*t.meta->FinishUpload(f, 0, (*q)[0].seq, loc2, false));
    dels = t.meta->NextDeletions(10, 0);
    REQUIRE(dels->size() == 1);
    CHECK((*dels)[0].locator == loc1);
    // Truncate to zero queues the current locator; purge removes the inode.
    REQUIRE(t.meta->CommitFile(f, 0, 7, 7, {}, 0u, false).ok());
    CHECK(t.meta->NextDeletions(10, 0)->size() == 2);
    REQUIRE(t.meta->Unlink(kRootIno, "f", 1).ok());
    REQUIRE(t.meta->PurgeIfUnlinked(f).ok());
    CHECK(t.meta->GetAttr(f).status().err() == ENOENT);
  }

  TEST_CASE("recovery purges unlinked inodes and reports their staging") {
    std::string dir;
    {
      TempStore t;
      dir = t.dir;
      uint64_t f = t.Make(kRootIno, "f", S_IFREG | 0644);
      SegmentUpdate u;
      u.idx = 0;
      u.len = 10;
      u.staging_id = 42;
      REQUIRE(t.meta->CommitFile(f, 10, 1, 1, {u}, std::nullopt, false).ok());
      REQUIRE(t.meta->Unlink(kRootIno, "f", 1).ok());  // still "open": not purged
      auto staging = t.meta->Recover();
      REQUIRE(staging.ok());
      REQUIRE(staging->size() == 1);
      CHECK((*staging)[0] == 42);
      CHECK(t.meta->ReferencedStagingIds()->empty());
    }
  }

  TEST_CASE("another volume's database is refused") {
    TempStore t;
    t.meta.reset();
    auto other = MetaStore::Open(t.dir + "/meta.db", "other", 1 << 20, 0, 0);
    CHECK(other.status().code() == Code::kInvalidArgument);
  }
}

}  // namespace
}  // namespace shardfs::fs
