// MetaStore: the segment map and the upload and deletion queues
// (METADATA.md §2 "segments", §3, §4). See meta_store.h.
#include <algorithm>

#include "fs/meta_store.h"
#include "fs/meta_util.h"

namespace shardfs::fs {
namespace {

constexpr char kSelectSegment[] =
    "SELECT idx, len, locator, inline_data, staging_id, seq FROM segments ";

SegmentRow SegmentFromRow(const Stmt& s) {
  SegmentRow r;
  r.idx = static_cast<uint32_t>(s.ColumnInt(0));
  r.len = s.ColumnInt(1);
  if (!s.ColumnIsNull(2)) r.locator = s.ColumnBlob(2);
  if (!s.ColumnIsNull(3)) r.inline_data = s.ColumnBlob(3);
  if (!s.ColumnIsNull(4)) r.staging_id = s.ColumnInt(4);
  r.seq = s.ColumnInt(5);
  return r;
}

}  // namespace

Status MetaStore::QueueDeletionLocked(std::span<const uint8_t> locator) {
  if (locator.empty()) return Status::OK();
  return RunCached(db_.get(), "INSERT INTO delete_queue (locator, queued_ns) VALUES (?, ?)",
                   [&](Stmt& s) { s.BindBlob(1, locator).Bind(2, NowNs()); });
}

Result<std::optional<SegmentRow>> MetaStore::GetSegment(uint64_t ino, uint32_t idx) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Stmt * s, db_->Cached(std::string(kSelectSegment) + "WHERE ino = ? AND idx = ?"));
  s->Bind(1, static_cast<int64_t>(ino)).Bind(2, int64_t{idx});
  ASSIGN_OR_RETURN(bool row, s->Step());
  std::optional<SegmentRow> r;
  if (row) r = SegmentFromRow(*s);
  s->Reset();
  return r;
}

Result<std::vector<SegmentRow>> MetaStore::ListSegments(uint64_t ino) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Stmt * s, db_->Cached(std::string(kSelectSegment) + "WHERE ino = ? ORDER BY idx"));
  s->Bind(1, static_cast<int64_t>(ino));
  std::vector<SegmentRow> out;
  while (true) {
    auto row = s->Step();
    if (!row.ok()) {
      s->Reset();
      return row.status();
    }
    if (!*row) break;
    out.push_back(SegmentFromRow(*s));
  }
  s->Reset();
  return out;
}

Result<std::vector<uint64_t>> MetaStore::RemoveSegmentsLocked(uint64_t ino, uint32_t from,
                                                              uint32_t until) {
  std::vector<uint64_t> staging;
  std::vector<std::vector<uint8_t>> locators;
  {
    ASSIGN_OR_RETURN(Stmt * s, db_->Cached(
                                   "SELECT locator, staging_id FROM segments WHERE ino = ? AND "
                                   "idx >= ? AND idx < ?"));
    s->Bind(1, static_cast<int64_t>(ino)).Bind(2, int64_t{from}).Bind(3, int64_t{until});
    while (true) {
      auto row = s->Step();
      if (!row.ok()) {
        s->Reset();
        return row.status();
      }
      if (!*row) break;
      if (!s->ColumnIsNull(0)) locators.push_back(s->ColumnBlob(0));
      if (!s->ColumnIsNull(1)) staging.push_back(s->ColumnInt(1));
    }
    s->Reset();
  }
  for (const auto& loc : locators) RETURN_IF_ERROR(QueueDeletionLocked(loc));
  auto bind = [&](Stmt& s) {
    s.Bind(1, static_cast<int64_t>(ino)).Bind(2, int64_t{from}).Bind(3, int64_t{until});
  };
  RETURN_IF_ERROR(
      RunCached(db_.get(), "DELETE FROM segments WHERE ino = ? AND idx >= ? AND idx < ?", bind));
  RETURN_IF_ERROR(RunCached(
      db_.get(), "DELETE FROM upload_queue WHERE ino = ? AND idx >= ? AND idx < ?", bind));
  return staging;
}

