// FileData: the in-memory state of one regular file whose data is being
// read or written: its size, and a working copy of its segment map where
// dirty segments live in staging files (METADATA.md §3). FileRegistry hands
// out one FileData per inode.
//
// Small files never touch staging: while a file fits the inline limit its
// only segment is kept in memory and committed straight into SQLite (§6).
// A segment that a write fills to its end is committed at once, so the
// uploader starts on it while the rest of the file is still being written
// (§4, early upload); a writer waits for the uploader when staging holds
// more than the limit (StagingBudget, §4 backpressure).
//
// Thread-safety: FileData methods take mu_ themselves, except the *Locked
// ones, which REQUIRE the caller to hold Lock(). Lock order:
// FileRegistry::mu_ -> FileData::mu_ -> MetaStore::mu_ (and the leaf locks
// of StagingBudget and the Uploader, reached through the upload hook). mu_
// is held across a cluster fetch only for a read-modify-write of a stored
// segment, and never while waiting for staging room.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "fs/meta_store.h"
#include "fs/segment_fetcher.h"
#include "fs/staging.h"
#include "fs/staging_budget.h"
#include "lib/locator.h"

namespace shardfs::fs {

struct DataDeps {
  MetaStore* meta = nullptr;
  Staging* staging = nullptr;
  SegmentFetcher* fetcher = nullptr;
  uint64_t segment_size = 0;
  uint64_t inline_max = 4096;  // files up to this size live in SQLite (§6)
  uint64_t staging_limit = 1ull << 30;  // backpressure (-o staging_limit, §4); 0 = none
};

// What every FileData of one registry shares; owned by the FileRegistry.
struct DataShared {
  explicit DataShared(const DataDeps& deps);
  StagingBudget budget;
  // Called after a commit queued staged segments for upload. Set once by
  // the Uploader before the mount serves requests; may be empty.
  std::function<void()> on_queued;
};

class FileData {
 public:
  // `shared` must outlive this object.
  FileData(uint64_t ino, const DataDeps& deps, DataShared* shared, uint64_t size,
           int64_t mtime_ns, int64_t ctime_ns)
      : ino_(ino),
        deps_(deps),
        shared_(shared),
        size_(size),
        committed_size_(size),
        mtime_ns_(mtime_ns),
        ctime_ns_(ctime_ns) {}
  FileData(const FileData&) = delete;
  FileData& operator=(const FileData&) = delete;

  uint64_t ino() const { return ino_; }

  // Writes at `off`, growing the file; returns the bytes written. May wait
  // for the uploader first when staging is over its limit.
  Result<size_t> Write(uint64_t off, std::span<const uint8_t> data);
  // Reads up to out.size() bytes at `off` (short at end of file).
  Result<size_t> Read(uint64_t off, std::span<uint8_t> out);
  // Sets the size (both ways) and commits.
  Status Truncate(uint64_t size, int64_t now_ns);
  // Makes every change durable in staging + SQLite and queues dirty
  // segments for upload (METADATA.md §3). `durable` adds fdatasync.
  Status Commit(bool durable);
  // SEEK_DATA / SEEK_HOLE; ENXIO past the end.
  Result<uint64_t> Seek(uint64_t off, int whence);

  // Attributes that are newer here than in SQLite, for getattr.
  struct Overlay {
    uint64_t size;
    int64_t mtime_ns;
    int64_t ctime_ns;
    bool dirty;
  };
  Overlay GetOverlay();
  // setattr of mtime on an open file: keeps the next commit from undoing it.
  void SetMtime(int64_t mtime_ns, int64_t ctime_ns);
  // Sets mtime and ctime and leaves them for the next commit to write (the
  // writeback cache's time flush right before a flush: no transaction).
  void SetTimes(int64_t mtime_ns, int64_t ctime_ns);
  bool IsDirty();

  std::unique_lock<std::mutex> Lock() { return std::unique_lock(mu_); }
  // For the uploader (REQUIRES: Lock() held).
  bool SegmentDirtyLocked(uint32_t idx) const;
  void ForgetSegmentLocked(uint32_t idx) { segs_.erase(idx); }

 private:
  struct Seg {
    enum class Src { kHole, kStaging, kInline, kStored };
    Src src = Src::kHole;
    uint64_t len = 0;
    uint64_t staging_id = 0;            // kStaging
    std::optional<uint64_t> committed_staging_id;  // what SQLite references
    std::vector<uint8_t> inline_data;   // kInline
    Locator loc;                        // kStored
    bool dirty = false;
  };

  // All REQUIRE mu_ held.
  Result<Seg*> LoadSegLocked(uint32_t idx);
  // Gives `s` a staging file holding its current bytes (fetching a stored
  // segment unless [a, b) covers all of it).
  Status StageLocked(Seg* s, uint64_t a, uint64_t b);
  // `full_only`: commit only dirty segments that reach the segment size
  // (early upload and backpressure: the segment a sequential writer is
  // still filling would be uploaded in vain), and nothing if there are none.
  Status CommitLocked(bool durable, bool full_only = false);
  // fdatasyncs every staging file SQLite references for this file.
  Status SyncCommittedStagingLocked();
  Result<size_t> WriteLocked(uint64_t off, std::span<const uint8_t> data);
  // Writes into segment 0 kept in memory when the file stays within the
  // inline limit; false (nothing done) when that does not apply.
  bool WriteInlineLocked(Seg* s, uint64_t end, uint64_t in_off, std::span<const uint8_t> data);

  const uint64_t ino_;
  const DataDeps deps_;
  DataShared* const shared_;

  mutable std::mutex mu_;
  uint64_t size_;                  // guarded by mu_
  // The size SQLite holds. No segment row lies at or past it (truncation
  // removes rows in the transaction that shrinks the size), so segments
  // there need no query: a new file's writes cost no SELECT.
  uint64_t committed_size_;        // guarded by mu_
  int64_t mtime_ns_;               // guarded by mu_
  int64_t ctime_ns_;               // guarded by mu_
  bool meta_dirty_ = false;        // guarded by mu_: size/times not yet committed
  std::optional<uint32_t> remove_from_;  // guarded by mu_: truncated-away segments
  std::map<uint32_t, Seg> segs_;   // guarded by mu_: loaded segments
  uint64_t last_read_end_ = 0;     // guarded by mu_: sequential-read detection
};

// One FileData per inode while anyone uses it.
//
// Thread-safety: all methods may be called concurrently (mu_).
class FileRegistry {
 public:
  explicit FileRegistry(const DataDeps& deps) : deps_(deps), shared_(deps) {}

  // The inode's FileData, created from SQLite if needed. Pair with Release.
  Result<std::shared_ptr<FileData>> Acquire(uint64_t ino);
  // Forgets the FileData when nobody uses it and it holds no uncommitted data.
  void Release(const std::shared_ptr<FileData>& fd);
  // The FileData if one exists (no reference taken).
  std::shared_ptr<FileData> Find(uint64_t ino);
  // Removes the inode's FileData (the inode was purged).
  void Drop(uint64_t ino);

  StagingBudget* budget() { return &shared_.budget; }
  // REQUIRES: called once, before any FileData commits (Uploader's constructor).
  void SetUploadHook(std::function<void()> hook) { shared_.on_queued = std::move(hook); }

 private:
  struct Entry {
    std::shared_ptr<FileData> fd;
    int users = 0;
  };
  const DataDeps deps_;
  DataShared shared_;
  std::mutex mu_;
  std::unordered_map<uint64_t, Entry> files_;  // guarded by mu_
};

}  // namespace shardfs::fs
