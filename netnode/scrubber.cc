// The scrub loop. See scrubber.h.
#include "netnode/scrubber.h"

#include "lib/log.h"

namespace shardfs {

Scrubber::Scrubber(ShardStore* store, ScrubOptions options)
    : store_(store), options_(std::move(options)), limiter_(options_.rate) {}

Scrubber::~Scrubber() { Stop(); }

Status Scrubber::Start() {
  if (options_.rate == 0) return Status::OK();
  ASSIGN_OR_RETURN(catalog_, store_->OpenCatalog());
  thread_ = std::thread([this] { Loop(); });
  return Status::OK();
}

void Scrubber::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  limiter_.Stop();
  if (thread_.joinable()) thread_.join();
}

void Scrubber::Loop() {
  const auto interval_ms = static_cast<uint64_t>(options_.interval.count());
  while (true) {
    const uint64_t now = store_->NowMs();
    auto keys = catalog_->LeastRecentlyVerified(now > interval_ms ? now - interval_ms : 0, 32);
    if (!keys.ok()) LOG_WARN("scrub: {}", keys.status().ToString());
    if (!keys.ok() || keys->empty()) {
      // Nothing due: look again in a while (new shards, or time passing).
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_; })) return;
      continue;
    }
    for (const ShardKey& key : *keys) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_) return;
      }
      auto rec = catalog_->Get(key);
      if (!rec.ok() || !rec->has_value()) continue;  // deleted meanwhile
      if (!limiter_.Acquire((*rec)->size)) return;
      auto bytes = store_->Get(catalog_.get(), key, 0, 0);
      if (options_.on_checked) options_.on_checked();
      if (bytes.ok()) {
        Status st = catalog_->SetVerified(key, store_->NowMs());
        if (!st.ok()) LOG_WARN("scrub: {}", st.ToString());
        continue;
      }
      if (bytes.status().IsCorruption() || bytes.status().IsNotFound()) {
        // Get already marked a bad payload corrupt; a missing file is as bad.
        if (bytes.status().IsNotFound()) {
          (void)catalog_->SetState(key, ShardState::kCorrupt);
        }
        LOG_WARN("scrub: shard {} is bad ({}): it will be rebuilt", key.ToString(),
                 bytes.status().message());
        if (options_.on_corrupt) options_.on_corrupt();
      } else {
        LOG_WARN("scrub: reading shard {}: {}", key.ToString(), bytes.status().ToString());
      }
    }
  }
}

}  // namespace shardfs
