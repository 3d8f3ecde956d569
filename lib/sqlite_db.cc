// RAII wrapper over SQLite. See sqlite_db.h.
//
// Every error carries SQLite's own message (sqlite3_errmsg) plus what we were
// doing, so a log line names the statement or the pragma that failed.
#include "lib/sqlite_db.h"

#include <cstdio>
#include <string>
#include <utility>

namespace shardfs {
namespace {

// SQLITE_BUSY / SQLITE_LOCKED become Busy (another connection holds the
// write lock past busy_timeout); everything else is an IOError with the
// SQLite text, and SQLITE_FULL is NoSpace so quota handling sees it.
Status SqliteError(sqlite3* db, int rc, std::string_view context) {
  std::string msg(context);
  msg += ": ";
  msg += db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  msg += " (";
  msg += sqlite3_errstr(rc);
  msg += ")";
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::Busy(std::move(msg));
    case SQLITE_FULL:
      return Status::NoSpace(std::move(msg));
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Status::Corruption(std::move(msg));
    case SQLITE_CANTOPEN:
      return Status::IOError(std::move(msg), ENOENT);
    default:
      return Status::IOError(std::move(msg));
  }
}

std::string Abbrev(std::string_view sql) {
  constexpr size_t kMax = 80;
  if (sql.size() <= kMax) return std::string(sql);
  return std::string(sql.substr(0, kMax)) + "...";
}

// Reads a single integer from a pragma such as "PRAGMA user_version".
Result<int64_t> QueryInt(Db* db, std::string_view sql) {
  ASSIGN_OR_RETURN(Stmt st, db->Prepare(sql));
  ASSIGN_OR_RETURN(bool row, st.Step());
  if (!row) return Status::IOError("no row from " + std::string(sql));
  return st.ColumnInt(0);
}

}  // namespace

// ---- Stmt ----

Stmt::Stmt(Stmt&& other) noexcept : db_(other.db_), s_(other.s_) { other.s_ = nullptr; }

Stmt::~Stmt() {
  if (s_ != nullptr) sqlite3_finalize(s_);
}

// Bind errors (index out of range, SQLITE_TOOBIG) are remembered by SQLite
// and reported again by the following sqlite3_step, so Step() surfaces them.
Stmt& Stmt::Bind(int i, int64_t v) {
  sqlite3_bind_int64(s_, i, v);
  return *this;
}

Stmt& Stmt::Bind(int i, std::string_view text) {
  // A null data pointer would bind NULL; an empty string stays ''.
  const char* p = text.data() != nullptr ? text.data() : "";
  sqlite3_bind_text64(s_, i, p, text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
  return *this;
}

Stmt& Stmt::BindBlob(int i, std::span<const uint8_t> blob) {
  // A zero-length blob with a null pointer would bind NULL; keep it a blob.
  static const uint8_t kEmpty = 0;
  const void* p = blob.empty() ? &kEmpty : blob.data();
  sqlite3_bind_blob64(s_, i, p, blob.size(), SQLITE_TRANSIENT);
  return *this;
}

Stmt& Stmt::BindNull(int i) {
  sqlite3_bind_null(s_, i);
  return *this;
}

Result<bool> Stmt::Step() {
  int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Status st = SqliteError(db_, rc, "executing " + Abbrev(sqlite3_sql(s_)));
  // Leave the statement reusable: without a reset the next step after an
  // error keeps failing.
  sqlite3_reset(s_);
  return st;
}

Status Stmt::Run() {
  ASSIGN_OR_RETURN(bool row, Step());
  if (row) {
    sqlite3_reset(s_);
    return Status::InvalidArgument("statement returned rows: " + Abbrev(sqlite3_sql(s_)));
  }
  return Status::OK();
}

void Stmt::Reset() {
  sqlite3_reset(s_);
  sqlite3_clear_bindings(s_);
}

int64_t Stmt::ColumnInt(int i) const { return sqlite3_column_int64(s_, i); }

std::string Stmt::ColumnText(int i) const {
  const unsigned char* p = sqlite3_column_text(s_, i);
  int n = sqlite3_column_bytes(s_, i);
  if (p == nullptr) return std::string();
  return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
}

std::vector<uint8_t> Stmt::ColumnBlob(int i) const {
  const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(s_, i));
  int n = sqlite3_column_bytes(s_, i);
  if (p == nullptr || n <= 0) return {};
  return std::vector<uint8_t>(p, p + n);
}

bool Stmt::ColumnIsNull(int i) const { return sqlite3_column_type(s_, i) == SQLITE_NULL; }

// ---- Db ----

