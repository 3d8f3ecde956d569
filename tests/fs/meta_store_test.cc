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
#include "lib/sqlite_db.h"

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
  // A file of 10 bytes whose segment 0 waits in staging file `staging_id`.
  uint64_t MakeStaged(const std::string& name, uint64_t staging_id) {
    uint64_t f = Make(kRootIno, name, S_IFREG | 0644);
    SegmentUpdate u;
    u.idx = 0;
    u.len = 10;
    u.staging_id = staging_id;
    REQUIRE(meta->CommitFile(f, 10, 1, 1, {u}, std::nullopt, false).ok());
    return f;
  }
};

// What another connection (shardctl, the snapshot service, the next mount)
// sees: only committed state.
int64_t CountOutside(const std::string& dir, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2((dir + "/meta.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) ==
          SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  int64_t n = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

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
      t.MakeStaged("f", 42);
      REQUIRE(t.meta->Unlink(kRootIno, "f", 1).ok());  // still "open": not purged
      auto staging = t.meta->Recover();
      REQUIRE(staging.ok());
      REQUIRE(staging->size() == 1);
      CHECK((*staging)[0] == 42);
      CHECK(t.meta->ReferencedStagingIds()->empty());
    }
  }

  TEST_CASE("batched changes: commit points, the window, close, a failed change") {
    TempStore t;
    const std::string named = "SELECT count(*) FROM dentries WHERE CAST(name AS TEXT) IN ('a', 'b', 'c')";
    // A file's data commit is a commit point: it and the create before it
    // are on disk when it returns (well within the 5 ms window).
    uint64_t a = t.Make(kRootIno, "a", S_IFREG | 0644);
    SegmentUpdate u;
    u.kind = SegmentUpdate::Kind::kInline;
    u.len = 3;
    u.inline_data = {1, 2, 3};
    REQUIRE(t.meta->CommitFile(a, 3, 1, 1, {u}, std::nullopt, false).ok());
    CHECK(CountOutside(t.dir, named) == 1);
    CHECK(CountOutside(t.dir, "SELECT count(*) FROM segments") == 1);
    // A failed change undoes only itself: the batch around it survives.
    t.Make(kRootIno, "b", S_IFREG | 0644);
    NewNode n;
    n.mode = S_IFREG | 0644;
    CHECK(t.meta->CreateNode(kRootIno, "b", n, 1).status().err() == EEXIST);
    t.Make(kRootIno, "c", S_IFREG | 0644);
    // Without a commit point the window commits them.
    for (int i = 0; i < 200 && CountOutside(t.dir, named) != 3; ++i) ::usleep(5000);
    CHECK(CountOutside(t.dir, named) == 3);
    // fsync inside a batch: a durable commit point, and Sync on its own.
    uint64_t e = t.Make(kRootIno, "e", S_IFREG | 0644);
    REQUIRE(t.meta->CommitFile(e, 3, 1, 1, {u}, std::nullopt, /*durable=*/true).ok());
    t.Make(kRootIno, "g", S_IFREG | 0644);
    REQUIRE(t.meta->Sync().ok());
    CHECK(CountOutside(t.dir, "SELECT count(*) FROM dentries WHERE CAST(name AS TEXT) = 'g'") ==
          1);
    // Changes still in a batch are committed by the close.
    REQUIRE(t.meta->Rename(kRootIno, "c", kRootIno, "d", 0, 2).ok());
    t.meta.reset();
    CHECK(CountOutside(t.dir, named) == 2);
    CHECK(CountOutside(t.dir, "SELECT count(*) FROM dentries WHERE CAST(name AS TEXT) = 'd'") == 1);
  }

  TEST_CASE("the deletion queue is read from committed state only") {
    TempStore t;
    uint64_t f = t.MakeStaged("f", 7);
    const std::vector<uint8_t> locator = {9, 9, 9};
    auto q = t.meta->NextUploads(4, {});
    REQUIRE(q.ok());
    REQUIRE(q->size() == 1);
    REQUIRE(*t.meta->FinishUpload(f, 0, (*q)[0].seq, locator, false));
    REQUIRE(t.meta->Unlink(kRootIno, "f", 2).ok());
    auto staging = t.meta->PurgeIfUnlinked(f);  // queues the locator's deletion
    REQUIRE(staging.ok());
    auto del = t.meta->NextDeletions(10, 0);
    REQUIRE(del.ok());
    REQUIRE(del->size() == 1);
    // What the deleter acts on survives a crash now: the purge is on disk.
    CHECK(CountOutside(t.dir, "SELECT count(*) FROM delete_queue") == 1);
    CHECK(CountOutside(t.dir, "SELECT count(*) FROM inodes WHERE ino = " + std::to_string(f)) ==
          0);
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
