// MetaStore: the mount's metadata in SQLite (METADATA.md §2). Inodes,
// directory entries, xattrs, symlink targets, the segment map and the upload
// and deletion queues, each multi-row change in one transaction.
//
// POSIX errors come back as Status with the errno the kernel must see
// (Status::err()), e.g. ENOTEMPTY from Rmdir. Permission checks are the
// kernel's (default_permissions); this layer checks structure only.
//
// Batching (METADATA.md §7a): changes are grouped into one SQLite
// transaction ("the batch") that commits at the next commit point -- a
// file's data commit (flush, fsync, release: CommitFile), Sync, anything
// whose caller removes or moves staging files on return, the deletion
// queue being read -- or kBatchWindow after it opened, whichever is first.
// Each method's own changes still apply all or nothing (a savepoint). A
// change that returned is visible to every later call at once; a crash
// loses at most the last kBatchWindow of changes that were not followed by
// a commit point (as a local file system loses its uncommitted journal).
// If a batch fails to commit, the store refuses further changes (EIO).
//
// Thread-safety: every method may be called from any thread; each takes mu_,
// the one SQLite connection's lock, for its whole duration. Lock order:
// FileRegistry::mu_ -> FileData::mu_ -> MetaStore::mu_ (METADATA.md §7).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "lib/sqlite_db.h"
#include "lib/status.h"
#include "lib/wal_checkpointer.h"

namespace shardfs::fs {

inline constexpr uint64_t kRootIno = 1;
inline constexpr size_t kMaxNameLen = 255;
// The longest a metadata change waits for its commit (see Batching below).
inline constexpr std::chrono::milliseconds kBatchWindow{5};

int64_t NowNs();

// A POSIX error with context: Status with err() == `err`.
Status PosixError(int err, std::string_view context);

struct InodeAttr {
  uint64_t ino = 0;
  uint64_t generation = 1;
  uint32_t mode = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t nlink = 0;
  uint64_t size = 0;
  uint64_t rdev = 0;
  int64_t atime_ns = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  uint32_t flags = 0;
};

// What CreateNode makes: a file, directory, symlink (target set) or node.
struct NewNode {
  uint32_t mode = 0;  // including the S_IFMT type bits, umask already applied
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint64_t rdev = 0;
  std::string target;  // symlinks only
};

// Attribute changes for SetAttr; unset fields are left alone. ctime is set
// to `now` whenever anything changes.
struct AttrChange {
  std::optional<uint32_t> mode;  // permission bits only (07777)
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  std::optional<uint64_t> size;  // metadata only: FileData trims segments
  std::optional<int64_t> atime_ns;
  std::optional<int64_t> mtime_ns;
};

struct DirEntry {
  uint64_t cookie = 0;
  std::string name;
  uint64_t ino = 0;
  uint32_t mode = 0;
};

// The result of removing a name: the inode it named and its link count now.
struct Unlinked {
  uint64_t ino = 0;
  uint64_t nlink = 0;
};

struct SegmentRow {
  uint32_t idx = 0;
  uint64_t len = 0;
  std::vector<uint8_t> locator;  // encoded Locator; empty = none
  std::optional<std::vector<uint8_t>> inline_data;
  std::optional<uint64_t> staging_id;
  int64_t seq = 0;
};

// One segment change committed by FileData (METADATA.md §3).
struct SegmentUpdate {
  enum class Kind { kStaged, kInline, kSetLen, kRemove };
  Kind kind = Kind::kStaged;
  uint32_t idx = 0;
  uint64_t len = 0;
  uint64_t staging_id = 0;            // kStaged
  std::vector<uint8_t> inline_data;   // kInline
};

struct QueuedUpload {
  uint64_t ino = 0;
  uint32_t idx = 0;
  uint64_t staging_id = 0;
  int64_t seq = 0;
  uint64_t len = 0;
};

struct QueuedDeletion {
  int64_t id = 0;
  std::vector<uint8_t> locator;
  int attempts = 0;
};

class MetaStore {
 public:
  // Opens (creating) the database at `path`, runs migrations, creates the
  // root (owned by uid/gid) if absent, and fixes the volume's segment size
  // on first use. InvalidArgument if the database belongs to another volume
  // or `config_segment_size` is smaller than the volume's.
  static Result<std::unique_ptr<MetaStore>> Open(const std::string& path,
                                                 const std::string& volume_id,
                                                 uint64_t config_segment_size,
                                                 uint32_t uid, uint32_t gid);
  MetaStore(const MetaStore&) = delete;
  MetaStore& operator=(const MetaStore&) = delete;
  // Commits the open batch (see "batching" below), then closes.
  ~MetaStore();

