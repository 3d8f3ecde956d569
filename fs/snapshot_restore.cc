// Restore of a state dir from the network. See snapshot_restore.h and
// SNAPSHOTS.md §6.
#include "fs/snapshot_restore.h"

#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>

#include "fs/network_lease.h"
#include "fs/volume.h"
#include "lib/client_config.h"
#include "lib/coding.h"
#include "lib/locator.h"
#include "lib/object_store.h"

namespace shardfs::fs {
namespace {

constexpr int64_t kApplicationId = 0x53484653;  // "SHFS", METADATA.md §2

std::string AbsPath(const std::string& p) {
  char buf[PATH_MAX];
  if (::realpath(p.c_str(), buf) != nullptr) return buf;
  return p;
}

Status MkdirP(const std::string& path, mode_t mode) {
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    cur = path.substr(0, pos);
    if (cur.empty()) continue;
    if (::mkdir(cur.c_str(), mode) != 0 && errno != EEXIST) {
      return Status::FromErrno(errno, "mkdir " + cur);
    }
  }
  return Status::OK();
}

Status WriteFile(const std::string& path, std::span<const uint8_t> bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno(errno, "create " + path);
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t w = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      int err = errno;
      ::close(fd);
      return Status::FromErrno(err, "write " + path);
    }
    off += static_cast<size_t>(w);
  }
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Status::FromErrno(errno, "fsync " + path);
  return Status::OK();
}

struct Sql {
  sqlite3* db = nullptr;
  ~Sql() {
    if (db) sqlite3_close_v2(db);
  }
  Status Exec(const std::string& sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "?";
      sqlite3_free(err);
      return Status::Corruption(sql.substr(0, 40) + ": " + msg);
    }
    return Status::OK();
  }
};

// The restored database must be a shardfs meta.db of this very volume.
Status CheckDatabase(Sql& sql, const std::string& volume_id) {
  sqlite3_stmt* st = nullptr;
  std::string check;
  if (sqlite3_prepare_v2(sql.db, "PRAGMA integrity_check", -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    check = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  }
  sqlite3_finalize(st);
  if (check != "ok") return Status::Corruption("database integrity check: " + check);
  int64_t app = 0;
  if (sqlite3_prepare_v2(sql.db, "PRAGMA application_id", -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    app = sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  if (app != kApplicationId) return Status::Corruption("not a shardfs metadata database");
  std::string vid;
  if (sqlite3_prepare_v2(sql.db, "SELECT value FROM meta WHERE key = 'volume_id'", -1, &st,
                         nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW) {
    vid = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  }
  sqlite3_finalize(st);
  if (!vid.empty() && vid != volume_id) {
    return Status::Corruption("database belongs to volume " + vid + ", not " + volume_id);
  }
  return Status::OK();
}

// Step 3 of the header: what the snapshot could not carry.
Status RepairRestored(Sql& sql, const Inventory& inv, RestoreReport* report) {
  struct Seg {
    int64_t ino, idx;
    bool has_locator;
    Locator loc;
    bool staged;
  };
  std::vector<Seg> segs;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(sql.db,
                         "SELECT ino, idx, locator, staging_id IS NOT NULL FROM segments "
                         "WHERE locator IS NOT NULL OR staging_id IS NOT NULL ORDER BY ino, idx",
                         -1, &st, nullptr) != SQLITE_OK) {
    return Status::Corruption(std::string("segments: ") + sqlite3_errmsg(sql.db));
  }
  while (sqlite3_step(st) == SQLITE_ROW) {
    Seg s{sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), false, {},
          sqlite3_column_int64(st, 3) != 0};
    if (sqlite3_column_type(st, 2) == SQLITE_BLOB) {
      Reader in(sqlite3_column_blob(st, 2), static_cast<size_t>(sqlite3_column_bytes(st, 2)));
      s.has_locator = DecodeLocator(&in, &s.loc);
    }
    segs.push_back(std::move(s));
  }
  sqlite3_finalize(st);

  std::map<int64_t, std::string> lost_why;  // by inode, first reason
  for (const Seg& s : segs) {
    std::string why;
    if (s.staged) {
      why = s.has_locator ? "segment " + std::to_string(s.idx) +
                                " reverted to an older version (its newest version was not "
                                "uploaded when the snapshot was taken)"
                          : "segment " + std::to_string(s.idx) +
                                " lost (written but not uploaded when the snapshot was taken); "
                                "reads as zeros";
      const std::string q =
          s.has_locator ? "UPDATE segments SET staging_id = NULL WHERE ino = " +
                              std::to_string(s.ino) + " AND idx = " + std::to_string(s.idx)
                        : "DELETE FROM segments WHERE ino = " + std::to_string(s.ino) +
                              " AND idx = " + std::to_string(s.idx);
      RETURN_IF_ERROR(sql.Exec(q));
    } else if (s.has_locator && LiveShards(inv, s.loc) < s.loc.k) {
      why = "segment " + std::to_string(s.idx) + " is gone from the nodes (" +
            std::to_string(LiveShards(inv, s.loc)) + " of " + std::to_string(s.loc.n()) +
            " shards found; changed or deleted after the snapshot?); reads fail with EIO";
    }
    if (!why.empty() && !lost_why.count(s.ino)) lost_why[s.ino] = why;
  }
  RETURN_IF_ERROR(sql.Exec("DELETE FROM upload_queue"));
  for (const auto& [ino, why] : lost_why) {
    report->lost.push_back({InodePath(sql.db, ino), why});
  }
  std::sort(report->lost.begin(), report->lost.end(),
            [](const LostFile& a, const LostFile& b) { return a.path < b.path; });
  return Status::OK();
}

// Stripes the restored metadata (or the snapshot objects, or the records)
// reference; the rest of the inventory is newer than the snapshot or garbage.
uint64_t CountUnreferenced(Sql& sql, const Inventory& inv, const VolumeKeys& keys,
                           const std::set<StripeId>& snapshot_stripes) {
  std::set<StripeId> referenced = snapshot_stripes;
  for (const char* q : {"SELECT locator FROM segments WHERE locator IS NOT NULL",
                        "SELECT locator FROM delete_queue"}) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(sql.db, q, -1, &st, nullptr) != SQLITE_OK) continue;
    while (sqlite3_step(st) == SQLITE_ROW) {
      Reader in(sqlite3_column_blob(st, 0), static_cast<size_t>(sqlite3_column_bytes(st, 0)));
      Locator loc;
      if (DecodeLocator(&in, &loc)) referenced.insert(loc.stripe);
    }
    sqlite3_finalize(st);
  }
  uint64_t n = 0;
  for (const auto& [stripe, shards] : inv.stripes) {
    if (!referenced.count(stripe) && !keys.HasPrefix(stripe)) ++n;
  }
  return n;
}