Result<std::unique_ptr<Db>> Db::Open(const std::string& path, const Options& opts) {
  sqlite3* raw = nullptr;
  // NOMUTEX: one connection per owning thread (header), so SQLite's own
  // connection mutex would only cost time.
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  if (rc != SQLITE_OK) {
    Status st = SqliteError(raw, rc, "opening database " + path);
    sqlite3_close_v2(raw);  // a handle is returned even on failure
    return st;
  }
  std::unique_ptr<Db> db(new Db(raw));
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, opts.busy_timeout_ms);

  // Check the application id before touching anything else, so a foreign
  // database (or not a database at all) is refused unchanged.
  auto app_id = QueryInt(db.get(), "PRAGMA application_id");
  if (!app_id.ok()) return app_id.status().With(path);
  uint32_t found = static_cast<uint32_t>(*app_id);
  if (found != 0 && found != opts.application_id) {
    char buf[96];
    std::snprintf(buf, sizeof(buf), "application_id 0x%08x, expected 0x%08x", found,
                  opts.application_id);
    return Status::InvalidArgument(path + ": not a database of this program (" + buf + ")");
  }

  // WAL: readers do not block the writer. Returns the new mode as a row.
  {
    auto mode = db->Prepare("PRAGMA journal_mode=WAL");
    if (!mode.ok()) return mode.status().With(path);
    auto row = mode->Step();
    if (!row.ok()) return row.status().With(path + ": setting WAL");
    std::string got = *row ? mode->ColumnText(0) : "";
    if (got != "wal") return Status::IOError(path + ": cannot enable WAL (mode " + got + ")");
  }
  RETURN_IF_ERROR(db->Exec("PRAGMA foreign_keys=ON").With(path));
  RETURN_IF_ERROR(
      db->Exec(opts.synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL")
          .With(path));

  // Migrations: user_version counts the ones applied. Each runs with the
  // version bump in one transaction, so a crash leaves either the old
  // schema or the new one, and the next Open resumes where it stopped.
  ASSIGN_OR_RETURN(int64_t version, QueryInt(db.get(), "PRAGMA user_version"));
  if (version < 0 || static_cast<size_t>(version) > opts.migrations.size()) {
    return Status::InvalidArgument(path + ": schema version " + std::to_string(version) +
                                   " is newer than this program knows (" +
                                   std::to_string(opts.migrations.size()) + ")");
  }
  for (size_t v = static_cast<size_t>(version); v < opts.migrations.size(); ++v) {
    std::string ctx = path + ": migration " + std::to_string(v + 1);
    ASSIGN_OR_RETURN(auto txn, Txn::Begin(db.get()));
    RETURN_IF_ERROR(db->Exec(opts.migrations[v]).With(ctx));
    RETURN_IF_ERROR(db->Exec("PRAGMA user_version=" + std::to_string(v + 1)).With(ctx));
    if (v == 0 && opts.application_id != 0) {
      RETURN_IF_ERROR(db->Exec("PRAGMA application_id=" +
                               std::to_string(static_cast<int64_t>(opts.application_id)))
                          .With(ctx));
    }
    RETURN_IF_ERROR(txn->Commit().With(ctx));
  }
  // A database created before the id was set (or with no migrations) still
  // gets its id, so the next open can check it.
  if (found == 0 && opts.application_id != 0 && opts.migrations.empty()) {
    RETURN_IF_ERROR(db->Exec("PRAGMA application_id=" +
                             std::to_string(static_cast<int64_t>(opts.application_id)))
                        .With(path));
  }
  return db;
}

Db::~Db() {
  // Close fails with SQLITE_BUSY while statements are open, so the cache
  // goes first. close_v2 would defer, but we want the file closed now.
  cache_.clear();
  sqlite3_close_v2(db_);
}

Status Db::Exec(std::string_view sql) {
  // sqlite3_exec needs a NUL-terminated string.
  std::string s(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = "executing " + Abbrev(sql) + ": " + (err ? err : sqlite3_errstr(rc));
    sqlite3_free(err);
    Status st = SqliteError(nullptr, rc, msg);
    return st;
  }
  return Status::OK();
}

Result<Stmt> Db::Prepare(std::string_view sql) {
  sqlite3_stmt* s = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &s, &tail);
  if (rc != SQLITE_OK) {
    return SqliteError(db_, rc, "preparing " + Abbrev(sql));
  }
  if (s == nullptr) return Status::InvalidArgument("empty statement: " + Abbrev(sql));
  return Stmt(db_, s);
}

Result<Stmt*> Db::Cached(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) {
    it->second->Reset();
    return it->second.get();
  }
  ASSIGN_OR_RETURN(Stmt st, Prepare(sql));
  auto owned = std::make_unique<Stmt>(std::move(st));
  Stmt* p = owned.get();
  cache_.emplace(sql, std::move(owned));
  return p;
}

int64_t Db::LastInsertRowid() const { return sqlite3_last_insert_rowid(db_); }

int Db::Changes() const { return sqlite3_changes(db_); }

// ---- Txn ----

Result<std::unique_ptr<Txn>> Txn::Begin(Db* db) {
  // IMMEDIATE takes the write lock now, so a writer waits in busy_timeout
  // here instead of failing later with SQLITE_BUSY on a lock upgrade.
  RETURN_IF_ERROR(db->Exec("BEGIN IMMEDIATE"));
  return std::unique_ptr<Txn>(new Txn(db, false));
}

Result<std::unique_ptr<Txn>> Txn::Savepoint(Db* db) {
  RETURN_IF_ERROR(db->Exec("SAVEPOINT txn"));
  return std::unique_ptr<Txn>(new Txn(db, true));
}

Txn::~Txn() {
  if (!done_) {
    // Nothing useful to do with a rollback error here: the connection
    // rolls back on close anyway.
    (void)db_->Exec(savepoint_ ? "ROLLBACK TO txn; RELEASE txn" : "ROLLBACK");
  }
}

Status Txn::Commit() {
  if (done_) return Status::InvalidArgument("transaction already finished");
  Status st = db_->Exec(savepoint_ ? "RELEASE txn" : "COMMIT");
  if (st.ok()) done_ = true;
  // On failure the transaction is still open; the destructor rolls it back.
  return st;
}

}  // namespace shardfs
