// MetaStore: extended attributes (METADATA.md §2 "xattrs"). See meta_store.h.
#include <sys/xattr.h>

#include "fs/meta_store.h"
#include "fs/meta_util.h"

namespace shardfs::fs {
namespace {
// Linux limits: XATTR_NAME_MAX 255, XATTR_SIZE_MAX 64 KiB.
constexpr size_t kMaxXattrName = 255;
constexpr size_t kMaxXattrValue = 65536;
}  // namespace

Result<std::vector<uint8_t>> MetaStore::GetXattr(uint64_t ino, std::string_view name) {
  if (name.size() > kMaxXattrName) return PosixError(ERANGE, "getxattr name");
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Stmt * s, db_->Cached("SELECT value FROM xattrs WHERE ino = ? AND name = ?"));
  s->Bind(1, static_cast<int64_t>(ino)).BindBlob(2, AsBytes(name));
  ASSIGN_OR_RETURN(bool row, s->Step());
  std::vector<uint8_t> v;
  if (row) v = s->ColumnBlob(0);
  s->Reset();
  if (!row) return PosixError(ENODATA, "getxattr");
  return v;
}

Status MetaStore::SetXattr(uint64_t ino, std::string_view name, std::span<const uint8_t> value,
                           int flags, int64_t now_ns) {
  if (name.empty()) return PosixError(EINVAL, "setxattr: empty name");
  if (name.size() > kMaxXattrName) return PosixError(ERANGE, "setxattr name");
  if (value.size() > kMaxXattrValue) return PosixError(E2BIG, "setxattr value");
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto txn, BeginLocked());
  ASSIGN_OR_RETURN(Stmt * s, db_->Cached("SELECT 1 FROM xattrs WHERE ino = ? AND name = ?"));
  s->Bind(1, static_cast<int64_t>(ino)).BindBlob(2, AsBytes(name));
  ASSIGN_OR_RETURN(bool exists, s->Step());
  s->Reset();
  if ((flags & XATTR_CREATE) && exists) return PosixError(EEXIST, "setxattr");
  if ((flags & XATTR_REPLACE) && !exists) return PosixError(ENODATA, "setxattr");
  RETURN_IF_ERROR(RunCached(db_.get(),
                            "INSERT OR REPLACE INTO xattrs (ino, name, value) VALUES (?, ?, ?)",
                            [&](Stmt& st) {
                              st.Bind(1, static_cast<int64_t>(ino)).BindBlob(2, AsBytes(name));
                              st.BindBlob(3, value);
                            }));
  RETURN_IF_ERROR(TouchCtimeLocked(ino, now_ns));
  return txn->Commit();
}

Result<std::vector<std::string>> MetaStore::ListXattr(uint64_t ino) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Stmt * s, db_->Cached("SELECT name FROM xattrs WHERE ino = ? ORDER BY name"));
  s->Bind(1, static_cast<int64_t>(ino));
  std::vector<std::string> names;
  while (true) {
    auto row = s->Step();
    if (!row.ok()) {
      s->Reset();
      return row.status();
    }
    if (!*row) break;
    names.push_back(BlobToString(s->ColumnBlob(0)));
  }
  s->Reset();
  return names;
}

Status MetaStore::RemoveXattr(uint64_t ino, std::string_view name, int64_t now_ns) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto txn, BeginLocked());
  RETURN_IF_ERROR(RunCached(db_.get(), "DELETE FROM xattrs WHERE ino = ? AND name = ?",
                            [&](Stmt& s) {
                              s.Bind(1, static_cast<int64_t>(ino)).BindBlob(2, AsBytes(name));
                            }));
  if (db_->Changes() == 0) return PosixError(ENODATA, "removexattr");
  RETURN_IF_ERROR(TouchCtimeLocked(ino, now_ns));
  return txn->Commit();
}

}  // namespace shardfs::fs
