// Per-file segment buffers over staging files (METADATA.md §3, §5, §6).
// See file_data.h.
#include "fs/file_data.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "lib/log.h"

namespace shardfs::fs {
namespace {

Status DecodeLocatorBlob(const std::vector<uint8_t>& blob, Locator* loc) {
  Reader r(blob.data(), blob.size());
  if (!DecodeLocator(&r, loc)) return Status::Corruption("undecodable locator in metadata");
  return Status::OK();
}

}  // namespace

DataShared::DataShared(const DataDeps& deps)
    : budget(deps.staging_limit, [staging = deps.staging](uint64_t id) {
        struct stat st;
        return staging == nullptr || ::stat(staging->PathOf(id).c_str(), &st) == 0;
      }) {}

Result<FileData::Seg*> FileData::LoadSegLocked(uint32_t idx) {
  auto it = segs_.find(idx);
  if (it != segs_.end()) return &it->second;
  Seg s;
  if (uint64_t{idx} * deps_.segment_size >= committed_size_) {
    return &segs_.emplace(idx, std::move(s)).first->second;  // a hole: no row can exist
  }
  ASSIGN_OR_RETURN(auto row, deps_.meta->GetSegment(ino_, idx));
  if (row) {
    s.len = row->len;
    if (row->staging_id) {
      s.src = Seg::Src::kStaging;
      s.staging_id = *row->staging_id;
      s.committed_staging_id = row->staging_id;
    } else if (row->inline_data) {
      s.src = Seg::Src::kInline;
      s.inline_data = std::move(*row->inline_data);
      s.inline_data.resize(s.len);
    } else if (!row->locator.empty()) {
      s.src = Seg::Src::kStored;
      RETURN_IF_ERROR(DecodeLocatorBlob(row->locator, &s.loc));
    } else {
      s.len = 0;
    }
  }
  return &segs_.emplace(idx, std::move(s)).first->second;
}

Status FileData::StageLocked(Seg* s, uint64_t a, uint64_t b) {
  if (s->src == Seg::Src::kStaging) return Status::OK();
  const uint64_t id = deps_.staging->NewId();
  RETURN_IF_ERROR(deps_.staging->Create(id));
  Status st;
  switch (s->src) {
    case Seg::Src::kInline:
      st = deps_.staging->Write(id, 0, std::span(s->inline_data.data(), s->len));
      break;
    case Seg::Src::kStored:
      if (!(a == 0 && b >= s->len)) {  // a write covering it all needs no fetch
        auto data = deps_.fetcher->ReadAll(s->loc);
        if (!data.ok()) {
          st = data.status();
          break;
        }
        size_t n = std::min<size_t>(data->size(), s->len);
        st = deps_.staging->Write(id, 0, std::span(data->data(), n));
        if (st.ok() && n < s->len) st = deps_.staging->Truncate(id, s->len);
      }
      break;
    case Seg::Src::kHole:
    case Seg::Src::kStaging:
      break;
  }
  if (!st.ok()) {
    deps_.staging->Remove(id);
    return st;
  }
  s->src = Seg::Src::kStaging;
  s->staging_id = id;
  s->inline_data.clear();
  s->inline_data.shrink_to_fit();
  s->dirty = true;
  shared_->budget.Set(id, deps_.segment_size);  // at most a segment until committed
  return Status::OK();
}

bool FileData::WriteInlineLocked(Seg* s, uint64_t end, uint64_t in_off,
                                 std::span<const uint8_t> data) {
  if (s->src != Seg::Src::kHole && s->src != Seg::Src::kInline) return false;
  if (std::max(size_, end) > deps_.inline_max) return false;
  const uint64_t new_len = std::max<uint64_t>(s->len, in_off + data.size());
  s->inline_data.resize(new_len);  // a gap past the old end reads as zeros
  std::memcpy(s->inline_data.data() + in_off, data.data(), data.size());
  s->len = new_len;
  s->src = Seg::Src::kInline;
  s->dirty = true;
  return true;
}

Result<size_t> FileData::WriteLocked(uint64_t off, std::span<const uint8_t> data) {
  const uint64_t S = deps_.segment_size;
  size_t done = 0;
  bool filled = false;  // a segment was written up to its end: upload it now
  while (done < data.size()) {
    const uint64_t pos = off + done;
    const uint32_t idx = static_cast<uint32_t>(pos / S);
    const uint64_t in_off = pos % S;
    const size_t n = static_cast<size_t>(std::min<uint64_t>(data.size() - done, S - in_off));
    Status st;
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto seg = LoadSegLocked(idx);
      if (!seg.ok()) {
        st = seg.status();
        break;
      }
      Seg* s = *seg;
      if (idx == 0 && WriteInlineLocked(s, off + data.size(), in_off, data.subspan(done, n))) {
        break;
      }
      st = StageLocked(s, in_off, in_off + n);
      if (st.ok()) st = deps_.staging->Write(s->staging_id, in_off, data.subspan(done, n));
      if (st.ok()) {
        s->len = std::max<uint64_t>(s->len, in_off + n);
        s->dirty = true;
        filled |= in_off + n == S;
        break;
      }
      if (!st.IsNotFound() || s->dirty) break;
      segs_.erase(idx);  // staging moved to the cache meanwhile: reload and retry
    }
    if (!st.ok()) {
      if (done > 0) break;
      return st;
    }
    done += n;
  }
  if (done > 0) {
    size_ = std::max<uint64_t>(size_, off + done);
    mtime_ns_ = ctime_ns_ = NowNs();
    meta_dirty_ = true;
  }
  if (filled) {
    // Early upload (METADATA.md §4): a writer that reached the end of a
    // segment has most likely moved on, so queue what it has. If it comes
    // back, the segment is simply staged and queued again.
    Status st = CommitLocked(false, /*full_only=*/true);
    if (!st.ok()) LOG_WARN("inode {}: early commit: {}", ino_, st.ToString());
  }
  return done;
}

