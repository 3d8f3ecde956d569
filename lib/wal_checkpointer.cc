// WalCheckpointer: see wal_checkpointer.h.
#include "lib/wal_checkpointer.h"

#include <algorithm>

#include "lib/log.h"

namespace shardfs {

Result<std::unique_ptr<WalCheckpointer>> WalCheckpointer::Start(Db* writer,
                                                                const std::string& path,
                                                                const Options& opts) {
  sqlite3* conn = nullptr;
  // No CREATE: the writer made the file. NOMUTEX: one thread uses it.
  int rc = sqlite3_open_v2(path.c_str(), &conn, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    Status st = Status::IOError("checkpointer: opening " + path + ": " +
                                (conn ? sqlite3_errmsg(conn) : sqlite3_errstr(rc)));
    sqlite3_close_v2(conn);
    return st;
  }
  // A RESTART waits this long for the writer's transaction to end (each is
  // a few hundred microseconds); a PASSIVE pass never waits.
  sqlite3_busy_timeout(conn, 2000);
  // This connection only checkpoints: it must never start one on its own.
  sqlite3_wal_autocheckpoint(conn, 0);
  // A fresh connection learns that the file is in WAL mode only when it
  // first reads it; until then checkpoints do nothing and report -1.
  char* err = nullptr;
  rc = sqlite3_exec(conn, "SELECT count(*) FROM sqlite_master", nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    Status st = Status::IOError("checkpointer: reading " + path + ": " + (err ? err : "?"));
    sqlite3_free(err);
    sqlite3_close_v2(conn);
    return st;
  }
  std::unique_ptr<WalCheckpointer> c(new WalCheckpointer(writer, conn, opts));
  c->thread_ = std::thread([p = c.get()] { p->Run(); });
  // Replaces the writer's automatic checkpoint (sqlite3_wal_hook docs).
  sqlite3_wal_hook(writer->raw(), &WalCheckpointer::OnCommit, c.get());
  return c;
}

WalCheckpointer::~WalCheckpointer() {
  sqlite3_wal_autocheckpoint(writer_->raw(), 1000);
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  thread_.join();
  sqlite3_close_v2(conn_);
}

WalCheckpointer::Stats WalCheckpointer::stats() const {
  std::lock_guard<std::mutex> l(mu_);
  return stats_;
}

// Runs on the committing thread, inside its commit: only a wake-up here,
// once per `wake_frames` new frames (a pass copies only the new ones, so
// waking on every commit would run back-to-back passes of two fsyncs each).
int WalCheckpointer::OnCommit(void* self, sqlite3*, const char*, int frames) {
  auto* c = static_cast<WalCheckpointer*>(self);
  c->wal_frames_.store(frames, std::memory_order_relaxed);
  int64_t base = c->frames_at_pass_.load(std::memory_order_relaxed);
  if (frames < base) base = 0;  // the WAL started over since that pass
  if (frames - base >= c->opts_.wake_frames) {
    {
      std::lock_guard<std::mutex> l(c->mu_);
      c->wake_ = true;
    }
    c->cv_.notify_one();
  }
  return SQLITE_OK;
}

void WalCheckpointer::Run() {
  std::unique_lock<std::mutex> l(mu_);
  while (true) {
    cv_.wait(l, [&] { return wake_ || stop_; });
    if (stop_) return;
    wake_ = false;
    l.unlock();
    int log_frames = 0;
    int copied = 0;
    int rc = sqlite3_wal_checkpoint_v2(conn_, nullptr, SQLITE_CHECKPOINT_PASSIVE, &log_frames,
                                       &copied);
    bool restarted = false;
    if (rc == SQLITE_OK && log_frames >= opts_.restart_frames) {
      rc = sqlite3_wal_checkpoint_v2(conn_, nullptr, SQLITE_CHECKPOINT_RESTART, &log_frames,
                                     &copied);
      restarted = rc == SQLITE_OK;
    }
    // BUSY: another checkpoint or a long writer; the next commit wakes us.
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
      LOG_WARN("WAL checkpoint failed: {} (the next commit retries)", sqlite3_errmsg(conn_));
    }
    frames_at_pass_.store(std::max(log_frames, 0), std::memory_order_relaxed);
    l.lock();
    ++stats_.passes;
    if (restarted) ++stats_.restarts;
  }
}

}  // namespace shardfs
