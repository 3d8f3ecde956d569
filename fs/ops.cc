// FUSE low-level callbacks: thin op_<name> functions that call Volume
// (which returns Status/Result) and reply exactly once. fuse_reply_err
// takes a positive errno (errno_map.cc). Nothing throws through a callback:
// each body runs in Guard(), which maps bad_alloc to ENOMEM and anything
// else to EIO with a log line (STYLE.md §3).
#include "fs/ops.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>

#include <cstring>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <vector>

#include "fs/errno_map.h"
#include "fs/volume.h"
#include "lib/log.h"

namespace shardfs::fs {
namespace {

constexpr size_t kMaxIo = 1 << 20;  // max_write; reads are capped by the kernel

Volume* V(fuse_req_t req) { return static_cast<Volume*>(fuse_req_userdata(req)); }
FileHandle* H(struct fuse_file_info* fi) { return reinterpret_cast<FileHandle*>(fi->fh); }

template <typename Fn>
void Guard(fuse_req_t req, const char* op, Fn&& fn) {
  try {
    fn();
  } catch (const std::bad_alloc&) {
    LOG_ERROR("{}: out of memory", op);
    fuse_reply_err(req, ENOMEM);
  } catch (const std::exception& e) {
    LOG_ERROR("{}: unexpected exception: {}", op, e.what());
    fuse_reply_err(req, EIO);
  } catch (...) {
    LOG_ERROR("{}: unexpected exception", op);
    fuse_reply_err(req, EIO);
  }
}

void ReplyError(fuse_req_t req, const char* op, const Status& st) {
  const int err = ToErrno(st);
  // Expected POSIX outcomes (ENOENT on lookup...) are not worth a log line.
  if (err == EIO) LOG_ERROR("{}: {}", op, st.ToString());
  else LOG_DEBUG("{}: {}", op, st.ToString());
  fuse_reply_err(req, err);
}

void FillStat(const InodeAttr& a, struct stat* st) {
  std::memset(st, 0, sizeof(*st));
  st->st_ino = a.ino;
  st->st_mode = a.mode;
  st->st_nlink = a.nlink;
  st->st_uid = a.uid;
  st->st_gid = a.gid;
  st->st_rdev = a.rdev;
  st->st_size = static_cast<off_t>(a.size);
  st->st_blksize = 128 * 1024;
  st->st_blocks = static_cast<blkcnt_t>((a.size + 511) / 512);
  st->st_atim = {static_cast<time_t>(a.atime_ns / 1000000000), a.atime_ns % 1000000000};
  st->st_mtim = {static_cast<time_t>(a.mtime_ns / 1000000000), a.mtime_ns % 1000000000};
  st->st_ctim = {static_cast<time_t>(a.ctime_ns / 1000000000), a.ctime_ns % 1000000000};
}

fuse_entry_param EntryOf(fuse_req_t req, const InodeAttr& a) {
  fuse_entry_param e;
  std::memset(&e, 0, sizeof(e));
  e.ino = a.ino;
  e.generation = a.generation;
  e.attr_timeout = V(req)->attr_timeout();
  e.entry_timeout = V(req)->attr_timeout();
  FillStat(a, &e.attr);
  return e;
}

Caller CallerOf(fuse_req_t req, bool need_groups) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  Caller c;
  c.uid = ctx->uid;
  c.gid = ctx->gid;
  c.umask = ctx->umask;
  if (need_groups) {
    gid_t list[64];
    int n = fuse_req_getgroups(req, 64, list);
    for (int i = 0; i < n && i < 64; ++i) c.groups.push_back(list[i]);
  }
  return c;
}

void op_init(void* userdata, struct fuse_conn_info* conn) {
  auto* v = static_cast<Volume*>(userdata);
  // We apply the umask ourselves (fuse_req_ctx()->umask), so the kernel
  // must not apply it first.
  if (conn->capable & FUSE_CAP_DONT_MASK) conn->want |= FUSE_CAP_DONT_MASK;
  if (v->options().writeback_cache && (conn->capable & FUSE_CAP_WRITEBACK_CACHE)) {
    conn->want |= FUSE_CAP_WRITEBACK_CACHE;
  }
  // The kernel clears setuid/setgid on write and chown (it sends a setattr).
  conn->want &= ~FUSE_CAP_HANDLE_KILLPRIV;
  if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC) conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  conn->max_write = kMaxIo;
  conn->max_readahead = kMaxIo;
  conn->max_background = 64;
  conn->congestion_threshold = 48;
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Guard(req, "lookup", [&] {
    auto a = V(req)->Lookup(parent, name);
    if (!a.ok()) {
      if (a.status().err() == ENOENT) {
        // ino 0: the kernel caches the negative entry (passthrough_hp).
        fuse_entry_param e;
        std::memset(&e, 0, sizeof(e));
        e.entry_timeout = V(req)->attr_timeout();
        fuse_reply_entry(req, &e);
        return;
      }
      return ReplyError(req, "lookup", a.status());
    }
    fuse_entry_param e = EntryOf(req, *a);
    fuse_reply_entry(req, &e);
  });
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  try {
    V(req)->Forget(ino, nlookup);
  } catch (...) {
    LOG_ERROR("forget: unexpected exception");
  }
  fuse_reply_none(req);
}

