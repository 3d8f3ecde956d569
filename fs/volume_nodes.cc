// Volume: names and attributes: lookup, forget, getattr, setattr, create
// (ownership and umask), link, unlink, rmdir, rename, readlink, readdir.
// See volume.h.
#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>

#include "fs/volume.h"
#include "lib/log.h"

namespace shardfs::fs {

Result<InodeAttr> Volume::Lookup(uint64_t parent, std::string_view name) {
  if (name.size() > kMaxNameLen) return PosixError(ENAMETOOLONG, "lookup");
  ASSIGN_OR_RETURN(InodeAttr a, meta_->Lookup(parent, name));
  inodes_.Ref(a.ino);
  return WithOverlay(a);
}

void Volume::Forget(uint64_t ino, uint64_t n) {
  if (inodes_.Unref(ino, n)) PurgeIfUnused(ino);
}

Result<InodeAttr> Volume::GetAttr(uint64_t ino) {
  ASSIGN_OR_RETURN(InodeAttr a, meta_->GetAttr(ino));
  return WithOverlay(a);
}

Result<InodeAttr> Volume::SetAttr(uint64_t ino, const struct stat& st, int to_set,
                                  FileHandle* fh) {
  const int64_t now = NowNs();
  // The writeback cache's time flush: mtime (and ctime) of a file open for
  // writing, sent around every flush. They go to the open file and are
  // written by its next commit (at the latest its release), which saves a
  // SQLite transaction per small file written (a third of a create's).
  constexpr int kTimes = FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_CTIME;
  if (fh && (to_set & FUSE_SET_ATTR_MTIME) && (to_set & ~kTimes) == 0) {
    const int64_t mtime = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
    const int64_t ctime = (to_set & FUSE_SET_ATTR_CTIME)
                              ? st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec
                              : now;
    fh->file->SetTimes(mtime, ctime);
    return GetAttr(ino);
  }
  if (to_set & FUSE_SET_ATTR_SIZE) {
    ASSIGN_OR_RETURN(InodeAttr cur, meta_->GetAttr(ino));
    if (S_ISDIR(cur.mode)) return PosixError(EISDIR, "truncate a directory");
    if (!S_ISREG(cur.mode)) return PosixError(EINVAL, "truncate a special file");
    std::shared_ptr<FileData> fd;
    if (fh) {
      fd = fh->file;
    } else {
      ASSIGN_OR_RETURN(fd, files_->Acquire(ino));
    }
    Status s = fd->Truncate(static_cast<uint64_t>(st.st_size), now);
    if (!fh) files_->Release(fd);
    RETURN_IF_ERROR(s);
  }
  AttrChange c;
  if (to_set & FUSE_SET_ATTR_MODE) c.mode = st.st_mode;
  if (to_set & FUSE_SET_ATTR_UID) c.uid = st.st_uid;
  if (to_set & FUSE_SET_ATTR_GID) c.gid = st.st_gid;
  if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
    c.atime_ns = now;
  } else if (to_set & FUSE_SET_ATTR_ATIME) {
    c.atime_ns = st.st_atim.tv_sec * 1000000000LL + st.st_atim.tv_nsec;
  }
  if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
    c.mtime_ns = now;
  } else if (to_set & FUSE_SET_ATTR_MTIME) {
    c.mtime_ns = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
  }
  const bool other = c.mode || c.uid || c.gid || c.atime_ns || c.mtime_ns ||
                     (to_set & FUSE_SET_ATTR_CTIME);
  if (other) {
    RETURN_IF_ERROR(meta_->SetAttr(ino, c, now).status());
    if (c.mtime_ns && files_) {
      if (auto fd = files_->Find(ino)) fd->SetMtime(*c.mtime_ns, now);
    }
  }
  return GetAttr(ino);
}

Result<InodeAttr> Volume::MakeNode(const Caller& c, uint64_t parent, std::string_view name,
                                   uint32_t mode, uint64_t rdev, std::string_view target) {
  if (name.size() > kMaxNameLen) return PosixError(ENAMETOOLONG, "create");
  ASSIGN_OR_RETURN(InodeAttr pa, meta_->GetAttr(parent));
  if (!S_ISDIR(pa.mode)) return PosixError(ENOTDIR, "create: parent");
  NewNode n;
  n.uid = c.uid;
  // BSD group semantics under a setgid directory (as ext4): the new node
  // takes the directory's group, and a new directory keeps the setgid bit.
  const bool sgid_parent = pa.mode & S_ISGID;
  n.gid = sgid_parent ? pa.gid : c.gid;
  if (S_ISLNK(mode)) {
    n.mode = S_IFLNK | 0777;
    n.target = std::string(target);
  } else {
    n.mode = (mode & S_IFMT) | (mode & 07777 & ~c.umask);
    if (S_ISDIR(mode) && sgid_parent) n.mode |= S_ISGID;
    // inode_init_owner(): a non-member may not create a setgid file.
    if (!S_ISDIR(mode) && (n.mode & S_ISGID) && (n.mode & S_IXGRP) && c.uid != 0 &&
        !c.InGroup(n.gid)) {
      n.mode &= ~S_ISGID;
    }
  }
  if (S_ISCHR(mode) || S_ISBLK(mode)) n.rdev = rdev;
  ASSIGN_OR_RETURN(InodeAttr a, meta_->CreateNode(parent, name, n, NowNs()));
  inodes_.Ref(a.ino);
  return a;
}

Result<InodeAttr> Volume::Link(uint64_t ino, uint64_t new_parent, std::string_view new_name) {
  if (new_name.size() > kMaxNameLen) return PosixError(ENAMETOOLONG, "link");
  ASSIGN_OR_RETURN(InodeAttr a, meta_->Link(ino, new_parent, new_name, NowNs()));
  inodes_.Ref(a.ino);
  return WithOverlay(a);
}

Status Volume::Unlink(uint64_t parent, std::string_view name) {
  ASSIGN_OR_RETURN(Unlinked u, meta_->Unlink(parent, name, NowNs()));
  if (u.nlink == 0) PurgeIfUnused(u.ino);
  return Status::OK();
}

Status Volume::Rmdir(uint64_t parent, std::string_view name) {
  ASSIGN_OR_RETURN(Unlinked u, meta_->Rmdir(parent, name, NowNs()));
  PurgeIfUnused(u.ino);
  return Status::OK();
}

Status Volume::Rename(uint64_t parent, std::string_view name, uint64_t new_parent,
                      std::string_view new_name, unsigned flags) {
  if (name.size() > kMaxNameLen || new_name.size() > kMaxNameLen) {
    return PosixError(ENAMETOOLONG, "rename");
  }
  ASSIGN_OR_RETURN(Unlinked u, meta_->Rename(parent, name, new_parent, new_name, flags, NowNs()));
  if (u.ino != 0 && u.nlink == 0) PurgeIfUnused(u.ino);
  return Status::OK();
}

Result<std::string> Volume::ReadLink(uint64_t ino) { return meta_->ReadLink(ino); }

Result<std::vector<DirEntry>> Volume::ReadDir(uint64_t dir, uint64_t after_cookie, size_t max) {
  return meta_->ReadDir(dir, after_cookie, max);
}

}  // namespace shardfs::fs
