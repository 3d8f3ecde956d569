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
  uint8_t k = 0;  // of the row's locator
  uint8_t m = 0;
  NodeId named_node = 0;  // the node the row's locator names for this index
  ShardState state = ShardState::kOk;
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

  // Every row of one stripe (a node may hold several of its shards), in
  // index order. Empty when it holds none.
  Result<std::vector<ShardRecord>> StripeRows(const StripeId& stripe);
  // Up to `limit` distinct stripes after `after` (exclusive), in order.
  Result<std::vector<StripeId>> Stripes(const std::optional<StripeId>& after, uint32_t limit);
  // Stores `loc` in every row of its stripe whose locator it supersedes
  // (LocatorNewer), in one transaction. *changed says whether any row
  // changed. OK when the node holds nothing of the stripe.
  Status AdoptLocator(const Locator& loc, bool* changed);
  // Scrub: the payload was re-read and matched its CRC at `ms`.
  Status SetVerified(const ShardKey& key, uint64_t ms);
  // Up to `limit` shards in state ok last verified before `before_ms`,
  // oldest first (migration 2's index).
  Result<std::vector<ShardKey>> LeastRecentlyVerified(uint64_t before_ms, uint32_t limit);

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
