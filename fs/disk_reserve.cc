// The state disk's reserve (METADATA.md §3a). See disk_reserve.h.
#include "fs/disk_reserve.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <chrono>

#include "lib/log.h"

namespace shardfs::fs {

Result<uint64_t> DiskReserve::FreeBytes(int fd) {
  struct statvfs st;
  int rc;
  do {
    rc = ::fstatvfs(fd, &st);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return Status::FromErrno(errno, "fstatvfs");
  // f_bavail, not f_bfree: the blocks ext4 keeps for root are not ours to
  // count on when the mount runs as a user.
  return static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
}

Status DiskReserve::Claim(int fd, uint64_t need, const std::string& path) const {
  if (bytes_ == 0) return Status::OK();
  const uint64_t want = bytes_ + need;
  ASSIGN_OR_RETURN(uint64_t free, FreeBytes(fd));
  if (free >= want) return Status::OK();
  if (make_room_ && make_room_(want - free) > 0) {
    ASSIGN_OR_RETURN(free, FreeBytes(fd));
    if (free >= want) return Status::OK();
  }
  Status refused = Status::NoSpace("writing " + path + ": the state directory's disk has " +
                                   std::to_string(free >> 20) + " MiB free, and " +
                                   std::to_string(bytes_ >> 20) +
                                   " MiB of it stay free for the metadata (-o disk_reserve)");
  if (refusals_ == Refusals::kQuiet) return refused;
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now().time_since_epoch())
                          .count();
  int64_t last = last_warning_ns_.load();
  if ((last == 0 || now - last >= int64_t{60'000'000'000}) &&
      last_warning_ns_.compare_exchange_strong(last, now)) {
    LOG_WARN("writes fail with ENOSPC: {}", refused.message());
  }
  return refused;
}

}  // namespace shardfs::fs