Result<size_t> FileData::Write(uint64_t off, std::span<const uint8_t> data) {
  StagingBudget& budget = shared_->budget;
  if (budget.OverLimit() && off + data.size() > deps_.inline_max) {
    // Backpressure (METADATA.md §4). Queue this file's own full dirty
    // segments first (a random writer's), so the wait is not for data only
    // this writer could release; the budget's stall timeout covers the rest.
    {
      std::lock_guard lock(mu_);
      Status st = CommitLocked(false, /*full_only=*/true);
      if (!st.ok()) LOG_WARN("inode {}: commit before waiting for staging room: {}", ino_,
                             st.ToString());
    }
    budget.WaitForRoom();
  }
  std::lock_guard lock(mu_);
  return WriteLocked(off, data);
}

Result<size_t> FileData::Read(uint64_t off, std::span<uint8_t> out) {
  struct Remote {
    Locator loc;
    uint64_t in_off;
    std::span<uint8_t> dst;
  };
  std::vector<Remote> remote;
  std::vector<Locator> prefetch;
  size_t total;
  {
    std::lock_guard lock(mu_);
    if (off >= size_) return size_t{0};
    total = static_cast<size_t>(std::min<uint64_t>(out.size(), size_ - off));
    const uint64_t S = deps_.segment_size;
    size_t done = 0;
    uint32_t last_idx = 0;
    while (done < total) {
      const uint64_t pos = off + done;
      const uint32_t idx = static_cast<uint32_t>(pos / S);
      const uint64_t in_off = pos % S;
      const size_t n = static_cast<size_t>(std::min<uint64_t>(total - done, S - in_off));
      std::span<uint8_t> dst = out.subspan(done, n);
      last_idx = idx;
      for (int attempt = 0;; ++attempt) {
        ASSIGN_OR_RETURN(Seg * s, LoadSegLocked(idx));
        const size_t avail =
            s->len > in_off ? static_cast<size_t>(std::min<uint64_t>(n, s->len - in_off)) : 0;
        std::fill(dst.begin() + avail, dst.end(), 0);
        if (avail == 0) break;
        if (s->src == Seg::Src::kStaging) {
          auto r = deps_.staging->Read(s->staging_id, in_off, dst.first(avail));
          if (!r.ok() && r.status().IsNotFound() && !s->dirty && attempt == 0) {
            segs_.erase(idx);  // uploaded and moved to the cache meanwhile
            continue;
          }
          if (!r.ok()) return r.status();
          std::fill(dst.begin() + *r, dst.begin() + avail, 0);
        } else if (s->src == Seg::Src::kInline) {
          std::memcpy(dst.data(), s->inline_data.data() + in_off, avail);
        } else if (s->src == Seg::Src::kStored) {
          remote.push_back({s->loc, in_off, dst.first(avail)});
        } else {
          std::fill(dst.begin(), dst.end(), 0);
        }
        break;
      }
      done += n;
    }
    // Sequential reader: fetch the next two stored segments in the background.
    if (off == last_read_end_ && deps_.fetcher) {
      for (uint32_t next = last_idx + 1; next <= last_idx + 2 && uint64_t{next} * S < size_;
           ++next) {
        auto s = LoadSegLocked(next);
        if (s.ok() && (*s)->src == Seg::Src::kStored) prefetch.push_back((*s)->loc);
      }
    }
    last_read_end_ = off + total;
  }
  for (const Remote& r : remote) {
    RETURN_IF_ERROR(deps_.fetcher->Read(r.loc, r.in_off, r.dst));
  }
  for (const Locator& loc : prefetch) deps_.fetcher->Prefetch(loc);
  return total;
}

