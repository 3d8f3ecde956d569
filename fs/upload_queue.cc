// Upload and deletion queues (METADATA.md §4). See upload_queue.h.
#include "fs/upload_queue.h"

#include "lib/log.h"

namespace shardfs::fs {
namespace {
using Clock = std::chrono::steady_clock;
constexpr auto kPoll = std::chrono::seconds(2);
constexpr auto kMaxBackoff = std::chrono::seconds(60);
}  // namespace

Uploader::Uploader(MetaStore* meta, Staging* staging, ReadCache* cache, ClusterClient* cluster,
                   FileRegistry* files, int max_in_flight)
    : meta_(meta),
      staging_(staging),
      cache_(cache),
      cluster_(cluster),
      files_(files),
      max_in_flight_(std::max(1, max_in_flight)) {}

Uploader::~Uploader() { Stop(); }

void Uploader::Start() {
  threads_.emplace_back([this] { DispatchLoop(); });
  threads_.emplace_back([this] { CompletionLoop(); });
  threads_.emplace_back([this] { DeleteLoop(); });
}

void Uploader::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  done_cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void Uploader::Kick() {
  {
    std::lock_guard lock(mu_);
    kicked_ = true;
    delete_kicked_ = true;
  }
  cv_.notify_all();
}

Uploader::Stats Uploader::stats() {
  std::lock_guard lock(mu_);
  Stats s = stats_;
  s.in_flight = static_cast<int>(in_flight_.size());
  return s;
}

void Uploader::DispatchLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    const int room = max_in_flight_ - static_cast<int>(in_flight_.size());
    std::vector<QueuedUpload> batch;
    if (room > 0 && cluster_) {
      std::vector<Key> busy;
      const auto now = Clock::now();
      for (const auto& [k, v] : in_flight_) busy.push_back(k);
      for (const auto& [k, until] : backoff_until_) {
        if (until > now) busy.push_back(k);
      }
      lock.unlock();
      auto next = meta_->NextUploads(room, busy);
      lock.lock();
      if (next.ok()) {
        batch = std::move(next).value();
      } else {
        LOG_ERROR("upload queue: {}", next.status().ToString());
      }
      for (const QueuedUpload& q : batch) in_flight_[{q.ino, q.idx}] = true;
    }
    for (const QueuedUpload& q : batch) {
      lock.unlock();
      // A segment still being written will be committed (and re-queued)
      // again: uploading it now would be wasted.
      bool dirty = false;
      if (auto fd = files_->Find(q.ino)) {
        auto fl = fd->Lock();
        dirty = fd->SegmentDirtyLocked(q.idx);
      }
      Result<std::vector<uint8_t>> data = Status::Aborted("dirty");
      if (!dirty) data = staging_->ReadAll(q.staging_id, q.len);
      if (dirty || !data.ok() || data->empty()) {
        lock.lock();
        in_flight_.erase({q.ino, q.idx});
        backoff_until_[{q.ino, q.idx}] = Clock::now() + std::chrono::seconds(1);
        if (!dirty && !data.ok()) {
          LOG_WARN("upload of inode {} segment {}: {}", q.ino, q.idx, data.status().ToString());
        }
        continue;
      }
      cluster_->WriteSegmentAsync(std::move(data).value(), [this, q](Result<Locator> r) {
        {
          std::lock_guard l(mu_);
          completions_.push_back({q, std::move(r)});
        }
        cv_.notify_all();
      });
      lock.lock();
    }
    if (!batch.empty()) continue;
    cv_.wait_for(lock, kPoll, [&] { return stopping_ || kicked_; });
    kicked_ = false;
  }
}

void Uploader::CompletionLoop() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return !completions_.empty() || (stopping_ && in_flight_.empty()); });
    if (completions_.empty()) return;  // stopping, nothing in flight
    Completion c = std::move(completions_.front());
    completions_.pop_front();
    lock.unlock();
    Complete(c.item, c.result);
    lock.lock();
    const Key key{c.item.ino, c.item.idx};
    in_flight_.erase(key);
    if (c.result.ok()) {
      ++stats_.uploaded;
      backoff_.erase(key);
      backoff_until_.erase(key);
    } else {
      ++stats_.failed;
      auto& b = backoff_[key];
      b = std::min<std::chrono::seconds>(b.count() ? b * 2 : std::chrono::seconds(1), kMaxBackoff);
      backoff_until_[key] = Clock::now() + b;
      LOG_WARN("upload of inode {} segment {} failed (retry in {} s): {}", c.item.ino,
               c.item.idx, b.count(), c.result.status().ToString());
    }
    ++generation_;
    done_cv_.notify_all();
    cv_.notify_all();  // room for the dispatcher
  }
}

