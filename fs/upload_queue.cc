// Upload and deletion queues (METADATA.md §4). See upload_queue.h.
#include "fs/upload_queue.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "lib/log.h"

namespace shardfs::fs {
namespace {
// Safety net: the queues are scanned this often even without a signal
// (backoff expiry, rows queued by recovery or by a path that forgot to say).
constexpr auto kPoll = std::chrono::seconds(2);
// Kick() coalescing: at most one upload-queue scan per this interval.
constexpr auto kKickGap = std::chrono::milliseconds(5);
// Deletions are never urgent: at most one pass per this interval.
constexpr auto kDeleteGap = std::chrono::milliseconds(100);
// Pause after a deletion pass in which some deletion failed.
constexpr auto kDeleteRetry = std::chrono::seconds(10);
constexpr auto kMaxBackoff = std::chrono::seconds(60);
// Nice value of the dispatcher and deleter threads. The dispatcher seals,
// encodes and hashes segments on its own thread (ClusterClient runs that
// work on the caller's thread): in the background, like the kernel's
// writeback, so foreground requests win the CPU when both want it. Waiting
// in upload=sync mode is not slowed: the waiter uses no CPU meanwhile.
constexpr int kBackgroundNice = 10;

void LowerThreadPriority() {
  // Linux: the nice value is per thread (setpriority on the thread id).
  const auto tid = static_cast<id_t>(::syscall(SYS_gettid));
  if (::setpriority(PRIO_PROCESS, tid, kBackgroundNice) != 0) {
    LOG_DEBUG("setpriority of an upload thread: {}", std::strerror(errno));
  }
}
}  // namespace

Uploader::Uploader(MetaStore* meta, Staging* staging, ReadCache* cache, ClusterClient* cluster,
                   FileRegistry* files, int max_in_flight, UploadPacing pacing)
    : meta_(meta),
      staging_(staging),
      cache_(cache),
      cluster_(cluster),
      files_(files),
      budget_(files->budget()),
      max_in_flight_(std::max(1, max_in_flight)),
      pacing_(pacing) {
  files_->SetUploadHook([this] { NotifyQueued(); });
}

Uploader::~Uploader() {
  Stop();
  files_->SetUploadHook(nullptr);
}

void Uploader::Start() {
  threads_.emplace_back([this] {
    LowerThreadPriority();
    DispatchLoop();
  });
  threads_.emplace_back([this] { CompletionLoop(); });
  threads_.emplace_back([this] {
    LowerThreadPriority();
    DeleteLoop();
  });
}

void Uploader::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  budget_->Stop();
  dispatch_cv_.notify_all();
  completion_cv_.notify_all();
  delete_cv_.notify_all();
  done_cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void Uploader::NoteActivity() {
  last_activity_ns_.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
}

void Uploader::Kick() {
  NoteActivity();
  bool wake_dispatcher = false, wake_deleter = false;
  {
    std::lock_guard lock(mu_);
    wake_dispatcher = !kicked_;
    wake_deleter = !delete_kicked_;
    kicked_ = delete_kicked_ = true;
  }
  if (wake_dispatcher) dispatch_cv_.notify_one();
  if (wake_deleter) delete_cv_.notify_one();
}

void Uploader::NotifyQueued() {
  NoteActivity();
  {
    std::lock_guard lock(mu_);
    urgent_ = true;
    awaiting_commit_.clear();  // whatever was being written may be committed now
  }
  dispatch_cv_.notify_one();
}

Uploader::Stats Uploader::stats() {
  std::lock_guard lock(mu_);
  Stats s = stats_;
  s.in_flight = static_cast<int>(in_flight_.size());
  return s;
}

void Uploader::DispatchLoop() {
  std::unique_lock lock(mu_);
  auto last_scan = Clock::now() - kPoll;
  while (!stopping_) {
    if (static_cast<int>(in_flight_.size()) >= max_in_flight_) {
      dispatch_cv_.wait(lock, [&] {
        return stopping_ || static_cast<int>(in_flight_.size()) < max_in_flight_;
      });
      continue;
    }
    if (!urgent_ && !more_) {
      const bool kicked = kicked_;
      const auto due = last_scan + (kicked ? std::chrono::duration_cast<Clock::duration>(kKickGap)
                                           : std::chrono::duration_cast<Clock::duration>(kPoll));
      if (Clock::now() < due) {
        // A Kick shortens a poll wait to the coalescing gap; NotifyQueued
        // and freed slots after a full scan end it.
        dispatch_cv_.wait_until(
            lock, due, [&] { return stopping_ || urgent_ || more_ || kicked_ != kicked; });
        continue;
      }
      if (!kicked) awaiting_commit_.clear();  // a poll retries everything
    }
    if (auto until = HoldBackUntilLocked()) {
      // Kicks and commits leave the wait alone (they only make the drive
      // busier); a waiter or Stop() ends it.
      dispatch_cv_.wait_until(lock, *until, [&] { return stopping_ || waiters_ > 0; });
      continue;
    }
    kicked_ = urgent_ = false;
    last_scan = Clock::now();
    DispatchLocked(lock);
  }
}

std::optional<Uploader::Clock::time_point> Uploader::HoldBackUntilLocked() {
  if (pacing_.max_delay.count() <= 0 || waiters_ > 0 || draining_ || stopping_) {
    return std::nullopt;
  }
  const uint64_t limit = budget_->limit_bytes() ? budget_->limit_bytes() : (1ull << 30);
  if (budget_->used_bytes() > limit / 4) return std::nullopt;
  const auto now = Clock::now();
  const Clock::time_point quiet_at =
      Clock::time_point(Clock::duration(last_activity_ns_.load(std::memory_order_relaxed))) +
      pacing_.quiet;
  if (quiet_at <= now) {
    holding_since_.reset();
    return std::nullopt;
  }
  if (!holding_since_) holding_since_ = now;
  const Clock::time_point give_up = *holding_since_ + pacing_.max_delay;
  if (give_up <= now) {
    holding_since_.reset();
    draining_ = true;
    return std::nullopt;
  }
  return std::min(quiet_at, give_up);
}

void Uploader::DispatchLocked(std::unique_lock<std::mutex>& lock) {
  const int room = max_in_flight_ - static_cast<int>(in_flight_.size());
  more_ = false;
  if (room <= 0 || !cluster_) return;
  if (!damaged_.empty() && Clock::now() - last_damaged_check_ >= kPoll) {
    last_damaged_check_ = Clock::now();
    RecheckDamagedLocked(lock);
  }
  std::vector<Key> busy;
  const auto now = Clock::now();
  for (const auto& [k, v] : in_flight_) busy.push_back(k);
  for (const auto& [k, until] : backoff_until_) {
    if (until > now) busy.push_back(k);
  }
  busy.insert(busy.end(), awaiting_commit_.begin(), awaiting_commit_.end());
  for (const auto& [k, id] : damaged_) busy.push_back(k);
  lock.unlock();
  auto next = meta_->NextUploads(room, busy);
  lock.lock();
  if (!next.ok()) {
    LOG_ERROR("upload queue: {}", next.status().ToString());
    return;
  }
  std::vector<QueuedUpload> batch = std::move(next).value();
  more_ = static_cast<int>(batch.size()) == room;
  if (batch.empty() && in_flight_.empty()) draining_ = false;  // drained: pace again
  for (const QueuedUpload& q : batch) in_flight_[{q.ino, q.idx}] = true;
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
    // A staging file missing while SQLite still queues it is lost (removed
    // behind our back, a damaged disk): retrying cannot help. Reported once
    // and set aside until the next mount, not retried every second.
    const bool lost = !dirty && !data.ok() && data.status().IsNotFound() && StillQueued(q);
    if (dirty || !data.ok() || data->empty()) {
      lock.lock();
      in_flight_.erase({q.ino, q.idx});
      if (dirty) {
        awaiting_commit_.insert({q.ino, q.idx});
      } else if (lost) {
        damaged_[{q.ino, q.idx}] = q.staging_id;
        ++generation_;
        done_cv_.notify_all();  // upload=sync waiters fail now
        LOG_ERROR("inode {} segment {}: staging file {} is missing, so its data cannot be "
                  "uploaded (the file is damaged; user.shardfs.status says so)",
                  q.ino, q.idx, staging_->PathOf(q.staging_id));
      } else {
        backoff_until_[{q.ino, q.idx}] = Clock::now() + std::chrono::seconds(1);
        if (!data.ok()) {
          LOG_WARN("upload of inode {} segment {}: {}", q.ino, q.idx, data.status().ToString());
        }
      }
      completion_cv_.notify_one();  // Stop() may be waiting for in_flight_ to empty
      continue;
    }
    cluster_->WriteSegmentAsync(std::move(data).value(), [this, q](Result<Locator> r) {
      {
        std::lock_guard l(mu_);
        completions_.push_back({q, std::move(r)});
      }
      completion_cv_.notify_one();
    });
    lock.lock();
  }
}