void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data* forgets) {
  try {
    for (size_t i = 0; i < count; ++i) V(req)->Forget(forgets[i].ino, forgets[i].nlookup);
  } catch (...) {
    LOG_ERROR("forget_multi: unexpected exception");
  }
  fuse_reply_none(req);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info*) {
  Guard(req, "getattr", [&] {
    auto a = V(req)->GetAttr(ino);
    if (!a.ok()) return ReplyError(req, "getattr", a.status());
    struct stat st;
    FillStat(*a, &st);
    fuse_reply_attr(req, &st, V(req)->attr_timeout());
  });
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
                struct fuse_file_info* fi) {
  Guard(req, "setattr", [&] {
    auto a = V(req)->SetAttr(ino, *attr, to_set, fi ? H(fi) : nullptr);
    if (!a.ok()) return ReplyError(req, "setattr", a.status());
    struct stat st;
    FillStat(*a, &st);
    fuse_reply_attr(req, &st, V(req)->attr_timeout());
  });
}

void ReplyNewEntry(fuse_req_t req, const char* op, const Result<InodeAttr>& a) {
  if (!a.ok()) return ReplyError(req, op, a.status());
  fuse_entry_param e = EntryOf(req, *a);
  fuse_reply_entry(req, &e);
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
  Guard(req, "mknod", [&] {
    if (!S_ISREG(mode) && !S_ISFIFO(mode) && !S_ISSOCK(mode) && !S_ISCHR(mode) &&
        !S_ISBLK(mode)) {
      return ReplyError(req, "mknod", PosixError(EINVAL, "mknod type"));
    }
    ReplyNewEntry(req, "mknod",
                  V(req)->MakeNode(CallerOf(req, mode & S_ISGID), parent, name, mode, rdev, ""));
  });
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  Guard(req, "mkdir", [&] {
    ReplyNewEntry(req, "mkdir", V(req)->MakeNode(CallerOf(req, false), parent, name,
                                                 S_IFDIR | (mode & 07777), 0, ""));
  });
}

void op_symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
  Guard(req, "symlink", [&] {
    if (std::strlen(target) >= 4096) {
      return ReplyError(req, "symlink", PosixError(ENAMETOOLONG, "symlink target"));
    }
    ReplyNewEntry(req, "symlink",
                  V(req)->MakeNode(CallerOf(req, false), parent, name, S_IFLNK, 0, target));
  });
}

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t new_parent, const char* new_name) {
  Guard(req, "link", [&] { ReplyNewEntry(req, "link", V(req)->Link(ino, new_parent, new_name)); });
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Guard(req, "unlink", [&] {
    Status st = V(req)->Unlink(parent, name);
    fuse_reply_err(req, st.ok() ? 0 : ToErrno(st));
  });
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Guard(req, "rmdir", [&] {
    Status st = V(req)->Rmdir(parent, name);
    fuse_reply_err(req, st.ok() ? 0 : ToErrno(st));
  });
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent,
               const char* new_name, unsigned int flags) {
  Guard(req, "rename", [&] {
    Status st = V(req)->Rename(parent, name, new_parent, new_name, flags);
    fuse_reply_err(req, st.ok() ? 0 : ToErrno(st));
  });
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
  Guard(req, "readlink", [&] {
    auto t = V(req)->ReadLink(ino);
    if (!t.ok()) return ReplyError(req, "readlink", t.status());
    fuse_reply_readlink(req, t->c_str());
  });
}

