// MetaStore: batching of changes into one SQLite transaction (meta_store.h,
// METADATA.md §7a).
//
// Why: every SQLite write transaction costs the FUSE path its locks (about
// eight fcntl calls), a WAL frame per page it touched and, now and then, a
// checkpoint. An rsync'd file used to be seven transactions (create, chmod,
// data, utimens, chmod, rename, the kernel's ctime flush), most rewriting
// the same few pages. In one batch they share the locks and the pages, and
// the file's data commit (a commit point) writes them all at once.
#include <utility>

#include "fs/meta_store.h"
#include "lib/log.h"

namespace shardfs::fs {

Result<std::unique_ptr<Txn>> MetaStore::BeginLocked() {
  if (!broken_.ok()) {
    return Status::IOError("metadata store stopped after a failed commit (" +
                           broken_.message() + "): unmount and mount again");
  }
  RETURN_IF_ERROR(CheckBatchLocked());
  if (!batch_open_) {
    RETURN_IF_ERROR(db_->Exec("BEGIN IMMEDIATE"));
    batch_open_ = true;
    batch_opened_ = std::chrono::steady_clock::now();
    // Only a committer with nothing to wait for needs waking: a busy one
    // looks for the next batch when its timer fires (a wake-up per batch
    // cost each small file two context switches).
    if (committer_idle_) batch_cv_.notify_one();
  }
  return Txn::Savepoint(db_.get());
}

Status MetaStore::CommitBatchLocked(bool durable) {
  if (!batch_open_) return durable ? SyncLocked() : Status::OK();
  RETURN_IF_ERROR(CheckBatchLocked());
  Status st = db_->Exec("COMMIT");
  if (st.ok()) {
    batch_open_ = false;
    if (durable) RETURN_IF_ERROR(SyncLocked());
    if (checkpointer_ && checkpointer_->over_limit()) {
      // Writes have not paused for the background RESTART in a long while:
      // start the WAL over here, once per limit_frames (the background
      // passes have copied all but the last few frames already).
      int rc = sqlite3_wal_checkpoint_v2(db_->raw(), nullptr, SQLITE_CHECKPOINT_RESTART,
                                         nullptr, nullptr);
      if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
        LOG_WARN("WAL checkpoint: {}", sqlite3_errmsg(db_->raw()));
      }
    }
    return st;
  }
  (void)db_->Exec("ROLLBACK");
  return StopLocked(st);
}

Status MetaStore::CheckBatchLocked() {
  if (!batch_open_ || !sqlite3_get_autocommit(db_->raw())) return Status::OK();
  // An I/O error or a full disk made SQLite roll the whole batch back on its
  // own (inside an earlier change): answered changes are gone.
  return StopLocked(Status::IOError("the metadata transaction was rolled back by SQLite"));
}

// Changes already answered to the kernel cannot be taken back one by one:
// like a file system whose journal fails, the store stops taking changes.
Status MetaStore::StopLocked(Status why) {
  batch_open_ = false;
  broken_ = std::move(why);
  LOG_ERROR("metadata commit failed, the last changes are lost and the mount refuses "
            "new ones: {}",
            broken_.ToString());
  return broken_;
}

Status MetaStore::CommitPending() {
  std::lock_guard lock(mu_);
  return CommitBatchLocked(false);
}

void MetaStore::CommitterLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (!batch_open_) {
      committer_idle_ = true;
      batch_cv_.wait(lock);
      committer_idle_ = false;
      continue;
    }
    const auto due = batch_opened_ + kBatchWindow;
    if (std::chrono::steady_clock::now() < due) {
      batch_cv_.wait_until(lock, due);
      continue;
    }
    (void)CommitBatchLocked(false);  // logs its own failure
  }
}

MetaStore::~MetaStore() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  batch_cv_.notify_one();
  if (committer_.joinable()) committer_.join();
  std::lock_guard lock(mu_);
  (void)CommitBatchLocked(false);
}

}  // namespace shardfs::fs
