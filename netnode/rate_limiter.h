// RateLimiter: a token bucket over bytes, so repair and scrub stay within
// the bandwidth the operator allows (shardfs-node(8) --repair-bandwidth,
// --scrub-rate) instead of flooding a home uplink or disk.
//
// Acquire(n) blocks until n bytes may pass. The bucket holds at most one
// second of tokens, so an idle period does not turn into a burst larger
// than that. A request larger than the bucket waits until the bucket is
// full and then goes into debt, so big shards are not starved. Rate 0
// means unlimited.
//
// Thread-safety: thread-safe. Stop() wakes every waiter (Acquire returns
// false from then on).
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace shardfs {

class RateLimiter {
 public:
  explicit RateLimiter(uint64_t bytes_per_second) : rate_(bytes_per_second) {}
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // False when stopped (the caller should give up its work).
  bool Acquire(uint64_t bytes) {
    std::unique_lock<std::mutex> lock(mu_);
    if (rate_ == 0) return !stopped_;
    const double need = static_cast<double>(std::min<uint64_t>(bytes, rate_));
    while (!stopped_) {
      Refill();
      if (tokens_ >= need) {
        tokens_ -= static_cast<double>(bytes);  // may go negative: debt
        return true;
      }
      const double wait_s = (need - tokens_) / static_cast<double>(rate_);
      cv_.wait_for(lock, std::chrono::duration<double>(wait_s));
    }
    return false;
  }

  void Stop() {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
    cv_.notify_all();
  }

  uint64_t rate() const { return rate_; }

 private:
  using Clock = std::chrono::steady_clock;
  // REQUIRES: mu_ held.
  void Refill() {
    const auto now = Clock::now();
    if (last_ == Clock::time_point{}) {
      last_ = now;
      tokens_ = static_cast<double>(rate_);  // start with one second's worth
      return;
    }
    const double dt = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    tokens_ = std::min(static_cast<double>(rate_), tokens_ + dt * static_cast<double>(rate_));
  }

  const uint64_t rate_;  // bytes per second; 0: unlimited
  std::mutex mu_;
  std::condition_variable cv_;
  // Guarded by mu_.
  double tokens_ = 0;
  Clock::time_point last_{};
  bool stopped_ = false;
};

}  // namespace shardfs