void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info* fi) {
  Guard(req, "open", [&] {
    auto h = V(req)->OpenFile(ino, fi->flags);
    if (!h.ok()) return ReplyError(req, "open", h.status());
    fi->fh = reinterpret_cast<uint64_t>(*h);
    // This mount is the volume's only writer (the lease), so pages the
    // kernel cached from an earlier open are still valid.
    fi->keep_cache = 1;
    if (fuse_reply_open(req, fi) != 0) V(req)->Release(*h);  // interrupted
  });
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
               struct fuse_file_info* fi) {
  Guard(req, "create", [&] {
    Volume* v = V(req);
    auto a = v->MakeNode(CallerOf(req, mode & S_ISGID), parent, name, S_IFREG | (mode & 07777), 0,
                         "");
    if (!a.ok() && a.status().err() == EEXIST && !(fi->flags & O_EXCL)) {
      a = v->Lookup(parent, name);  // lost a race with another creator: open it
    }
    if (!a.ok()) return ReplyError(req, "create", a.status());
    auto h = v->OpenFile(a->ino, fi->flags);
    if (!h.ok()) {
      v->Forget(a->ino, 1);
      return ReplyError(req, "create", h.status());
    }
    fi->fh = reinterpret_cast<uint64_t>(*h);
    fi->keep_cache = 1;
    fuse_entry_param e = EntryOf(req, *a);
    if (fuse_reply_create(req, &e, fi) != 0) {
      v->Release(*h);
      v->Forget(a->ino, 1);
    }
  });
}

// A read buffer per worker thread, reused: a fresh vector per request was
// zero-filled and (being past the mmap threshold) mapped and unmapped each
// time, which cost more CPU than the read itself. Threads come and go with
// the FUSE loop's idle limit, and the buffer with them.
std::span<uint8_t> ReadBuffer(size_t size) {
  thread_local std::unique_ptr<uint8_t[]> buf;
  thread_local size_t cap = 0;
  if (cap < size) {
    buf.reset(new uint8_t[size]);  // not value-initialized: no memset
    cap = size;
  }
  return {buf.get(), size};
}

void op_read(fuse_req_t req, fuse_ino_t, size_t size, off_t off, struct fuse_file_info* fi) {
  Guard(req, "read", [&] {
    std::span<uint8_t> buf = ReadBuffer(std::min(size, kMaxIo * 4));
    auto n = V(req)->Read(H(fi), static_cast<uint64_t>(off), buf);
    if (!n.ok()) return ReplyError(req, "read", n.status());
    fuse_reply_buf(req, reinterpret_cast<const char*>(buf.data()), *n);
  });
}

void op_write(fuse_req_t req, fuse_ino_t, const char* data, size_t size, off_t off,
              struct fuse_file_info* fi) {
  Guard(req, "write", [&] {
    auto n = V(req)->Write(H(fi), static_cast<uint64_t>(off),
                           {reinterpret_cast<const uint8_t*>(data), size});
    if (!n.ok()) return ReplyError(req, "write", n.status());
    fuse_reply_write(req, *n);
  });
}

void op_flush(fuse_req_t req, fuse_ino_t, struct fuse_file_info* fi) {
  Guard(req, "flush", [&] {
    Status st = V(req)->Flush(H(fi));
    fuse_reply_err(req, st.ok() ? 0 : ToErrno(st));
  });
}

void op_fsync(fuse_req_t req, fuse_ino_t, int datasync, struct fuse_file_info* fi) {
  Guard(req, "fsync", [&] {
    Status st = V(req)->Fsync(H(fi), datasync != 0);
    fuse_reply_err(req, st.ok() ? 0 : ToErrno(st));
  });
}

void op_release(fuse_req_t req, fuse_ino_t, struct fuse_file_info* fi) {
  Guard(req, "release", [&] {
    V(req)->Release(H(fi));
    fuse_reply_err(req, 0);
  });
}

