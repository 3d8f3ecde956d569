// Staging: local files holding segment versions newer than the cluster's
// (METADATA.md §3). Files are named by a 64-bit id, `STATE/staging/<16 hex>`.
//
// No descriptor is kept open between calls: each call opens, does its I/O
// and closes, so a mount with thousands of dirty files holds no descriptors.
//
// Thread-safety: all methods may be called concurrently; concurrent I/O on
// one id follows pread/pwrite semantics (callers serialize per segment).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "fs/disk_reserve.h"
#include "lib/status.h"

namespace shardfs::fs {

class Staging {
 public:
  // Creates `dir` if needed; ids continue above every file already there.
  // Writes leave `reserve` free on the disk (none when null).
  static Result<std::unique_ptr<Staging>> Open(const std::string& dir,
                                               std::shared_ptr<const DiskReserve> reserve);
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;

  // A fresh id, never used before in this directory. REQUIRES: callers also
  // pass the highest id the metadata references to ReserveAbove at start.
  uint64_t NewId() { return next_id_.fetch_add(1); }
  void ReserveAbove(uint64_t id);
  std::string PathOf(uint64_t id) const;

  // Creates an empty file for a new id (O_EXCL).
  Status Create(uint64_t id);
  // pwrite into an existing file (NotFound if it is gone; NoSpace when it
  // would eat into the disk reserve).
  Status Write(uint64_t id, uint64_t off, std::span<const uint8_t> data);
  // pread; returns the bytes read (short at end of file). NotFound if gone.
  Result<size_t> Read(uint64_t id, uint64_t off, std::span<uint8_t> out);
  Result<std::vector<uint8_t>> ReadAll(uint64_t id, uint64_t len);
  Status Truncate(uint64_t id, uint64_t len);
  Status Sync(uint64_t id);
  // Unlinks; a missing file is fine.
  void Remove(uint64_t id);
  // Every id present on disk.
  Result<std::vector<uint64_t>> List();

 private:
  Staging(std::string dir, std::shared_ptr<const DiskReserve> reserve)
      : dir_(std::move(dir)), reserve_(std::move(reserve)) {}

  const std::string dir_;
  const std::shared_ptr<const DiskReserve> reserve_;
  std::atomic<uint64_t> next_id_{1};
};

}  // namespace shardfs::fs
