// WalCheckpointer: checkpoints a WAL database from its own thread and its
// own connection, so the writer's commits never wait for a checkpoint.
//
// SQLite's automatic checkpoint runs inside the commit that crosses 1000
// WAL frames: it copies the frames into the database and fsyncs both
// files, on the committing thread. For the mount that thread holds the
// metadata lock, so every FUSE request waited behind the disk (an rsync of
// 24k files did ~770 of them: 5 s of fdatasync under the lock). Here the
// writer's commits only wake this thread (a wal_hook), which runs PASSIVE
// checkpoints beside the writer. A PASSIVE pass cannot finish while new
// frames keep arriving, so once the WAL passes `restart_frames` a RESTART
// checkpoint follows the passive one: it holds the write lock only for the
// few frames the passive pass left, and the next commit starts the WAL over.
//
// Thread-safety: Start and the destructor run while no other thread uses
// the writer connection (its wal_hook is set and cleared there). The hook
// itself runs on whatever thread commits; stats() may be called from any
// thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "lib/sqlite_db.h"
#include "lib/status.h"

namespace shardfs {

class WalCheckpointer {
 public:
  struct Options {
    // A commit that leaves at least this many frames in the WAL wakes the
    // thread (SQLite's own automatic checkpoint threshold).
    int64_t wake_frames = 1000;
    // Past this many frames, a RESTART checkpoint follows the passive one.
    // It needs a moment between the writer's transactions, which a writer
    // that batches its changes seldom leaves; the WAL may grow past this.
    int64_t restart_frames = 8192;
    // Past this many frames over_limit() says the writer should run the
    // RESTART itself (it then waits for the copy; see over_limit).
    int64_t limit_frames = 65536;
  };
  struct Stats {
    uint64_t passes = 0;    // checkpoint passes run (passive and restart)
    uint64_t restarts = 0;  // RESTART checkpoints that succeeded
  };

  // Opens a second connection to `path` (the database `writer` has open)
  // and takes over its checkpoints: the writer's automatic checkpoint is
  // replaced by a hook that wakes this thread. `writer` must outlive this.
  static Result<std::unique_ptr<WalCheckpointer>> Start(Db* writer, const std::string& path,
                                                        const Options& opts);
  // Hands checkpoints back to the writer (automatic, 1000 frames), stops the
  // thread and closes its connection.
  ~WalCheckpointer();
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  Stats stats() const;
  // True once a commit left more than limit_frames in the WAL: the writer
  // should then call sqlite3_wal_checkpoint_v2(RESTART) between its
  // transactions, so the WAL cannot grow without bound under writes that
  // never pause. Cheap: any thread.
  bool over_limit() const {
    return wal_frames_.load(std::memory_order_relaxed) > opts_.limit_frames;
  }

 private:
  WalCheckpointer(Db* writer, sqlite3* conn, const Options& opts)
      : writer_(writer), conn_(conn), opts_(opts) {}
  static int OnCommit(void* self, sqlite3* db, const char* schema, int frames);
  void Run();

  // fixed after construction
  Db* const writer_;
  sqlite3* const conn_;  // used by thread_ only
  const Options opts_;
  std::thread thread_;
  // WAL frames after the last pass; read by the hook without mu_.
  std::atomic<int64_t> frames_at_pass_{0};
  // WAL frames after the writer's last commit.
  std::atomic<int64_t> wal_frames_{0};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool wake_ = false;  // guarded by mu_
  bool stop_ = false;  // guarded by mu_
  Stats stats_;        // guarded by mu_
};

}  // namespace shardfs
