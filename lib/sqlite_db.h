// RAII wrapper over SQLite: Db (a connection + statement cache), Stmt
// (finalizes itself), Txn (rolls back unless committed).
//
// Every Open() sets WAL, foreign_keys, a busy timeout, checks or sets the
// application_id, and runs the caller's migrations: an ordered list of DDL
// scripts, where user_version is the number already applied (STYLE.md §8).
//
// Thread-safety: a Db and its Stmts belong to one thread at a time (one
// connection per owning thread; SQLite is built serialized but we never
// share a connection across threads on a hot path).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "lib/status.h"

namespace shardfs {

class Db;

class Stmt {
 public:
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt(Stmt&& other) noexcept;
  ~Stmt();

  // Binds are 1-based, as in SQLite. Text and blobs are copied
  // (SQLITE_TRANSIENT), so the arguments need not outlive the call.
  Stmt& Bind(int i, int64_t v);
  Stmt& Bind(int i, std::string_view text);
  Stmt& BindBlob(int i, std::span<const uint8_t> blob);
  Stmt& BindNull(int i);

  // Returns true with a row ready, false when done; errors as Status.
  Result<bool> Step();
  // Runs to completion, expecting no rows.
  Status Run();
  // Resets for reuse and clears bindings.
  void Reset();

  int64_t ColumnInt(int i) const;
  std::string ColumnText(int i) const;
  std::vector<uint8_t> ColumnBlob(int i) const;
  bool ColumnIsNull(int i) const;

 private:
  friend class Db;
  Stmt(sqlite3* db, sqlite3_stmt* s) : db_(db), s_(s) {}
  sqlite3* db_;
  sqlite3_stmt* s_;
};

class Db {
 public:
  struct Options {
    uint32_t application_id = 0;  // refuse a file with another nonzero id
    std::vector<std::string> migrations;  // migrations[i] brings version i -> i+1
    int busy_timeout_ms = 5000;
    bool synchronous_full = false;  // default NORMAL (WAL makes it durable per checkpoint)
  };

  // Opens (creating) `path`, applies pragmas and pending migrations.
  static Result<std::unique_ptr<Db>> Open(const std::string& path, const Options& opts);

  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  ~Db();  // finalizes cached statements first, then closes

  Status Exec(std::string_view sql);  // one or more statements, no rows
  // A fresh statement, owned by the caller.
  Result<Stmt> Prepare(std::string_view sql);
  // A cached statement, reset and ready: valid until the Db dies. Do not
  // hold two uses of the same SQL at once.
  Result<Stmt*> Cached(const std::string& sql);

  int64_t LastInsertRowid() const;
  int Changes() const;
  sqlite3* raw() { return db_; }

 private:
  explicit Db(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::unordered_map<std::string, std::unique_ptr<Stmt>> cache_;
};

// BEGIN IMMEDIATE on construction; ROLLBACK in the destructor unless Commit().
// A Txn from Savepoint() nests inside a transaction the caller keeps open:
// Commit() releases the savepoint (its changes join the outer transaction)
// and the destructor undoes only what was done since the savepoint.
class Txn {
 public:
  static Result<std::unique_ptr<Txn>> Begin(Db* db);
  // REQUIRES: a transaction is open on `db`.
  static Result<std::unique_ptr<Txn>> Savepoint(Db* db);
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;
  ~Txn();
  Status Commit();

 private:
  Txn(Db* db, bool savepoint) : db_(db), savepoint_(savepoint) {}
  Db* db_;
  const bool savepoint_;
  bool done_ = false;
};

}  // namespace shardfs
