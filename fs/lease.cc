// The mount lease. See lease.h.
#include "fs/lease.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace shardfs::fs {

Result<std::unique_ptr<Lease>> Lease::Acquire(const std::string& path,
                                              const std::string& volume_id) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno(errno, "open lease " + path);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    char buf[32] = {};
    ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
    ::close(fd);
    if (err == EWOULDBLOCK) {
      std::string pid = n > 0 ? std::string(buf, strnlen(buf, n)) : "?";
      while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
      return Status::Busy("volume " + volume_id + " is already mounted by pid " + pid +
                          " (lease " + path + "); unmount it first");
    }
    return Status::FromErrno(err, "flock " + path);
  }
  std::unique_ptr<Lease> lease(new Lease(fd));
  lease->RecordPid();
  return lease;
}

void Lease::RecordPid() {
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) == 0) (void)!::pwrite(fd_, pid.data(), pid.size(), 0);
}

Lease::~Lease() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace shardfs::fs
