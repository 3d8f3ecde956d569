// Tests for lib/wal_checkpointer: the writer's commits leave checkpoints to
// the thread, the WAL stays bounded, and over_limit reports a pinned WAL.
#include "lib/wal_checkpointer.h"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "tests/netnode/temp_dir.h"

namespace shardfs {
namespace {

Db::Options Schema() {
  Db::Options o;
  o.migrations = {"CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB)"};
  return o;
}

int64_t FileSize(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? st.st_size : 0;
}

// Frames in the WAL (a passive checkpoint reports them; it copies them too).
int64_t WalFrames(Db* db) {
  auto st = db->Prepare("PRAGMA wal_checkpoint(PASSIVE)");
  REQUIRE(st.ok());
  auto row = st->Step();
  REQUIRE(row.ok());
  REQUIRE(*row);
  return st->ColumnInt(1);
}

// One row of ~3 KB per transaction: a few WAL frames each (its page, the
// tree above it, the header).
void InsertRows(Db* db, int n, int64_t* max_wal, const std::string& wal) {
  for (int i = 0; i < n; ++i) {
    auto st = db->Prepare("INSERT INTO t(v) VALUES (zeroblob(3000))");
    REQUIRE(st.ok());
    REQUIRE(st->Run().ok());
    *max_wal = std::max(*max_wal, FileSize(wal));
  }
}

// A fresh database with the table above, and its checkpointer if asked.
struct WalDb {
  testing::TempDir dir;
  std::string path = dir.Sub("a.db");
  std::string wal = path + "-wal";
  std::unique_ptr<Db> db;
  std::unique_ptr<WalCheckpointer> ckpt;
  explicit WalDb(const WalCheckpointer::Options* o) {
    auto d = Db::Open(path, Schema());
    REQUIRE(d.ok());
    db = std::move(d).value();
    if (o == nullptr) return;
    auto c = WalCheckpointer::Start(db.get(), path, *o);
    REQUIRE(c.ok());
    ckpt = std::move(c).value();
  }
};

TEST_SUITE("wal_checkpointer") {
  TEST_CASE("the thread checkpoints and starts the WAL over") {
    WalCheckpointer::Options o;
    o.wake_frames = 50;
    o.restart_frames = 400;
    WalDb w(&o);
    int64_t max_wal = 0;
    // One transaction of 600 rows: a single commit leaves ~600 frames, past
    // restart_frames, and then the writer stays still until the thread has
    // run. Streams of small commits raced the thread both ways on CI under
    // ASan: a RESTART in the middle of the writes left 192 new frames; and
    // with pauses between commits every PASSIVE pass caught up, SQLite
    // started the WAL over by itself, and no pass ever saw 400 frames.
    REQUIRE(w.db->Exec("BEGIN").ok());
    InsertRows(w.db.get(), 600, &max_wal, w.wal);
    REQUIRE(w.db->Exec("COMMIT").ok());
    max_wal = std::max(max_wal, FileSize(w.wal));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (w.ckpt->stats().restarts == 0 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    CHECK(w.ckpt->stats().passes >= 1);
    REQUIRE(w.ckpt->stats().restarts >= 1);
    CHECK_FALSE(w.ckpt->over_limit());
    // The WAL file keeps its size when the log starts over, so it tells how
    // many frames the WAL held at most; after the RESTART the next commit
    // writes from the start of the log (the second number PRAGMA
    // wal_checkpoint returns is the WAL's frame count).
    InsertRows(w.db.get(), 1, &max_wal, w.wal);
    const int64_t most = (max_wal - 32) / (4096 + 24);  // header, frames
    const int64_t now = WalFrames(w.db.get());
    MESSAGE("WAL frames at most " << most << ", after the RESTART and one row " << now);
    CHECK(most >= o.restart_frames);
    CHECK(now < 10);
  }

  TEST_CASE("without the thread the writer's WAL only grows (the test above can fail)") {
    WalDb w(nullptr);
    REQUIRE(w.db->Exec("PRAGMA wal_autocheckpoint = 0").ok());
    int64_t max_wal = 0;
    InsertRows(w.db.get(), 1200, &max_wal, w.wal);
    CHECK(max_wal > 1100 * 4096);
    CHECK(WalFrames(w.db.get()) > 1100);
  }

  TEST_CASE("a reader pinning the WAL makes over_limit report it") {
    WalCheckpointer::Options o;
    o.wake_frames = 20;
    o.restart_frames = 1 << 30;  // a RESTART would wait for the reader
    o.limit_frames = 300;
    WalDb w(&o);
    // A long read transaction on a third connection: no restart can pass it.
    sqlite3* reader = nullptr;
    REQUIRE(sqlite3_open_v2(w.path.c_str(), &reader, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM t;", nullptr, nullptr, nullptr) ==
            SQLITE_OK);
    int64_t max_wal = 0;
    InsertRows(w.db.get(), 400, &max_wal, w.wal);
    CHECK(w.ckpt->over_limit());
    sqlite3_exec(reader, "COMMIT", nullptr, nullptr, nullptr);
    sqlite3_close(reader);
  }
}

}  // namespace
}  // namespace shardfs