// Node records of other volumes look like ours under another prefix: two
// or more small index-0 shards sharing 8 bytes, with a record kind after.
size_t ForeignVolumes(const std::vector<wire::ListEntry>& entries) {
  std::map<std::string, int> groups;
  for (const wire::ListEntry& e : entries) {
    const char kind = static_cast<char>(e.stripe.bytes[8]);
    if (e.index != 0 || e.size > 64 * 1024) continue;
    if (kind != kHeadRecord && kind != kLeaseRecord && kind != kBeatRecord &&
        kind != kReleaseRecord) {
      continue;
    }
    ++groups[std::string(reinterpret_cast<const char*>(e.stripe.bytes.data()), 8)];
  }
  size_t n = 0;
  for (const auto& [p, count] : groups) n += count >= 2;
  return n;
}

}  // namespace

Inventory TakeInventory(RecordStore& store) {
  Inventory inv;
  for (const NodeInfo& n : store.Nodes()) {
    if (!n.up || n.id == 0) {
      inv.unreachable.push_back(n.endpoint + ": not answering");
      continue;
    }
    auto entries = store.ListNode(n);
    if (!entries.ok()) {
      inv.unreachable.push_back(n.endpoint + ": " + entries.status().ToString());
      continue;
    }
    inv.listed.push_back(n);
    for (const wire::ListEntry& e : *entries) {
      inv.stripes[e.stripe][e.index].push_back(n.id);
      ++inv.shards;
    }
  }
  return inv;
}

int LiveShards(const Inventory& inv, const Locator& loc) {
  auto it = inv.stripes.find(loc.stripe);
  if (it == inv.stripes.end()) return 0;
  int n = 0;
  for (const auto& [index, nodes] : it->second) n += index < loc.n();
  return n;
}

std::string InodePath(sqlite3* db, int64_t ino) {
  std::string path;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT parent, name FROM dentries WHERE ino = ?1 LIMIT 1", -1, &st,
                         nullptr) != SQLITE_OK) {
    return "?/inode " + std::to_string(ino);
  }
  int64_t cur = ino;
  for (int depth = 0; cur != 1 && depth < 4096; ++depth) {
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, cur);
    if (sqlite3_step(st) != SQLITE_ROW) {
      path = "?/inode " + std::to_string(cur) + path;
      break;
    }
    const auto* name = static_cast<const char*>(sqlite3_column_blob(st, 1));
    path = "/" + std::string(name, static_cast<size_t>(sqlite3_column_bytes(st, 1))) + path;
    cur = sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  return path.empty() ? "/" : path;
}

