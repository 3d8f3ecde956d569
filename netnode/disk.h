// The shard store's only way to the disk (STYLE.md §10): an interface that a
// test can fake or make fail (ENOSPC, EIO), after leveldb's Env. PosixDisk()
// is the real one.
//
// Every error is a Status built at the syscall, with the path as context and
// the errno kept (ENOSPC -> NoSpace, ENOENT -> NotFound; Status::FromErrno).
// EINTR is retried where it happens.
//
// Thread-safety: Disk implementations are thread-safe. A WritableFile or
// RandomAccessFile belongs to one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "lib/status.h"

namespace shardfs {

class WritableFile {
 public:
  virtual ~WritableFile() = default;  // closes the fd; never syncs or removes
  virtual Status Append(std::span<const uint8_t> data) = 0;
  virtual Status Sync() = 0;  // fdatasync(2)
};

class RandomAccessFile {
 public:
  virtual ~RandomAccessFile() = default;
  // Reads exactly `n` bytes at `offset`; Corruption if the file ends first.
  virtual Status ReadExact(uint64_t offset, size_t n, uint8_t* buf) = 0;
  virtual Result<uint64_t> Size() = 0;
};

struct DiskSpace {
  uint64_t total_bytes = 0;
  uint64_t available_bytes = 0;  // to an unprivileged user (f_bavail)
};

class Disk {
 public:
  virtual ~Disk() = default;
  // Creates a new file (O_EXCL, mode 0600): Exists if it is already there.
  virtual Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) = 0;
  virtual Result<std::unique_ptr<RandomAccessFile>> OpenForRead(const std::string& path) = 0;
  // rename(2): atomically replaces `to`.
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  // NotFound if absent.
  virtual Status Remove(const std::string& path) = 0;
  // mkdir, mode 0700; OK when the directory already exists.
  virtual Status CreateDir(const std::string& path) = 0;
  // fsync(2) on a directory: makes creates, renames and unlinks in it durable.
  virtual Status SyncDir(const std::string& path) = 0;
  // syncfs(2): every dirty page and inode of the file system holding `path`.
  // One call makes a whole batch of files durable; see STORAGE.md §4.
  virtual Status SyncFileSystem(const std::string& path) = 0;
  // Entry names without "." and "..", in no particular order.
  virtual Result<std::vector<std::string>> ListDir(const std::string& path) = 0;
  virtual Result<DiskSpace> Space(const std::string& path) = 0;
};

// The real file system. Never null; lives for the whole process.
Disk* PosixDisk();

}  // namespace shardfs
