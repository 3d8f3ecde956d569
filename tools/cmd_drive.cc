// The commands users need around a shardfs mount (man/shardctl.8.rst,
// fs/METADATA.md §9):
//
//   shardctl --config C [--state DIR] sync [--timeout SECONDS]
//       waits until the volume's upload queue is empty, printing progress
//       every second. It reads the mount's meta.db read-only (WAL allows a
//       reader beside the mount); the running mount does the uploading.
//   shardctl --config C [--state DIR] cache drop
//       empties the read cache (STATE/cache). Staging (data pending upload)
//       is a separate directory and is never touched. A running mount
//       notices through the marker STATE/cache.dropped and re-indexes.
//   shardctl --config C [--state DIR] stat PATH...
//       size, status (the user.shardfs.status xattr) and per-segment state.
//
// Exit status: 0 success; 1 failure (the reason on standard error).
//
// Thread-safety: the actions run on the main thread.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "fs/stripe_health.h"
#include "lib/coding.h"
#include "lib/locator.h"
#include "lib/node_table.h"
#include "lib/transport.h"
#include "tools/commands.h"
#include "tools/drive_state.h"

namespace shardfs::shardctl {
namespace {

using Clock = std::chrono::steady_clock;

int Fail(const char* cmd, const std::string& why) {
  std::fprintf(stderr, "shardctl %s: %s\n", cmd, why.c_str());
  return 1;
}

// --- sync -------------------------------------------------------------------

int RunSync(const GlobalOptions& global, int timeout_s) {
  auto vol = LoadDriveVolume(global);
  if (!vol.ok()) return Fail("sync", vol.status().ToString());
  auto meta = MetaReader::Open(vol->state_dir);
  if (!meta.ok()) return Fail("sync", meta.status().ToString());

  MetaReader::Pending last;
  bool first = true;
  Clock::time_point last_progress = Clock::now();
  for (;;) {
    auto p = (*meta)->QueryPending();
    if (!p.ok()) return Fail("sync", p.status().ToString());
    if (p->segments == 0) {
      std::printf("nothing pending upload on volume %s%s\n", vol->volume_id.c_str(),
                  p->deletions ? (" (" + std::to_string(p->deletions) +
                                  " replaced stripes still queued for deletion)")
                                     .c_str()
                               : "");
      std::fflush(stdout);
      return 0;
    }
    const pid_t holder = LeaseHolder(vol->state_dir);
    if (holder == 0) {
      return Fail("sync", std::to_string(p->segments) + " segment(s) (" + FormatBytes(p->bytes) +
                              ") pending upload but no mount of volume " + vol->volume_id +
                              " is running (state " + vol->state_dir +
                              "): mount it (shardfs --config FILE MOUNTPOINT) and the uploads "
                              "resume");
    }
    // Progress: fewer rows or bytes, or the oldest row went (new writes may
    // keep the count level while uploads still complete).
    if (first || p->segments < last.segments || p->bytes < last.bytes ||
        p->oldest_ns != last.oldest_ns) {
      last_progress = Clock::now();
    }
    const auto stalled = Clock::now() - last_progress;
    std::printf("pending upload: %llu segment(s), %s (mount pid %d)\n",
                static_cast<unsigned long long>(p->segments), FormatBytes(p->bytes).c_str(),
                static_cast<int>(holder));
    std::fflush(stdout);
    if (timeout_s > 0 && stalled >= std::chrono::seconds(timeout_s)) {
      return Fail("sync", "no upload finished for " + std::to_string(timeout_s) + " s; " +
                              std::to_string(p->segments) + " segment(s) (" +
                              FormatBytes(p->bytes) +
                              ") still pending. Are k + m nodes up? (shardctl --config FILE "
                              "nodes). The data stays queued; run sync again later");
    }
    last = *p;
    first = false;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

// --- cache drop -------------------------------------------------------------

int RunCacheDrop(const GlobalOptions& global) {
  auto vol = LoadDriveVolume(global);
  if (!vol.ok()) return Fail("cache drop", vol.status().ToString());
  const std::string dir = vol->state_dir + "/cache";
  const pid_t holder = LeaseHolder(vol->state_dir);
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    if (errno == ENOENT) {
      std::printf("nothing cached (%s does not exist)\n", dir.c_str());
      return 0;
    }
    return Fail("cache drop", "opendir " + dir + ": " + std::strerror(errno));
  }
  uint64_t files = 0, bytes = 0, failed = 0;
  while (struct dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    // Cache entries are named by stripe (32 hex digits). A ".tmp.*" file is
    // an insert in progress when a mount runs: leave it to the mount.
    const bool entry = StripeId::FromHex(name).has_value();
    if (!entry && (holder != 0 || name.rfind(".tmp.", 0) != 0)) continue;
    const std::string path = dir + "/" + name;
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (::unlink(path.c_str()) != 0) {
      if (errno != ENOENT) ++failed;
      continue;
    }
    ++files;
    bytes += st.st_size;
  }
  ::closedir(d);
  // Tell a running mount its cache index is stale (fs/METADATA.md §9): it
  // compares this marker at each cache insertion and re-indexes.
  // A new file renamed over the marker: a new inode, so two drops within
  // one ctime tick are still told apart.
  const std::string marker = vol->state_dir + "/cache.dropped";
  const std::string tmp = marker + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Fail("cache drop", "create " + tmp + ": " + std::strerror(errno));
  const std::string stamp = std::to_string(::getpid()) + "\n";
  (void)!::write(fd, stamp.data(), stamp.size());
  ::close(fd);
  if (::rename(tmp.c_str(), marker.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return Fail("cache drop", "rename " + tmp + ": " + std::strerror(err));
  }
  std::printf("dropped %llu cached file(s), %s, from %s%s\n",
              static_cast<unsigned long long>(files), FormatBytes(bytes).c_str(), dir.c_str(),
              holder ? (" (mount pid " + std::to_string(holder) + " re-indexes its cache)").c_str()
                     : "");
  if (failed) return Fail("cache drop", std::to_string(failed) + " file(s) could not be removed");
  return 0;
}

// --- stat -------------------------------------------------------------------

// Live node ids, by pinging the config's nodes (empty if none answered).
std::set<NodeId> LiveNodes(const ClientConfig& cfg) {
  std::set<NodeId> up;
  auto rpc = RpcClient::Create();
  if (!rpc.ok()) return up;
  {
    NodeTable table(rpc->get(), cfg.nodes,
                    std::chrono::milliseconds(std::min(cfg.timeout_ms, 2000)));
    table.Refresh();
    for (const NodeInfo& n : table.Snapshot()) {
      if (n.up && n.id != 0) up.insert(n.id);
    }
    (*rpc)->Shutdown();  // before the table goes: no callback may outlive it
  }
  return up;
}

int StatOne(const DriveVolume& vol, MetaReader* meta, const std::string& path,
            std::set<NodeId>* live, bool* live_known) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return Fail("stat", path + ": " + std::strerror(errno));
  const std::string fsname = FsNameOf(path);
  if (fsname != "shardfs:" + vol.volume_id) {
    return Fail("stat", path + " is not on a mount of volume " + vol.volume_id + " (it is on " +
                            (fsname.empty() ? std::string("an unknown file system") : fsname) +
                            ")");
  }
  char buf[512];
  ssize_t n = ::lgetxattr(path.c_str(), "user.shardfs.status", buf, sizeof(buf) - 1);
  std::string status = n >= 0 ? std::string(buf, n) : std::string("unknown: ") + std::strerror(errno);
  std::printf("%s\n  inode:  %llu\n  size:   %llu (%s)\n  status: %s\n", path.c_str(),
              static_cast<unsigned long long>(st.st_ino),
              static_cast<unsigned long long>(st.st_size), FormatBytes(st.st_size).c_str(),
              status.c_str());
  if (!S_ISREG(st.st_mode)) return 0;
  // Per segment: the committed state in meta.db (a file open with
  // uncommitted writes shows its last committed state here).
  auto segs = meta->Segments(st.st_ino);
  if (!segs.ok()) return Fail("stat", segs.status().ToString());
  std::printf("  segments: %zu of %s each\n", segs->size(),
              FormatBytes(vol.cfg.segment_size).c_str());
  for (const SegmentInfo& s : *segs) {
    std::string state;
    if (s.staged) {
      state = "pending upload";
    } else if (s.inline_data) {
      state = "inline in metadata";
    } else if (!s.locator.empty()) {
      Locator loc;
      Reader rd(reinterpret_cast<const uint8_t*>(s.locator.data()), s.locator.size());
      if (!DecodeLocator(&rd, &loc)) {
        state = "damaged: undecodable locator";
      } else {
        if (!*live_known) {
          *live = LiveNodes(vol.cfg);
          *live_known = true;
        }
        // The same wording as user.shardfs.status (fs/stripe_health.h).
        state = fs::DescribeHealth(fs::AssessStripe(loc, *live)) + " (stripe " +
                loc.stripe.Hex() + ")";
      }
    } else {
      state = "empty";
    }
    std::printf("    #%-5u %10llu bytes  %s\n", s.idx, static_cast<unsigned long long>(s.len),
                state.c_str());
  }
  return 0;
}

int RunStat(const GlobalOptions& global, const std::vector<std::string>& paths) {
  auto vol = LoadDriveVolume(global);
  if (!vol.ok()) return Fail("stat", vol.status().ToString());
  auto meta = MetaReader::Open(vol->state_dir);
  if (!meta.ok()) return Fail("stat", meta.status().ToString());
  std::set<NodeId> live;
  bool live_known = false;
  int rc = 0;
  for (const std::string& p : paths) {
    if (StatOne(*vol, meta->get(), p, &live, &live_known) != 0) rc = 1;
  }
  return rc;
}

}  // namespace

void RegisterDriveCommands(CLI::App& app, GlobalOptions& global) {
  auto timeout = std::make_shared<int>(600);
  CLI::App* sync = app.add_subcommand(
      "sync", "wait until nothing of the volume is pending upload (needs the mount running)");
  sync->add_option("--timeout", *timeout,
                   "give up after this many seconds without an upload finishing (0: never)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  SetAction(sync, [&global, timeout] { return RunSync(global, *timeout); });

  CLI::App* cache = app.add_subcommand("cache", "manage the volume's local read cache");
  cache->require_subcommand(1);
  CLI::App* drop = cache->add_subcommand(
      "drop", "empty the read cache (never data pending upload; safe while mounted)");
  SetAction(drop, [&global] { return RunCacheDrop(global); });

  auto paths = std::make_shared<std::vector<std::string>>();
  CLI::App* stat = app.add_subcommand(
      "stat", "show size, upload status and per-segment state of files on a mount");
  stat->add_option("PATH", *paths, "files or directories inside a mount of the volume")
      ->required();
  SetAction(stat, [&global, paths] { return RunStat(global, *paths); });
}

}  // namespace shardfs::shardctl