void Uploader::CompletionLoop() {
  std::unique_lock lock(mu_);
  while (true) {
    completion_cv_.wait(
        lock, [&] { return !completions_.empty() || (stopping_ && in_flight_.empty()); });
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
      // The cluster takes uploads again: retry what failed (a node outage)
      // now rather than after its backoff, up to a minute away.
      if (!backoff_until_.empty()) {
        backoff_until_.clear();
        backoff_.clear();
        more_ = true;
      }
    } else {
      ++stats_.failed;
      auto& b = backoff_[key];
      b = std::min<std::chrono::seconds>(b.count() ? b * 2 : std::chrono::seconds(1), kMaxBackoff);
      backoff_until_[key] = Clock::now() + b;
      LOG_WARN("upload of inode {} segment {} failed (retry in {} s): {}", c.item.ino,
               c.item.idx, b.count(), c.result.status().ToString());
    }
    ++generation_;
    delete_kicked_ = true;  // the upload queued the replaced (or unused) locator
    delete_cv_.notify_one();
    done_cv_.notify_all();
    dispatch_cv_.notify_one();  // a free slot
  }
}

void Uploader::Complete(const QueuedUpload& item, const Result<Locator>& result) {
  if (!result.ok()) {
    // Writers must not wait for uploads that cannot happen (nodes down):
    // staging takes the data meanwhile.
    budget_->Stalled();
    return;
  }
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
    budget_->Remove(item.staging_id);
    if (file) file->ForgetSegmentLocked(item.idx);
  }
  if (file) {
    fl.unlock();
    files_->Release(file);
  }
}

