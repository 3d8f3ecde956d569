// Taking, finding, fetching and pruning metadata snapshots. See
// meta_snapshot.h and SNAPSHOTS.md §3.
#include "fs/meta_snapshot.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "lib/log.h"
#include "lib/object_store.h"

namespace shardfs::fs {
namespace {

uint64_t NowUnixMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

Status SqliteError(sqlite3* db, const std::string& what) {
  return Status::IOError(what + ": " + (db ? sqlite3_errmsg(db) : "out of memory"));
}

struct SqliteCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using SqlitePtr = std::unique_ptr<sqlite3, SqliteCloser>;

Result<SqlitePtr> OpenReadOnly(const std::string& path) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
  SqlitePtr db(raw);
  if (rc != SQLITE_OK) return SqliteError(raw, "open " + path);
  sqlite3_busy_timeout(raw, 10000);
  return db;
}

Result<int64_t> QueryInt(sqlite3* db, const char* sql) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) != SQLITE_OK) {
    return SqliteError(db, std::string("prepare ") + sql);
  }
  int64_t v = 0;
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return SqliteError(db, sql);
  return v;
}

Result<std::vector<uint8_t>> ReadWholeFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open " + path);
  std::vector<uint8_t> out;
  struct stat st;
  if (::fstat(fd, &st) == 0) out.reserve(static_cast<size_t>(st.st_size));
  uint8_t buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return Status::FromErrno(err, "read " + path);
    }
    if (n == 0) break;
    out.insert(out.end(), buf, buf + n);
  }
  ::close(fd);
  return out;
}

// An anonymous in-memory file holding `bytes`, positioned at 0 (PutObject
// reads from a descriptor).
Result<int> MemFile(std::span<const uint8_t> bytes) {
  int fd = ::memfd_create("shardfs-snapshot", MFD_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "memfd_create");
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t w = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      int err = errno;
      ::close(fd);
      return Status::FromErrno(err, "write memfd");
    }
    off += static_cast<size_t>(w);
  }
  ::lseek(fd, 0, SEEK_SET);
  return fd;
}

}  // namespace

HeadScan ScanHeads(RecordStore& store) {
  HeadScan scan;
  scan.listing = store.List();
  for (const auto& [id, holders] : scan.listing.holders) {
    if (id.bytes[8] != static_cast<uint8_t>(kHeadRecord)) continue;
    auto rec = store.Read(id, holders);
    if (!rec.ok()) {
      scan.problems.push_back(id.Hex() + ": " + rec.status().ToString());
      continue;
    }
    HeadEntry e;
    e.id = id;
    e.holders = holders;
    Status st = DecodeHead(rec->body, &e.head);
    if (st.ok() && e.head.seq != rec->number) {
      st = Status::Corruption("head names sequence " + std::to_string(e.head.seq) +
                              " but is stored as " + std::to_string(rec->number));
    }
    if (!st.ok()) {
      scan.problems.push_back(id.Hex() + ": " + st.ToString());
      continue;
    }
    scan.heads.push_back(std::move(e));
  }
  std::sort(scan.heads.begin(), scan.heads.end(),
            [](const HeadEntry& a, const HeadEntry& b) { return a.head.seq > b.head.seq; });
  return scan;
}

Result<std::unique_ptr<ClusterClient>> ConnectSnapshotClient(const SnapshotParams& p) {
  ClientConfig cfg = p.cfg;
  cfg.identity_file = p.state_dir + "/owner.id";
  RETURN_IF_ERROR(WriteOwnerIdentity(*p.keys, cfg.identity_file));
  return ClusterClient::Connect(cfg, p.keys->master);
}

