// MetaStore: directory entries: lookup, create, link, unlink, rmdir, rename
// and readdir (METADATA.md §2 "dentries"). See meta_store.h.
#include <linux/fs.h>  // RENAME_NOREPLACE, RENAME_EXCHANGE
#include <sys/stat.h>

#include "fs/meta_store.h"
#include "fs/meta_util.h"

namespace shardfs::fs {
namespace {

Status CheckName(std::string_view name) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != name.npos) {
    return PosixError(EINVAL, "bad name");
  }
  if (name.size() > kMaxNameLen) return PosixError(ENAMETOOLONG, "name");
  return Status::OK();
}

}  // namespace

Result<std::optional<uint64_t>> MetaStore::LookupInoLocked(uint64_t parent,
                                                           std::string_view name) {
  ASSIGN_OR_RETURN(Stmt * s, db_->Cached("SELECT ino FROM dentries WHERE parent = ? AND name = ?"));
  s->Bind(1, static_cast<int64_t>(parent)).BindBlob(2, AsBytes(name));
  ASSIGN_OR_RETURN(bool row, s->Step());
  std::optional<uint64_t> ino;
  if (row) ino = s->ColumnInt(0);
  s->Reset();
  return ino;
}

Result<InodeAttr> MetaStore::Lookup(uint64_t parent, std::string_view name) {
  if (name.size() > kMaxNameLen) return PosixError(ENAMETOOLONG, "lookup");
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto ino, LookupInoLocked(parent, name));
  if (!ino) return PosixError(ENOENT, "lookup");
  ASSIGN_OR_RETURN(auto a, LoadAttrLocked(*ino));
  if (!a) return Status::Corruption("dentry points to missing inode " + std::to_string(*ino));
  return *a;
}

Result<InodeAttr> MetaStore::CreateNode(uint64_t parent, std::string_view name,
                                        const NewNode& node, int64_t now_ns) {
  RETURN_IF_ERROR(CheckName(name));
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto txn, BeginLocked());
  ASSIGN_OR_RETURN(auto pa, LoadAttrLocked(parent));
  if (!pa) return PosixError(ENOENT, "create: parent");
  if (!S_ISDIR(pa->mode)) return PosixError(ENOTDIR, "create: parent");
  if (pa->nlink == 0) return PosixError(ENOENT, "create in a removed directory");
  ASSIGN_OR_RETURN(auto existing, LookupInoLocked(parent, name));
  if (existing) return PosixError(EEXIST, "create");
  const bool is_dir = S_ISDIR(node.mode);
  RETURN_IF_ERROR(RunCached(
      db_.get(),
      "INSERT INTO inodes (mode, uid, gid, nlink, size, rdev, atime_ns, mtime_ns, ctime_ns, "
      "target) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
      [&](Stmt& s) {
        s.Bind(1, int64_t{node.mode}).Bind(2, int64_t{node.uid}).Bind(3, int64_t{node.gid});
        s.Bind(4, int64_t{is_dir ? 2 : 1}).Bind(5, static_cast<int64_t>(node.target.size()));
        s.Bind(6, static_cast<int64_t>(node.rdev)).Bind(7, now_ns).Bind(8, now_ns);
        s.Bind(9, now_ns);
        if (S_ISLNK(node.mode)) {
          s.BindBlob(10, AsBytes(node.target));
        } else {
          s.BindNull(10);
        }
      }));
  const uint64_t ino = db_->LastInsertRowid();
  RETURN_IF_ERROR(RunCached(db_.get(),
                            "INSERT INTO dentries (parent, name, ino) VALUES (?, ?, ?)",
                            [&](Stmt& s) {
                              s.Bind(1, static_cast<int64_t>(parent)).BindBlob(2, AsBytes(name));
                              s.Bind(3, static_cast<int64_t>(ino));
                            }));
  if (is_dir) RETURN_IF_ERROR(SetNlinkLocked(parent, +1, now_ns));
  RETURN_IF_ERROR(TouchDirLocked(parent, now_ns));
  ASSIGN_OR_RETURN(auto a, LoadAttrLocked(ino));
  RETURN_IF_ERROR(txn->Commit());
  return *a;
}

