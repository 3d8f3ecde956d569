// Catalog: the node's SQLite index of the shards it holds (DATA_DIR/node.db,
// schema in STORAGE.md §6). It is an index, not the truth: every shard file
// describes itself (STORAGE.md §3), and startup reconciles the two
// (STORAGE.md §5). That is why synchronous=NORMAL is enough here.
//
// Thread-safety: a Catalog is one SQLite connection and belongs to one
// thread at a time. Each worker thread and the committer open their own;
// SQLite (WAL, busy_timeout) serializes their writes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lib/checksum.h"
#include "lib/locator.h"
#include "lib/sqlite_db.h"
#include "lib/status.h"
#include "netnode/layout.h"

namespace shardfs {

enum class ShardState : uint8_t {
  kOk = 0,
  kCorrupt = 1,  // failed a checksum on read; never served (STORAGE.md §6)
};

struct ShardRecord {
  ShardKey key;
  uint64_t size = 0;
  uint32_t crc32c = 0;
  Sha256Digest sha256{};  // as the owner declared it in the locator
  std::string owner;
  Locator locator;
  uint64_t created_ms = 0;
  uint64_t last_verified_ms = 0;
  ShardState state = ShardState::kOk;
};

// One LIST_SHARDS row.
struct CatalogEntry {
  ShardKey key;
  uint64_t size = 0;
  uint32_t locator_version = 0;
};

class Catalog {
 public:
  // "SHFD": SQLite's application_id slot (STYLE.md §8).
  static constexpr uint32_t kApplicationId = 0x53484644;

  // Opens or creates the database and applies pending migrations.
  static Result<std::unique_ptr<Catalog>> Open(const std::string& path);
  // The migration list, in order (STORAGE.md §6 describes each).
  static const std::vector<std::string>& Migrations();

  Catalog(const Catalog&) = delete;
  Catalog& operator=(const Catalog&) = delete;

  // nullopt when absent; Corruption when the stored row cannot be decoded.
  Result<std::optional<ShardRecord>> Get(const ShardKey& key);
  // Inserts or replaces all rows in one transaction.
  Status PutBatch(std::span<const ShardRecord> records);
  Status Put(const ShardRecord& record) { return PutBatch({&record, 1}); }
  // Removes the rows (absent keys are fine), in one transaction.
  Status RemoveBatch(std::span<const ShardKey> keys);
  Status Remove(const ShardKey& key) { return RemoveBatch({&key, 1}); }
  Status SetState(const ShardKey& key, ShardState state);

  // Up to `limit` entries after `after` (exclusive), in (stripe, index)
  // order; only the given stripe when `stripe` is set.
  Result<std::vector<CatalogEntry>> List(const std::optional<StripeId>& stripe,
                                         const std::optional<ShardKey>& after, uint32_t limit);
  // Every key with its size, for startup reconciliation.
  Result<std::vector<CatalogEntry>> AllEntries();

  struct Totals {
    uint64_t count = 0;
    uint64_t bytes = 0;
  };
  Result<Totals> GetTotals();

 private:
  explicit Catalog(std::unique_ptr<Db> db) : db_(std::move(db)) {}
  std::unique_ptr<Db> db_;
};

}  // namespace shardfs