Result<HeadScan> FindSnapshots(const VolumeKeys& keys, const std::string& bootstrap,
                               std::vector<std::string>* endpoints_out,
                               std::unique_ptr<RecordStore>* store_out) {
  const auto timeout = std::chrono::milliseconds(5000);
  ASSIGN_OR_RETURN(auto store, RecordStore::Connect(keys, {bootstrap}, timeout));
  HeadScan scan = ScanHeads(*store);
  if (scan.heads.empty()) {
    std::string msg = "no metadata snapshot of this volume on " + bootstrap;
    if (!scan.problems.empty()) {
      msg += ": " + std::to_string(scan.problems.size()) + " snapshot head(s) found but none is "
             "readable (" + scan.problems.front() + ")";
      return Status::Corruption(msg);
    }
    size_t foreign = 0;
    std::vector<NodeInfo> nodes = store->Nodes();
    if (!nodes.empty()) {
      auto all = store->ListNode(nodes.front());
      if (all.ok()) foreign = ForeignVolumes(*all);
    }
    if (foreign > 0) {
      msg += ", although it holds the snapshot records of " + std::to_string(foreign) +
             " other volume(s): the key file is most likely not this volume's key";
    } else {
      msg += ": either the key file is not this volume's key, or the volume never took a "
             "snapshot (a mount takes one after a quiet period and at unmount)";
    }
    return Status::NotFound(msg);
  }
  // The newest head names every node of the volume.
  std::vector<std::string> endpoints{bootstrap};
  for (const std::string& e : scan.heads.front().head.endpoints) {
    if (std::find(endpoints.begin(), endpoints.end(), e) == endpoints.end()) {
      endpoints.push_back(e);
    }
  }
  ASSIGN_OR_RETURN(store, RecordStore::Connect(keys, endpoints, timeout));
  HeadScan all = ScanHeads(*store);
  if (all.heads.empty()) all = std::move(scan);
  *endpoints_out = endpoints;
  *store_out = std::move(store);
  return all;
}