Result<InodeAttr> MetaStore::Link(uint64_t ino, uint64_t new_parent, std::string_view new_name,
                                  int64_t now_ns) {
  RETURN_IF_ERROR(CheckName(new_name));
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto txn, BeginLocked());
  ASSIGN_OR_RETURN(auto a, LoadAttrLocked(ino));
  if (!a) return PosixError(ENOENT, "link: source");
  if (S_ISDIR(a->mode)) return PosixError(EPERM, "link: directory");
  if (a->nlink == 0) return PosixError(ENOENT, "link: source was removed");
  ASSIGN_OR_RETURN(auto pa, LoadAttrLocked(new_parent));
  if (!pa) return PosixError(ENOENT, "link: parent");
  if (!S_ISDIR(pa->mode)) return PosixError(ENOTDIR, "link: parent");
  ASSIGN_OR_RETURN(auto existing, LookupInoLocked(new_parent, new_name));
  if (existing) return PosixError(EEXIST, "link");
  RETURN_IF_ERROR(RunCached(db_.get(),
                            "INSERT INTO dentries (parent, name, ino) VALUES (?, ?, ?)",
                            [&](Stmt& s) {
                              s.Bind(1, static_cast<int64_t>(new_parent));
                              s.BindBlob(2, AsBytes(new_name)).Bind(3, static_cast<int64_t>(ino));
                            }));
  RETURN_IF_ERROR(SetNlinkLocked(ino, +1, now_ns));
  RETURN_IF_ERROR(TouchDirLocked(new_parent, now_ns));
  ASSIGN_OR_RETURN(auto after, LoadAttrLocked(ino));
  RETURN_IF_ERROR(txn->Commit());
  return *after;
}

Result<Unlinked> MetaStore::Unlink(uint64_t parent, std::string_view name, int64_t now_ns) {
  if (name.size() > kMaxNameLen) return PosixError(ENAMETOOLONG, "unlink");
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto txn, BeginLocked());
  ASSIGN_OR_RETURN(auto ino, LookupInoLocked(parent, name));
  if (!ino) return PosixError(ENOENT, "unlink");
  ASSIGN_OR_RETURN(auto a, LoadAttrLocked(*ino));
  if (!a) return Status::Corruption("unlink: dangling dentry");
  if (S_ISDIR(a->mode)) return PosixError(EISDIR, "unlink: directory");
  RETURN_IF_ERROR(RunCached(db_.get(), "DELETE FROM dentries WHERE parent = ? AND name = ?",
                            [&](Stmt& s) {
                              s.Bind(1, static_cast<int64_t>(parent)).BindBlob(2, AsBytes(name));
                            }));
  RETURN_IF_ERROR(SetNlinkLocked(*ino, -1, now_ns));
  RETURN_IF_ERROR(TouchDirLocked(parent, now_ns));
  RETURN_IF_ERROR(txn->Commit());
  return Unlinked{*ino, a->nlink - 1};
}

Result<Unlinked> MetaStore::Rmdir(uint64_t parent, std::string_view name, int64_t now_ns) {
  if (name.size() > kMaxNameLen) return PosixError(ENAMETOOLONG, "rmdir");
  if (name == ".") return PosixError(EINVAL, "rmdir .");
  if (name == "..") return PosixError(ENOTEMPTY, "rmdir ..");
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto txn, BeginLocked());
  ASSIGN_OR_RETURN(auto ino, LookupInoLocked(parent, name));
  if (!ino) return PosixError(ENOENT, "rmdir");
  ASSIGN_OR_RETURN(auto a, LoadAttrLocked(*ino));
  if (!a) return Status::Corruption("rmdir: dangling dentry");
  if (!S_ISDIR(a->mode)) return PosixError(ENOTDIR, "rmdir");
  {
    ASSIGN_OR_RETURN(Stmt * s, db_->Cached("SELECT 1 FROM dentries WHERE parent = ? LIMIT 1"));
    s->Bind(1, static_cast<int64_t>(*ino));
    ASSIGN_OR_RETURN(bool has_child, s->Step());
    s->Reset();
    if (has_child) return PosixError(ENOTEMPTY, "rmdir");
  }
  RETURN_IF_ERROR(RunCached(db_.get(), "DELETE FROM dentries WHERE parent = ? AND name = ?",
                            [&](Stmt& s) {
                              s.Bind(1, static_cast<int64_t>(parent)).BindBlob(2, AsBytes(name));
                            }));
  RETURN_IF_ERROR(RunCached(db_.get(), "UPDATE inodes SET nlink = 0, ctime_ns = ? WHERE ino = ?",
                            [&](Stmt& s) { s.Bind(1, now_ns).Bind(2, static_cast<int64_t>(*ino)); }));
  RETURN_IF_ERROR(SetNlinkLocked(parent, -1, now_ns));
  RETURN_IF_ERROR(TouchDirLocked(parent, now_ns));
  RETURN_IF_ERROR(txn->Commit());
  return Unlinked{*ino, 0};
}

