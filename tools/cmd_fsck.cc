// `shardctl --config C [--state DIR] fsck [--collect] [--verbose]`
// (man/shardctl.8.rst, fs/SNAPSHOTS.md §7): checks a volume's metadata
// against its staging dir and the nodes.
//
//   - every segment row is stored, inline or staged; a stored one has at
//     least k of its shards on the nodes (fewer than k + m: degraded);
//   - every staging file is referenced, every referenced one exists;
//   - shards on the nodes owned by this volume (the config's client key or
//     the volume owner key) that nothing references: orphans. --collect
//     deletes them (refused while the volume is mounted here: a running
//     mount may have stored stripes it has not recorded yet).
//
// Exit status (after e2fsck): 0 nothing wrong, 1 problems found and all
// corrected, 4 problems left, 8 the check itself failed.
//
// Thread-safety: runs on the main thread.
#include <dirent.h>
#include <sqlite3.h>

#include <cinttypes>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "fs/meta_snapshot.h"
#include "fs/snapshot_restore.h"
#include "lib/client_identity.h"
#include "lib/coding.h"
#include "lib/locator.h"
#include "lib/object_store.h"
#include "tools/commands.h"
#include "tools/drive_state.h"

namespace shardfs::shardctl {
namespace {

constexpr int kExitClean = 0;
constexpr int kExitCorrected = 1;
constexpr int kExitUncorrected = 4;
constexpr int kExitFailed = 8;

struct FsckArgs {
  bool collect = false;
  bool verbose = false;
};

int Fail(const Status& st) {
  std::fprintf(stderr, "shardctl fsck: %s\n", st.ToString().c_str());
  return kExitFailed;
}

struct SegmentRow {
  int64_t ino = 0, idx = 0;
  bool has_locator = false, inline_data = false;
  int64_t staging_id = -1;
  Locator loc;
};

Result<std::vector<SegmentRow>> ReadSegments(sqlite3* db) {
  std::vector<SegmentRow> rows;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db,
                         "SELECT ino, idx, locator, inline_data IS NOT NULL, staging_id "
                         "FROM segments ORDER BY ino, idx",
                         -1, &st, nullptr) != SQLITE_OK) {
    return Status::IOError(std::string("meta.db: ") + sqlite3_errmsg(db));
  }
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    SegmentRow r;
    r.ino = sqlite3_column_int64(st, 0);
    r.idx = sqlite3_column_int64(st, 1);
    if (sqlite3_column_type(st, 2) == SQLITE_BLOB) {
      Reader in(sqlite3_column_blob(st, 2), static_cast<size_t>(sqlite3_column_bytes(st, 2)));
      r.has_locator = DecodeLocator(&in, &r.loc);
    }
    r.inline_data = sqlite3_column_int64(st, 3) != 0;
    if (sqlite3_column_type(st, 4) != SQLITE_NULL) r.staging_id = sqlite3_column_int64(st, 4);
    rows.push_back(std::move(r));
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return Status::IOError(std::string("meta.db: ") + sqlite3_errmsg(db));
  return rows;
}

std::vector<Locator> ReadDeleteQueue(sqlite3* db) {
  std::vector<Locator> out;
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, "SELECT locator FROM delete_queue", -1, &st, nullptr) != SQLITE_OK) {
    return out;
  }
  while (sqlite3_step(st) == SQLITE_ROW) {
    Reader in(sqlite3_column_blob(st, 0), static_cast<size_t>(sqlite3_column_bytes(st, 0)));
    Locator loc;
    if (DecodeLocator(&in, &loc)) out.push_back(std::move(loc));
  }
  sqlite3_finalize(st);
  return out;
}

std::set<uint64_t> StagingFiles(const std::string& dir) {
  std::set<uint64_t> ids;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return ids;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.size() != 16 || name.find_first_not_of("0123456789abcdef") != std::string::npos) {
      continue;
    }
    ids.insert(std::strtoull(name.c_str(), nullptr, 16));
  }
  ::closedir(d);
  return ids;
}

