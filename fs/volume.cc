// Volume setup, recovery and teardown (METADATA.md §1, §8). See volume.h.
#include "fs/volume.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <set>

#include "lib/log.h"

namespace shardfs::fs {
namespace {

Status MkdirP(const std::string& path, mode_t mode) {
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    cur = path.substr(0, pos);
    if (cur.empty()) continue;
    if (::mkdir(cur.c_str(), mode) != 0 && errno != EEXIST) {
      return Status::FromErrno(errno, "mkdir " + cur);
    }
  }
  return Status::OK();
}

}  // namespace

bool Caller::InGroup(uint32_t g) const {
  return g == gid || std::find(groups.begin(), groups.end(), g) != groups.end();
}

Result<std::string> VolumeIdFor(const Key& master) {
  ASSIGN_OR_RETURN(Key k, DeriveKey(master, {}, "shardfs volume id"));
  static const char kHex[] = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 8; ++i) {
    id.push_back(kHex[k[i] >> 4]);
    id.push_back(kHex[k[i] & 15]);
  }
  return id;
}

std::string DefaultStateDir(const std::string& volume_id) {
  std::string base;
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg) {
    base = xdg;
  } else {
    const char* home = std::getenv("HOME");
    if (!home || !*home) {
      struct passwd* pw = ::getpwuid(::getuid());
      home = pw ? pw->pw_dir : "/tmp";
    }
    base = std::string(home) + "/.local/share";
  }
  return base + "/shardfs/" + volume_id;
}

Result<std::unique_ptr<Volume>> Volume::Open(const MountOptions& opts, const ClientConfig& cfg,
                                             const Key& master, const std::string& state_dir,
                                             const std::string& volume_id) {
  RETURN_IF_ERROR(MkdirP(state_dir, 0700));
  std::unique_ptr<Volume> v(new Volume(opts, cfg, master));
  ASSIGN_OR_RETURN(v->lease_, Lease::Acquire(state_dir + "/lease", volume_id));
  ASSIGN_OR_RETURN(v->meta_, MetaStore::Open(state_dir + "/meta.db", volume_id, cfg.segment_size,
                                             ::getuid(), ::getgid()));
  ASSIGN_OR_RETURN(v->cache_,
                   ReadCache::Open(state_dir + "/cache", opts.cache_size, opts.disk_reserve));
  // Staging may take the read cache's space: that data is on the cluster.
  auto reserve = std::make_shared<const DiskReserve>(
      opts.disk_reserve, [cache = v->cache_.get()](uint64_t n) { return cache->Shrink(n); },
      DiskReserve::Refusals::kWarn);
  ASSIGN_OR_RETURN(v->staging_, Staging::Open(state_dir + "/staging", std::move(reserve)));

  // Recovery (METADATA.md §8): orphaned inodes, then unreferenced staging.
  ASSIGN_OR_RETURN(auto purged, v->meta_->Recover());
  for (uint64_t id : purged) v->staging_->Remove(id);
  ASSIGN_OR_RETURN(auto referenced, v->meta_->ReferencedStagingIds());
  std::set<uint64_t> keep(referenced.begin(), referenced.end());
  for (uint64_t id : keep) v->staging_->ReserveAbove(id);
  ASSIGN_OR_RETURN(auto on_disk, v->staging_->List());
  size_t orphans = 0;
  for (uint64_t id : on_disk) {
    if (!keep.count(id)) {
      v->staging_->Remove(id);
      ++orphans;
    }
  }
  if (orphans) LOG_INFO("recovery: removed {} uncommitted staging files", orphans);
  ASSIGN_OR_RETURN(uint64_t pending, v->meta_->CountPendingUploads());
  if (pending) LOG_INFO("{} segments pending upload; resuming", pending);
  return v;
}

Status Volume::StartNetwork() {
  auto cluster = ClusterClient::Connect(cfg_, master_);
  if (!cluster.ok()) return cluster.status().With("connecting to the cluster");
  cluster_ = std::move(cluster).value();
  fetcher_ = std::make_unique<SegmentFetcher>(cluster_.get(), cache_.get(), 2);
  DataDeps deps;
  deps.meta = meta_.get();
  deps.staging = staging_.get();
  deps.fetcher = fetcher_.get();
  deps.segment_size = meta_->segment_size();
  files_ = std::make_unique<FileRegistry>(deps);
  UploadPacing pacing;
  if (!opts_.upload_sync) pacing.max_delay = std::chrono::seconds(opts_.upload_delay_s);
  uploader_ = std::make_unique<Uploader>(meta_.get(), staging_.get(), cache_.get(),
                                         cluster_.get(), files_.get(), opts_.upload_inflight,
                                         pacing);
  uploader_->Start();
  return Status::OK();
}

void Volume::Stop() {
  if (uploader_) uploader_->Stop();
}

Volume::~Volume() {
  Stop();
  // Reverse order of construction: users of the cluster first.
  uploader_.reset();
  files_.reset();
  fetcher_.reset();
  cluster_.reset();
}

void Volume::PurgeIfUnused(uint64_t ino) {
  if (inodes_.Referenced(ino)) return;
  auto staging = meta_->PurgeIfUnlinked(ino);
  if (!staging.ok()) {
    LOG_ERROR("purging inode {}: {}", ino, staging.status().ToString());
    return;
  }
  for (uint64_t id : *staging) staging_->Remove(id);
  if (files_) files_->Drop(ino);
  if (!staging->empty() && uploader_) uploader_->Kick();
}

std::vector<NodeInfo> Volume::CachedNodes() {
  std::lock_guard lock(nodes_mu_);
  const auto now = std::chrono::steady_clock::now();
  if (cluster_ && (nodes_.empty() || now - nodes_at_ > std::chrono::seconds(5))) {
    nodes_ = cluster_->Nodes();
    nodes_at_ = now;
  }
  return nodes_;
}

InodeAttr Volume::WithOverlay(InodeAttr a) {
  if (!files_ || !S_ISREG(a.mode)) return a;
  if (auto fd = files_->Find(a.ino)) {
    FileData::Overlay o = fd->GetOverlay();
    a.size = o.size;
    if (o.dirty) {
      a.mtime_ns = o.mtime_ns;
      a.ctime_ns = std::max(a.ctime_ns, o.ctime_ns);
    }
  }
  return a;
}

}  // namespace shardfs::fs
