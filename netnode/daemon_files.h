// The daemon's small files (STORAGE.md §1): the data dir lock, and files
// replaced atomically (endpoint, pid file).
//
// Thread-safety: a DataDirLock is owned by one thread.
#pragma once

#include <memory>
#include <string>

#include "lib/atomic_file.h"  // WriteFileAtomic, used with these files
#include "lib/status.h"

namespace shardfs {

// An exclusive flock(2) on DATA_DIR/lock, held while the object lives (and
// released by the kernel if the process dies, so a crash never leaves a
// stale lock). The file holds the owner's pid, for the operator.
class DataDirLock {
 public:
  // Busy naming the holder's pid when another process has the lock.
  static Result<std::unique_ptr<DataDirLock>> Acquire(const std::string& lock_path);
  ~DataDirLock();
  DataDirLock(const DataDirLock&) = delete;
  DataDirLock& operator=(const DataDirLock&) = delete;

 private:
  explicit DataDirLock(int fd) : fd_(fd) {}
  int fd_;
};

// mkdir -p with mode 0700 for the directories it creates.
Status MakeDirs(const std::string& path);

}  // namespace shardfs