Result<std::vector<uint8_t>> CopyDatabase(const std::string& db_path, const std::string& tmp_path,
                                          DbFigures* figures) {
  ::unlink(tmp_path.c_str());  // VACUUM INTO refuses an existing file
  auto cleanup = [&] {
    for (const char* suffix : {"", "-journal", "-wal", "-shm"}) {
      ::unlink((tmp_path + suffix).c_str());
    }
  };
  {
    ASSIGN_OR_RETURN(SqlitePtr db, OpenReadOnly(db_path));
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db.get(), "VACUUM INTO ?1", -1, &st, nullptr) != SQLITE_OK) {
      return SqliteError(db.get(), "prepare VACUUM INTO");
    }
    sqlite3_bind_text(st, 1, tmp_path.c_str(), -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
      Status err = SqliteError(db.get(), "VACUUM INTO " + tmp_path);
      cleanup();
      return err;
    }
  }
  {
    // The copy keeps the WAL flag of its source; a snapshot is a plain
    // rollback-journal file, so it opens anywhere without -wal/-shm.
    sqlite3* raw = nullptr;
    int rc = sqlite3_open_v2(tmp_path.c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr);
    SqlitePtr copy(raw);
    if (rc != SQLITE_OK ||
        sqlite3_exec(raw, "PRAGMA journal_mode=DELETE", nullptr, nullptr, nullptr) != SQLITE_OK) {
      Status err = SqliteError(raw, "preparing the copy " + tmp_path);
      copy.reset();
      cleanup();
      return err;
    }
    if (figures) {
      auto files = QueryInt(raw, "SELECT count(*) FROM inodes WHERE (mode & 61440) = 32768");
      auto bytes =
          QueryInt(raw, "SELECT coalesce(sum(size), 0) FROM inodes WHERE (mode & 61440) = 32768");
      auto pending = QueryInt(raw, "SELECT count(*) FROM segments WHERE staging_id IS NOT NULL");
      if (files.ok()) figures->files = static_cast<uint64_t>(*files);
      if (bytes.ok()) figures->file_bytes = static_cast<uint64_t>(*bytes);
      if (pending.ok()) figures->pending_segments = static_cast<uint64_t>(*pending);
    }
  }
  auto bytes = ReadWholeFile(tmp_path);
  cleanup();
  return bytes;
}