  uint64_t segment_size() const { return segment_size_; }

  // --- inodes (meta_inodes.cc)
  Result<InodeAttr> GetAttr(uint64_t ino);
  Result<InodeAttr> SetAttr(uint64_t ino, const AttrChange& change, int64_t now_ns);
  // Sets atime only (relatime-like; no ctime change).
  Status TouchAtime(uint64_t ino, int64_t atime_ns);
  Result<std::string> ReadLink(uint64_t ino);
  // Deletes an inode with nlink 0: its rows, xattrs and segments; queues its
  // locators for deletion. Returns the staging ids the caller must remove.
  // No-op (empty) if the inode still has links or is gone.
  Result<std::vector<uint64_t>> PurgeIfUnlinked(uint64_t ino);
  // Mount start (METADATA.md §8): purges every nlink-0 inode and upload rows
  // without staging; returns staging ids to remove.
  Result<std::vector<uint64_t>> Recover();
  Result<uint64_t> CountInodes();
  // Commits the batch of changes now instead of at its window's end.
  Status CommitPending();
  // Durability barrier for fsync(2) when nothing is left to commit: commits
  // the batch and makes every earlier commit survive a power loss
  // (synchronous=NORMAL does not fsync the WAL at commit). Writes
  // meta.synced_ns.
  Status Sync();

  // --- directories (meta_dirs.cc)
  Result<InodeAttr> Lookup(uint64_t parent, std::string_view name);
  // EEXIST if the name exists, ENOTDIR if parent is not a directory.
  Result<InodeAttr> CreateNode(uint64_t parent, std::string_view name, const NewNode& node,
                               int64_t now_ns);
  // EPERM for a directory.
  Result<InodeAttr> Link(uint64_t ino, uint64_t new_parent, std::string_view new_name,
                         int64_t now_ns);
  // EISDIR for a directory.
  Result<Unlinked> Unlink(uint64_t parent, std::string_view name, int64_t now_ns);
  // ENOTDIR, ENOTEMPTY.
  Result<Unlinked> Rmdir(uint64_t parent, std::string_view name, int64_t now_ns);
  // flags: 0, RENAME_NOREPLACE or RENAME_EXCHANGE. Returns the inode that
  // lost its name by replacement (ino 0 if none).
  Result<Unlinked> Rename(uint64_t parent, std::string_view name, uint64_t new_parent,
                          std::string_view new_name, unsigned flags, int64_t now_ns);
  // Entries with cookie > after_cookie, in cookie order, at most `max`.
  Result<std::vector<DirEntry>> ReadDir(uint64_t dir, uint64_t after_cookie, size_t max);
  Result<uint64_t> ParentOf(uint64_t dir);

  // --- xattrs (meta_xattrs.cc); flags are XATTR_CREATE / XATTR_REPLACE
  Result<std::vector<uint8_t>> GetXattr(uint64_t ino, std::string_view name);
  Status SetXattr(uint64_t ino, std::string_view name, std::span<const uint8_t> value,
                  int flags, int64_t now_ns);
  Result<std::vector<std::string>> ListXattr(uint64_t ino);
  Status RemoveXattr(uint64_t ino, std::string_view name, int64_t now_ns);

