// ReadCache: decrypted plaintext of uploaded segments on local disk,
// `STATE/cache/<stripe hex>`, evicted least-recently-used first when the
// total passes the limit (METADATA.md §5). Never holds data that exists
// nowhere else: everything here is also stored on the cluster, so dropping
// the cache (shardctl cache drop, or rm -r) loses nothing.
//
// Descriptors are opened per call and closed, never kept.
//
// `shardctl cache drop` removes the files from outside while mounted, then
// replaces the marker `<dir>.dropped` (STATE/cache.dropped): the index is
// rebuilt from the directory when the marker's inode or ctime changed (checked at
// each insertion) or when an indexed file turns out to be gone, so the size
// accounting stays right (METADATA.md §9).
//
// Thread-safety: all methods may be called concurrently (mu_ guards the
// index; file I/O runs outside it, and a file evicted while being read is
// still readable through its open descriptor).
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>

#include "fs/disk_reserve.h"
#include "lib/ids.h"
#include "lib/status.h"

namespace shardfs::fs {

class ReadCache {
 public:
  // Creates `dir` if needed and indexes the files already there (oldest
  // mtime first in the LRU). Insertions leave `reserve_bytes` free on the
  // disk (the metadata's room, disk_reserve.h): they evict older entries
  // for it, or skip caching.
  static Result<std::unique_ptr<ReadCache>> Open(const std::string& dir, uint64_t limit_bytes,
                                                 uint64_t reserve_bytes);
  ReadCache(const ReadCache&) = delete;
  ReadCache& operator=(const ReadCache&) = delete;

  // Copies up to out.size() bytes from offset `off` of the cached segment;
  // returns the count (short at its end). NotFound if not cached.
  Result<size_t> Read(const StripeId& stripe, uint64_t off, std::span<uint8_t> out);
  // Stores a segment's plaintext (tmp file + rename).
  Status Insert(const StripeId& stripe, std::span<const uint8_t> data);
  // Moves an existing file (a staging file that was just uploaded) in.
  Status Adopt(const StripeId& stripe, const std::string& path);
  void Drop(const StripeId& stripe);
  // Evicts least-recently-used entries until `bytes` are freed or the cache
  // is empty; returns the bytes freed (DiskReserve's MakeRoom).
  uint64_t Shrink(uint64_t bytes);
  uint64_t used_bytes();

 private:
  ReadCache(std::string dir, uint64_t limit, uint64_t reserve)
      : dir_(std::move(dir)),
        marker_(dir_ + ".dropped"),
        limit_(limit),
        reserve_(reserve, [this](uint64_t n) { return Shrink(n); },
                 DiskReserve::Refusals::kQuiet) {}
  std::string PathOf(const StripeId& stripe) const { return dir_ + "/" + stripe.Hex(); }
  // REQUIRES: mu_ held.
  // Rebuilds the index from the directory (oldest mtime last in the LRU);
  // `remove_leftovers` deletes non-entry files (only at start: while
  // mounted, a ".tmp." file is an insertion in progress).
  void ScanLocked(bool remove_leftovers);
  // Rescans if `marker_` changed since the last look (cache drop).
  void RescanIfDroppedLocked();
  int64_t MarkerStampLocked() const;
  void AddLocked(const std::string& name, uint64_t size);
  void TouchLocked(const std::string& name);
  void EvictLocked();
  // Evicts the least recently used entry; false when empty.
  bool EvictOneLocked();

  struct Entry {
    uint64_t size;
    std::list<std::string>::iterator lru_pos;
  };

  const std::string dir_;
  const std::string marker_;  // written by shardctl cache drop
  const uint64_t limit_;
  // Free space left on the disk: insertions evict older entries for it,
  // or are skipped (quietly: the cache is optional).
  const DiskReserve reserve_;
  std::mutex mu_;
  std::list<std::string> lru_;  // guarded by mu_; front = most recent
  std::unordered_map<std::string, Entry> entries_;  // guarded by mu_
  uint64_t used_ = 0;  // guarded by mu_
  int64_t marker_seen_ = -1;  // guarded by mu_: marker ctime+inode at the last scan, 0 absent
};

}  // namespace shardfs::fs
