// Local state of a volume seen from shardctl (fs/METADATA.md §9). See drive_state.h.
#include "tools/drive_state.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "fs/volume.h"
#include "lib/key_file.h"

namespace shardfs::shardctl {
namespace {

// mountinfo escapes blanks in paths as \040 etc. (proc(5)).
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = 0;
      bool ok = true;
      for (size_t j = 1; j <= 3; ++j) {
        char c = s[i + j];
        if (c < '0' || c > '7') ok = false;
        v = v * 8 + (c - '0');
      }
      if (ok) {
        out.push_back(static_cast<char>(v));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

struct MountEntry {
  std::string mount_point;
  std::string fstype;
  std::string source;
};

std::vector<MountEntry> Mounts() {
  std::vector<MountEntry> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // id parent major:minor root mount_point options [optional...] - fstype source super_opts
    std::istringstream ls(line);
    std::string id, parent, devno, root, mp, opts, f;
    if (!(ls >> id >> parent >> devno >> root >> mp >> opts)) continue;
    while (ls >> f && f != "-") {
    }
    MountEntry e;
    e.mount_point = Unescape(mp);
    if (!(ls >> e.fstype >> e.source)) continue;
    e.source = Unescape(e.source);
    out.push_back(std::move(e));
  }
  return out;
}

bool PidAlive(pid_t pid) {
  if (pid <= 0) return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t p = text.rfind(')');
  if (p == std::string::npos || p + 2 >= text.size()) return false;
  char state = text[p + 2];
  return state != 'Z' && state != 'X';
}

}  // namespace

Result<DriveVolume> LoadDriveVolume(const GlobalOptions& global) {
  if (global.config_path.empty()) {
    return Status::InvalidArgument("no client config given (use --config FILE)");
  }
  DriveVolume v;
  ASSIGN_OR_RETURN(v.cfg, LoadClientConfig(global.config_path));
  auto key = LoadKeyFile(v.cfg.key_file);
  if (!key.ok()) return key.status().With("key file");
  v.master = *key;
  ASSIGN_OR_RETURN(v.volume_id, fs::VolumeIdFor(v.master));
  v.state_dir = global.state_dir.empty() ? fs::DefaultStateDir(v.volume_id) : global.state_dir;
  return v;
}

pid_t LeaseHolder(const std::string& state_dir) {
  struct stat st;
  if (::stat((state_dir + "/lease").c_str(), &st) != 0) return 0;
  // "1: FLOCK  ADVISORY  WRITE 4295 fe:00:11149845 0 EOF"; waiters carry "->".
  std::ifstream in("/proc/locks");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string num, kind, advisory, mode, dev;
    long pid = 0;
    if (!(ls >> num >> kind) || kind != "FLOCK") continue;
    if (!(ls >> advisory >> mode >> pid >> dev)) continue;
    size_t colon = dev.rfind(':');
    if (colon == std::string::npos) continue;
    // The device field of overlay and FUSE file systems need not match
    // st_dev; the inode number plus a live pid is specific enough.
    uint64_t ino = std::strtoull(dev.c_str() + colon + 1, nullptr, 10);
    if (ino == st.st_ino && PidAlive(static_cast<pid_t>(pid))) return static_cast<pid_t>(pid);
  }
  return 0;
}

std::optional<std::string> MountPointOf(const std::string& volume_id) {
  for (const MountEntry& e : Mounts()) {
    if (e.source == "shardfs:" + volume_id) return e.mount_point;
  }
  return std::nullopt;
}

std::string FsNameOf(const std::string& path) {
  char* real = ::realpath(path.c_str(), nullptr);
  if (!real) return "";
  std::string p = real;
  std::free(real);
  // The longest mount point that is a prefix of the path (the last one
  // listed wins among equals: it is mounted on top).
  std::string best_mp, best_source;
  for (const MountEntry& e : Mounts()) {
    const std::string& mp = e.mount_point;
    bool under = p == mp || mp == "/" ||
                 (p.size() > mp.size() && p.compare(0, mp.size(), mp) == 0 && p[mp.size()] == '/');
    if (under && mp.size() >= best_mp.size()) {
      best_mp = mp;
      best_source = e.source;
    }
  }
  return best_source;
}