Result<Unlinked> MetaStore::Rename(uint64_t parent, std::string_view name, uint64_t new_parent,
                                   std::string_view new_name, unsigned flags, int64_t now_ns) {
  if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) return PosixError(EINVAL, "rename flags");
  if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE)) {
    return PosixError(EINVAL, "rename: NOREPLACE with EXCHANGE");
  }
  if (name.size() > kMaxNameLen) return PosixError(ENAMETOOLONG, "rename");
  RETURN_IF_ERROR(CheckName(new_name));
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto txn, BeginLocked());
  ASSIGN_OR_RETURN(auto src, LookupInoLocked(parent, name));
  if (!src) return PosixError(ENOENT, "rename: source");
  ASSIGN_OR_RETURN(auto sa, LoadAttrLocked(*src));
  ASSIGN_OR_RETURN(auto npa, LoadAttrLocked(new_parent));
  if (!sa || !npa) return PosixError(ENOENT, "rename");
  if (!S_ISDIR(npa->mode)) return PosixError(ENOTDIR, "rename: target parent");
  ASSIGN_OR_RETURN(auto dst, LookupInoLocked(new_parent, new_name));
  std::optional<InodeAttr> da;
  if (dst) {
    ASSIGN_OR_RETURN(da, LoadAttrLocked(*dst));
    if (!da) return Status::Corruption("rename: dangling dentry");
  }
  if (flags & RENAME_NOREPLACE && dst) return PosixError(EEXIST, "rename");
  if (flags & RENAME_EXCHANGE && !dst) return PosixError(ENOENT, "rename exchange: target");
  if (parent == new_parent && name == new_name) return Unlinked{};
  if (dst && *dst == *src) return Unlinked{};  // two links to one inode: POSIX no-op

  // A directory must not move below itself: walk up from the new parent.
  auto below = [&](uint64_t dir_ino, uint64_t start) -> Result<bool> {
    uint64_t cur = start;
    for (int depth = 0; cur != kRootIno && depth < 100000; ++depth) {
      if (cur == dir_ino) return true;
      ASSIGN_OR_RETURN(Stmt * s, db_->Cached("SELECT parent FROM dentries WHERE ino = ? LIMIT 1"));
      s->Bind(1, static_cast<int64_t>(cur));
      ASSIGN_OR_RETURN(bool row, s->Step());
      uint64_t up = row ? s->ColumnInt(0) : kRootIno;
      s->Reset();
      cur = up;
    }
    return cur == dir_ino;
  };
  const bool src_dir = S_ISDIR(sa->mode);
  const bool dst_dir = da && S_ISDIR(da->mode);
  if (src_dir && parent != new_parent) {
    ASSIGN_OR_RETURN(bool loop, below(*src, new_parent));
    if (loop) return PosixError(EINVAL, "rename: directory into its own subtree");
  }
  if ((flags & RENAME_EXCHANGE) && dst_dir && parent != new_parent) {
    ASSIGN_OR_RETURN(bool loop, below(*dst, parent));
    if (loop) return PosixError(EINVAL, "rename exchange: directory into its own subtree");
  }

  auto delete_entry = [&](uint64_t p, std::string_view n) {
    return RunCached(db_.get(), "DELETE FROM dentries WHERE parent = ? AND name = ?",
                     [&](Stmt& s) { s.Bind(1, static_cast<int64_t>(p)).BindBlob(2, AsBytes(n)); });
  };
  auto insert_entry = [&](uint64_t p, std::string_view n, uint64_t ino) {
    return RunCached(db_.get(), "INSERT INTO dentries (parent, name, ino) VALUES (?, ?, ?)",
                     [&](Stmt& s) {
                       s.Bind(1, static_cast<int64_t>(p)).BindBlob(2, AsBytes(n));
                       s.Bind(3, static_cast<int64_t>(ino));
                     });
  };

  Unlinked replaced;
  if (flags & RENAME_EXCHANGE) {
    RETURN_IF_ERROR(delete_entry(parent, name));
    RETURN_IF_ERROR(delete_entry(new_parent, new_name));
    RETURN_IF_ERROR(insert_entry(parent, name, *dst));
    RETURN_IF_ERROR(insert_entry(new_parent, new_name, *src));
    if (parent != new_parent && src_dir != dst_dir) {
      // One directory changed parents: move one ".." link across.
      int64_t d = src_dir ? 1 : -1;
      RETURN_IF_ERROR(SetNlinkLocked(new_parent, d, now_ns));
      RETURN_IF_ERROR(SetNlinkLocked(parent, -d, now_ns));
    }
    RETURN_IF_ERROR(TouchCtimeLocked(*dst, now_ns));
  } else {
    if (dst) {
      if (src_dir && !dst_dir) return PosixError(ENOTDIR, "rename: directory over non-directory");
      if (!src_dir && dst_dir) return PosixError(EISDIR, "rename: non-directory over directory");
      if (dst_dir) {
        ASSIGN_OR_RETURN(Stmt * s, db_->Cached("SELECT 1 FROM dentries WHERE parent = ? LIMIT 1"));
        s->Bind(1, static_cast<int64_t>(*dst));
        ASSIGN_OR_RETURN(bool has_child, s->Step());
        s->Reset();
        if (has_child) return PosixError(ENOTEMPTY, "rename: target directory not empty");
      }
      RETURN_IF_ERROR(delete_entry(new_parent, new_name));
      if (dst_dir) {
        RETURN_IF_ERROR(RunCached(db_.get(),
                                  "UPDATE inodes SET nlink = 0, ctime_ns = ? WHERE ino = ?",
                                  [&](Stmt& s) {
                                    s.Bind(1, now_ns).Bind(2, static_cast<int64_t>(*dst));
                                  }));
        RETURN_IF_ERROR(SetNlinkLocked(new_parent, -1, now_ns));
        replaced = Unlinked{*dst, 0};
      } else {
        RETURN_IF_ERROR(SetNlinkLocked(*dst, -1, now_ns));
        replaced = Unlinked{*dst, da->nlink - 1};
      }
    }
    RETURN_IF_ERROR(delete_entry(parent, name));
    RETURN_IF_ERROR(insert_entry(new_parent, new_name, *src));
    if (src_dir && parent != new_parent) {
      RETURN_IF_ERROR(SetNlinkLocked(parent, -1, now_ns));
      RETURN_IF_ERROR(SetNlinkLocked(new_parent, +1, now_ns));
    }
  }
  RETURN_IF_ERROR(TouchCtimeLocked(*src, now_ns));
  RETURN_IF_ERROR(TouchDirLocked(parent, now_ns));
  if (new_parent != parent) RETURN_IF_ERROR(TouchDirLocked(new_parent, now_ns));
  RETURN_IF_ERROR(txn->Commit());
  return replaced;
}