void op_fsyncdir(fuse_req_t req, fuse_ino_t, int, struct fuse_file_info*) {
  // Every directory change is its own SQLite transaction, durable against a
  // crash of this process when it returned (WAL, synchronous=NORMAL); the
  // barrier makes them survive a power loss too, as fsync of a directory
  // does on ext4.
  Guard(req, "fsyncdir", [&] {
    Status st = V(req)->SyncMetadata();
    fuse_reply_err(req, st.ok() ? 0 : ToErrno(st));
  });
}

void DoReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus) {
  Volume* v = V(req);
  std::vector<char> buf(size);
  size_t pos = 0;
  auto add = [&](const char* name, const InodeAttr* attr, uint64_t ino_for_dot, uint32_t mode,
                 off_t next) -> bool {
    size_t need;
    if (plus) {
      fuse_entry_param e;
      std::memset(&e, 0, sizeof(e));
      if (attr) {
        e = EntryOf(req, *attr);
      } else {  // "." and "..": no entry, so no lookup reference
        e.attr.st_ino = ino_for_dot;
        e.attr.st_mode = mode;
      }
      need = fuse_add_direntry_plus(req, buf.data() + pos, size - pos, name, &e, next);
    } else {
      struct stat st;
      std::memset(&st, 0, sizeof(st));
      st.st_ino = attr ? attr->ino : ino_for_dot;
      st.st_mode = attr ? attr->mode : mode;
      need = fuse_add_direntry(req, buf.data() + pos, size - pos, name, &st, next);
    }
    if (need > size - pos) return false;
    pos += need;
    return true;
  };
  if (off < 1 && !add(".", nullptr, ino, S_IFDIR, 1)) goto done;
  if (off < 2) {
    auto parent = v->ParentOf(ino);
    if (!parent.ok()) return ReplyError(req, "readdir", parent.status());
    if (!add("..", nullptr, *parent, S_IFDIR, 2)) goto done;
  }
  {
    uint64_t after = off > 2 ? static_cast<uint64_t>(off) - 3 : 0;
    while (true) {
      auto entries = v->ReadDir(ino, after, 128);
      if (!entries.ok()) return ReplyError(req, "readdir", entries.status());
      if (entries->empty()) break;
      for (const DirEntry& d : *entries) {
        const off_t next = static_cast<off_t>(d.cookie + 3);
        if (plus) {
          auto a = v->GetAttr(d.ino);
          if (!a.ok()) continue;  // removed meanwhile
          if (!add(d.name.c_str(), &*a, 0, 0, next)) goto done;
          v->CountLookup(d.ino);
        } else {
          InodeAttr a;
          a.ino = d.ino;
          a.mode = d.mode;
          if (!add(d.name.c_str(), &a, 0, 0, next)) goto done;
        }
        after = d.cookie;
      }
    }
  }
done:
  fuse_reply_buf(req, buf.data(), pos);
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                struct fuse_file_info*) {
  Guard(req, "readdir", [&] { DoReadDir(req, ino, size, off, false); });
}

void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info*) {
  Guard(req, "readdirplus", [&] { DoReadDir(req, ino, size, off, true); });
}

