// Backpressure on staging (METADATA.md §4). See staging_budget.h.
#include "fs/staging_budget.h"

#include <vector>

#include "lib/log.h"

namespace shardfs::fs {

using Clock = std::chrono::steady_clock;

StagingBudget::StagingBudget(uint64_t limit_bytes, std::function<bool(uint64_t)> exists)
    : limit_(limit_bytes), exists_(std::move(exists)) {}

void StagingBudget::UpdateLocked() {
  over_.store(limit_ > 0 && used_ > limit_ && draining_ && !stopping_,
              std::memory_order_relaxed);
}

void StagingBudget::Set(uint64_t staging_id, uint64_t bytes) {
  std::lock_guard lock(mu_);
  uint64_t& b = files_[staging_id];
  used_ = used_ - b + bytes;
  b = bytes;
  UpdateLocked();
}

void StagingBudget::Remove(uint64_t staging_id) {
  {
    std::lock_guard lock(mu_);
    auto it = files_.find(staging_id);
    if (it == files_.end()) return;
    used_ -= it->second;
    files_.erase(it);
    last_drain_ = Clock::now();
    draining_ = true;
    UpdateLocked();
  }
  cv_.notify_all();
}

void StagingBudget::Stalled() {
  {
    std::lock_guard lock(mu_);
    if (!draining_) return;
    draining_ = false;
    UpdateLocked();
  }
  cv_.notify_all();
}

void StagingBudget::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    UpdateLocked();
  }
  cv_.notify_all();
}

uint64_t StagingBudget::used_bytes() {
  std::lock_guard lock(mu_);
  return used_;
}

void StagingBudget::PruneLocked(std::unique_lock<std::mutex>& lock) {
  last_prune_ = Clock::now();
  std::vector<uint64_t> ids;
  ids.reserve(files_.size());
  for (const auto& [id, bytes] : files_) ids.push_back(id);
  lock.unlock();
  std::vector<uint64_t> gone;
  for (uint64_t id : ids) {
    if (!exists_(id)) gone.push_back(id);
  }
  lock.lock();
  for (uint64_t id : gone) {
    auto it = files_.find(id);
    if (it == files_.end()) continue;
    used_ -= it->second;
    files_.erase(it);
  }
  if (!gone.empty()) last_drain_ = Clock::now();
  UpdateLocked();
}

void StagingBudget::WaitForRoom() {
  std::unique_lock lock(mu_);
  bool logged = false;
  // A drain before this wait began does not count toward the stall timeout.
  if (last_drain_ < Clock::now() - kStallTimeout) last_drain_ = Clock::now();
  while (over_.load(std::memory_order_relaxed)) {
    if (Clock::now() - last_prune_ > kPruneInterval) {
      PruneLocked(lock);
      continue;
    }
    if (!logged) {
      LOG_DEBUG("staging holds {} bytes (limit {}): writer waits for uploads", used_, limit_);
      logged = true;
    }
    const auto deadline = std::min(last_drain_ + kStallTimeout, last_prune_ + kPruneInterval);
    cv_.wait_until(lock, deadline);
    if (over_.load(std::memory_order_relaxed) && Clock::now() >= last_drain_ + kStallTimeout) {
      // Nothing drains (the dirty data may be in files nobody commits):
      // let writers through rather than stall them forever.
      LOG_WARN("staging holds {} bytes (limit {}) and nothing uploaded for {} s: "
               "no longer holding writers back",
               used_, limit_, std::chrono::duration_cast<std::chrono::seconds>(kStallTimeout).count());
      draining_ = false;
      UpdateLocked();
    }
  }
}

}  // namespace shardfs::fs
