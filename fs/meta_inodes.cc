// MetaStore: opening, inode attributes, purging and recovery
// (METADATA.md §2, §8). See meta_store.h.
#include <sys/stat.h>

#include <chrono>
#include <cstring>

#include "fs/meta_store.h"
#include "fs/meta_util.h"
#include "fs/schema.h"
#include "lib/log.h"

namespace shardfs::fs {
namespace {

constexpr char kSelectAttr[] =
    "SELECT ino, generation, mode, uid, gid, nlink, size, rdev, atime_ns, mtime_ns, "
    "ctime_ns, flags FROM inodes WHERE ino = ?";

InodeAttr AttrFromRow(const Stmt& s) {
  InodeAttr a;
  a.ino = s.ColumnInt(0);
  a.generation = s.ColumnInt(1);
  a.mode = static_cast<uint32_t>(s.ColumnInt(2));
  a.uid = static_cast<uint32_t>(s.ColumnInt(3));
  a.gid = static_cast<uint32_t>(s.ColumnInt(4));
  a.nlink = s.ColumnInt(5);
  a.size = s.ColumnInt(6);
  a.rdev = s.ColumnInt(7);
  a.atime_ns = s.ColumnInt(8);
  a.mtime_ns = s.ColumnInt(9);
  a.ctime_ns = s.ColumnInt(10);
  a.flags = static_cast<uint32_t>(s.ColumnInt(11));
  return a;
}

// Reads meta.value for `key` as an integer or text; nullopt when absent.
Result<std::optional<std::string>> GetMetaValue(Db* db, const std::string& key) {
  ASSIGN_OR_RETURN(Stmt * s, db->Cached("SELECT value FROM meta WHERE key = ?"));
  s->Bind(1, key);
  ASSIGN_OR_RETURN(bool row, s->Step());
  std::optional<std::string> v;
  if (row) v = s->ColumnText(0);
  s->Reset();
  return v;
}

Status SetMetaValue(Db* db, const std::string& key, const std::string& value) {
  return RunCached(db, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                   [&](Stmt& s) { s.Bind(1, key).Bind(2, value); });
}

}  // namespace

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status PosixError(int err, std::string_view context) {
  return Status::FromErrno(err, context);
}

Result<std::unique_ptr<MetaStore>> MetaStore::Open(const std::string& path,
                                                   const std::string& volume_id,
                                                   uint64_t config_segment_size,
                                                   uint32_t uid, uint32_t gid) {
  Db::Options opts;
  opts.application_id = kMetaApplicationId;
  opts.migrations = MetaMigrations();
  ASSIGN_OR_RETURN(auto db, Db::Open(path, opts));
  {
    ASSIGN_OR_RETURN(auto txn, Txn::Begin(db.get()));
    ASSIGN_OR_RETURN(auto vid, GetMetaValue(db.get(), "volume_id"));
    if (!vid) {
      RETURN_IF_ERROR(SetMetaValue(db.get(), "volume_id", volume_id));
    } else if (*vid != volume_id) {
      return Status::InvalidArgument("metadata " + path + " belongs to volume " + *vid +
                                     ", not " + volume_id + " (wrong key or --state?)");
    }
    ASSIGN_OR_RETURN(auto seg, GetMetaValue(db.get(), "segment_size"));
    if (!seg) {
      RETURN_IF_ERROR(
          SetMetaValue(db.get(), "segment_size", std::to_string(config_segment_size)));
      seg = std::to_string(config_segment_size);
    }
    uint64_t segment_size = std::strtoull(seg->c_str(), nullptr, 10);
    if (segment_size == 0 || segment_size > config_segment_size) {
      return Status::InvalidArgument(
          "the volume's segment size is " + *seg + " bytes but client.conf allows " +
          std::to_string(config_segment_size) + ": raise segment_size in the config");
    }
    if (segment_size != config_segment_size) {
      LOG_INFO("volume segment size {} (client.conf says {}; the volume's wins)",
               segment_size, config_segment_size);
    }
    ASSIGN_OR_RETURN(Stmt * s, db->Cached("SELECT 1 FROM inodes WHERE ino = 1"));
    ASSIGN_OR_RETURN(bool has_root, s->Step());
    s->Reset();
    if (!has_root) {
      int64_t now = NowNs();
      RETURN_IF_ERROR(RunCached(
          db.get(),
          "INSERT INTO inodes (ino, mode, uid, gid, nlink, atime_ns, mtime_ns, ctime_ns) "
          "VALUES (1, ?, ?, ?, 2, ?, ?, ?)",
          [&](Stmt& st) {
            st.Bind(1, int64_t{S_IFDIR | 0755}).Bind(2, int64_t{uid}).Bind(3, int64_t{gid});
            st.Bind(4, now).Bind(5, now).Bind(6, now);
          }));
    }
    RETURN_IF_ERROR(txn->Commit());
    // After a burst the WAL starts over at this size, whatever it grew to.
    RETURN_IF_ERROR(db->Exec("PRAGMA journal_size_limit = 33554432"));
    std::unique_ptr<MetaStore> store(new MetaStore(std::move(db), segment_size));
    // Checkpoints leave the FUSE path: they fsync under mu_ otherwise.
    ASSIGN_OR_RETURN(store->checkpointer_,
                     WalCheckpointer::Start(store->db_.get(), path, WalCheckpointer::Options{}));
    store->committer_ = std::thread([s = store.get()] { s->CommitterLoop(); });
    return store;
  }
}

Result<std::optional<InodeAttr>> MetaStore::LoadAttrLocked(uint64_t ino) {
  ASSIGN_OR_RETURN(Stmt * s, db_->Cached(kSelectAttr));
  s->Bind(1, static_cast<int64_t>(ino));
  ASSIGN_OR_RETURN(bool row, s->Step());
  std::optional<InodeAttr> a;
  if (row) a = AttrFromRow(*s);
  s->Reset();
  return a;
}

Result<InodeAttr> MetaStore::GetAttr(uint64_t ino) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto a, LoadAttrLocked(ino));
  if (!a) return PosixError(ENOENT, "inode " + std::to_string(ino));
  return *a;
}

