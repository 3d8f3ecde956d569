// The node's SQLite index. See catalog.h; schema in STORAGE.md §6.
#include "netnode/catalog.h"

#include <cstring>

#include "lib/coding.h"

namespace shardfs {
namespace {

std::span<const uint8_t> StripeBlob(const StripeId& s) { return {s.bytes.data(), s.bytes.size()}; }

// Columns in the order every SELECT of a full row uses.
constexpr char kRowColumns[] =
    "stripe, idx, size, crc32c, sha256, owner, locator, created_ms, last_verified_ms, state";

Result<ShardRecord> RowToRecord(const Stmt& st) {
  ShardRecord r;
  std::vector<uint8_t> stripe = st.ColumnBlob(0);
  std::vector<uint8_t> sha = st.ColumnBlob(4);
  std::vector<uint8_t> loc = st.ColumnBlob(6);
  if (stripe.size() != r.key.stripe.bytes.size() || sha.size() != r.sha256.size()) {
    return Status::Corruption("catalog row with a malformed stripe or sha256");
  }
  std::memcpy(r.key.stripe.bytes.data(), stripe.data(), stripe.size());
  std::memcpy(r.sha256.data(), sha.data(), sha.size());
  r.key.index = static_cast<ShardIndex>(st.ColumnInt(1));
  r.size = static_cast<uint64_t>(st.ColumnInt(2));
  r.crc32c = static_cast<uint32_t>(st.ColumnInt(3));
  r.owner = st.ColumnText(5);
  Reader rd(loc.data(), loc.size());
  if (!DecodeLocator(&rd, &r.locator)) {
    return Status::Corruption("catalog row " + r.key.ToString() + " has a malformed locator");
  }
  r.created_ms = static_cast<uint64_t>(st.ColumnInt(7));
  r.last_verified_ms = static_cast<uint64_t>(st.ColumnInt(8));
  r.state = st.ColumnInt(9) == 1 ? ShardState::kCorrupt : ShardState::kOk;
  return r;
}

}  // namespace

const std::vector<std::string>& Catalog::Migrations() {
  // STORAGE.md §6. Append only: a released migration never changes.
  static const std::vector<std::string> kMigrations = {
      // 1: the shard index.
      "CREATE TABLE shards ("
      "  stripe BLOB NOT NULL CHECK (length(stripe) = 16),"
      "  idx INTEGER NOT NULL CHECK (idx >= 0 AND idx < 64),"
      "  size INTEGER NOT NULL CHECK (size >= 0),"
      "  crc32c INTEGER NOT NULL,"
      "  sha256 BLOB NOT NULL CHECK (length(sha256) = 32),"
      "  owner TEXT NOT NULL,"
      "  locator BLOB NOT NULL,"
      "  locator_version INTEGER NOT NULL,"
      "  created_ms INTEGER NOT NULL,"
      "  last_verified_ms INTEGER NOT NULL,"
      "  state INTEGER NOT NULL DEFAULT 0 CHECK (state IN (0, 1)),"
      "  PRIMARY KEY (stripe, idx)"
      ") WITHOUT ROWID;",
      // 2: the scrubber visits the least recently verified shards first.
      "CREATE INDEX shards_by_verified ON shards (last_verified_ms);",
  };
  return kMigrations;
}

Result<std::unique_ptr<Catalog>> Catalog::Open(const std::string& path) {
  Db::Options opts;
  opts.application_id = kApplicationId;
  opts.migrations = Migrations();
  ASSIGN_OR_RETURN(auto db, Db::Open(path, opts));
  return std::unique_ptr<Catalog>(new Catalog(std::move(db)));
}

Result<std::optional<ShardRecord>> Catalog::Get(const ShardKey& key) {
  ASSIGN_OR_RETURN(Stmt * st, db_->Cached(std::string("SELECT ") + kRowColumns +
                                          " FROM shards WHERE stripe = ?1 AND idx = ?2"));
  st->BindBlob(1, StripeBlob(key.stripe)).Bind(2, int64_t{key.index});
  ASSIGN_OR_RETURN(bool row, st->Step());
  if (!row) return std::optional<ShardRecord>();
  ASSIGN_OR_RETURN(ShardRecord r, RowToRecord(*st));
  st->Reset();
  return std::optional<ShardRecord>(std::move(r));
}

Status Catalog::PutBatch(std::span<const ShardRecord> records) {
  if (records.empty()) return Status::OK();
  ASSIGN_OR_RETURN(auto txn, Txn::Begin(db_.get()));
  for (const ShardRecord& r : records) {
    ASSIGN_OR_RETURN(Stmt * st,
                     db_->Cached("INSERT OR REPLACE INTO shards (stripe, idx, size, crc32c, "
                                 "sha256, owner, locator, locator_version, created_ms, "
                                 "last_verified_ms, state) VALUES "
                                 "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"));
    std::string loc;
    EncodeLocator(r.locator, &loc);
    st->BindBlob(1, StripeBlob(r.key.stripe))
        .Bind(2, int64_t{r.key.index})
        .Bind(3, static_cast<int64_t>(r.size))
        .Bind(4, int64_t{r.crc32c})
        .BindBlob(5, r.sha256)
        .Bind(6, r.owner)
        .BindBlob(7, {reinterpret_cast<const uint8_t*>(loc.data()), loc.size()})
        .Bind(8, int64_t{r.locator.version})
        .Bind(9, static_cast<int64_t>(r.created_ms))
        .Bind(10, static_cast<int64_t>(r.last_verified_ms))
        .Bind(11, int64_t{static_cast<uint8_t>(r.state)});
    RETURN_IF_ERROR(st->Run().With("indexing shard " + r.key.ToString()));
  }
  return txn->Commit();
}

Status Catalog::RemoveBatch(std::span<const ShardKey> keys) {
  if (keys.empty()) return Status::OK();
  ASSIGN_OR_RETURN(auto txn, Txn::Begin(db_.get()));
  for (const ShardKey& k : keys) {
    ASSIGN_OR_RETURN(Stmt * st, db_->Cached("DELETE FROM shards WHERE stripe = ?1 AND idx = ?2"));
    st->BindBlob(1, StripeBlob(k.stripe)).Bind(2, int64_t{k.index});
    RETURN_IF_ERROR(st->Run().With("unindexing shard " + k.ToString()));
  }
  return txn->Commit();
}

Status Catalog::SetState(const ShardKey& key, ShardState state) {
  ASSIGN_OR_RETURN(Stmt * st,
                   db_->Cached("UPDATE shards SET state = ?3 WHERE stripe = ?1 AND idx = ?2"));
  st->BindBlob(1, StripeBlob(key.stripe))
      .Bind(2, int64_t{key.index})
      .Bind(3, int64_t{static_cast<uint8_t>(state)});
  return st->Run().With("marking shard " + key.ToString());
}

Result<std::vector<CatalogEntry>> Catalog::List(const std::optional<StripeId>& stripe,
                                                const std::optional<ShardKey>& after,
                                                uint32_t limit) {
  // The primary key orders (stripe, idx) as memcmp on the blob, the same
  // order as StripeId's operator<=> over its bytes.
  Stmt* st = nullptr;
  if (stripe) {
    ASSIGN_OR_RETURN(st, db_->Cached("SELECT stripe, idx, size, locator_version, locator, state "
                                     "FROM shards WHERE stripe = ?1 AND (?2 IS NULL OR (stripe, idx) > "
                                     "(?2, ?3)) ORDER BY stripe, idx LIMIT ?4"));
    st->BindBlob(1, StripeBlob(*stripe));
  } else {
    ASSIGN_OR_RETURN(st, db_->Cached("SELECT stripe, idx, size, locator_version, locator, state "
                                     "FROM shards WHERE (?2 IS NULL OR (stripe, idx) > (?2, ?3)) "
                                     "ORDER BY stripe, idx LIMIT ?4"));
  }
  if (after) {
    st->BindBlob(2, StripeBlob(after->stripe)).Bind(3, int64_t{after->index});
  } else {
    st->BindNull(2).Bind(3, int64_t{0});
  }
  st->Bind(4, int64_t{limit});
  std::vector<CatalogEntry> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    CatalogEntry e;
    std::vector<uint8_t> s = st->ColumnBlob(0);
    if (s.size() != e.key.stripe.bytes.size()) return Status::Corruption("catalog: bad stripe");
    std::memcpy(e.key.stripe.bytes.data(), s.data(), s.size());
    e.key.index = static_cast<ShardIndex>(st->ColumnInt(1));
    e.size = static_cast<uint64_t>(st->ColumnInt(2));
    e.locator_version = static_cast<uint32_t>(st->ColumnInt(3));
    std::vector<uint8_t> blob = st->ColumnBlob(4);
    Reader rd(blob.data(), blob.size());
    Locator loc;
    if (DecodeLocator(&rd, &loc)) {
      e.k = loc.k;
      e.m = loc.m;
      if (e.key.index < loc.shards.size()) e.named_node = loc.shards[e.key.index].node;
    }
    e.state = st->ColumnInt(5) == 1 ? ShardState::kCorrupt : ShardState::kOk;
    out.push_back(e);
  }
  return out;
}