Result<std::unique_ptr<MetaReader>> MetaReader::Open(const std::string& state_dir) {
  const std::string path = state_dir + "/meta.db";
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return Status::NotFound(path + " does not exist: the volume was never mounted with this "
                            "state dir (use --state DIR if it was mounted with one)");
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Status::IOError("open " + path + " read-only: " + msg);
  }
  sqlite3_busy_timeout(db, 5000);
  return std::unique_ptr<MetaReader>(new MetaReader(db));
}

MetaReader::~MetaReader() { sqlite3_close(db_); }

Status MetaReader::Error(const std::string& what) const {
  return Status::IOError(what + ": " + sqlite3_errmsg(db_));
}

namespace {
// A prepared statement that finalizes itself.
struct Query {
  sqlite3_stmt* s = nullptr;
  ~Query() { sqlite3_finalize(s); }
};
}  // namespace

Result<MetaReader::Pending> MetaReader::QueryPending() {
  Pending p;
  // One read transaction, so the counts are one consistent snapshot.
  if (sqlite3_exec(db_, "BEGIN", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return Error("begin");
  }
  struct End {
    sqlite3* db;
    ~End() { sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr); }
  } end{db_};
  Query q;
  if (sqlite3_prepare_v2(db_,
                         "SELECT COUNT(*), COALESCE(SUM(s.len), 0), COALESCE(MIN(q.queued_ns), 0) "
                         "FROM upload_queue q LEFT JOIN segments s "
                         "ON s.ino = q.ino AND s.idx = q.idx",
                         -1, &q.s, nullptr) != SQLITE_OK) {
    return Error("query upload_queue");
  }
  if (sqlite3_step(q.s) != SQLITE_ROW) return Error("read upload_queue");
  p.segments = sqlite3_column_int64(q.s, 0);
  p.bytes = sqlite3_column_int64(q.s, 1);
  p.oldest_ns = sqlite3_column_int64(q.s, 2);
  Query d;
  if (sqlite3_prepare_v2(db_, "SELECT COUNT(*) FROM delete_queue", -1, &d.s, nullptr) !=
          SQLITE_OK ||
      sqlite3_step(d.s) != SQLITE_ROW) {
    return Error("query delete_queue");
  }
  p.deletions = sqlite3_column_int64(d.s, 0);
  return p;
}

Result<uint64_t> MetaReader::FileSize(uint64_t ino) {
  Query q;
  if (sqlite3_prepare_v2(db_, "SELECT size FROM inodes WHERE ino = ?", -1, &q.s, nullptr) !=
      SQLITE_OK) {
    return Error("query inodes");
  }
  sqlite3_bind_int64(q.s, 1, static_cast<int64_t>(ino));
  int rc = sqlite3_step(q.s);
  if (rc == SQLITE_DONE) return Status::NotFound("inode " + std::to_string(ino) + " not in meta.db");
  if (rc != SQLITE_ROW) return Error("read inodes");
  return static_cast<uint64_t>(sqlite3_column_int64(q.s, 0));
}

Result<std::vector<SegmentInfo>> MetaReader::Segments(uint64_t ino) {
  Query q;
  if (sqlite3_prepare_v2(db_,
                         "SELECT idx, len, locator, inline_data IS NOT NULL, staging_id IS NOT NULL "
                         "FROM segments WHERE ino = ? ORDER BY idx",
                         -1, &q.s, nullptr) != SQLITE_OK) {
    return Error("query segments");
  }
  sqlite3_bind_int64(q.s, 1, static_cast<int64_t>(ino));
  std::vector<SegmentInfo> out;
  int rc;
  while ((rc = sqlite3_step(q.s)) == SQLITE_ROW) {
    SegmentInfo s;
    s.idx = static_cast<uint32_t>(sqlite3_column_int64(q.s, 0));
    s.len = static_cast<uint64_t>(sqlite3_column_int64(q.s, 1));
    if (const void* b = sqlite3_column_blob(q.s, 2)) {
      s.locator.assign(static_cast<const char*>(b), sqlite3_column_bytes(q.s, 2));
    }
    s.inline_data = sqlite3_column_int(q.s, 3) != 0;
    s.staged = sqlite3_column_int(q.s, 4) != 0;
    out.push_back(std::move(s));
  }
  if (rc != SQLITE_DONE) return Error("read segments");
  return out;
}

std::string FormatBytes(uint64_t n) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof(buf), "%" PRIu64 " B", n);
  } else {
    std::snprintf(buf, sizeof(buf), "%.1f %s", v, kUnits[u]);
  }
  return buf;
}

}  // namespace shardfs::shardctl