Result<InodeAttr> MetaStore::SetAttr(uint64_t ino, const AttrChange& c, int64_t now_ns) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto cur, LoadAttrLocked(ino));
  if (!cur) return PosixError(ENOENT, "setattr inode " + std::to_string(ino));
  InodeAttr a = *cur;
  if (c.mode) a.mode = (a.mode & S_IFMT) | (*c.mode & 07777);
  if (c.uid) a.uid = *c.uid;
  if (c.gid) a.gid = *c.gid;
  if (c.size) {
    a.size = *c.size;
    a.mtime_ns = now_ns;
  }
  if (c.atime_ns) a.atime_ns = *c.atime_ns;
  if (c.mtime_ns) a.mtime_ns = *c.mtime_ns;
  a.ctime_ns = now_ns;
  ASSIGN_OR_RETURN(auto txn, BeginLocked());
  RETURN_IF_ERROR(RunCached(
      db_.get(),
      "UPDATE inodes SET mode = ?, uid = ?, gid = ?, size = ?, atime_ns = ?, mtime_ns = ?, "
      "ctime_ns = ? WHERE ino = ?",
      [&](Stmt& s) {
        s.Bind(1, int64_t{a.mode}).Bind(2, int64_t{a.uid}).Bind(3, int64_t{a.gid});
        s.Bind(4, static_cast<int64_t>(a.size)).Bind(5, a.atime_ns).Bind(6, a.mtime_ns);
        s.Bind(7, a.ctime_ns).Bind(8, static_cast<int64_t>(ino));
      }));
  RETURN_IF_ERROR(txn->Commit());
  return a;
}

Status MetaStore::TouchAtime(uint64_t ino, int64_t atime_ns) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto txn, BeginLocked());
  RETURN_IF_ERROR(
      RunCached(db_.get(), "UPDATE inodes SET atime_ns = ? WHERE ino = ?",
                [&](Stmt& s) { s.Bind(1, atime_ns).Bind(2, static_cast<int64_t>(ino)); }));
  return txn->Commit();
}

Result<std::string> MetaStore::ReadLink(uint64_t ino) {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Stmt * s, db_->Cached("SELECT mode, target FROM inodes WHERE ino = ?"));
  s->Bind(1, static_cast<int64_t>(ino));
  ASSIGN_OR_RETURN(bool row, s->Step());
  if (!row) {
    s->Reset();
    return PosixError(ENOENT, "readlink");
  }
  bool is_link = S_ISLNK(s->ColumnInt(0));
  std::string target = BlobToString(s->ColumnBlob(1));
  s->Reset();
  if (!is_link) return PosixError(EINVAL, "readlink of a non-symlink");
  return target;
}

Status MetaStore::SetNlinkLocked(uint64_t ino, int64_t delta, int64_t now_ns) {
  return RunCached(db_.get(),
                   "UPDATE inodes SET nlink = max(nlink + ?, 0), ctime_ns = ? WHERE ino = ?",
                   [&](Stmt& s) {
                     s.Bind(1, delta).Bind(2, now_ns).Bind(3, static_cast<int64_t>(ino));
                   });
}

