// ShardStore: the node's shards on local disk (files under DATA_DIR/shards,
// indexed by the Catalog). STORAGE.md describes every file; §4 the write
// procedure this class implements.
//
// PUT is group-committed: a worker verifies the payload and writes a temp
// file, then a committer thread makes a whole batch durable at once
// (syncfs, rename all, syncfs, one SQLite transaction) and only then calls
// each PUT's completion. Nothing is acknowledged before it is durable.
//
// Concurrency: at most one PUT or DELETE per shard key is in progress; a
// second PUT with the same content joins the first, anything else
// conflicting gets Exists or Busy. GET and STAT never block on writers.
//
// Thread-safety: thread-safe. Callers pass their own thread's Catalog
// (one SQLite connection per thread); the committer has its own.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "lib/locator.h"
#include "lib/status.h"
#include "netnode/catalog.h"
#include "netnode/disk.h"
#include "netnode/layout.h"

namespace shardfs {

struct StoreOptions {
  std::string data_dir;
  uint64_t capacity_bytes = 0;  // quota on payload bytes; 0: the disk's size
  Disk* disk = nullptr;         // nullptr: PosixDisk()
  size_t max_batch = 256;       // shards made durable per commit round
  // Batches smaller than this are synced file by file (fdatasync + fsync of
  // the directory) instead of with syncfs, which would also flush every
  // other writer's dirty data on the file system (STORAGE.md §4.1).
  size_t syncfs_min_batch = 8;
  // Wall clock in unix ms; injected so tests can pin it.
  std::function<uint64_t()> clock_ms;
};

struct PutArgs {
  ShardKey key;
  uint32_t crc32c = 0;  // declared by the client; checked against the payload
  std::string owner;
  Locator locator;
  std::span<const uint8_t> payload;  // only read during Put()
};

// Bytes of a shard read by Get(): the whole payload sits in `buffer`
// (malloc'd, so a zmq message can take it over with free()), and the
// requested range is [offset, offset + length).
struct ShardBytes {
  struct FreeDeleter {
    void operator()(uint8_t* p) const;
  };
  std::unique_ptr<uint8_t, FreeDeleter> buffer;
  size_t offset = 0;
  size_t length = 0;
  uint64_t shard_size = 0;  // the whole payload
  uint32_t crc32c = 0;      // of the range
  const uint8_t* data() const { return buffer.get() + offset; }
};

struct StoreUsage {
  uint64_t capacity_bytes = 0;
  uint64_t used_bytes = 0;
  uint64_t free_bytes = 0;  // min(capacity - used, disk available)
  uint64_t shard_count = 0;
};

class ShardStore {
 public:
  // Creates the data dir layout, removes leftover temp files, reconciles the
  // catalog with the files (STORAGE.md §5) and starts the committer.
  static Result<std::unique_ptr<ShardStore>> Open(StoreOptions options);
  ~ShardStore();  // Shutdown()
  ShardStore(const ShardStore&) = delete;
  ShardStore& operator=(const ShardStore&) = delete;

  // A catalog connection for a calling thread.
  Result<std::unique_ptr<Catalog>> OpenCatalog() const;

  using PutDone = std::function<void(Status)>;
  // Stores a shard. `done` runs exactly once: on the calling thread for an
  // early answer, else on the committer thread once the shard is durable
  // and indexed. Errors: NoSpace (quota or disk full; nothing stored),
  // Corruption with EBADMSG (payload does not match crc32c), Exists
  // (same key, other content), Busy (a DELETE of the key is running),
  // Aborted (shutting down), IOError.
  void Put(Catalog* catalog, const PutArgs& args, PutDone done);

  // Reads [offset, offset+length) (length 0: to the end) after checking the
  // whole payload against its CRC32C. NotFound; InvalidArgument for a range
  // past the end; Corruption when the file fails a check (the shard is then
  // marked corrupt and never served again).
  Result<ShardBytes> Get(Catalog* catalog, const ShardKey& key, uint64_t offset, uint64_t length);

  // Removes the shard durably. NotFound; PermissionDenied when `owner` is
  // not the key that stored it; Busy while a PUT of the key is committing.
  Status Delete(Catalog* catalog, const ShardKey& key, std::string_view owner);

  // Cheap and lock-free, for PING on the I/O thread.
  StoreUsage Usage() const;

  // Commits everything queued, then stops the committer. Later Puts fail
  // with Aborted. Idempotent.
  void Shutdown();

  const DataLayout& layout() const { return layout_; }
  uint64_t NowMs() const { return options_.clock_ms(); }

 private:
  // One PUT between its temp file and its completion.
  struct Pending {
    ShardRecord record;
    std::string tmp_path;
    std::unique_ptr<WritableFile> file;  // kept open for the fdatasync fallback
    uint64_t replaced_size = 0;          // size of a corrupt shard it heals
    bool heals = false;
    PutDone done;
  };
  // A PUT or DELETE in progress on one key.
  struct KeyClaim {
    bool is_put = false;
    uint32_t crc32c = 0;  // PUT: its content, for joining duplicates
    uint64_t size = 0;
    std::vector<PutDone> joined;  // PUT: duplicates waiting on this one
  };

  ShardStore(StoreOptions options, std::unique_ptr<Catalog> catalog);
  void CommitLoop();
  void CommitBatch(std::vector<Pending>& batch);
  void ReleaseClaim(const ShardKey& key);
  bool TryClaimForRepair(const ShardKey& key);
  void RefreshDiskSpace();

  // Fixed after construction.
  const StoreOptions options_;
  const DataLayout layout_;
  Disk* const disk_;
  uint64_t capacity_bytes_ = 0;
  std::unique_ptr<Catalog> commit_catalog_;  // used only by the committer
  std::atomic<uint64_t> tmp_seq_{0};

  // Updated with mu_ held, read without it by Usage().
  std::atomic<uint64_t> used_bytes_{0};
  std::atomic<uint64_t> shard_count_{0};
  std::atomic<uint64_t> disk_available_{0};

  // Lock order: mu_ is a leaf; completions are called without it.
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<ShardKey, KeyClaim> claims_;  // guarded by mu_
  std::vector<Pending> queue_;           // guarded by mu_
  uint64_t reserved_bytes_ = 0;          // guarded by mu_: quota held by queued PUTs
  bool stopping_ = false;                // guarded by mu_
  bool committer_done_ = false;          // guarded by mu_
  std::thread committer_;
};

}  // namespace shardfs
