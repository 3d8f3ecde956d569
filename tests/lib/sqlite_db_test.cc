// Tests for lib/sqlite_db: pragmas, migrations, Txn, binds, statement cache.
#include "lib/sqlite_db.h"

#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>

#include "tests/netnode/temp_dir.h"

namespace shardfs {
namespace {

constexpr uint32_t kAppId = 0x54455354;  // "TEST"

Db::Options TwoMigrations() {
  Db::Options o;
  o.application_id = kAppId;
  o.migrations = {
      "CREATE TABLE t(k INTEGER PRIMARY KEY, v TEXT)",
      "ALTER TABLE t ADD COLUMN b BLOB; CREATE TABLE log(x INTEGER)",
  };
  return o;
}

int64_t Pragma(Db* db, const std::string& sql) {
  auto st = db->Prepare(sql);
  REQUIRE(st.ok());
  auto row = st->Step();
  REQUIRE(row.ok());
  REQUIRE(*row);
  return st->ColumnInt(0);
}

TEST_SUITE("sqlite_db") {
  TEST_CASE("open sets WAL, foreign keys, application_id and user_version") {
    testing::TempDir dir;
    auto db = Db::Open(dir.Sub("a.db"), TwoMigrations());
    REQUIRE(db.ok());
    CHECK(Pragma(db->get(), "PRAGMA user_version") == 2);
    CHECK(Pragma(db->get(), "PRAGMA application_id") == kAppId);
    CHECK(Pragma(db->get(), "PRAGMA foreign_keys") == 1);
    CHECK(Pragma(db->get(), "PRAGMA synchronous") == 1);  // NORMAL
    auto mode = (*db)->Prepare("PRAGMA journal_mode");
    REQUIRE(mode.ok());
    REQUIRE(*mode->Step());
    CHECK(mode->ColumnText(0) == "wal");
  }

  TEST_CASE("synchronous FULL by option") {
    testing::TempDir dir;
    auto o = TwoMigrations();
    o.synchronous_full = true;
    auto db = Db::Open(dir.Sub("a.db"), o);
    REQUIRE(db.ok());
    CHECK(Pragma(db->get(), "PRAGMA synchronous") == 2);
  }

  TEST_CASE("migrations are applied once and resumed") {
    testing::TempDir dir;
    std::string path = dir.Sub("m.db");
    {
      Db::Options one = TwoMigrations();
      one.migrations.resize(1);
      auto db = Db::Open(path, one);
      REQUIRE(db.ok());
      CHECK(Pragma(db->get(), "PRAGMA user_version") == 1);
      CHECK((*db)->Exec("INSERT INTO t(k, v) VALUES (1, 'one')").ok());
    }
    {
      // Second open with both: only migration 2 runs, data survives.
      auto db = Db::Open(path, TwoMigrations());
      REQUIRE(db.ok());
      CHECK(Pragma(db->get(), "PRAGMA user_version") == 2);
      CHECK(Pragma(db->get(), "SELECT count(*) FROM t") == 1);
      CHECK((*db)->Exec("INSERT INTO log(x) VALUES (1)").ok());
    }
    {
      // Third open: nothing to do (re-running migration 1 would fail).
      auto db = Db::Open(path, TwoMigrations());
      REQUIRE(db.ok());
      CHECK(Pragma(db->get(), "SELECT count(*) FROM log") == 1);
    }
    {
      // A program that knows fewer migrations than the file has refuses it.
      Db::Options one = TwoMigrations();
      one.migrations.resize(1);
      auto db = Db::Open(path, one);
      CHECK_FALSE(db.ok());
    }
  }

  TEST_CASE("a failing migration leaves the previous version") {
    testing::TempDir dir;
    std::string path = dir.Sub("f.db");
    Db::Options bad = TwoMigrations();
    bad.migrations.push_back("CREATE TABLE ok2(x); THIS IS NOT SQL");
    auto db = Db::Open(path, bad);
    REQUIRE_FALSE(db.ok());
    CHECK(db.status().message().find("migration 3") != std::string::npos);
    auto again = Db::Open(path, TwoMigrations());
    REQUIRE(again.ok());
    CHECK(Pragma(again->get(), "PRAGMA user_version") == 2);
    // The half of migration 3 that ran was rolled back.
    CHECK(Pragma(again->get(), "SELECT count(*) FROM sqlite_master WHERE name='ok2'") == 0);
  }

  TEST_CASE("wrong application_id is refused") {
    testing::TempDir dir;
    std::string path = dir.Sub("x.db");
    {
      Db::Options o;
      o.application_id = 0x11111111;
      o.migrations = {"CREATE TABLE z(a)"};
      REQUIRE(Db::Open(path, o).ok());
    }
    auto db = Db::Open(path, TwoMigrations());
    REQUIRE_FALSE(db.ok());
    CHECK(db.status().code() == Code::kInvalidArgument);
    CHECK(db.status().message().find("application_id") != std::string::npos);
  }

  TEST_CASE("a file that is not a database is refused") {
    testing::TempDir dir;
    std::string path = dir.Sub("junk.db");
    {
      std::ofstream f(path);
      f << std::string(4096, 'x');
    }
    auto db = Db::Open(path, TwoMigrations());
    CHECK_FALSE(db.ok());
  }

  TEST_CASE("Txn rolls back on destruction and commits on Commit") {
    testing::TempDir dir;
    auto db = Db::Open(dir.Sub("t.db"), TwoMigrations());
    REQUIRE(db.ok());
    Db* d = db->get();
    {
      auto txn = Txn::Begin(d);
      REQUIRE(txn.ok());
      CHECK(d->Exec("INSERT INTO t(k, v) VALUES (1, 'lost')").ok());
    }
    CHECK(Pragma(d, "SELECT count(*) FROM t") == 0);
    {
      auto txn = Txn::Begin(d);
      REQUIRE(txn.ok());
      CHECK(d->Exec("INSERT INTO t(k, v) VALUES (2, 'kept')").ok());
      CHECK((*txn)->Commit().ok());
      CHECK_FALSE((*txn)->Commit().ok());  // second commit is an error
    }
    CHECK(Pragma(d, "SELECT count(*) FROM t") == 1);
  }

  TEST_CASE("binds and columns round trip") {
    testing::TempDir dir;
    auto db = Db::Open(dir.Sub("b.db"), TwoMigrations());
    REQUIRE(db.ok());
    Db* d = db->get();
    std::vector<uint8_t> blob = {0, 1, 2, 255, 0};
    std::string text("with\0nul", 8);
    {
      auto ins = d->Prepare("INSERT INTO t(k, v, b) VALUES (?1, ?2, ?3)");
      REQUIRE(ins.ok());
      ins->Bind(1, int64_t{-7}).Bind(2, text).BindBlob(3, blob);
      CHECK(ins->Run().ok());
      CHECK(d->Changes() == 1);
      CHECK(d->LastInsertRowid() == -7);
      ins->Reset();
      ins->Bind(1, int64_t{1} << 40).BindNull(2).BindBlob(3, {});
      CHECK(ins->Run().ok());
      ins->Reset();
      ins->Bind(1, int64_t{1} << 41).Bind(2, std::string_view()).BindBlob(3, {});
      CHECK(ins->Run().ok());
    }
    auto q = d->Prepare("SELECT k, v, b FROM t ORDER BY k");
    REQUIRE(q.ok());
    REQUIRE(*q->Step());
    CHECK(q->ColumnInt(0) == -7);
    CHECK(q->ColumnText(1) == text);
    CHECK(q->ColumnBlob(2) == blob);
    REQUIRE(*q->Step());
    CHECK(q->ColumnInt(0) == (int64_t{1} << 40));
    CHECK(q->ColumnIsNull(1));
    CHECK_FALSE(q->ColumnIsNull(2));  // empty blob, not NULL
    CHECK(q->ColumnBlob(2).empty());
    REQUIRE(*q->Step());
    CHECK(q->ColumnInt(0) == (int64_t{1} << 41));
    CHECK_FALSE(q->ColumnIsNull(1));  // empty text, not NULL
    CHECK(q->ColumnText(1).empty());
    auto done = q->Step();
    REQUIRE(done.ok());
    CHECK_FALSE(*done);
  }

  TEST_CASE("errors carry the SQLite message") {
    testing::TempDir dir;
    auto db = Db::Open(dir.Sub("e.db"), TwoMigrations());
    REQUIRE(db.ok());
    auto bad = (*db)->Prepare("SELECT nope FROM t");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.status().message().find("no such column") != std::string::npos);
    CHECK((*db)->Exec("INSERT INTO t(k) VALUES (1)").ok());
    auto dup = (*db)->Prepare("INSERT INTO t(k) VALUES (1)");
    REQUIRE(dup.ok());
    Status st = dup->Run();
    CHECK_FALSE(st.ok());
    CHECK(st.message().find("UNIQUE") != std::string::npos);
    // Returning rows from Run() is reported.
    auto rows = (*db)->Prepare("SELECT k FROM t");
    REQUIRE(rows.ok());
    CHECK_FALSE(rows->Run().ok());
  }