Status MetaStore::TouchDirLocked(uint64_t dir, int64_t now_ns) {
  return RunCached(db_.get(), "UPDATE inodes SET mtime_ns = ?, ctime_ns = ? WHERE ino = ?",
                   [&](Stmt& s) {
                     s.Bind(1, now_ns).Bind(2, now_ns).Bind(3, static_cast<int64_t>(dir));
                   });
}

Status MetaStore::TouchCtimeLocked(uint64_t ino, int64_t now_ns) {
  return RunCached(db_.get(), "UPDATE inodes SET ctime_ns = ? WHERE ino = ?",
                   [&](Stmt& s) { s.Bind(1, now_ns).Bind(2, static_cast<int64_t>(ino)); });
}

Result<std::vector<uint64_t>> MetaStore::PurgeLocked(uint64_t ino) {
  ASSIGN_OR_RETURN(auto staging, RemoveSegmentsLocked(ino, 0));
  auto by_ino = [&](Stmt& s) { s.Bind(1, static_cast<int64_t>(ino)); };
  RETURN_IF_ERROR(RunCached(db_.get(), "DELETE FROM xattrs WHERE ino = ?", by_ino));
  RETURN_IF_ERROR(RunCached(db_.get(), "DELETE FROM inodes WHERE ino = ?", by_ino));
  return staging;
}

Result<std::vector<uint64_t>> MetaStore::PurgeIfUnlinked(uint64_t ino) {
  std::lock_guard lock(mu_);
  if (ino == kRootIno) return std::vector<uint64_t>{};
  ASSIGN_OR_RETURN(auto a, LoadAttrLocked(ino));
  if (!a || a->nlink > 0) return std::vector<uint64_t>{};
  ASSIGN_OR_RETURN(auto txn, BeginLocked());
  ASSIGN_OR_RETURN(auto staging, PurgeLocked(ino));
  RETURN_IF_ERROR(txn->Commit());
  // The caller deletes these staging files: their rows must be gone first.
  if (!staging.empty()) RETURN_IF_ERROR(CommitBatchLocked(false));
  return staging;
}

Result<std::vector<uint64_t>> MetaStore::Recover() {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(auto txn, BeginLocked());
  std::vector<uint64_t> orphans;
  {
    ASSIGN_OR_RETURN(Stmt * s, db_->Cached("SELECT ino FROM inodes WHERE nlink = 0 AND ino != 1"));
    while (true) {
      ASSIGN_OR_RETURN(bool row, s->Step());
      if (!row) break;
      orphans.push_back(s->ColumnInt(0));
    }
    s->Reset();
  }
  std::vector<uint64_t> staging;
  for (uint64_t ino : orphans) {
    ASSIGN_OR_RETURN(auto ids, PurgeLocked(ino));
    staging.insert(staging.end(), ids.begin(), ids.end());
  }
  RETURN_IF_ERROR(db_->Exec(
      "DELETE FROM upload_queue WHERE NOT EXISTS (SELECT 1 FROM segments g WHERE "
      "g.ino = upload_queue.ino AND g.idx = upload_queue.idx AND g.staging_id IS NOT NULL)"));
  RETURN_IF_ERROR(txn->Commit());
  RETURN_IF_ERROR(CommitBatchLocked(false));
  if (!orphans.empty()) LOG_INFO("recovery: purged {} unlinked inodes", orphans.size());
  return staging;
}

Status MetaStore::Sync() {
  std::lock_guard lock(mu_);
  return CommitBatchLocked(true);
}

Status MetaStore::SyncLocked() {
  // SQLite refuses to change the safety level inside a transaction, so the
  // barrier is a transaction of its own: a commit with synchronous=FULL
  // fsyncs the WAL, and with it every transaction committed before under
  // synchronous=NORMAL. It needs a real change (SQLite skips rewriting
  // identical bytes, and an empty commit syncs nothing). A passive
  // checkpoint is not a barrier: it skips the fsync when a reader pins the
  // WAL.
  RETURN_IF_ERROR(db_->Exec("PRAGMA synchronous = FULL"));
  Status st = SetMetaValue(db_.get(), "synced_ns", std::to_string(NowNs()));
  Status restore = db_->Exec("PRAGMA synchronous = NORMAL");
  return st.ok() ? restore : st;
}

Result<uint64_t> MetaStore::CountInodes() {
  std::lock_guard lock(mu_);
  ASSIGN_OR_RETURN(Stmt * s, db_->Cached("SELECT count(*) FROM inodes"));
  ASSIGN_OR_RETURN(bool row, s->Step());
  uint64_t n = row ? s->ColumnInt(0) : 0;
  s->Reset();
  return n;
}

}  // namespace shardfs::fs