Result<std::vector<CatalogEntry>> Catalog::AllEntries() {
  std::vector<CatalogEntry> all;
  std::optional<ShardKey> after;
  while (true) {
    ASSIGN_OR_RETURN(auto page, List(std::nullopt, after, 10000));
    if (page.empty()) break;
    after = page.back().key;
    all.insert(all.end(), page.begin(), page.end());
  }
  return all;
}

Result<std::vector<ShardRecord>> Catalog::StripeRows(const StripeId& stripe) {
  ASSIGN_OR_RETURN(Stmt * st, db_->Cached(std::string("SELECT ") + kRowColumns +
                                          " FROM shards WHERE stripe = ?1 ORDER BY idx"));
  st->BindBlob(1, StripeBlob(stripe));
  std::vector<ShardRecord> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    auto r = RowToRecord(*st);
    if (!r.ok()) {
      st->Reset();
      return r.status();
    }
    out.push_back(std::move(*r));
  }
  return out;
}

Result<std::vector<StripeId>> Catalog::Stripes(const std::optional<StripeId>& after,
                                               uint32_t limit) {
  ASSIGN_OR_RETURN(Stmt * st, db_->Cached("SELECT DISTINCT stripe FROM shards WHERE "
                                          "(?1 IS NULL OR stripe > ?1) ORDER BY stripe LIMIT ?2"));
  if (after) {
    st->BindBlob(1, StripeBlob(*after));
  } else {
    st->BindNull(1);
  }
  st->Bind(2, int64_t{limit});
  std::vector<StripeId> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    std::vector<uint8_t> b = st->ColumnBlob(0);
    StripeId id;
    if (b.size() != id.bytes.size()) {
      st->Reset();
      return Status::Corruption("catalog: bad stripe");
    }
    std::memcpy(id.bytes.data(), b.data(), b.size());
    out.push_back(id);
  }
  return out;
}

