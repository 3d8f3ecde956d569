// SegmentFetcher: bytes of uploaded segments, from the read cache or else
// from the cluster (which then fills the cache), with concurrent fetches of
// one stripe merged and a small background prefetcher for sequential reads
// (METADATA.md §5).
//
// Thread-safety: all methods may be called concurrently. Lifetime: the
// ClusterClient and ReadCache must outlive this object; the destructor
// stops and joins the prefetch threads.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "fs/read_cache.h"
#include "lib/cluster_client.h"
#include "lib/locator.h"

namespace shardfs::fs {

class SegmentFetcher {
 public:
  SegmentFetcher(ClusterClient* cluster, ReadCache* cache, int prefetch_threads);
  ~SegmentFetcher();
  SegmentFetcher(const SegmentFetcher&) = delete;
  SegmentFetcher& operator=(const SegmentFetcher&) = delete;

  // Fills `out` with bytes [off, off + out.size()) of the segment's
  // plaintext; bytes past its end read as zeros.
  Status Read(const Locator& loc, uint64_t off, std::span<uint8_t> out);
  // The whole plaintext (for a read-modify-write).
  Result<std::vector<uint8_t>> ReadAll(const Locator& loc);
  // Queues a background fetch into the cache; dropped when the queue is full.
  void Prefetch(const Locator& loc);

 private:
  using Buffer = std::shared_ptr<const std::vector<uint8_t>>;
  // From the cluster, merged with any fetch of the same stripe in flight.
  Result<Buffer> Fetch(const Locator& loc);
  void PrefetchLoop();

  ClusterClient* const cluster_;
  ReadCache* const cache_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<StripeId, std::shared_future<Result<Buffer>>> in_flight_;  // guarded by mu_
  std::deque<Locator> prefetch_queue_;  // guarded by mu_
  bool stopping_ = false;              // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace shardfs::fs
