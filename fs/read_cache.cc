// Local read cache (METADATA.md §5). See read_cache.h.
#include "fs/read_cache.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <vector>

namespace shardfs::fs {
namespace {
std::atomic<uint64_t> tmp_counter{0};
}  // namespace

Result<std::unique_ptr<ReadCache>> ReadCache::Open(const std::string& dir, uint64_t limit,
                                                   uint64_t reserve) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::FromErrno(errno, "mkdir " + dir);
  }
  std::unique_ptr<ReadCache> c(new ReadCache(dir, limit, reserve));
  DIR* d = ::opendir(dir.c_str());
  if (!d) return Status::FromErrno(errno, "opendir " + dir);
  ::closedir(d);
  std::lock_guard lock(c->mu_);
  c->marker_seen_ = c->MarkerStampLocked();
  c->ScanLocked(/*remove_leftovers=*/true);
  return c;
}

int64_t ReadCache::MarkerStampLocked() const {
  struct stat st;
  if (::stat(marker_.c_str(), &st) != 0) return 0;
  // cache drop renames a new file in: a new inode even within one ctime tick.
  return (st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec) * 31 +
         static_cast<int64_t>(st.st_ino);
}

void ReadCache::RescanIfDroppedLocked() {
  const int64_t stamp = MarkerStampLocked();
  if (stamp == marker_seen_) return;
  marker_seen_ = stamp;
  ScanLocked(/*remove_leftovers=*/false);
}

void ReadCache::ScanLocked(bool remove_leftovers) {
  lru_.clear();
  entries_.clear();
  used_ = 0;
  DIR* d = ::opendir(dir_.c_str());
  if (!d) return;  // gone: an empty cache; Insert recreates nothing, reads miss
  struct Found {
    std::string name;
    uint64_t size;
    int64_t mtime;
  };
  std::vector<Found> found;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    std::string path = dir_ + "/" + name;
    struct stat st;
    if (!StripeId::FromHex(name) || ::stat(path.c_str(), &st) != 0) {
      if (remove_leftovers) ::unlink(path.c_str());  // a leftover tmp file from a crash
      continue;
    }
    found.push_back({name, static_cast<uint64_t>(st.st_size),
                     st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec});
  }
  ::closedir(d);
  std::sort(found.begin(), found.end(),
            [](const Found& a, const Found& b) { return a.mtime < b.mtime; });
  for (const Found& f : found) AddLocked(f.name, f.size);  // newest ends at the front
  EvictLocked();
}

void ReadCache::AddLocked(const std::string& name, uint64_t size) {
  auto it = entries_.find(name);
  if (it != entries_.end()) {
    used_ -= it->second.size;
    lru_.erase(it->second.lru_pos);
    entries_.erase(it);
  }
  lru_.push_front(name);
  entries_[name] = Entry{size, lru_.begin()};
  used_ += size;
}

void ReadCache::TouchLocked(const std::string& name) {
  auto it = entries_.find(name);
  if (it == entries_.end()) return;
  lru_.splice(lru_.begin(), lru_, it->second.lru_pos);
}

void ReadCache::EvictLocked() {
  while (used_ > limit_ && EvictOneLocked()) {
  }
}

bool ReadCache::EvictOneLocked() {
  if (lru_.empty()) return false;
  const std::string& victim = lru_.back();
  auto it = entries_.find(victim);
  used_ -= it->second.size;
  ::unlink((dir_ + "/" + victim).c_str());
  entries_.erase(it);
  lru_.pop_back();
  return true;
}

uint64_t ReadCache::Shrink(uint64_t bytes) {
  std::lock_guard lock(mu_);
  const uint64_t before = used_;
  while (before - used_ < bytes && EvictOneLocked()) {
  }
  return before - used_;
}

Result<size_t> ReadCache::Read(const StripeId& stripe, uint64_t off, std::span<uint8_t> out) {
  const std::string name = stripe.Hex();
  {
    std::lock_guard lock(mu_);
    if (!entries_.count(name)) return Status::NotFound("not cached");
    TouchLocked(name);
  }
  int fd = ::open((dir_ + "/" + name).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno != ENOENT) return Status::FromErrno(errno, "open cache " + name);
    // Evicted meanwhile, or removed from outside (shardctl cache drop):
    // forget a stale entry so it stops counting towards the limit.
    std::lock_guard lock(mu_);
    RescanIfDroppedLocked();
    auto it = entries_.find(name);
    struct stat st;
    if (it != entries_.end() && ::stat((dir_ + "/" + name).c_str(), &st) != 0) {
      used_ -= it->second.size;
      lru_.erase(it->second.lru_pos);
      entries_.erase(it);
    }
    return Status::NotFound("evicted");
  }
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(fd, out.data() + done, out.size() - done, off + done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return Status::FromErrno(err, "read cache " + name);
    }
    if (n == 0) break;
    done += n;
  }
  ::close(fd);
  return done;
}

Status ReadCache::Insert(const StripeId& stripe, std::span<const uint8_t> data) {
  if (data.size() > limit_) return Status::OK();
  const std::string path = PathOf(stripe);
  const std::string tmp = dir_ + "/.tmp." + std::to_string(::getpid()) + "." +
                          std::to_string(tmp_counter.fetch_add(1));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno(errno, "create " + tmp);
  // The cache is optional: rather than eat into the metadata's reserve, it
  // gives up older entries, or this one.
  if (!reserve_.Claim(fd, data.size(), tmp).ok()) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return Status::OK();
  }
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return Status::FromErrno(err, "write " + tmp);
    }
    done += n;
  }
  ::close(fd);
  // No fsync: a cache file lost in a power cut is refetched; a torn one is
  // impossible because only complete files are renamed in.
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Status::FromErrno(err, "rename " + tmp);
  }
  std::lock_guard lock(mu_);
  RescanIfDroppedLocked();
  AddLocked(stripe.Hex(), data.size());
  EvictLocked();
  return Status::OK();
}

Status ReadCache::Adopt(const StripeId& stripe, const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Status::FromErrno(errno, "stat " + path);
  if (static_cast<uint64_t>(st.st_size) > limit_) {
    ::unlink(path.c_str());
    return Status::OK();
  }
  if (::rename(path.c_str(), PathOf(stripe).c_str()) != 0) {
    return Status::FromErrno(errno, "rename " + path + " into the cache");
  }
  std::lock_guard lock(mu_);
  RescanIfDroppedLocked();
  AddLocked(stripe.Hex(), st.st_size);
  EvictLocked();
  return Status::OK();
}

void ReadCache::Drop(const StripeId& stripe) {
  const std::string name = stripe.Hex();
  std::lock_guard lock(mu_);
  auto it = entries_.find(name);
  if (it == entries_.end()) return;
  used_ -= it->second.size;
  lru_.erase(it->second.lru_pos);
  entries_.erase(it);
  ::unlink(PathOf(stripe).c_str());
}

uint64_t ReadCache::used_bytes() {
  std::lock_guard lock(mu_);
  RescanIfDroppedLocked();
  return used_;
}

}  // namespace shardfs::fs
