// Lock, atomic replace, mkdir -p. See daemon_files.h.
#include "netnode/daemon_files.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>

namespace shardfs {
namespace {

}  // namespace

Result<std::unique_ptr<DataDirLock>> DataDirLock::Acquire(const std::string& lock_path) {
  int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno(errno, "opening " + lock_path);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    std::string holder;
    char buf[32] = {};
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n > 0) holder = std::string(buf, static_cast<size_t>(n));
    while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
    close(fd);
    if (err == EWOULDBLOCK) {
      return Status::Busy("data dir is in use by another shardfs-node" +
                          (holder.empty() ? std::string() : " (pid " + holder + ")") + ": " +
                          lock_path + " is locked");
    }
    return Status::FromErrno(err, "locking " + lock_path);
  }
  std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // The pid is only informative; the lock is what matters.
  }
  return std::unique_ptr<DataDirLock>(new DataDirLock(fd));
}

DataDirLock::~DataDirLock() {
  // Closing the fd drops the flock. The file stays: removing it would let
  // a second process lock a new inode while a third still holds the old.
  close(fd_);
}

Status MakeDirs(const std::string& path) {
  if (path.empty()) return Status::InvalidArgument("empty directory name");
  for (size_t pos = 1; pos <= path.size(); ++pos) {
    if (pos != path.size() && path[pos] != '/') continue;
    std::string part = path.substr(0, pos);
    if (mkdir(part.c_str(), 0700) != 0 && errno != EEXIST) {
      return Status::FromErrno(errno, "creating directory " + part);
    }
  }
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return Status::FromErrno(errno, "stat " + path);
  if (!S_ISDIR(st.st_mode)) return Status::InvalidArgument(path + " is not a directory");
  return Status::OK();
}

}  // namespace shardfs