Result<SnapshotHead> TakeSnapshot(const SnapshotParams& p, RecordStore& store,
                                  ClusterClient& client, uint64_t seq) {
  const std::string tmp = p.state_dir + "/snapshot.tmp";
  DbFigures fig;
  ASSIGN_OR_RETURN(std::vector<uint8_t> db, CopyDatabase(p.state_dir + "/meta.db", tmp, &fig));
  SnapshotHead h;
  h.seq = seq;
  h.db_size = db.size();
  h.files = fig.files;
  h.file_bytes = fig.file_bytes;
  h.pending_segments = fig.pending_segments;

  ASSIGN_OR_RETURN(std::vector<uint8_t> blob, SealSnapshotBlob(*p.keys, seq, db));
  db.clear();
  db.shrink_to_fit();
  h.blob_size = blob.size();
  h.blob_sha256 = Sha256(blob);
  ASSIGN_OR_RETURN(int fd, MemFile(blob));
  blob.clear();
  blob.shrink_to_fit();
  auto object = PutObject(client, fd);
  ::close(fd);
  if (!object.ok()) return object.status().With("storing snapshot " + std::to_string(seq));
  ASSIGN_OR_RETURN(h.object, ParseObjectId(*object));

  // Test seam (SNAPSHOTS.md §7): a pause between the object and its head,
  // so a test can kill the mount in the middle of a snapshot.
  if (const char* stall = std::getenv("SHARDFS_TEST_SNAPSHOT_STALL_S"); stall && *stall) {
    const std::string marker = p.state_dir + "/snapshot.stalled";
    int mfd = ::open(marker.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (mfd >= 0) ::close(mfd);
    std::this_thread::sleep_for(std::chrono::seconds(std::atoi(stall)));
  }

  h.created_unix_ms = NowUnixMs();
  h.k = static_cast<uint8_t>(p.cfg.k);
  h.m = static_cast<uint8_t>(p.cfg.m);
  h.segment_size = static_cast<uint32_t>(p.cfg.segment_size);
  h.timeout_ms = static_cast<uint32_t>(p.cfg.timeout_ms);
  h.state_id = p.state_id;
  h.host = p.host;
  h.state_dir = p.state_dir;
  h.endpoints = p.cfg.nodes;
  h.identity_public = p.client_identity.public_key;
  h.identity_secret = p.client_identity.secret_key;
  std::string body;
  EncodeHead(h, &body);
  auto put = store.Put(kHeadRecord, seq, body);
  Status failed;
  if (!put.ok()) {
    failed = put.status();
  } else if (put->exists > 0) {
    failed = Status::Exists("snapshot " + std::to_string(seq) +
                            " was already written by another mount of this volume");
  } else if (put->stored == 0) {
    failed = Status::Unavailable("no node stored the head of snapshot " + std::to_string(seq) +
                                 (put->first_error.empty() ? "" : ": " + put->first_error));
  }
  if (!failed.ok()) {
    Status st = DeleteObject(client, h.object.Hex());
    if (!st.ok()) LOG_WARN("snapshot {}: cleanup of its object: {}", seq, st.ToString());
    return failed;
  }
  if (put->stored < put->asked) {
    LOG_WARN("snapshot {}: head stored on {} of {} nodes ({})", seq, put->stored, put->asked,
             put->first_error);
  }
  return h;
}

Status PruneSnapshots(RecordStore& store, ClusterClient& client, int keep) {
  HeadScan scan = ScanHeads(store);
  if (static_cast<int>(scan.heads.size()) <= keep) return Status::OK();
  const uint64_t oldest_kept = scan.heads[keep - 1].head.seq;
  Status first;
  for (size_t i = keep; i < scan.heads.size(); ++i) {
    const HeadEntry& e = scan.heads[i];
    // Head first: a restore never finds a head whose object is gone.
    Status st = store.Delete(e.id, e.holders);
    if (st.ok()) {
      st = DeleteObject(client, e.head.object.Hex());
      if (st.IsNotFound()) st = Status::OK();
    }
    if (!st.ok()) {
      LOG_WARN("pruning snapshot {}: {}", e.head.seq, st.ToString());
      if (first.ok()) first = st;
    } else {
      LOG_INFO("pruned snapshot {} (keeping {} from {} on)", e.head.seq, keep, oldest_kept);
    }
  }
  // Unreadable heads (a corrupted or foreign copy under our prefix) are
  // left alone: restore reports them, and they cost a few hundred bytes.
  return first;
}

Result<std::vector<uint8_t>> FetchSnapshot(
    const VolumeKeys& keys, ClusterClient& client, const SnapshotHead& head,
    const std::function<void(uint64_t, uint64_t)>& progress) {
  ASSIGN_OR_RETURN(int fd, MemFile({}));
  Status st = GetObject(client, head.object.Hex(), fd, 4, nullptr, progress);
  if (!st.ok()) {
    ::close(fd);
    return st;
  }
  struct stat sb;
  if (::fstat(fd, &sb) != 0 || static_cast<uint64_t>(sb.st_size) != head.blob_size) {
    ::close(fd);
    return Status::Corruption("snapshot " + std::to_string(head.seq) + " blob has the wrong size");
  }
  std::vector<uint8_t> blob(head.blob_size);
  ssize_t n = ::pread(fd, blob.data(), blob.size(), 0);
  ::close(fd);
  if (n != static_cast<ssize_t>(blob.size())) return Status::IOError("reading the fetched blob");
  if (Sha256(blob) != head.blob_sha256) {
    return Status::Corruption("snapshot " + std::to_string(head.seq) +
                              " blob does not match the SHA-256 in its head");
  }
  return OpenSnapshotBlob(keys, head.seq, blob);
}

}  // namespace shardfs::fs