Status FileData::Truncate(uint64_t size, int64_t now_ns) {
  std::lock_guard lock(mu_);
  const uint64_t S = deps_.segment_size;
  if (size < size_) {
    const uint32_t first_removed = static_cast<uint32_t>((size + S - 1) / S);
    for (auto it = segs_.lower_bound(first_removed); it != segs_.end();) {
      const Seg& s = it->second;
      if (s.src == Seg::Src::kStaging && s.committed_staging_id != s.staging_id) {
        deps_.staging->Remove(s.staging_id);  // never committed: nobody else knows it
        shared_->budget.Remove(s.staging_id);
      }
      it = segs_.erase(it);
    }
    remove_from_ = std::min(remove_from_.value_or(first_removed), first_removed);
    if (size % S != 0) {
      const uint64_t keep = size % S;
      ASSIGN_OR_RETURN(Seg * s, LoadSegLocked(static_cast<uint32_t>(size / S)));
      if (s->len > keep) {
        if (s->src == Seg::Src::kStaging) {
          RETURN_IF_ERROR(deps_.staging->Truncate(s->staging_id, keep));
        } else if (s->src == Seg::Src::kInline) {
          s->inline_data.resize(keep);
        }
        s->len = keep;
        s->dirty = true;
      }
    }
  }
  size_ = size;
  mtime_ns_ = ctime_ns_ = now_ns;
  meta_dirty_ = true;
  return CommitLocked(false);
}

Status FileData::SyncCommittedStagingLocked() {
  // From SQLite, not segs_: a FileData released after a close has nothing
  // loaded, yet its committed segments may still wait in staging.
  ASSIGN_OR_RETURN(auto rows, deps_.meta->ListSegments(ino_));
  for (const SegmentRow& r : rows) {
    if (!r.staging_id) continue;
    Status st = deps_.staging->Sync(*r.staging_id);
    // Gone: uploaded and moved to the cache meanwhile, so stored on the nodes.
    if (!st.ok() && !st.IsNotFound()) return st;
  }
  return Status::OK();
}

Status FileData::CommitLocked(bool durable, bool full_only) {
  bool any_dirty = false;
  for (auto& [idx, s] : segs_) any_dirty |= s.dirty;
  // fsync: staging data committed by earlier closes first, then this commit
  // (synchronous=FULL) or the barrier makes the metadata durable with it.
  if (durable) RETURN_IF_ERROR(SyncCommittedStagingLocked());
  if (!meta_dirty_ && !any_dirty && !remove_from_) {
    return durable ? deps_.meta->Sync() : Status::OK();
  }
  // A file that grew past the inline limit moves segment 0 out of SQLite.
  if (size_ > deps_.inline_max) {
    ASSIGN_OR_RETURN(Seg * s0, LoadSegLocked(0));
    if (s0->src == Seg::Src::kInline) RETURN_IF_ERROR(StageLocked(s0, 0, 0));
  }
  const bool make_inline = size_ <= deps_.inline_max;
  std::vector<SegmentUpdate> updates;
  std::vector<uint64_t> inlined_staging;  // staging files replaced by inline rows
  for (auto& [idx, s] : segs_) {
    if (!s.dirty) continue;
    if (full_only && s.len < deps_.segment_size) continue;
    SegmentUpdate u;
    u.idx = idx;
    u.len = s.len;
    switch (s.src) {
      case Seg::Src::kStaging:
        if (make_inline && idx == 0) {
          ASSIGN_OR_RETURN(auto bytes, deps_.staging->ReadAll(s.staging_id, s.len));
          u.kind = SegmentUpdate::Kind::kInline;
          u.inline_data = std::move(bytes);
          inlined_staging.push_back(s.staging_id);
        } else {
          if (durable) RETURN_IF_ERROR(deps_.staging->Sync(s.staging_id));
          u.kind = SegmentUpdate::Kind::kStaged;
          u.staging_id = s.staging_id;
        }
        break;
      case Seg::Src::kInline:
        u.kind = SegmentUpdate::Kind::kInline;
        u.inline_data.assign(s.inline_data.begin(), s.inline_data.begin() + s.len);
        break;
      case Seg::Src::kStored:
        u.kind = SegmentUpdate::Kind::kSetLen;
        break;
      case Seg::Src::kHole:
        continue;
    }
    updates.push_back(std::move(u));
  }
  if (full_only && updates.empty()) return Status::OK();
  ASSIGN_OR_RETURN(auto released, deps_.meta->CommitFile(ino_, size_, mtime_ns_, ctime_ns_,
                                                         updates, remove_from_, durable));
  committed_size_ = size_;
  for (uint64_t id : released) {
    deps_.staging->Remove(id);
    shared_->budget.Remove(id);
  }
  bool queued = false;
  for (const SegmentUpdate& u : updates) {
    Seg& s = segs_[u.idx];
    s.dirty = false;
    if (u.kind == SegmentUpdate::Kind::kInline) {
      if (s.src == Seg::Src::kStaging) {
        s.src = Seg::Src::kInline;
        s.inline_data = u.inline_data;
      }
      s.committed_staging_id.reset();
    } else if (u.kind == SegmentUpdate::Kind::kStaged) {
      s.committed_staging_id = s.staging_id;
      shared_->budget.Set(s.staging_id, s.len);
      queued = true;
    }
  }
  for (uint64_t id : inlined_staging) {
    deps_.staging->Remove(id);
    shared_->budget.Remove(id);
  }
  meta_dirty_ = false;
  remove_from_.reset();
  if (queued && shared_->on_queued) shared_->on_queued();
  return Status::OK();
}

