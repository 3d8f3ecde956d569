// Scrubber: re-reads every shard at a bounded rate and checks its CRC32C,
// so bit rot is found before a read (or a repair) needs the shard.
//
// It takes the shards least recently verified first (catalog migration 2)
// and reads each through ShardStore::Get, which checks the header and the
// whole payload and marks a shard that fails corrupt (STORAGE.md §6); a
// shard whose file vanished is marked corrupt too. A corrupt shard is then
// rebuilt in place by the repairer (repairer.h, "healing"); a good one gets
// last_verified_ms = now. A shard is verified again once `interval` has
// passed since its last check. Reads pass a token bucket of `rate` bytes/s.
//
// Thread-safety: Start/Stop from one thread; the rest runs on its own
// thread with its own catalog connection.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "lib/status.h"
#include "netnode/catalog.h"
#include "netnode/rate_limiter.h"
#include "netnode/shard_store.h"

namespace shardfs {

struct ScrubOptions {
  uint64_t rate = 4 << 20;  // bytes/s read; 0 turns the scrubber off
  std::chrono::milliseconds interval{std::chrono::hours(24 * 7)};  // re-verify after
  std::function<void()> on_checked;                                // one shard read (good or bad)
  std::function<void()> on_corrupt;                                // one shard found corrupt
};

class Scrubber {
 public:
  // REQUIRES: `store` outlives the scrubber.
  Scrubber(ShardStore* store, ScrubOptions options);
  ~Scrubber();  // Stop()
  Scrubber(const Scrubber&) = delete;
  Scrubber& operator=(const Scrubber&) = delete;

  Status Start();  // no-op when rate is 0
  void Stop();

 private:
  void Loop();

  ShardStore* const store_;
  const ScrubOptions options_;
  RateLimiter limiter_;
  std::unique_ptr<Catalog> catalog_;  // scrubber thread only

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace shardfs
