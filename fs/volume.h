// Volume: one mounted volume. Owns the metadata, staging, read cache,
// cluster client, uploader, lookup counts and open files, and implements
// every filesystem operation as a method returning Status/Result; ops.cc
// only translates FUSE requests to these calls and replies.
//
// Setup is split for the daemon's fork (STYLE.md §4 startup order): Open()
// touches only local files (no threads), StartNetwork() starts the threads
// (cluster transport, uploader, prefetch) and must run after daemonizing.
//
// Thread-safety: every operation may be called from any FUSE worker thread.
#pragma once

#include <sys/stat.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "fs/file_data.h"
#include "fs/inode_table.h"
#include "fs/lease.h"
#include "fs/meta_store.h"
#include "fs/options.h"
#include "fs/read_cache.h"
#include "fs/segment_fetcher.h"
#include "fs/staging.h"
#include "fs/upload_queue.h"
#include "lib/client_config.h"
#include "lib/cluster_client.h"
#include "lib/crypto.h"

namespace shardfs::fs {

// Who is asking (from fuse_req_ctx and fuse_req_getgroups).
struct Caller {
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t umask = 022;
  std::vector<uint32_t> groups;  // supplementary groups (may be empty)
  bool InGroup(uint32_t g) const;
};

// An open regular file (fuse_file_info::fh points to one).
struct FileHandle {
  std::shared_ptr<FileData> file;
  int flags = 0;
  bool atime_done = false;
};

// The volume id (METADATA.md §1): 16 hex digits of HKDF(master, "shardfs volume id").
Result<std::string> VolumeIdFor(const Key& master);
// ~/.local/share/shardfs/<volume id> (XDG_DATA_HOME honoured).
std::string DefaultStateDir(const std::string& volume_id);

class Volume {
 public:
  // Takes the lease, opens SQLite, recovers (METADATA.md §8). No threads.
  static Result<std::unique_ptr<Volume>> Open(const MountOptions& opts, const ClientConfig& cfg,
                                              const Key& master, const std::string& state_dir,
                                              const std::string& volume_id);
  ~Volume();
  Volume(const Volume&) = delete;
  Volume& operator=(const Volume&) = delete;

  // Connects to the cluster and starts the uploader and prefetcher.
  Status StartNetwork();
  // Stops the background threads (uploads in flight finish first).
  void Stop();
  // Commits batched metadata changes now (fs/METADATA.md §7a), so another
  // connection (the final snapshot) sees them.
  Status CommitMetadata() { return meta_->CommitPending(); }
  // After fork(): the lease file records the daemon's pid.
  void RecordLeasePid() { lease_->RecordPid(); }

  const MountOptions& options() const { return opts_; }
  double attr_timeout() const { return opts_.attr_timeout; }

  // --- names and attributes (volume_nodes.cc). Entry-returning calls count
  // a kernel lookup reference (the caller must reply with the entry).
  Result<InodeAttr> Lookup(uint64_t parent, std::string_view name);
  void Forget(uint64_t ino, uint64_t n);
  Result<InodeAttr> GetAttr(uint64_t ino);
  // `to_set` is FUSE_SET_ATTR_* bits; `fh` may be null.
  Result<InodeAttr> SetAttr(uint64_t ino, const struct stat& attr, int to_set, FileHandle* fh);
  Result<InodeAttr> MakeNode(const Caller& c, uint64_t parent, std::string_view name,
                             uint32_t mode, uint64_t rdev, std::string_view target);
  Result<InodeAttr> Link(uint64_t ino, uint64_t new_parent, std::string_view new_name);
  Status Unlink(uint64_t parent, std::string_view name);
  Status Rmdir(uint64_t parent, std::string_view name);
  Status Rename(uint64_t parent, std::string_view name, uint64_t new_parent,
                std::string_view new_name, unsigned flags);
  Result<std::string> ReadLink(uint64_t ino);
  Result<std::vector<DirEntry>> ReadDir(uint64_t dir, uint64_t after_cookie, size_t max);
  Result<uint64_t> ParentOf(uint64_t dir) { return meta_->ParentOf(dir); }
  void CountLookup(uint64_t ino) { inodes_.Ref(ino); }
  // fsyncdir: every committed metadata change made durable on disk.
  Status SyncMetadata() { return meta_->Sync(); }

  // --- open files (volume_files.cc)
  Result<FileHandle*> OpenFile(uint64_t ino, int flags);
  Result<size_t> Read(FileHandle* h, uint64_t off, std::span<uint8_t> out);
  Result<size_t> Write(FileHandle* h, uint64_t off, std::span<const uint8_t> data);
  Status Flush(FileHandle* h);
  Status Fsync(FileHandle* h, bool datasync);
  void Release(FileHandle* h);
  Status Fallocate(FileHandle* h, int mode, uint64_t off, uint64_t len);
  Result<uint64_t> Lseek(FileHandle* h, uint64_t off, int whence);

  // --- xattrs, status, statfs (volume_files.cc)
  Result<std::vector<uint8_t>> GetXattr(uint64_t ino, std::string_view name);
  Status SetXattr(uint64_t ino, std::string_view name, std::span<const uint8_t> value, int flags);
  Result<std::vector<std::string>> ListXattr(uint64_t ino);
  Status RemoveXattr(uint64_t ino, std::string_view name);
  // The text of user.shardfs.status.
  Result<std::string> FileStatus(uint64_t ino);
  struct FsStats {
    uint64_t total_bytes = 0;
    uint64_t free_bytes = 0;
    uint64_t inodes = 0;
  };
  Result<FsStats> StatFs();

 private:
  Volume(MountOptions opts, ClientConfig cfg, const Key& master)
      : opts_(std::move(opts)), cfg_(std::move(cfg)), master_(master) {}
  // Removes an unlinked inode nobody references any more.
  void PurgeIfUnused(uint64_t ino);
  std::vector<NodeInfo> CachedNodes();
  // Attributes with the open file's newer size and times.
  InodeAttr WithOverlay(InodeAttr a);

  const MountOptions opts_;
  const ClientConfig cfg_;
  const Key master_;
  std::unique_ptr<Lease> lease_;
  std::unique_ptr<MetaStore> meta_;
  // The cache first: staging's disk reserve may evict from it.
  std::unique_ptr<ReadCache> cache_;
  std::unique_ptr<Staging> staging_;
  std::unique_ptr<ClusterClient> cluster_;
  std::unique_ptr<SegmentFetcher> fetcher_;
  std::unique_ptr<FileRegistry> files_;
  std::unique_ptr<Uploader> uploader_;
  InodeTable inodes_;

  std::mutex nodes_mu_;
  std::vector<NodeInfo> nodes_;  // guarded by nodes_mu_
  std::chrono::steady_clock::time_point nodes_at_{};  // guarded by nodes_mu_
};

}  // namespace shardfs::fs