Result<std::vector<DirEntry>> MetaStore::ReadDir(uint64_t dir, uint64_t after_cookie,
                                                 size_t max) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Stmt * s, db_->Cached(
                                 "SELECT d.cookie, d.name, d.ino, i.mode FROM dentries d "
                                 "JOIN inodes i ON i.ino = d.ino WHERE d.parent = ? AND "
                                 "d.cookie > ? ORDER BY d.cookie LIMIT ?"));
  s->Bind(1, static_cast<int64_t>(dir)).Bind(2, static_cast<int64_t>(after_cookie));
  s->Bind(3, static_cast<int64_t>(max));
  std::vector<DirEntry> out;
  while (true) {
    auto row = s->Step();
    if (!row.ok()) {
      s->Reset();
      return row.status();
    }
    if (!*row) break;
    DirEntry e;
    e.cookie = s->ColumnInt(0);
    e.name = BlobToString(s->ColumnBlob(1));
    e.ino = s->ColumnInt(2);
    e.mode = static_cast<uint32_t>(s->ColumnInt(3));
    out.push_back(std::move(e));
  }
  s->Reset();
  return out;
}

Result<uint64_t> MetaStore::ParentOf(uint64_t dir) {
  if (dir == kRootIno) return kRootIno;
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Stmt * s, db_->Cached("SELECT parent FROM dentries WHERE ino = ? LIMIT 1"));
  s->Bind(1, static_cast<int64_t>(dir));
  ASSIGN_OR_RETURN(bool row, s->Step());
  uint64_t p = row ? s->ColumnInt(0) : kRootIno;
  s->Reset();
  return p;
}

}  // namespace shardfs::fs