  // --- segments and queues (meta_segments.cc)
  Result<std::optional<SegmentRow>> GetSegment(uint64_t ino, uint32_t idx);
  Result<std::vector<SegmentRow>> ListSegments(uint64_t ino);
  // One transaction: applies `updates`, removes every segment with idx >=
  // `remove_from` (if set), and sets the inode's size, mtime and ctime.
  // Returns staging ids no longer referenced (the caller removes the files
  // after this returns). `durable` commits with synchronous=FULL (fsync).
  Result<std::vector<uint64_t>> CommitFile(uint64_t ino, uint64_t size, int64_t mtime_ns,
                                           int64_t ctime_ns,
                                           const std::vector<SegmentUpdate>& updates,
                                           std::optional<uint32_t> remove_from,
                                           bool durable);
  // Up to `max` queued uploads, oldest first, skipping (ino, idx) in `busy`.
  Result<std::vector<QueuedUpload>> NextUploads(
      size_t max, const std::vector<std::pair<uint64_t, uint32_t>>& busy);
  Result<uint64_t> CountPendingUploads();
  // Records an upload of (ino, idx) taken at `seq`. If the row is still at
  // `seq` and `still_dirty` is false: the locator becomes current, staging is
  // released (returns true: the caller moves the staging file to the cache)
  // and the previous locator is queued for deletion. Otherwise the new
  // locator is queued for deletion and false is returned.
  Result<bool> FinishUpload(uint64_t ino, uint32_t idx, int64_t seq,
                            std::span<const uint8_t> locator, bool still_dirty);
  Result<std::vector<QueuedDeletion>> NextDeletions(size_t max, int64_t after_id);
  Status FinishDeletion(int64_t id);
  Status FailDeletion(int64_t id);
  // Every staging id referenced by a segment row.
  Result<std::vector<uint64_t>> ReferencedStagingIds();

 private:
  MetaStore(std::unique_ptr<Db> db, uint64_t segment_size)
      : db_(std::move(db)), segment_size_(segment_size) {}

  // --- batching (meta_batch.cc; SyncLocked in meta_inodes.cc beside the
  // meta table's helpers); REQUIRES: mu_ held.
  // A savepoint inside the batch, opening the batch first if none is open.
  Result<std::unique_ptr<Txn>> BeginLocked();
  // Commits the open batch, if any; `durable` then syncs (SyncLocked), even
  // with no batch open.
  Status CommitBatchLocked(bool durable);
  // REQUIRES: no batch open. Makes every commit so far survive a power loss.
  Status SyncLocked();
  // The batch is lost (`why`): refuse every later change. Returns `why`.
  Status StopLocked(Status why);
  // StopLocked if SQLite rolled the open batch back by itself; else OK.
  Status CheckBatchLocked();
  // The committer thread: commits a batch kBatchWindow after it opened.
  void CommitterLoop();

  // REQUIRES: mu_ held. Helpers shared by the files above.
  Result<std::optional<InodeAttr>> LoadAttrLocked(uint64_t ino);
  Result<std::optional<uint64_t>> LookupInoLocked(uint64_t parent, std::string_view name);
  Status SetNlinkLocked(uint64_t ino, int64_t delta, int64_t now_ns);
  Status TouchDirLocked(uint64_t dir, int64_t now_ns);
  Status TouchCtimeLocked(uint64_t ino, int64_t now_ns);
  Status QueueDeletionLocked(std::span<const uint8_t> locator);
  // Deletes segment rows of `ino` with from <= idx < until (queueing their
  // locators for deletion); returns their staging ids.
  Result<std::vector<uint64_t>> RemoveSegmentsLocked(uint64_t ino, uint32_t from,
                                                     uint32_t until = UINT32_MAX);
  Result<std::vector<uint64_t>> PurgeLocked(uint64_t ino);

  std::mutex mu_;
  std::unique_ptr<Db> db_;  // guarded by mu_
  const uint64_t segment_size_;
  // guarded by mu_: the batch.
  bool batch_open_ = false;
  std::chrono::steady_clock::time_point batch_opened_;
  Status broken_;  // set when a batch failed to commit: no more changes
  bool stopping_ = false;
  bool committer_idle_ = false;  // waiting with no batch open: needs a notify
  std::condition_variable batch_cv_;  // wakes the committer
  std::thread committer_;
  // Declared after db_, so it stops before db_ closes (the close then
  // checkpoints the rest itself).
  std::unique_ptr<WalCheckpointer> checkpointer_;
};

}  // namespace shardfs::fs