Result<RestoreReport> Restore(const RestoreRequest& req, const ProgressFn& progress) {
  ASSIGN_OR_RETURN(VolumeKeys keys, VolumeKeys::Derive(req.master));
  ASSIGN_OR_RETURN(std::string volume_id, VolumeIdFor(req.master));
  const std::string state = AbsPath(req.state_dir);
  const std::string db_path = state + "/meta.db";
  if (!req.force && ::access(db_path.c_str(), F_OK) == 0) {
    return Status::Exists(db_path + " exists: restore into an empty state dir (or --force to "
                                    "replace it; the mount must not be running)");
  }
  RETURN_IF_ERROR(MkdirP(state, 0700));
  {
    // --force must not pull the database from under a running mount.
    int fd = ::open((state + "/lease").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      const bool held = ::flock(fd, LOCK_EX | LOCK_NB) != 0;
      ::close(fd);
      if (held) return Status::Busy(state + " is mounted: unmount it before restoring into it");
    }
  }

  progress("looking for snapshots of volume " + volume_id + " via " + req.bootstrap, false);
  std::vector<std::string> endpoints;
  std::unique_ptr<RecordStore> store;
  ASSIGN_OR_RETURN(HeadScan scan, FindSnapshots(keys, req.bootstrap, &endpoints, &store));
  RestoreReport report;
  for (const std::string& p : scan.problems) {
    report.warnings.push_back("unreadable snapshot head " + p);
  }
  report.newest_seen = scan.heads.front().head.seq;
  {
    std::string seqs;
    for (const HeadEntry& e : scan.heads) seqs += (seqs.empty() ? "" : ", ") + std::to_string(e.head.seq);
    progress("found snapshot(s) " + seqs + " on " + std::to_string(scan.listing.nodes_answered) +
                 " of " + std::to_string(endpoints.size()) + " nodes",
             false);
  }

  SnapshotParams params;
  params.keys = &keys;
  params.state_dir = state;
  std::vector<uint8_t> db;
  const HeadEntry* chosen = nullptr;
  for (const HeadEntry& e : scan.heads) {
    if (req.seq != 0 && e.head.seq != req.seq) continue;
    const SnapshotHead& h = e.head;
    params.cfg = ClientConfig{};
    params.cfg.k = h.k;
    params.cfg.m = h.m;
    params.cfg.segment_size = h.segment_size;
    params.cfg.timeout_ms = h.timeout_ms ? static_cast<int>(h.timeout_ms) : 5000;
    params.cfg.nodes = endpoints;
    params.cfg.key_file = AbsPath(req.key_file);
    auto client = ConnectSnapshotClient(params);
    Result<std::vector<uint8_t>> got = client.status();
    if (client.ok()) {
      const std::string label = "fetching snapshot " + std::to_string(h.seq);
      got = FetchSnapshot(keys, **client, h, [&](uint64_t done, uint64_t total) {
        progress(label + ": " + std::to_string(total ? done * 100 / total : 100) + "% (" +
                     std::to_string(done) + " of " + std::to_string(total) + " bytes)",
                 true);
      });
    }
    Sql sql;
    Status st = got.status();
    if (st.ok()) st = WriteFile(db_path + ".restore", *got);
    if (st.ok() && sqlite3_open_v2((db_path + ".restore").c_str(), &sql.db, SQLITE_OPEN_READWRITE,
                                   nullptr) != SQLITE_OK) {
      st = Status::Corruption("cannot open the restored database");
    }
    if (st.ok()) st = CheckDatabase(sql, volume_id);
    if (!st.ok()) {
      const std::string w = "snapshot " + std::to_string(h.seq) + " is unusable: " +
                            st.ToString() + (req.seq ? "" : "; falling back to the previous one");
      report.warnings.push_back(w);
      progress("WARNING: " + w, false);
      ::unlink((db_path + ".restore").c_str());
      continue;
    }
    db = std::move(*got);
    chosen = &e;
    break;
  }
  if (chosen == nullptr) {
    std::string msg = req.seq ? "snapshot " + std::to_string(req.seq) + " not usable or not found"
                              : "no usable snapshot";
    for (const std::string& w : report.warnings) msg += "; " + w;
    return Status::Corruption(msg);
  }
  report.head = chosen->head;

  // The head keeps the mount's own keypair: its data shards stay deletable.
  const std::string id_path = state + "/client.id";
  if (!chosen->head.identity_public.empty() && ::access(id_path.c_str(), F_OK) != 0) {
    std::string text = "shardfs-identity-v1 " + chosen->head.identity_public + " " +
                       chosen->head.identity_secret + "\n";
    RETURN_IF_ERROR(WriteFile(id_path, {reinterpret_cast<const uint8_t*>(text.data()), text.size()}));
  }

  if (auto holder = CurrentHolder(store.get())) report.lease_holder = DescribeHolder(*holder);
  progress("checking the snapshot's segments against the nodes", false);
  Inventory inv = TakeInventory(*store);
  for (const std::string& u : inv.unreachable) {
    report.warnings.push_back("node " + u + " (its shards were not counted)");
  }
  std::set<StripeId> snapshot_stripes;
  if (auto client = ConnectSnapshotClient(params); client.ok()) {
    for (const HeadEntry& e : scan.heads) {
      auto stripes = ObjectStripes(**client, e.head.object.Hex());
      if (!stripes.ok()) continue;
      for (const Locator& l : *stripes) snapshot_stripes.insert(l.stripe);
    }
  }
  {
    Sql sql;
    if (sqlite3_open_v2((db_path + ".restore").c_str(), &sql.db, SQLITE_OPEN_READWRITE, nullptr) !=
        SQLITE_OK) {
      return Status::IOError("reopen the restored database");
    }
    RETURN_IF_ERROR(RepairRestored(sql, inv, &report));
    report.unreferenced_stripes = CountUnreferenced(sql, inv, keys, snapshot_stripes);
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(sql.db,
                           "SELECT sum((mode & 61440) = 32768), sum((mode & 61440) = 16384), "
                           "coalesce(sum(CASE WHEN (mode & 61440) = 32768 THEN size END), 0) "
                           "FROM inodes WHERE nlink > 0",
                           -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
      report.files = static_cast<uint64_t>(sqlite3_column_int64(st, 0));
      report.dirs = static_cast<uint64_t>(sqlite3_column_int64(st, 1));
      report.bytes = static_cast<uint64_t>(sqlite3_column_int64(st, 2));
    }
    sqlite3_finalize(st);
  }

  // Commit the state dir: the database last but one, the state file last.
  for (const char* sub : {"/staging", "/cache"}) RETURN_IF_ERROR(MkdirP(state + sub, 0700));
  for (const char* suffix : {"-wal", "-shm"}) ::unlink((db_path + suffix).c_str());
  if (::rename((db_path + ".restore").c_str(), db_path.c_str()) != 0) {
    return Status::FromErrno(errno, "rename " + db_path);
  }
  ClientConfig cfg = params.cfg;
  cfg.identity_file = id_path;
  report.config_path = state + "/client.conf";
  RETURN_IF_ERROR(WriteClientConfig(report.config_path, cfg));
  SnapshotState ss;
  ss.state_id = RandomStateId();
  // Every head seen counts as seen: a skipped (corrupt) newer head must not
  // make this state dir look stale at mount.
  ss.last_seq = report.newest_seen;
  // Clean (nothing to snapshot at the first mount) only if this is exactly
  // the newest snapshot, unchanged.
  ss.clean = report.head.seq == report.newest_seen && report.lost.empty();
  ss.restored = true;
  RETURN_IF_ERROR(WriteSnapshotState(state, ss));
  return report;
}

}  // namespace shardfs::fs