bool Uploader::StillQueued(const QueuedUpload& q) {
  auto rows = meta_->ListSegments(q.ino);
  if (!rows.ok()) return false;
  for (const SegmentRow& r : *rows) {
    if (r.idx == q.idx) return r.staging_id == q.staging_id;
  }
  return false;
}

void Uploader::RecheckDamagedLocked(std::unique_lock<std::mutex>& lock) {
  const std::map<Key, uint64_t> damaged = damaged_;
  lock.unlock();
  std::vector<Key> gone;
  for (const auto& [k, id] : damaged) {
    QueuedUpload q;
    q.ino = k.first;
    q.idx = k.second;
    q.staging_id = id;
    if (!StillQueued(q)) gone.push_back(k);
  }
  lock.lock();
  for (const Key& k : gone) {
    auto it = damaged_.find(k);
    if (it != damaged_.end() && it->second == damaged.at(k)) damaged_.erase(it);
  }
}

std::vector<uint32_t> Uploader::DamagedSegments(uint64_t ino) {
  std::lock_guard lock(mu_);
  std::vector<uint32_t> out;
  for (auto it = damaged_.lower_bound({ino, 0}); it != damaged_.end() && it->first.first == ino;
       ++it) {
    out.push_back(it->first.second);
  }
  return out;
}

Status Uploader::WaitForFile(uint64_t ino, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  NotifyQueued();
  std::unique_lock lock(mu_);
  // While anyone waits, nothing is held back (HoldBackUntilLocked).
  ++waiters_;
  dispatch_cv_.notify_one();
  struct Leave {
    int* n;
    ~Leave() { --*n; }
  } leave{&waiters_};  // runs with `lock` still held (declared after it)
  while (true) {
    lock.unlock();
    auto rows = meta_->ListSegments(ino);
    lock.lock();
    if (!rows.ok()) return rows.status();
    bool pending = false, damaged = false;
    for (const SegmentRow& r : *rows) {
      pending |= r.staging_id.has_value();
      auto it = damaged_.find({ino, r.idx});
      damaged |= r.staging_id && it != damaged_.end() && it->second == *r.staging_id;
    }
    if (!pending) return Status::OK();
    if (damaged) {
      return Status::Corruption("inode " + std::to_string(ino) +
                                ": a staging file pending upload is missing");
    }
    if (stopping_) return Status::Aborted("unmounting");
    const uint64_t gen = generation_;
    if (!done_cv_.wait_until(lock, deadline, [&] { return generation_ != gen || stopping_; })) {
      return Status::TimedOut("upload of inode " + std::to_string(ino) + " not finished");
    }
  }
}

void Uploader::DeleteLoop() {
  std::unique_lock lock(mu_);
  auto last_pass = Clock::now() - kPoll;
  bool any_failed = false;
  while (!stopping_) {
    const bool kicked = delete_kicked_;
    const Clock::duration gap =
        any_failed ? std::chrono::duration_cast<Clock::duration>(kDeleteRetry)
        : kicked   ? std::chrono::duration_cast<Clock::duration>(kDeleteGap)
                   : std::chrono::duration_cast<Clock::duration>(kPoll);
    if (Clock::now() < last_pass + gap) {
      delete_cv_.wait_until(lock, last_pass + gap,
                            [&] { return stopping_ || delete_kicked_ != kicked; });
      continue;
    }
    delete_kicked_ = false;
    any_failed = false;
    int64_t after_id = 0;
    while (!stopping_) {  // one pass over the whole queue, 32 rows at a time
      lock.unlock();
      auto batch = meta_->NextDeletions(32, after_id);
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
          std::lock_guard l(mu_);
          if (stopping_) break;
        }
      }
      lock.lock();
      if (!batch.ok() || batch->empty() || !cluster_) break;
    }
    last_pass = Clock::now();
  }
}

}  // namespace shardfs::fs