Status FileData::Commit(bool durable) {
  std::lock_guard lock(mu_);
  return CommitLocked(durable);
}

Result<uint64_t> FileData::Seek(uint64_t off, int whence) {
  std::lock_guard lock(mu_);
  if (off >= size_) return PosixError(ENXIO, "lseek past end");
  const uint64_t S = deps_.segment_size;
  // Data extents [idx*S, idx*S + len), from SQLite overlaid with segs_.
  ASSIGN_OR_RETURN(auto rows, deps_.meta->ListSegments(ino_));
  std::map<uint32_t, uint64_t> lens;
  for (const SegmentRow& r : rows) lens[r.idx] = r.len;
  for (const auto& [idx, s] : segs_) lens[idx] = s.src == Seg::Src::kHole ? 0 : s.len;
  if (whence == SEEK_DATA) {
    for (const auto& [idx, len] : lens) {
      const uint64_t start = uint64_t{idx} * S, end = std::min(start + len, size_);
      if (len > 0 && end > off) return std::max(start, off);
    }
    return PosixError(ENXIO, "lseek SEEK_DATA: no data after offset");
  }
  uint64_t pos = off;
  for (const auto& [idx, len] : lens) {
    const uint64_t start = uint64_t{idx} * S, end = start + len;
    if (len == 0 || end <= pos) continue;
    if (start > pos) break;  // pos is in a hole
    pos = end;
  }
  return std::min(pos, size_);
}

FileData::Overlay FileData::GetOverlay() {
  std::lock_guard lock(mu_);
  return {size_, mtime_ns_, ctime_ns_, meta_dirty_};
}

void FileData::SetMtime(int64_t mtime_ns, int64_t ctime_ns) {
  std::lock_guard lock(mu_);
  mtime_ns_ = mtime_ns;
  ctime_ns_ = ctime_ns;
}

void FileData::SetTimes(int64_t mtime_ns, int64_t ctime_ns) {
  std::lock_guard lock(mu_);
  mtime_ns_ = mtime_ns;
  ctime_ns_ = ctime_ns;
  meta_dirty_ = true;
}

bool FileData::IsDirty() {
  std::lock_guard lock(mu_);
  if (meta_dirty_ || remove_from_) return true;
  for (const auto& [idx, s] : segs_) {
    if (s.dirty) return true;
  }
  return false;
}

bool FileData::SegmentDirtyLocked(uint32_t idx) const {
  auto it = segs_.find(idx);
  return it != segs_.end() && it->second.dirty;
}

Result<std::shared_ptr<FileData>> FileRegistry::Acquire(uint64_t ino) {
  std::lock_guard lock(mu_);
  auto it = files_.find(ino);
  if (it == files_.end()) {
    ASSIGN_OR_RETURN(InodeAttr a, deps_.meta->GetAttr(ino));
    auto fd = std::make_shared<FileData>(ino, deps_, &shared_, a.size, a.mtime_ns, a.ctime_ns);
    it = files_.emplace(ino, Entry{std::move(fd), 0}).first;
  }
  ++it->second.users;
  return it->second.fd;
}

void FileRegistry::Release(const std::shared_ptr<FileData>& fd) {
  std::lock_guard lock(mu_);
  auto it = files_.find(fd->ino());
  if (it == files_.end() || it->second.fd != fd) return;
  if (--it->second.users > 0) return;
  // Nobody else holds it, so its mutex is free: IsDirty cannot block.
  if (!fd->IsDirty()) files_.erase(it);
}

std::shared_ptr<FileData> FileRegistry::Find(uint64_t ino) {
  std::lock_guard lock(mu_);
  auto it = files_.find(ino);
  return it == files_.end() ? nullptr : it->second.fd;
}

void FileRegistry::Drop(uint64_t ino) {
  std::lock_guard lock(mu_);
  files_.erase(ino);
}

}  // namespace shardfs::fs
