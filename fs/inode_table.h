// InodeTable: the kernel's lookup counts (fuse_lowlevel.h, forget). Each
// entry reply (lookup, create, mkdir, mknod, symlink, link, readdirplus
// entry) adds one; forget and forget_multi subtract. The root is pinned and
// never counted. An unlinked inode is purged when its count reaches zero
// (METADATA.md §2, nlink = 0 invariant).
//
// Thread-safety: all methods may be called concurrently (mu_).
#pragma once

#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace shardfs::fs {

class InodeTable {
 public:
  void Ref(uint64_t ino, uint64_t n = 1);
  // True when the count reached zero (the kernel forgot the inode).
  bool Unref(uint64_t ino, uint64_t n);
  bool Referenced(uint64_t ino);
  size_t size();

 private:
  std::mutex mu_;
  std::unordered_map<uint64_t, uint64_t> counts_;  // guarded by mu_
};

}  // namespace shardfs::fs
