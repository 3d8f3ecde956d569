// Uploader: drains the durable upload queue into the cluster and the
// deletion queue out of it (METADATA.md §4).
//
// One dispatcher thread reads staged segments into memory (at most
// `max_in_flight` at once, so memory is bounded) and hands them to
// ClusterClient::WriteSegmentAsync; completions come back on the
// transport's I/O thread, which only queues them; one completion thread
// records them in SQLite. One deleter thread calls DeleteSegment for the
// deletion queue. Failures are retried with backoff (1 s doubling to 60 s).
//
// Each thread has its own condition variable, so a signal wakes only the
// thread that has work. FileData signals the dispatcher directly when a
// commit queues staged segments (NotifyQueued, through the FileRegistry's
// hook), which is also how a segment filled by a long write starts uploading
// before the file is closed. Kick() (every flush and release) is only a
// hint: it is coalesced so that thousands of closes of inline files per
// second cost a scan of the queues every few milliseconds, not two thread
// wake-ups and two queries each. A slow poll catches anything missed.
//
// Pacing (upload=writeback only): while the drive is busy (a flush,
// release or commit within the last `quiet`), the dispatcher starts no new
// upload, for at most `max_delay` per busy spell, like the kernel holding
// dirty pages back for up to 30 s. A burst of small files (rsync, git
// checkout, tar x) then runs at local speed instead of sharing the disk and
// CPU with thousands of tiny shard uploads, and the uploads follow it.
// Never held back: a waiter in WaitForFile (upload=sync, fsync in sync
// mode), staging over a quarter of its limit (a big write streams out as
// before), and a spell that has already waited `max_delay` (then everything
// queued goes out before pacing starts again).
//
// Thread-safety: public methods may be called from any thread. Lifetime:
// Stop() (or the destructor) joins every thread; everything passed to the
// constructor must outlive it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "fs/file_data.h"
#include "fs/meta_store.h"
#include "fs/read_cache.h"
#include "fs/staging.h"
#include "lib/cluster_client.h"

namespace shardfs::fs {

struct UploadPacing {
  std::chrono::milliseconds quiet{1000};
  std::chrono::milliseconds max_delay{0};  // 0: never hold uploads back
};

class Uploader {
 public:
  // Installs the registry's upload hook (REQUIRES: before any FileData of
  // `files` commits, i.e. before the mount serves requests).
  Uploader(MetaStore* meta, Staging* staging, ReadCache* cache, ClusterClient* cluster,
           FileRegistry* files, int max_in_flight, UploadPacing pacing = {});
  ~Uploader();
  Uploader(const Uploader&) = delete;
  Uploader& operator=(const Uploader&) = delete;

  void Start();
  // Stops taking work, waits for uploads in flight, joins the threads, and
  // releases writers waiting for staging room.
  void Stop();
  // A hint that a queue may have new rows (flush, release, purge): both
  // queues are looked at soon, coalesced with other hints.
  void Kick();
  // Committed staged segments are in the upload queue: look now.
  void NotifyQueued();
  // Waits until `ino` has nothing in the upload queue; TimedOut after
  // `timeout` (the data stays queued), Corruption at once when one of its
  // segments is damaged.
  Status WaitForFile(uint64_t ino, std::chrono::milliseconds timeout);
  // Segments of `ino` whose staging file is gone while SQLite still queues
  // it (deleted or lost behind the mount's back): they cannot be uploaded,
  // are not retried until the next mount, and user.shardfs.status says so.
  std::vector<uint32_t> DamagedSegments(uint64_t ino);

  struct Stats {
    uint64_t uploaded = 0;
    uint64_t failed = 0;
    uint64_t deleted = 0;
    int in_flight = 0;
  };
  Stats stats();

 private:
  using Key = std::pair<uint64_t, uint32_t>;  // (ino, idx)
  using Clock = std::chrono::steady_clock;
  struct Completion {
    QueuedUpload item;
    Result<Locator> result;
  };

  void DispatchLoop();
  // Scans the queue and starts uploads into the free slots. REQUIRES: lock
  // held (released around SQLite and staging I/O).
  void DispatchLocked(std::unique_lock<std::mutex>& lock);
  // When new uploads should wait for the drive to go quiet (see Pacing
  // above): the time to look again, or nullopt to dispatch now.
  // REQUIRES: lock held.
  std::optional<Clock::time_point> HoldBackUntilLocked();
  void NoteActivity();
  void CompletionLoop();
  void DeleteLoop();
  void Complete(const QueuedUpload& item, const Result<Locator>& result);
  // True when `q` is still what SQLite queues for its segment, so a missing
  // staging file is lost data rather than a segment replaced meanwhile.
  bool StillQueued(const QueuedUpload& q);
  // Forgets damaged segments that SQLite no longer queues with the lost
  // staging file (rewritten, truncated, deleted). REQUIRES: lock held
  // (released around SQLite).
  void RecheckDamagedLocked(std::unique_lock<std::mutex>& lock);

  MetaStore* const meta_;
  Staging* const staging_;
  ReadCache* const cache_;
  ClusterClient* const cluster_;
  FileRegistry* const files_;
  StagingBudget* const budget_;
  const int max_in_flight_;
  const UploadPacing pacing_;
  // Steady-clock time (ns since its epoch) of the last flush, release or
  // commit: written without the lock by every FUSE thread.
  std::atomic<int64_t> last_activity_ns_{0};

  std::mutex mu_;
  std::condition_variable dispatch_cv_;    // kick, urgent work, room, stop
  std::condition_variable completion_cv_;  // a completion queued, stop
  std::condition_variable delete_cv_;      // deletions may be queued, stop
  std::condition_variable done_cv_;        // an upload finished (WaitForFile)
  bool stopping_ = false;        // guarded by mu_
  bool kicked_ = false;          // guarded by mu_: scan soon (coalesced)
  bool urgent_ = false;          // guarded by mu_: scan now
  bool more_ = false;            // guarded by mu_: the last scan filled every slot
  bool delete_kicked_ = false;   // guarded by mu_
  std::map<Key, bool> in_flight_;                           // guarded by mu_
  std::map<Key, Clock::time_point> backoff_until_;          // guarded by mu_
  std::map<Key, std::chrono::seconds> backoff_;             // guarded by mu_
  // Segments found dirty in memory (being written): skipped until the next
  // commit queues something (NotifyQueued) or the next poll.
  std::set<Key> awaiting_commit_;                           // guarded by mu_
  // Queued segments whose staging file is missing (DamagedSegments), with
  // that staging id: dropped when a commit queues the segment anew.
  std::map<Key, uint64_t> damaged_;                         // guarded by mu_
  Clock::time_point last_damaged_check_{};                  // guarded by mu_
  std::deque<Completion> completions_;                      // guarded by mu_
  Stats stats_;                                             // guarded by mu_
  uint64_t generation_ = 0;  // guarded by mu_: bumped per completion
  int waiters_ = 0;          // guarded by mu_: callers inside WaitForFile
  // Pacing: start of the current busy spell, and whether a spell reached
  // max_delay (then the queue drains before holding back again).
  std::optional<Clock::time_point> holding_since_;  // guarded by mu_
  bool draining_ = false;                           // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace shardfs::fs
