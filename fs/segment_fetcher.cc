// Cache-or-cluster segment reads and prefetch (METADATA.md §5).
// See segment_fetcher.h.
#include "fs/segment_fetcher.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "lib/log.h"

namespace shardfs::fs {
namespace {
constexpr size_t kMaxPrefetchQueue = 8;
}  // namespace

SegmentFetcher::SegmentFetcher(ClusterClient* cluster, ReadCache* cache, int prefetch_threads)
    : cluster_(cluster), cache_(cache) {
  for (int i = 0; i < prefetch_threads; ++i) threads_.emplace_back([this] { PrefetchLoop(); });
}

SegmentFetcher::~SegmentFetcher() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

Result<SegmentFetcher::Buffer> SegmentFetcher::Fetch(const Locator& loc) {
  std::promise<Result<Buffer>> promise;
  {
    std::unique_lock lock(mu_);
    auto it = in_flight_.find(loc.stripe);
    if (it != in_flight_.end()) {
      auto fut = it->second;
      lock.unlock();
      return fut.get();
    }
    in_flight_.emplace(loc.stripe, promise.get_future().share());
  }
  Result<Buffer> result = Status::Unavailable("no cluster");
  if (cluster_) {
    auto data = cluster_->ReadSegment(loc);
    if (data.ok()) {
      auto buf = std::make_shared<const std::vector<uint8_t>>(std::move(data).value());
      Status st = cache_->Insert(loc.stripe, *buf);
      if (!st.ok()) LOG_WARN("read cache: {}", st.ToString());
      result = Buffer(buf);
    } else {
      result = data.status().With("reading segment " + loc.stripe.Hex());
    }
  }
  promise.set_value(result);
  std::lock_guard lock(mu_);
  in_flight_.erase(loc.stripe);
  return result;
}

Status SegmentFetcher::Read(const Locator& loc, uint64_t off, std::span<uint8_t> out) {
  auto cached = cache_->Read(loc.stripe, off, out);
  if (cached.ok()) {
    std::fill(out.begin() + *cached, out.end(), 0);
    return Status::OK();
  }
  if (!cached.status().IsNotFound()) LOG_WARN("read cache: {}", cached.status().ToString());
  ASSIGN_OR_RETURN(Buffer buf, Fetch(loc));
  size_t n = 0;
  if (off < buf->size()) {
    n = std::min<size_t>(out.size(), buf->size() - off);
    std::memcpy(out.data(), buf->data() + off, n);
  }
  std::fill(out.begin() + n, out.end(), 0);
  return Status::OK();
}

Result<std::vector<uint8_t>> SegmentFetcher::ReadAll(const Locator& loc) {
  ASSIGN_OR_RETURN(Buffer buf, Fetch(loc));
  return *buf;
}

void SegmentFetcher::Prefetch(const Locator& loc) {
  if (threads_.empty()) return;
  std::array<uint8_t, 1> probe;
  if (cache_->Read(loc.stripe, 0, probe).ok()) return;
  {
    std::lock_guard lock(mu_);
    if (in_flight_.count(loc.stripe) || prefetch_queue_.size() >= kMaxPrefetchQueue) return;
    for (const Locator& q : prefetch_queue_) {
      if (q.stripe == loc.stripe) return;
    }
    prefetch_queue_.push_back(loc);
  }
  cv_.notify_one();
}

void SegmentFetcher::PrefetchLoop() {
  while (true) {
    Locator loc;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !prefetch_queue_.empty(); });
      if (stopping_) return;
      loc = std::move(prefetch_queue_.front());
      prefetch_queue_.pop_front();
    }
    std::array<uint8_t, 1> probe;
    if (cache_->Read(loc.stripe, 0, probe).ok()) continue;
    auto r = Fetch(loc);
    if (!r.ok()) LOG_DEBUG("prefetch {}: {}", loc.stripe.Hex(), r.status().ToString());
  }
}

}  // namespace shardfs::fs