void op_statfs(fuse_req_t req, fuse_ino_t) {
  Guard(req, "statfs", [&] {
    auto s = V(req)->StatFs();
    if (!s.ok()) return ReplyError(req, "statfs", s.status());
    struct statvfs st;
    std::memset(&st, 0, sizeof(st));
    st.f_bsize = 4096;
    st.f_frsize = 4096;
    st.f_blocks = s->total_bytes / 4096;
    st.f_bfree = s->free_bytes / 4096;
    st.f_bavail = s->free_bytes / 4096;
    st.f_files = s->inodes + (1ull << 32);
    st.f_ffree = 1ull << 32;
    st.f_favail = 1ull << 32;
    st.f_namemax = kMaxNameLen;
    fuse_reply_statfs(req, &st);
  });
}

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value,
                 size_t size, int flags) {
  Guard(req, "setxattr", [&] {
    Status st = V(req)->SetXattr(ino, name, {reinterpret_cast<const uint8_t*>(value), size}, flags);
    fuse_reply_err(req, st.ok() ? 0 : ToErrno(st));
  });
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  Guard(req, "getxattr", [&] {
    auto v = V(req)->GetXattr(ino, name);
    if (!v.ok()) return ReplyError(req, "getxattr", v.status());
    if (size == 0) return (void)fuse_reply_xattr(req, v->size());
    if (v->size() > size) return (void)fuse_reply_err(req, ERANGE);
    fuse_reply_buf(req, reinterpret_cast<const char*>(v->data()), v->size());
  });
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  Guard(req, "listxattr", [&] {
    auto names = V(req)->ListXattr(ino);
    if (!names.ok()) return ReplyError(req, "listxattr", names.status());
    std::string out;
    for (const std::string& n : *names) {
      out += n;
      out.push_back('\0');
    }
    if (size == 0) return (void)fuse_reply_xattr(req, out.size());
    if (out.size() > size) return (void)fuse_reply_err(req, ERANGE);
    fuse_reply_buf(req, out.data(), out.size());
  });
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  Guard(req, "removexattr", [&] {
    Status st = V(req)->RemoveXattr(ino, name);
    fuse_reply_err(req, st.ok() ? 0 : ToErrno(st));
  });
}

void op_access(fuse_req_t req, fuse_ino_t ino, int) {
  // default_permissions: the kernel checks modes itself; this only confirms
  // the inode exists (and is reached when the kernel asks anyway).
  Guard(req, "access", [&] {
    auto a = V(req)->GetAttr(ino);
    fuse_reply_err(req, a.ok() ? 0 : ToErrno(a.status()));
  });
}

void op_fallocate(fuse_req_t req, fuse_ino_t, int mode, off_t off, off_t len,
                  struct fuse_file_info* fi) {
  Guard(req, "fallocate", [&] {
    if (off < 0 || len <= 0) return (void)fuse_reply_err(req, EINVAL);
    Status st = V(req)->Fallocate(H(fi), mode, off, len);
    fuse_reply_err(req, st.ok() ? 0 : ToErrno(st));
  });
}

void op_lseek(fuse_req_t req, fuse_ino_t, off_t off, int whence, struct fuse_file_info* fi) {
  Guard(req, "lseek", [&] {
    if (off < 0) return (void)fuse_reply_err(req, ENXIO);
    auto r = V(req)->Lseek(H(fi), static_cast<uint64_t>(off), whence);
    if (!r.ok()) return ReplyError(req, "lseek", r.status());
    fuse_reply_lseek(req, static_cast<off_t>(*r));
  });
}

struct fuse_lowlevel_ops MakeOps() {
  struct fuse_lowlevel_ops ops;
  std::memset(&ops, 0, sizeof(ops));
  ops.init = op_init;
  ops.lookup = op_lookup;
  ops.forget = op_forget;
  ops.forget_multi = op_forget_multi;
  ops.getattr = op_getattr;
  ops.setattr = op_setattr;
  ops.readlink = op_readlink;
  ops.mknod = op_mknod;
  ops.mkdir = op_mkdir;
  ops.unlink = op_unlink;
  ops.rmdir = op_rmdir;
  ops.symlink = op_symlink;
  ops.rename = op_rename;
  ops.link = op_link;
  ops.open = op_open;
  ops.read = op_read;
  ops.write = op_write;
  ops.flush = op_flush;
  ops.release = op_release;
  ops.fsync = op_fsync;
  ops.readdir = op_readdir;
  ops.readdirplus = op_readdirplus;
  ops.fsyncdir = op_fsyncdir;
  ops.statfs = op_statfs;
  ops.setxattr = op_setxattr;
  ops.getxattr = op_getxattr;
  ops.listxattr = op_listxattr;
  ops.removexattr = op_removexattr;
  ops.access = op_access;
  ops.create = op_create;
  ops.fallocate = op_fallocate;
  ops.lseek = op_lseek;
  // No getlk/setlk/flock: the kernel then handles POSIX and BSD locks
  // locally, as for a local filesystem (the lease makes us the only mount).
  return ops;
}

}  // namespace

const struct fuse_lowlevel_ops& FuseOps() {
  static const struct fuse_lowlevel_ops kOps = MakeOps();
  return kOps;
}

}  // namespace shardfs::fs
