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
// Thread-safety: public methods may be called from any thread. Lifetime:
// Stop() (or the destructor) joins every thread; everything passed to the
// constructor must outlive it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "fs/file_data.h"
#include "fs/meta_store.h"
#include "fs/read_cache.h"
#include "fs/staging.h"
#include "lib/cluster_client.h"

namespace shardfs::fs {

class Uploader {
 public:
  Uploader(MetaStore* meta, Staging* staging, ReadCache* cache, ClusterClient* cluster,
           FileRegistry* files, int max_in_flight);
  ~Uploader();
  Uploader(const Uploader&) = delete;
  Uploader& operator=(const Uploader&) = delete;

  void Start();
  // Stops taking work, waits for uploads in flight, joins the threads.
  void Stop();
  // New rows in a queue: look now instead of at the next poll.
  void Kick();
  // Waits until `ino` has nothing in the upload queue; TimedOut after
  // `timeout` (the data stays queued).
  Status WaitForFile(uint64_t ino, std::chrono::milliseconds timeout);

  struct Stats {
    uint64_t uploaded = 0;
    uint64_t failed = 0;
    uint64_t deleted = 0;
    int in_flight = 0;
  };
  Stats stats();

 private:
  using Key = std::pair<uint64_t, uint32_t>;  // (ino, idx)
  struct Completion {
    QueuedUpload item;
    Result<Locator> result;
  };

  void DispatchLoop();
  void CompletionLoop();
  void DeleteLoop();
  void Complete(const QueuedUpload& item, const Result<Locator>& result);
  bool FilePendingLocked(uint64_t ino) const;

  MetaStore* const meta_;
  Staging* const staging_;
  ReadCache* const cache_;
  ClusterClient* const cluster_;
  FileRegistry* const files_;
  const int max_in_flight_;

  std::mutex mu_;
  std::condition_variable cv_;       // work, completions, stop
  std::condition_variable done_cv_;  // an upload finished (WaitForFile)
  bool stopping_ = false;                                   // guarded by mu_
  bool kicked_ = false;                                     // guarded by mu_
  bool delete_kicked_ = false;                              // guarded by mu_
  std::map<Key, bool> in_flight_;                           // guarded by mu_
  std::map<Key, std::chrono::steady_clock::time_point> backoff_until_;  // guarded by mu_
  std::map<Key, std::chrono::seconds> backoff_;             // guarded by mu_
  std::deque<Completion> completions_;                      // guarded by mu_
  Stats stats_;                                             // guarded by mu_
  uint64_t generation_ = 0;  // guarded by mu_: bumped per completion
  std::vector<std::thread> threads_;
};

}  // namespace shardfs::fs