int RunFsck(const GlobalOptions& global, const FsckArgs& a) {
  auto vol = LoadDriveVolume(global);
  if (!vol.ok()) return Fail(vol.status());
  const pid_t mount_pid = LeaseHolder(vol->state_dir);
  const std::string db_path = vol->state_dir + "/meta.db";
  sqlite3* raw = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    std::string msg = raw ? sqlite3_errmsg(raw) : "out of memory";
    sqlite3_close_v2(raw);
    return Fail(Status::IOError("open " + db_path + ": " + msg));
  }
  std::unique_ptr<sqlite3, decltype(&sqlite3_close_v2)> db(raw, &sqlite3_close_v2);
  sqlite3_busy_timeout(raw, 10000);
  std::printf("fsck of volume %s (state dir %s%s)\n", vol->volume_id.c_str(),
              vol->state_dir.c_str(),
              mount_pid ? (", mounted by pid " + std::to_string(mount_pid)).c_str() : "");

  int problems = 0, fixed = 0;
  auto problem = [&](const std::string& line) {
    ++problems;
    std::printf("  PROBLEM: %s\n", line.c_str());
  };

  // 1. Staging.
  auto rows = ReadSegments(raw);
  if (!rows.ok()) return Fail(rows.status());
  std::set<uint64_t> on_disk = StagingFiles(vol->state_dir + "/staging");
  std::set<uint64_t> referenced_staging;
  for (const SegmentRow& r : *rows) {
    if (r.staging_id >= 0) referenced_staging.insert(static_cast<uint64_t>(r.staging_id));
  }
  std::printf("staging: %zu files, %zu referenced\n", on_disk.size(), referenced_staging.size());
  for (uint64_t id : on_disk) {
    if (referenced_staging.count(id)) continue;
    if (mount_pid) {
      if (a.verbose) std::printf("  note: staging %016" PRIx64 " not committed yet\n", id);
    } else {
      problem("orphaned staging file " + vol->state_dir + "/staging/" +
              [&] { char b[17]; std::snprintf(b, sizeof(b), "%016" PRIx64, id); return std::string(b); }() +
              " (no segment references it; the next mount removes it)");
    }
  }
  for (const SegmentRow& r : *rows) {
    if (r.staging_id >= 0 && !on_disk.count(static_cast<uint64_t>(r.staging_id))) {
      problem(fs::InodePath(raw, r.ino) + ": segment " + std::to_string(r.idx) +
              " is staged but its staging file is missing (content lost)");
    }
  }

  // 2. The nodes.
  auto keys = fs::VolumeKeys::Derive(vol->master);
  if (!keys.ok()) return Fail(keys.status());
  auto store = fs::RecordStore::Connect(*keys, vol->cfg.nodes,
                                        std::chrono::milliseconds(vol->cfg.timeout_ms));
  if (!store.ok()) return Fail(store.status());
  fs::Inventory inv = fs::TakeInventory(**store);
  std::printf("nodes: %zu of %zu listed, %zu shards in %zu stripes\n", inv.listed.size(),
              vol->cfg.nodes.size(), inv.shards, inv.stripes.size());
  for (const std::string& u : inv.unreachable) {
    problem("node " + u + ": its shards count as missing");
  }

  // 3. Segments against the nodes.
  std::set<StripeId> referenced;
  size_t stored = 0, inline_rows = 0, staged = 0, degraded = 0, lost = 0;
  for (const SegmentRow& r : *rows) {
    if (r.inline_data) ++inline_rows;
    if (r.staging_id >= 0) ++staged;
    if (!r.has_locator) {
      if (!r.inline_data && r.staging_id < 0) {
        problem(fs::InodePath(raw, r.ino) + ": segment " + std::to_string(r.idx) +
                " has no locator, no inline data and no staging file");
      }
      continue;
    }
    ++stored;
    referenced.insert(r.loc.stripe);
    const int live = fs::LiveShards(inv, r.loc);
    if (live < r.loc.k) {
      ++lost;
      problem(fs::InodePath(raw, r.ino) + ": segment " + std::to_string(r.idx) + " (stripe " +
              r.loc.stripe.Hex() + ") has " + std::to_string(live) + " of " +
              std::to_string(r.loc.n()) + " shards, fewer than the " + std::to_string(r.loc.k) +
              " needed: unreadable" + (r.staging_id >= 0 ? " (a newer staged version exists)" : ""));
    } else if (live < r.loc.n()) {
      ++degraded;
      problem(fs::InodePath(raw, r.ino) + ": segment " + std::to_string(r.idx) + " (stripe " +
              r.loc.stripe.Hex() + ") is degraded: " + std::to_string(live) + " of " +
              std::to_string(r.loc.n()) + " shards found");
    }
  }
  std::printf("segments: %zu stored, %zu inline, %zu staged; %zu degraded, %zu unreadable\n",
              stored, inline_rows, staged, degraded, lost);
  for (const Locator& l : ReadDeleteQueue(raw)) referenced.insert(l.stripe);

  // Snapshot objects are referenced by their heads.
  fs::HeadScan heads = fs::ScanHeads(**store);
  fs::SnapshotParams params;
  params.keys = &*keys;
  params.cfg = vol->cfg;
  params.state_dir = vol->state_dir;
  if (!heads.heads.empty()) {
    auto client = fs::ConnectSnapshotClient(params);
    for (const fs::HeadEntry& e : heads.heads) {
      auto stripes = client.ok() ? ObjectStripes(**client, e.head.object.Hex())
                                 : Result<std::vector<Locator>>(client.status());
      if (!stripes.ok()) {
        problem("snapshot " + std::to_string(e.head.seq) + " is unreadable: " +
                stripes.status().ToString());
        continue;
      }
      for (const Locator& l : *stripes) referenced.insert(l.stripe);
    }
  }
  std::printf("snapshots: %zu (newest %s)\n", heads.heads.size(),
              heads.heads.empty() ? "none" : std::to_string(heads.heads.front().head.seq).c_str());
  for (const std::string& p : heads.problems) problem("unreadable snapshot head " + p);

  // 4. Orphans: ours (by owner) and referenced by nothing.
  std::string client_owner;
  if (auto id = LoadClientIdentity(vol->cfg.identity_file); id.ok()) client_owner = id->public_key;
  std::map<std::string, NodeInfo> by_id;
  for (const NodeInfo& n : inv.listed) by_id[NodeIdHex(n.id)] = n;
  size_t orphans = 0, orphan_shards = 0, collected = 0, foreign = 0;
  for (const auto& [stripe, shards] : inv.stripes) {
    if (referenced.count(stripe) || keys->HasPrefix(stripe)) continue;
    // Whose is it? One STAT of one copy tells (every shard of a stripe is
    // stored by the same writer).
    const auto& [index, nodes] = *shards.begin();
    auto stat = (*store)->StatShard(by_id[NodeIdHex(nodes.front())], stripe, index);
    if (!stat.ok()) continue;
    const std::string& owner = stat->owner;
    if (owner != client_owner && owner != keys->owner.public_key) {
      ++foreign;  // another volume's (or another client's) data
      continue;
    }
    ++orphans;
    size_t n = 0;
    for (const auto& [i, holders] : shards) n += holders.size();
    orphan_shards += n;
    if (!a.collect) {
      problem("orphan stripe " + stripe.Hex() + ": " + std::to_string(n) +
              " shard(s) on the nodes, referenced by no file");
      continue;
    }
    if (mount_pid) {
      problem("orphan stripe " + stripe.Hex() + " not collected: the volume is mounted");
      continue;
    }
    Status first;
    for (const auto& [i, holders] : shards) {
      for (NodeId node : holders) {
        Status st = (*store)->DeleteShard(by_id[NodeIdHex(node)], stripe, i, owner);
        if (!st.ok() && first.ok()) first = st;
      }
    }
    if (first.ok()) {
      ++collected;
      ++problems;
      ++fixed;
      std::printf("  collected orphan stripe %s (%zu shards)\n", stripe.Hex().c_str(), n);
    } else {
      problem("orphan stripe " + stripe.Hex() + ": " + first.ToString());
    }
  }
  std::printf("orphans: %zu stripe(s), %zu shard(s)%s; %zu stripe(s) of other owners ignored\n",
              orphans, orphan_shards,
              a.collect ? (", " + std::to_string(collected) + " collected").c_str() : "", foreign);
  if (problems == 0) {
    std::printf("no problems found\n");
    return kExitClean;
  }
  const int left = problems - fixed;
  std::printf("%d problem(s) found, %d corrected, %d left\n", problems, fixed, left);
  if (left == 0) return kExitCorrected;
  if (orphans > collected && !a.collect) {
    std::printf("run with --collect to delete the orphans (with the volume unmounted)\n");
  }
  return kExitUncorrected;
}

}  // namespace

void RegisterFsckCommand(CLI::App& app, GlobalOptions& global) {
  auto args = std::make_shared<FsckArgs>();
  CLI::App* sub = app.add_subcommand(
      "fsck", "check a volume's metadata against its staging files and the nodes");
  sub->add_flag("--collect", args->collect,
                "delete orphan shards (this volume's, referenced by nothing); not while mounted");
  sub->add_flag("--verbose", args->verbose, "also print notes");
  SetAction(sub, [&global, args] { return RunFsck(global, *args); });
}

}  // namespace shardfs::shardctl