void Uploader::Complete(const QueuedUpload& item, const Result<Locator>& result) {
  if (!result.ok()) return;
  std::string blob;
  EncodeLocator(*result, &blob);
  std::span<const uint8_t> loc(reinterpret_cast<const uint8_t*>(blob.data()), blob.size());
  // Hold the file (and its lock) so no writer touches the staging file
  // between the check and the move into the cache (file_data.h lock order).
  auto fd = files_->Acquire(item.ino);
  std::shared_ptr<FileData> file = fd.ok() ? *fd : nullptr;
  std::unique_lock<std::mutex> fl;
  if (file) fl = file->Lock();
  bool dirty = file && file->SegmentDirtyLocked(item.idx);
  auto moved = meta_->FinishUpload(item.ino, item.idx, item.seq, loc, dirty);
  if (!moved.ok()) {
    LOG_ERROR("recording upload of inode {} segment {}: {}", item.ino, item.idx,
              moved.status().ToString());
  } else if (*moved) {
    Status st = cache_->Adopt(result->stripe, staging_->PathOf(item.staging_id));
    if (!st.ok()) {
      LOG_WARN("{}", st.ToString());
      staging_->Remove(item.staging_id);
    }
    if (file) file->ForgetSegmentLocked(item.idx);
  }
  if (file) {
    fl.unlock();
    files_->Release(file);
  }
  Kick();  // the deleter may have work now
}

bool Uploader::FilePendingLocked(uint64_t ino) const {
  for (const auto& [k, v] : in_flight_) {
    if (k.first == ino) return true;
  }
  return false;
}

Status Uploader::WaitForFile(uint64_t ino, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  Kick();
  std::unique_lock lock(mu_);
  while (true) {
    lock.unlock();
    auto rows = meta_->ListSegments(ino);
    lock.lock();
    if (!rows.ok()) return rows.status();
    bool pending = false;
    for (const SegmentRow& r : *rows) pending |= r.staging_id.has_value();
    if (!pending) return Status::OK();
    if (stopping_) return Status::Aborted("unmounting");
    const uint64_t gen = generation_;
    if (!done_cv_.wait_until(lock, deadline, [&] { return generation_ != gen || stopping_; })) {
      return Status::TimedOut("upload of inode " + std::to_string(ino) + " not finished");
    }
  }
}

void Uploader::DeleteLoop() {
  int64_t after_id = 0;
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    auto batch = meta_->NextDeletions(32, after_id);
    bool any_failed = false;
    if (!batch.ok()) LOG_ERROR("delete queue: {}", batch.status().ToString());
    if (batch.ok() && cluster_) {
      for (const QueuedDeletion& d : *batch) {
        after_id = d.id;
        Locator loc;
        Reader r(d.locator.data(), d.locator.size());
        if (!DecodeLocator(&r, &loc)) {
          LOG_ERROR("delete queue entry {} has a bad locator; dropping it", d.id);
          (void)meta_->FinishDeletion(d.id);
          continue;
        }
        cache_->Drop(loc.stripe);
        Status st = cluster_->DeleteSegment(loc);
        if (st.ok()) {
          (void)meta_->FinishDeletion(d.id);
          std::lock_guard l(mu_);
          ++stats_.deleted;
        } else {
          any_failed = true;
          (void)meta_->FailDeletion(d.id);
          LOG_DEBUG("delete of stripe {}: {}", loc.stripe.Hex(), st.ToString());
        }
        {
          std::lock_guard l(mu_);
          if (stopping_) break;
        }
      }
    }
    lock.lock();
    if (batch.ok() && !batch->empty() && !stopping_) continue;  // more after after_id
    after_id = 0;  // wrap: retry failed ones after a pause
    cv_.wait_for(lock, any_failed ? std::chrono::seconds(10) : kPoll,
                 [&] { return stopping_ || delete_kicked_; });
    delete_kicked_ = false;
  }
}

}  // namespace shardfs::fs
