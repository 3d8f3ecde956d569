// Lease: one mount per volume. An exclusive flock on STATE/lease, held for
// the life of the mount (METADATA.md §1). The kernel drops it when the
// process dies, so a crash never leaves a stale lease.
//
// Thread-safety: not shared; the mount's main thread owns it.
#pragma once

#include <memory>
#include <string>

#include "lib/status.h"

namespace shardfs::fs {

class Lease {
 public:
  // Busy("volume ... is already mounted by pid N ...") if another process
  // holds it.
  static Result<std::unique_ptr<Lease>> Acquire(const std::string& path,
                                                const std::string& volume_id);
  ~Lease();
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  // After fork: the child records its own pid (the lock is shared with the
  // parent's descriptor until the parent exits).
  void RecordPid();

 private:
  explicit Lease(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace shardfs::fs