  TEST_CASE("cached statements are reused and reset") {
    testing::TempDir dir;
    auto db = Db::Open(dir.Sub("c.db"), TwoMigrations());
    REQUIRE(db.ok());
    Db* d = db->get();
    const std::string sql = "INSERT INTO t(k, v) VALUES (?1, ?2)";
    Stmt* first = nullptr;
    for (int i = 0; i < 3; ++i) {
      auto st = d->Cached(sql);
      REQUIRE(st.ok());
      if (i == 0) first = *st;
      CHECK(*st == first);
      (*st)->Bind(1, int64_t{i}).Bind(2, "v");
      CHECK((*st)->Run().ok());
    }
    // A cached SELECT left mid-result is reset by the next Cached() call.
    auto sel = d->Cached("SELECT k FROM t ORDER BY k");
    REQUIRE(sel.ok());
    REQUIRE(*(*sel)->Step());
    CHECK((*sel)->ColumnInt(0) == 0);
    auto again = d->Cached("SELECT k FROM t ORDER BY k");
    REQUIRE(again.ok());
    REQUIRE(*(*again)->Step());
    CHECK((*again)->ColumnInt(0) == 0);
    // Destroying the Db with cached (even mid-step) statements must close
    // cleanly: the test passes if this does not leak or crash.
    db->reset();
  }

}  // TEST_SUITE

}  // namespace
}  // namespace shardfs
