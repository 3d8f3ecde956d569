// DiskReserve: free space the drive leaves on its state directory's disk
// for SQLite (METADATA.md §3a).
//
// Why: the metadata store commits changes that were already answered
// (batches, §7a). A commit that finds the disk full loses them, and the
// store then refuses every change until the next mount: the user could not
// even delete the file that filled the disk. Staging and the read cache are
// what fill it, so they stop short of the reserve: a big write gets ENOSPC,
// and the metadata (a few hundred bytes per change) keeps room to delete
// files, record uploads and go on.
//
// Thread-safety: Claim may be called from any thread; `make_room` must
// allow that too.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "lib/status.h"

namespace shardfs::fs {

class DiskReserve {
 public:
  // Frees up to `bytes` of data that is also stored elsewhere (the read
  // cache); returns how many bytes it freed.
  using MakeRoom = std::function<uint64_t(uint64_t bytes)>;

  // Whether a refusal is logged (a warning at most once a minute): yes for
  // writes the user sees fail, no for optional data such as the cache.
  enum class Refusals { kWarn, kQuiet };

  // `bytes` 0: no reserve, Claim always succeeds.
  DiskReserve(uint64_t bytes, MakeRoom make_room, Refusals refusals)
      : bytes_(bytes), make_room_(std::move(make_room)), refusals_(refusals) {}

  // OK when writing `need` more bytes on the file system of `fd` leaves the
  // reserve free, after making room if it must; NoSpace (ENOSPC) naming
  // `path` otherwise.
  Status Claim(int fd, uint64_t need, const std::string& path) const;

  // Bytes unprivileged writers may still use on the file system of `fd`.
  static Result<uint64_t> FreeBytes(int fd);

 private:
  const uint64_t bytes_;
  const MakeRoom make_room_;
  const Refusals refusals_;
  // The refusals are logged at most once a minute (steady clock, ns).
  mutable std::atomic<int64_t> last_warning_ns_{0};
};

}  // namespace shardfs::fs
