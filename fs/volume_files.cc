// Volume: open files (read, write, flush, fsync, release, fallocate, lseek),
// extended attributes with the synthesised user.shardfs.status, and statfs.
// See volume.h.
#include <fcntl.h>
#include <linux/falloc.h>

#include <algorithm>
#include <optional>
#include <set>

#include "fs/stripe_health.h"
#include "fs/volume.h"
#include "lib/log.h"

namespace shardfs::fs {
namespace {
constexpr char kStatusXattr[] = "user.shardfs.status";
constexpr int64_t kDayNs = 24LL * 3600 * 1000000000LL;
}  // namespace

Result<FileHandle*> Volume::OpenFile(uint64_t ino, int flags) {
  ASSIGN_OR_RETURN(InodeAttr a, meta_->GetAttr(ino));
  if (S_ISDIR(a.mode)) return PosixError(EISDIR, "open a directory for I/O");
  ASSIGN_OR_RETURN(auto fd, files_->Acquire(ino));
  if ((flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY) {
    Status st = fd->Truncate(0, NowNs());
    if (!st.ok()) {
      files_->Release(fd);
      return st;
    }
  }
  auto* h = new FileHandle;
  h->file = std::move(fd);
  h->flags = flags;
  return h;
}

Result<size_t> Volume::Read(FileHandle* h, uint64_t off, std::span<uint8_t> out) {
  if (!h->atime_done) {
    // relatime: update atime once per open when it is older than the last
    // change or a day old (mount(8), "relatime").
    h->atime_done = true;
    auto a = meta_->GetAttr(h->file->ino());
    const int64_t now = NowNs();
    if (a.ok() && !opts_.read_only &&
        (a->atime_ns <= a->mtime_ns || a->atime_ns <= a->ctime_ns || now - a->atime_ns > kDayNs)) {
      (void)meta_->TouchAtime(h->file->ino(), now);
    }
  }
  return h->file->Read(off, out);
}

Result<size_t> Volume::Write(FileHandle* h, uint64_t off, std::span<const uint8_t> data) {
  // With the writeback cache the kernel resolves O_APPEND offsets itself.
  if ((h->flags & O_APPEND) && !opts_.writeback_cache) off = h->file->GetOverlay().size;
  return h->file->Write(off, data);
}

Status Volume::Flush(FileHandle* h) {
  RETURN_IF_ERROR(h->file->Commit(false));
  uploader_->Kick();
  if (opts_.upload_sync) {
    Status st = uploader_->WaitForFile(h->file->ino(), std::chrono::seconds(opts_.sync_timeout_s));
    if (!st.ok()) {
      LOG_ERROR("upload=sync: {}", st.ToString());
      return PosixError(EIO, "upload=sync: upload not acknowledged");
    }
  }
  return Status::OK();
}

Status Volume::Fsync(FileHandle* h, bool /*datasync*/) {
  RETURN_IF_ERROR(h->file->Commit(true));
  uploader_->Kick();
  if (opts_.upload_sync) {
    Status st = uploader_->WaitForFile(h->file->ino(), std::chrono::seconds(opts_.sync_timeout_s));
    if (!st.ok()) {
      LOG_ERROR("upload=sync: {}", st.ToString());
      return PosixError(EIO, "upload=sync: upload not acknowledged");
    }
  }
  return Status::OK();
}

void Volume::Release(FileHandle* h) {
  Status st = h->file->Commit(false);
  if (!st.ok()) {
    LOG_ERROR("inode {}: committing on close: {}", h->file->ino(), st.ToString());
  }
  uploader_->Kick();
  files_->Release(h->file);
  delete h;
}

Status Volume::Fallocate(FileHandle* h, int mode, uint64_t off, uint64_t len) {
  // Space on the cluster cannot be reserved ahead; sizes can be set.
  if (mode & ~FALLOC_FL_KEEP_SIZE) return PosixError(EOPNOTSUPP, "fallocate mode");
  if (mode & FALLOC_FL_KEEP_SIZE) return Status::OK();
  const uint64_t end = off + len;
  if (end > h->file->GetOverlay().size) return h->file->Truncate(end, NowNs());
  return Status::OK();
}

Result<uint64_t> Volume::Lseek(FileHandle* h, uint64_t off, int whence) {
  if (whence != SEEK_DATA && whence != SEEK_HOLE) return PosixError(EINVAL, "lseek whence");
  return h->file->Seek(off, whence);
}

Result<std::vector<uint8_t>> Volume::GetXattr(uint64_t ino, std::string_view name) {
  if (name == kStatusXattr) {
    ASSIGN_OR_RETURN(std::string s, FileStatus(ino));
    return std::vector<uint8_t>(s.begin(), s.end());
  }
  return meta_->GetXattr(ino, name);
}

Status Volume::SetXattr(uint64_t ino, std::string_view name, std::span<const uint8_t> value,
                        int flags) {
  if (name == kStatusXattr) return PosixError(EPERM, "user.shardfs.status is read-only");
  return meta_->SetXattr(ino, name, value, flags, NowNs());
}

Result<std::vector<std::string>> Volume::ListXattr(uint64_t ino) {
  // user.shardfs.status is not listed, so cp -a and rsync -X do not copy it.
  return meta_->ListXattr(ino);
}

Status Volume::RemoveXattr(uint64_t ino, std::string_view name) {
  if (name == kStatusXattr) return PosixError(EPERM, "user.shardfs.status is read-only");
  return meta_->RemoveXattr(ino, name, NowNs());
}

Result<std::string> Volume::FileStatus(uint64_t ino) {
  ASSIGN_OR_RETURN(InodeAttr a, GetAttr(ino));
  if (!S_ISREG(a.mode)) return std::string("stored in metadata");
  if (auto fd = files_ ? files_->Find(ino) : nullptr; fd && fd->IsDirty()) {
    return std::string("pending upload: changes not yet committed (file open)");
  }
  ASSIGN_OR_RETURN(auto rows, meta_->ListSegments(ino));
  size_t pending = 0, inline_rows = 0, stored = 0;
  std::optional<StripeHealth> worst;
  std::set<NodeId> up;
  bool nodes_known = false;
  for (const SegmentRow& r : rows) {
    if (r.staging_id) {
      ++pending;
    } else if (r.inline_data) {
      ++inline_rows;
    } else if (!r.locator.empty()) {
      ++stored;
      Locator loc;
      Reader rd(r.locator.data(), r.locator.size());
      if (!DecodeLocator(&rd, &loc)) return std::string("damaged: undecodable locator");
      if (!nodes_known) {
        for (const NodeInfo& ni : CachedNodes()) {
          if (ni.up) up.insert(ni.id);
        }
        nodes_known = true;
      }
      StripeHealth h = AssessStripe(loc, up);
      if (!worst || WorseThan(h, *worst)) worst = h;
    }
  }
  if (uploader_) {
    if (auto lost = uploader_->DamagedSegments(ino); !lost.empty()) {
      return "damaged: staging data of " + std::to_string(lost.size()) + " of " +
             std::to_string(rows.size()) + " segments is missing (not uploadable)";
    }
  }
  if (pending) {
    return "pending upload: " + std::to_string(pending) + " of " + std::to_string(rows.size()) +
           " segments";
  }
  if (!worst) return std::string(inline_rows ? "stored inline in metadata" : "stored (empty)");
  return DescribeHealth(*worst) + " (" + std::to_string(stored) + " segments)";
}

Result<Volume::FsStats> Volume::StatFs() {
  FsStats s;
  uint64_t raw_total = 0, raw_free = 0;
  for (const NodeInfo& n : CachedNodes()) {
    if (!n.up) continue;
    raw_total += n.capacity_bytes;
    raw_free += n.free_bytes;
  }
  // Each byte costs n/k bytes of raw space.
  const uint64_t k = std::max(1, cfg_.k), n = std::max(1, cfg_.k + cfg_.m);
  s.total_bytes = raw_total / n * k;
  s.free_bytes = raw_free / n * k;
  ASSIGN_OR_RETURN(s.inodes, meta_->CountInodes());
  return s;
}

}  // namespace shardfs::fs
