// Lookup counts. See inode_table.h.
#include "fs/inode_table.h"

#include "fs/meta_store.h"
#include "lib/log.h"

namespace shardfs::fs {

void InodeTable::Ref(uint64_t ino, uint64_t n) {
  if (ino == kRootIno) return;  // pinned
  std::lock_guard lock(mu_);
  counts_[ino] += n;
}

bool InodeTable::Unref(uint64_t ino, uint64_t n) {
  if (ino == kRootIno) return false;
  std::lock_guard lock(mu_);
  auto it = counts_.find(ino);
  if (it == counts_.end()) {
    LOG_WARN("forget of inode {} that the kernel never looked up", ino);
    return false;
  }
  if (it->second <= n) {
    if (it->second < n) LOG_WARN("forget {} of inode {} with count {}", n, ino, it->second);
    counts_.erase(it);
    return true;
  }
  it->second -= n;
  return false;
}

bool InodeTable::Referenced(uint64_t ino) {
  if (ino == kRootIno) return true;
  std::lock_guard lock(mu_);
  return counts_.count(ino) != 0;
}

size_t InodeTable::size() {
  std::lock_guard lock(mu_);
  return counts_.size();
}

}  // namespace shardfs::fs