Result<std::vector<uint64_t>> MetaStore::CommitFile(uint64_t ino, uint64_t size,
                                                    int64_t mtime_ns, int64_t ctime_ns,
                                                    const std::vector<SegmentUpdate>& updates,
                                                    std::optional<uint32_t> remove_from,
                                                    bool durable) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto txn, BeginLocked());
  std::vector<uint64_t> released;
  if (remove_from) {
    ASSIGN_OR_RETURN(auto ids, RemoveSegmentsLocked(ino, *remove_from));
    released.insert(released.end(), ids.begin(), ids.end());
  }
  const int64_t now = NowNs();
  for (const SegmentUpdate& u : updates) {
    if (remove_from && u.idx >= *remove_from) continue;
    std::optional<SegmentRow> old;
    {
      ASSIGN_OR_RETURN(Stmt * s, db_->Cached(std::string(kSelectSegment) +
                                             "WHERE ino = ? AND idx = ?"));
      s->Bind(1, static_cast<int64_t>(ino)).Bind(2, int64_t{u.idx});
      ASSIGN_OR_RETURN(bool row, s->Step());
      if (row) old = SegmentFromRow(*s);
      s->Reset();
    }
    auto key = [&](Stmt& s) { s.Bind(1, static_cast<int64_t>(ino)).Bind(2, int64_t{u.idx}); };
    switch (u.kind) {
      case SegmentUpdate::Kind::kStaged: {
        if (old && old->staging_id && *old->staging_id != u.staging_id) {
          released.push_back(*old->staging_id);
        }
        RETURN_IF_ERROR(RunCached(
            db_.get(),
            "INSERT INTO segments (ino, idx, len, staging_id, seq) VALUES (?, ?, ?, ?, 1) "
            "ON CONFLICT (ino, idx) DO UPDATE SET len = excluded.len, staging_id = "
            "excluded.staging_id, inline_data = NULL, seq = seq + 1",
            [&](Stmt& s) {
              key(s);
              s.Bind(3, static_cast<int64_t>(u.len)).Bind(4, static_cast<int64_t>(u.staging_id));
            }));
        RETURN_IF_ERROR(RunCached(
            db_.get(), "INSERT OR IGNORE INTO upload_queue (ino, idx, queued_ns) VALUES (?, ?, ?)",
            [&](Stmt& s) {
              key(s);
              s.Bind(3, now);
            }));
        break;
      }
      case SegmentUpdate::Kind::kInline: {
        if (old) {
          if (old->staging_id) released.push_back(*old->staging_id);
          RETURN_IF_ERROR(QueueDeletionLocked(old->locator));
        }
        RETURN_IF_ERROR(RunCached(
            db_.get(),
            "INSERT OR REPLACE INTO segments (ino, idx, len, locator, inline_data, staging_id, "
            "seq) VALUES (?, ?, ?, NULL, ?, NULL, ?)",
            [&](Stmt& s) {
              key(s);
              s.Bind(3, static_cast<int64_t>(u.len)).BindBlob(4, u.inline_data);
              s.Bind(5, old ? old->seq + 1 : 1);
            }));
        RETURN_IF_ERROR(
            RunCached(db_.get(), "DELETE FROM upload_queue WHERE ino = ? AND idx = ?", key));
        break;
      }
      case SegmentUpdate::Kind::kSetLen:
        RETURN_IF_ERROR(RunCached(
            db_.get(), "UPDATE segments SET len = ? WHERE ino = ? AND idx = ?", [&](Stmt& s) {
              s.Bind(1, static_cast<int64_t>(u.len)).Bind(2, static_cast<int64_t>(ino));
              s.Bind(3, int64_t{u.idx});
            }));
        break;
      case SegmentUpdate::Kind::kRemove: {
        ASSIGN_OR_RETURN(auto ids, RemoveSegmentsLocked(ino, u.idx, u.idx + 1));
        released.insert(released.end(), ids.begin(), ids.end());
        break;
      }
    }
  }
  RETURN_IF_ERROR(RunCached(
      db_.get(), "UPDATE inodes SET size = ?, mtime_ns = ?, ctime_ns = ? WHERE ino = ?",
      [&](Stmt& s) {
        s.Bind(1, static_cast<int64_t>(size)).Bind(2, mtime_ns).Bind(3, ctime_ns);
        s.Bind(4, static_cast<int64_t>(ino));
      }));
  RETURN_IF_ERROR(txn->Commit());
  // A commit point: close and fsync are durable locally (with every change
  // batched before them), and the caller removes `released` on return.
  RETURN_IF_ERROR(CommitBatchLocked(durable));
  return released;
}

Result<std::vector<QueuedUpload>> MetaStore::NextUploads(
    size_t max, const std::vector<std::pair<uint64_t, uint32_t>>& busy) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Stmt * s, db_->Cached(
                                 "SELECT q.ino, q.idx, g.staging_id, g.seq, g.len FROM "
                                 "upload_queue q JOIN segments g ON g.ino = q.ino AND g.idx = "
                                 "q.idx WHERE g.staging_id IS NOT NULL ORDER BY q.queued_ns "
                                 "LIMIT ?"));
  s->Bind(1, static_cast<int64_t>(max + busy.size()));
  std::vector<QueuedUpload> out;
  while (out.size() < max) {
    auto row = s->Step();
    if (!row.ok()) {
      s->Reset();
      return row.status();
    }
    if (!*row) break;
    QueuedUpload q{static_cast<uint64_t>(s->ColumnInt(0)), static_cast<uint32_t>(s->ColumnInt(1)),
                   static_cast<uint64_t>(s->ColumnInt(2)), s->ColumnInt(3),
                   static_cast<uint64_t>(s->ColumnInt(4))};
    if (std::find(busy.begin(), busy.end(), std::make_pair(q.ino, q.idx)) != busy.end()) continue;
    out.push_back(q);
  }
  s->Reset();
  return out;
}