Status Catalog::AdoptLocator(const Locator& loc, bool* changed) {
  *changed = false;
  // The read and the update share one write transaction, so two workers
  // adopting different locators at once cannot lose the newer one.
  ASSIGN_OR_RETURN(auto txn, Txn::Begin(db_.get()));
  ASSIGN_OR_RETURN(std::vector<ShardRecord> rows, StripeRows(loc.stripe));
  std::string enc;
  EncodeLocator(loc, &enc);
  for (const ShardRecord& r : rows) {
    if (!LocatorNewer(loc, r.locator)) continue;
    ASSIGN_OR_RETURN(Stmt * st, db_->Cached("UPDATE shards SET locator = ?3, locator_version = ?4 "
                                            "WHERE stripe = ?1 AND idx = ?2"));
    st->BindBlob(1, StripeBlob(r.key.stripe))
        .Bind(2, int64_t{r.key.index})
        .BindBlob(3, {reinterpret_cast<const uint8_t*>(enc.data()), enc.size()})
        .Bind(4, int64_t{loc.version});
    RETURN_IF_ERROR(st->Run().With("updating the locator of " + r.key.ToString()));
    *changed = true;
  }
  return txn->Commit();
}

Status Catalog::SetVerified(const ShardKey& key, uint64_t ms) {
  ASSIGN_OR_RETURN(Stmt * st, db_->Cached("UPDATE shards SET last_verified_ms = ?3 "
                                          "WHERE stripe = ?1 AND idx = ?2"));
  st->BindBlob(1, StripeBlob(key.stripe))
      .Bind(2, int64_t{key.index})
      .Bind(3, static_cast<int64_t>(ms));
  return st->Run().With("marking shard " + key.ToString() + " verified");
}

Result<std::vector<ShardKey>> Catalog::LeastRecentlyVerified(uint64_t before_ms, uint32_t limit) {
  ASSIGN_OR_RETURN(Stmt * st,
                   db_->Cached("SELECT stripe, idx FROM shards WHERE state = 0 AND "
                               "last_verified_ms < ?1 ORDER BY last_verified_ms LIMIT ?2"));
  st->Bind(1, static_cast<int64_t>(before_ms)).Bind(2, int64_t{limit});
  std::vector<ShardKey> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    std::vector<uint8_t> b = st->ColumnBlob(0);
    ShardKey k;
    if (b.size() != k.stripe.bytes.size()) {
      st->Reset();
      return Status::Corruption("catalog: bad stripe");
    }
    std::memcpy(k.stripe.bytes.data(), b.data(), b.size());
    k.index = static_cast<ShardIndex>(st->ColumnInt(1));
    out.push_back(k);
  }
  return out;
}

Result<Catalog::Totals> Catalog::GetTotals() {
  ASSIGN_OR_RETURN(Stmt * st, db_->Cached("SELECT count(*), coalesce(sum(size), 0) FROM shards"));
  ASSIGN_OR_RETURN(bool row, st->Step());
  Totals t;
  if (row) {
    t.count = static_cast<uint64_t>(st->ColumnInt(0));
    t.bytes = static_cast<uint64_t>(st->ColumnInt(1));
  }
  st->Reset();
  return t;
}

}  // namespace shardfs
