// SnapshotService: the mount's side of disaster recovery (fs/SNAPSHOTS.md).
// Holds the network lease, watches meta.db for changes and takes metadata
// snapshots into the network: after `snapshot_quiet` seconds without a
// change (and with the upload queue empty), at least every
// `snapshot_interval` seconds while changes go on, and at clean unmount.
//
// It reads meta.db through its own read-only SQLite connection (WAL: never
// blocks the mount): `PRAGMA data_version` tells it that another connection
// committed, so the metadata code needs no hook. Snapshots and lease records
// go to the nodes through their own transport; between snapshots it keeps
// one idle RecordStore (no segment buffers).
//
// Startup (Start, before the mount writes anything): take the network lease
// (refused: the mount fails with the holder's whereabouts), then refuse a
// state dir that the volume's snapshots do not descend from (a restored copy
// elsewhere has moved on; SNAPSHOTS.md §4).
//
// If the lease is taken from us (another machine mounted with -o
// break_lease), the service logs it and sends SIGTERM to its own process:
// the FUSE loop ends and the mount shuts down without a final snapshot.
//
// Thread-safety: Start, Finish and the destructor run on the mount's main
// thread; the service's own thread does the periodic work.
#pragma once

#include <sqlite3.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "fs/meta_snapshot.h"
#include "fs/network_lease.h"
#include "fs/options.h"
#include "fs/snapshot_options.h"
#include "lib/client_config.h"
#include "lib/crypto.h"

namespace shardfs::fs {

class SnapshotService {
 public:
  // Options come from MountSnapshotOptions(). Busy/Unavailable/
  // FailedPrecondition-style errors carry a message for the user.
  static Result<std::unique_ptr<SnapshotService>> Start(const MountOptions& mount,
                                                        const ClientConfig& cfg,
                                                        const Key& master,
                                                        const std::string& state_dir,
                                                        const std::string& volume_id);
  ~SnapshotService();  // stops the thread; no snapshot, lease left to expire
  SnapshotService(const SnapshotService&) = delete;
  SnapshotService& operator=(const SnapshotService&) = delete;

  // Clean unmount: waits (at most snapshot_drain s) for pending uploads,
  // takes a final snapshot if anything changed, releases the lease.
  // Idempotent.
  void Finish();

 private:
  using Clock = std::chrono::steady_clock;
  SnapshotService() = default;
  void Loop();
  // Takes snapshot next_seq_. REQUIRES: called on one thread at a time.
  bool SnapshotNow(const char* why);
  Result<int64_t> DataVersion();
  Result<int64_t> PendingUploads();
  void StopThread();

  // Fixed after Start.
  SnapshotOptions opts_;
  bool active_ = false;  // false: read-only mount or everything off
  std::string state_dir_;
  VolumeKeys keys_;
  SnapshotParams params_;
  std::unique_ptr<RecordStore> store_;
  std::unique_ptr<NetworkLease> lease_;
  sqlite3* db_ = nullptr;  // read-only; used by one thread at a time

  // Owned by whichever thread runs (the loop, then Finish after the join).
  SnapshotState state_;
  uint64_t next_seq_ = 1;
  bool dirty_ = false;
  int64_t last_dv_ = 0;
  Clock::time_point last_change_{};
  Clock::time_point last_snapshot_{};
  Clock::time_point retry_at_{};
  std::chrono::seconds backoff_{30};
  bool lost_ = false;      // the lease was taken from us
  bool conflict_ = false;  // another mount wrote our head number
  bool finished_ = false;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace shardfs::fs