Result<uint64_t> MetaStore::CountPendingUploads() {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Stmt * s, db_->Cached("SELECT count(*) FROM upload_queue"));
  ASSIGN_OR_RETURN(bool row, s->Step());
  uint64_t n = row ? s->ColumnInt(0) : 0;
  s->Reset();
  return n;
}

Result<bool> MetaStore::FinishUpload(uint64_t ino, uint32_t idx, int64_t seq,
                                     std::span<const uint8_t> locator, bool still_dirty) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto txn, BeginLocked());
  std::optional<SegmentRow> row;
  {
    ASSIGN_OR_RETURN(Stmt * s, db_->Cached(std::string(kSelectSegment) +
                                           "WHERE ino = ? AND idx = ?"));
    s->Bind(1, static_cast<int64_t>(ino)).Bind(2, int64_t{idx});
    ASSIGN_OR_RETURN(bool found, s->Step());
    if (found) row = SegmentFromRow(*s);
    s->Reset();
  }
  auto key = [&](Stmt& s) { s.Bind(1, static_cast<int64_t>(ino)).Bind(2, int64_t{idx}); };
  if (!row || !row->staging_id || row->seq != seq || still_dirty) {
    // Superseded while in flight: what we stored is already garbage.
    RETURN_IF_ERROR(QueueDeletionLocked(locator));
    if (!row || !row->staging_id) {
      RETURN_IF_ERROR(RunCached(db_.get(), "DELETE FROM upload_queue WHERE ino = ? AND idx = ?", key));
    }
    RETURN_IF_ERROR(txn->Commit());
    return false;
  }
  RETURN_IF_ERROR(QueueDeletionLocked(row->locator));
  RETURN_IF_ERROR(RunCached(
      db_.get(), "UPDATE segments SET locator = ?, staging_id = NULL WHERE ino = ? AND idx = ?",
      [&](Stmt& s) {
        s.BindBlob(1, locator).Bind(2, static_cast<int64_t>(ino)).Bind(3, int64_t{idx});
      }));
  RETURN_IF_ERROR(RunCached(db_.get(), "DELETE FROM upload_queue WHERE ino = ? AND idx = ?", key));
  RETURN_IF_ERROR(txn->Commit());
  // The caller moves the staging file away: the row must not need it.
  RETURN_IF_ERROR(CommitBatchLocked(false));
  return true;
}

Result<std::vector<QueuedDeletion>> MetaStore::NextDeletions(size_t max, int64_t after_id) {
  std::lock_guard lock(mu_);
  // Shards are deleted only for changes that survive a crash.
  RETURN_IF_ERROR(CommitBatchLocked(false));
  ASSIGN_OR_RETURN(Stmt * s, db_->Cached(
                                 "SELECT id, locator, attempts FROM delete_queue WHERE id > ? "
                                 "ORDER BY id LIMIT ?"));
  s->Bind(1, after_id).Bind(2, static_cast<int64_t>(max));
  std::vector<QueuedDeletion> out;
  while (true) {
    auto row = s->Step();
    if (!row.ok()) {
      s->Reset();
      return row.status();
    }
    if (!*row) break;
    out.push_back({s->ColumnInt(0), s->ColumnBlob(1), static_cast<int>(s->ColumnInt(2))});
  }
  s->Reset();
  return out;
}

Status MetaStore::FinishDeletion(int64_t id) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto txn, BeginLocked());
  RETURN_IF_ERROR(RunCached(db_.get(), "DELETE FROM delete_queue WHERE id = ?",
                            [&](Stmt& s) { s.Bind(1, id); }));
  return txn->Commit();
}

Status MetaStore::FailDeletion(int64_t id) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto txn, BeginLocked());
  RETURN_IF_ERROR(RunCached(db_.get(),
                            "UPDATE delete_queue SET attempts = attempts + 1 WHERE id = ?",
                            [&](Stmt& s) { s.Bind(1, id); }));
  return txn->Commit();
}

Result<std::vector<uint64_t>> MetaStore::ReferencedStagingIds() {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Stmt * s, db_->Cached(
                                 "SELECT staging_id FROM segments WHERE staging_id IS NOT NULL"));
  std::vector<uint64_t> out;
  while (true) {
    auto row = s->Step();
    if (!row.ok()) {
      s->Reset();
      return row.status();
    }
    if (!*row) break;
    out.push_back(s->ColumnInt(0));
  }
  s->Reset();
  return out;
}

}  // namespace shardfs::fs
