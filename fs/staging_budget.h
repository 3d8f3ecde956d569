// StagingBudget: backpressure between writers and the uploader
// (METADATA.md §4, "Backpressure"). Staging absorbs writes at local-disk
// speed and the uploader drains it at network speed; without a bound a
// 4 GiB write would park 4 GiB in STATE/staging before the first byte left.
//
// The budget is a ledger of the staging files this mount created and has
// not yet seen uploaded or removed, each with its size (a segment's full
// size while it is being written, its length once committed). A writer
// calls WaitForRoom() before writing while the ledger is over the limit; it
// blocks until uploads bring the ledger back under the limit.
//
// Writers are never held forever: when the uploader reports failures (nodes
// down) or nothing has drained for kStallTimeout, the budget stops holding
// writers back until the next upload succeeds, so data queues in staging as
// the design promises (bounded by the local disk only). Entries whose file
// vanished behind our back (an unlinked file purged by Volume) are dropped by
// a prune that runs at most every few seconds while someone waits.
//
// Thread-safety: all methods may be called concurrently. mu_ is a leaf
// lock (nothing is called with it held except the `exists` probe, outside
// it), so callers may hold FileData::mu_ for Set/Remove. WaitForRoom must be
// called with no lock held: it waits for the uploader, which takes
// FileData::mu_ of the file it completes.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <unordered_map>

namespace shardfs::fs {

class StagingBudget {
 public:
  // `limit_bytes` 0 disables waiting (the ledger is still kept).
  // `exists(id)` tells whether a staging file is still on disk (prune).
  StagingBudget(uint64_t limit_bytes, std::function<bool(uint64_t)> exists);
  StagingBudget(const StagingBudget&) = delete;
  StagingBudget& operator=(const StagingBudget&) = delete;

  // A staging file was created (`bytes`: its worst-case size) or its size is
  // now known (commit). Set on a known id replaces its size.
  void Set(uint64_t staging_id, uint64_t bytes);
  // The staging file was uploaded (moved to the cache) or removed.
  void Remove(uint64_t staging_id);
  // The uploader saw an upload fail: stop holding writers back until the
  // next Remove.
  void Stalled();

  // True when a writer should commit what it has and WaitForRoom.
  bool OverLimit() const { return over_.load(std::memory_order_relaxed); }
  // Blocks while the ledger is over the limit and uploads drain it.
  void WaitForRoom();
  // Wakes and releases every waiter for good (unmount).
  void Stop();

  uint64_t used_bytes();
  uint64_t limit_bytes() const { return limit_; }

 private:
  static constexpr auto kStallTimeout = std::chrono::seconds(10);
  static constexpr auto kPruneInterval = std::chrono::seconds(2);

  // REQUIRES: lock held. Recomputes over_.
  void UpdateLocked();
  // Drops entries whose file is gone; unlocks around the probes.
  void PruneLocked(std::unique_lock<std::mutex>& lock);

  const uint64_t limit_;
  const std::function<bool(uint64_t)> exists_;
  std::atomic<bool> over_{false};  // used_ > limit_ && draining_ && !stopping_

  std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<uint64_t, uint64_t> files_;  // guarded by mu_: id -> bytes
  uint64_t used_ = 0;                             // guarded by mu_
  bool draining_ = true;                          // guarded by mu_: uploads make progress
  bool stopping_ = false;                         // guarded by mu_
  std::chrono::steady_clock::time_point last_drain_{};  // guarded by mu_
  std::chrono::steady_clock::time_point last_prune_{};  // guarded by mu_
};

}  // namespace shardfs::fs
