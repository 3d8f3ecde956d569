// The drive benchmark (see bench_drive.h): local dir, libfuse passthrough,
// shardfs writeback and sync, each through fio, a small-file loop and rsync.
#include "tools/bench_drive.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tools/bench_meter.h"
#include "tools/drive_state.h"

namespace shardfs::shardctl {
namespace {

namespace sfs = std::filesystem;
using Clock = std::chrono::steady_clock;
constexpr char kExamples[] = "/usr/share/doc/libfuse3-dev/examples/";
// passthrough_ll keeps an O_PATH descriptor per inode the kernel knows, so
// on a machine whose descriptor limit is 20,000 it fails an rsync of a
// 20k-file tree (EMFILE); the rsync is then repeated on the high-level
// passthrough example, which resolves paths and holds no descriptors.
constexpr char kPassthroughLl[] = "passthrough_ll";
constexpr char kPassthroughHl[] = "passthrough";
constexpr size_t kSmallFileBytes = 4096;
// The examples guard utimens, fallocate, xattrs and copy_file_range behind
// the HAVE_* macros libfuse's own build defines on Linux. Compiled without
// them, the high-level passthrough answers ENOSYS to utimens: rsync -a then
// skips setting every file's times (exit 23) and the reference does ~40%
// less work than shardfs (11.9 s vs 20.7 s for /usr/share/man here).
constexpr char kExampleDefines[] =
    "-DHAVE_UTIMENSAT -DHAVE_POSIX_FALLOCATE -DHAVE_FALLOCATE -DHAVE_SETXATTR "
    "-DHAVE_COPY_FILE_RANGE";

double SecondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Forks and execs argv with stdout and stderr appended to `log`.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid != 0) return pid;
  int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (out >= 0) {
    ::dup2(out, 1);
    ::dup2(out, 2);
  }
  if (null >= 0) ::dup2(null, 0);
  ::execvp(args[0], args.data());
  std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
  ::_exit(127);
}

// Waits for `pid`; on `stop` (or after `timeout_s`) kills it. Exit status, -1 if killed.
int WaitChild(pid_t pid, const std::atomic<bool>& stop, double timeout_s = 1e9) {
  const auto t0 = Clock::now();
  while (true) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (r < 0) return -1;
    if (stop.load() || SecondsSince(t0) > timeout_s) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

int Run(const std::vector<std::string>& argv, const std::string& log,
        const std::atomic<bool>& stop) {
  return WaitChild(Spawn(argv, log), stop);
}

bool IsMountPoint(const std::string& path) {
  struct stat a, b;
  if (::stat(path.c_str(), &a) != 0) return false;
  if (::stat((path + "/..").c_str(), &b) != 0) return false;
  return a.st_dev != b.st_dev;
}

// VmHWM of `pid` in KiB, 0 if unknown.
uint64_t PeakRssKib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

struct Figures {
  double write_mbs = NAN, read_mbs = NAN;
  double write_uploaded_mbs = NAN;  // fio write, then `shardctl sync`
  double create_ps = NAN, stat_ps = NAN, delete_ps = NAN;
  double rsync_s = NAN;
  double uploaded_s = NAN;  // rsync, then `shardctl sync` until nothing is pending
  double hwm_mib = NAN;
  std::string note;
};

struct Target {
  std::string name;
  std::string root;   // where the workloads run
  pid_t pid = 0;      // FUSE daemon (0: plain dir)
  std::vector<std::string> sync_cmd;  // shardfs: shardctl ... sync
  std::string state_dir;              // shardfs: its state dir (queues)
  Figures fig;
};

// Polls the drive's deletion queue until it is empty (at most 5 minutes);
// the note says how long it took.
void WaitForDeletions(Target* t, const std::atomic<bool>& stop) {
  auto meta = MetaReader::Open(t->state_dir);
  if (!meta.ok()) return;
  const auto t0 = Clock::now();
  // The unlink's rows reach the queue with the drive's next batch commit
  // (within 5 ms, fs/METADATA.md §7a): look after that.
  while (!stop.load() && SecondsSince(t0) < 300) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto p = (*meta)->QueryPending();
    if (!p.ok() || p->deletions == 0) break;
  }
  char buf[96];
  std::snprintf(buf, sizeof buf, "deleting the fio file took %.1f s on the nodes; ",
                SecondsSince(t0));
  t->fig.note += buf;
}

void SmallFiles(const std::string& dir, int n, const std::atomic<bool>& stop, Figures* f) {
  if (::mkdir(dir.c_str(), 0755) != 0) return;
  std::vector<char> buf(kSmallFileBytes, 'x');
  auto name = [&](int i) { return dir + "/f" + std::to_string(i); };
  auto t0 = Clock::now();
  int done = 0;
  for (; done < n && !stop.load(); ++done) {
    int fd = ::open(name(done).c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) break;
    bool ok = ::write(fd, buf.data(), buf.size()) == static_cast<ssize_t>(buf.size());
    ok &= ::close(fd) == 0;
    if (!ok) break;
  }
  if (done < n) {
    f->note += "create failed or stopped after " + std::to_string(done) + " files; ";
    return;
  }
  f->create_ps = n / SecondsSince(t0);
  t0 = Clock::now();
  struct stat st;
  for (int i = 0; i < n && !stop.load(); ++i) (void)::stat(name(i).c_str(), &st);
  f->stat_ps = n / SecondsSince(t0);
  t0 = Clock::now();
  for (int i = 0; i < n && !stop.load(); ++i) (void)::unlink(name(i).c_str());
  f->delete_ps = n / SecondsSince(t0);
  ::rmdir(dir.c_str());
}

// rsync -a of the tree into the target; exit 23/24 (some attributes or
// vanished files not transferred) still times the copy, with a note.
// Returns rsync's exit status.
int RsyncOnce(Target* t, const DriveBenchOptions& o, const std::string& log,
              const std::atomic<bool>& stop) {
  const auto t0 = Clock::now();
  const int rc = Run({"rsync", "-a", o.rsync_source + "/", t->root + "/rsync/"}, log, stop);
  if (rc == 0 || rc == 23 || rc == 24) t->fig.rsync_s = SecondsSince(t0);
  if (rc == 23 || rc == 24) {
    t->fig.note += "rsync exit " + std::to_string(rc) + " (some attributes not transferred); ";
  } else if (rc != 0) {
    t->fig.note += "rsync failed (exit " + std::to_string(rc) + ", see the log); ";
  }
  return rc;
}

void Workloads(Target* t, const DriveBenchOptions& o, const std::string& log,
               const std::atomic<bool>& stop) {
  std::printf("  %s: fio write...", t->name.c_str());
  std::fflush(stdout);
  const std::string data = t->root + "/fio.dat";
  const std::string size = std::to_string(o.size);
  std::vector<std::string> fio = {"fio", "--name=seq", "--filename=" + data, "--bs=1M",
                                  "--size=" + size, "--direct=0", "--ioengine=psync",
                                  "--output=/dev/null"};
  auto t0 = Clock::now();
  auto w = fio;
  w.insert(w.end(), {"--rw=write", "--end_fsync=1"});
  if (Run(w, log, stop) == 0) t->fig.write_mbs = o.size / 1e6 / SecondsSince(t0);
  if (stop.load()) return;
  // Every phase starts on a drive with nothing left to upload, so no phase
  // pays for the previous one's uploads; the write's own are timed here.
  if (!t->sync_cmd.empty() && Run(t->sync_cmd, log, stop) == 0 && !std::isnan(t->fig.write_mbs)) {
    t->fig.write_uploaded_mbs = o.size / 1e6 / SecondsSince(t0);
  }
  if (stop.load()) return;
  std::printf(" read...");
  std::fflush(stdout);
  DropCaches({});
  auto r = fio;
  r.push_back("--rw=read");
  t0 = Clock::now();
  if (Run(r, log, stop) == 0) t->fig.read_mbs = o.size / 1e6 / SecondsSince(t0);
  ::unlink(data.c_str());
  // Deleting the 1 GiB file is not done when unlink returns on shardfs: its
  // stripes leave the nodes from the deletion queue. Like the uploads
  // above, that belongs to the phase before, so wait for it (and for dirty
  // pages anywhere) before timing the small files.
  if (!t->state_dir.empty()) WaitForDeletions(t, stop);
  ::sync();
  if (stop.load()) return;
  std::printf(" small files...");
  std::fflush(stdout);
  SmallFiles(t->root + "/small", o.files, stop, &t->fig);
  if (!t->sync_cmd.empty()) (void)Run(t->sync_cmd, log, stop);
  if (stop.load()) return;
  std::printf(" rsync...");
  std::fflush(stdout);
  RsyncOnce(t, o, log, stop);
  // writeback returns before the nodes have the data: also time until they
  // do, so the table shows what the early return costs in total.
  if (!t->sync_cmd.empty() && !std::isnan(t->fig.rsync_s) && !stop.load()) {
    const auto t1 = Clock::now();
    if (Run(t->sync_cmd, log, stop) == 0) t->fig.uploaded_s = t->fig.rsync_s + SecondsSince(t1);
  }
  if (t->pid) t->fig.hwm_mib = PeakRssKib(t->pid) / 1024.0;
  std::printf(" done\n");
}

// Starts a FUSE daemon in the foreground and waits for its mount.
pid_t MountFuse(const std::vector<std::string>& argv, const std::string& mnt,
                const std::string& log, const std::atomic<bool>& stop) {
  pid_t pid = Spawn(argv, log);
  const auto t0 = Clock::now();
  while (!stop.load() && SecondsSince(t0) < 30) {
    if (IsMountPoint(mnt)) return pid;
    int status;
    if (::waitpid(pid, &status, WNOHANG) == pid) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  return 0;
}

void Unmount(const std::string& mnt, pid_t pid, const std::string& log) {
  std::atomic<bool> never{false};
  if (IsMountPoint(mnt) && Run({"fusermount3", "-u", mnt}, log, never) != 0) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    if (Run({"fusermount3", "-u", mnt}, log, never) != 0) {
      Run({"fusermount3", "-uz", mnt}, log, never);
    }
  }
  // Unmounting ends the daemon's loop; shardfs then waits for uploads in flight.
  if (pid > 0 && WaitChild(pid, never, 120) < 0) {
    std::fprintf(stderr, "  (the daemon %d did not exit in time and was killed)\n", pid);
  }
}

std::string FindShardfs(const std::string& flag) {
  if (!flag.empty()) return flag;
  std::error_code ec;
  sfs::path self = sfs::read_symlink("/proc/self/exe", ec).parent_path();
  for (const sfs::path& p : {self / "shardfs", self / ".." / "fs" / "shardfs"}) {
    if (::access(p.c_str(), X_OK) == 0) return p.string();
  }
  return "shardfs";
}

std::string Cell(double v, const char* fmt) {
  if (std::isnan(v)) return "-";
  char b[32];
  std::snprintf(b, sizeof(b), fmt, v);
  return b;
}

// a / ref as a percentage (ref / a for times), with the goal when there
// is one: "72% (goal 60%: met)".
std::string Ratio(double a, double ref, bool inverse = false, double goal = 0) {
  if (std::isnan(a) || std::isnan(ref) || a <= 0 || ref <= 0) return "-";
  const double r = 100.0 * (inverse ? ref / a : a / ref);
  char b[64];
  if (goal > 0) {
    std::snprintf(b, sizeof(b), "%.0f%% (goal %.0f%%: %s)", r, goal, r >= goal ? "met" : "MISSED");
  } else {
    std::snprintf(b, sizeof(b), "%.0f%%", r);
  }
  return b;
}

void PrintTable(const std::vector<Target>& ts, size_t tree_files, const DriveBenchOptions& o) {
  std::printf("\n%-22s", "drive");
  for (const Target& t : ts) std::printf(" %13s", t.name.c_str());
  std::printf("\n");
  struct Row {
    const char* label;
    double Figures::*field;
    const char* fmt;
  };
  const Row rows[] = {
      {"seq write MB/s", &Figures::write_mbs, "%.0f"},
      {"  until uploaded MB/s", &Figures::write_uploaded_mbs, "%.0f"},
      {"seq read MB/s", &Figures::read_mbs, "%.0f"},
      {"create files/s", &Figures::create_ps, "%.0f"},
      {"stat files/s", &Figures::stat_ps, "%.0f"},
      {"delete files/s", &Figures::delete_ps, "%.0f"},
      {"rsync seconds", &Figures::rsync_s, "%.1f"},
      {"  until uploaded s", &Figures::uploaded_s, "%.1f"},
      {"mount peak RSS MiB", &Figures::hwm_mib, "%.0f"},
  };
  for (const Row& r : rows) {
    std::printf("%-22s", r.label);
    for (const Target& t : ts) std::printf(" %13s", Cell(t.fig.*r.field, r.fmt).c_str());
    std::printf("\n");
  }
  const Target* pt = nullptr;
  for (const Target& t : ts) {
    if (t.name == "passthrough") pt = &t;
  }
  std::printf("\n");
  if (pt) {
    for (const Target& t : ts) {
      if (t.name.rfind("shardfs", 0) != 0) continue;
      // The goals are for writeback mode; sync mode is reported beside it.
      const bool wb = t.name == "shardfs-wb";
      std::printf("%s / passthrough (rsync: passthrough time / %s time):\n", t.name.c_str(),
                  t.name.c_str());
      std::printf("  write %s, read %s\n",
                  Ratio(t.fig.write_mbs, pt->fig.write_mbs, false, wb ? 60 : 0).c_str(),
                  Ratio(t.fig.read_mbs, pt->fig.read_mbs, false, wb ? 60 : 0).c_str());
      std::printf("  create %s, stat %s, delete %s\n",
                  Ratio(t.fig.create_ps, pt->fig.create_ps, false, wb ? 30 : 0).c_str(),
                  Ratio(t.fig.stat_ps, pt->fig.stat_ps, false, wb ? 30 : 0).c_str(),
                  Ratio(t.fig.delete_ps, pt->fig.delete_ps).c_str());
      std::printf("  rsync %s%s\n",
                  Ratio(t.fig.rsync_s, pt->fig.rsync_s, true,
                        wb && tree_files >= 20000 ? 50 : 0).c_str(),
                  wb && tree_files < 20000 ? " (goal is for a tree of 20k files or more)" : "");
      if (!std::isnan(t.fig.hwm_mib)) {
        std::printf("  mount peak RSS %.0f MiB (goal < 300 MiB: %s)\n", t.fig.hwm_mib,
                    t.fig.hwm_mib < 300 ? "met" : "MISSED");
      }
    }
  } else {
    std::printf("(no passthrough reference: see the note above; ratios omitted)\n");
  }
  std::printf(
      "goals (shardfs-wb vs passthrough): write and read >= 60%%; create and stat >= 30%%;\n"
      "  rsync of a 20k-file tree within 2x (rsync time ratio >= 50%%); mount RSS < 300 MiB.\n"
      "  Runs on a shared 2-core machine are noisy: compare ratios of one run.\n");
  std::printf("%d files of %zu bytes; rsync -a of %s (%zu entries); fio bs=1M buffered, %.2f GB\n",
              o.files, kSmallFileBytes, o.rsync_source.c_str(), tree_files, o.size / 1e9);
  for (const Target& t : ts) {
    if (!t.fig.note.empty()) std::printf("note %s: %s\n", t.name.c_str(), t.fig.note.c_str());
  }
}

}  // namespace

int RunDriveBench(const DriveBenchOptions& o, const std::atomic<bool>& stop) {
  const std::string base = o.dir + "/drive";
  std::error_code ec;
  sfs::create_directories(base, ec);
  const std::string log = base + "/bench.log";
  size_t tree_files = 0;
  for (auto it = sfs::recursive_directory_iterator(o.rsync_source, ec);
       !ec && it != sfs::recursive_directory_iterator(); it.increment(ec)) {
    ++tree_files;
  }
  std::printf("drive benchmark (helper output in %s)\n", log.c_str());
  std::vector<Target> done;

  // (a) plain directory.
  {
    Target t{"local", base + "/local"};
    sfs::create_directories(t.root, ec);
    Workloads(&t, o, log, stop);
    done.push_back(t);
    sfs::remove_all(t.root, ec);
  }
  // (b) libfuse's passthrough examples, compiled now from the packaged sources.
  if (!stop.load()) {
    Target t{"passthrough", base + "/pt-mnt"};
    const std::string src = base + "/pt-src";
    auto build = [&](const char* name) -> std::string {
      const std::string source = std::string(kExamples) + name + ".c";
      const std::string bin = base + "/" + name;
      if (::access(source.c_str(), R_OK) != 0) {
        t.fig.note += source + " missing (apt install libfuse3-dev); ";
        return "";
      }
      if (Run({"sh", "-c",
               std::string("cc -O2 ") + kExampleDefines + " -o '" + bin + "' '" + source +
                   "' $(pkg-config --cflags --libs fuse3)"},
              log, stop) != 0) {
        t.fig.note += std::string("compiling ") + name + " failed (see " + log + "); ";
        return "";
      }
      return bin;
    };
    const std::string ll = build(kPassthroughLl);
    sfs::create_directories(src, ec);
    sfs::create_directories(t.root, ec);
    if (!ll.empty()) {
      t.pid = MountFuse({ll, "-f", "-o", "source=" + src, t.root}, t.root, log, stop);
      if (t.pid) {
        Workloads(&t, o, log, stop);
        Unmount(t.root, t.pid, log);
      } else {
        t.fig.note += "passthrough_ll did not mount (see " + log + "); ";
      }
    }
    if (std::isnan(t.fig.rsync_s) && !stop.load()) {
      // The high-level example mirrors the whole root file system at its
      // mount point, so the copy goes to our scratch dir through it.
      const std::string hl = build(kPassthroughHl);
      sfs::remove_all(src, ec);
      sfs::create_directories(src, ec);
      if (!hl.empty()) {
        Target r{"passthrough", base + "/pt-mnt"};
        r.pid = MountFuse({hl, "-f", r.root}, r.root, log, stop);
        if (r.pid) {
          r.root = r.root + src;
          std::printf("  passthrough (high-level, for rsync): rsync...");
          std::fflush(stdout);
          RsyncOnce(&r, o, log, stop);
          std::printf(" done\n");
          Unmount(base + "/pt-mnt", r.pid, log);
          t.fig.rsync_s = r.fig.rsync_s;
          t.fig.note += "rsync measured on the high-level passthrough example (passthrough_ll "
                        "holds a descriptor per inode and ran out); " + r.fig.note;
        }
      }
    }
    sfs::remove_all(src, ec);
    done.push_back(t);
  }
  // (c), (d) shardfs in both upload modes, each with its own state dir.
  const std::string shardfs = FindShardfs(o.shardfs_binary);
  for (const char* mode : {"writeback", "sync"}) {
    if (stop.load()) break;
    Target t{std::string("shardfs-") + (mode[0] == 'w' ? "wb" : "sync"),
             base + "/mnt-" + mode};
    sfs::create_directories(t.root, ec);
    // Both modes mount the bench volume from their own state dirs, one after
    // the other: the second must not be refused for not descending from the
    // first one's metadata snapshots (fs/SNAPSHOTS.md), so ignore them.
    // $SHARDFS_BENCH_MOUNT_OPTS: more -o options (e.g. lease=off), for
    // comparing settings without a rebuild.
    std::string mount_opts = std::string("upload=") + mode + ",ignore_snapshots";
    if (const char* extra = std::getenv("SHARDFS_BENCH_MOUNT_OPTS"); extra && *extra) {
      mount_opts += std::string(",") + extra;
    }
    t.state_dir = base + "/state-" + mode;
    t.pid = MountFuse({shardfs, "-f", "--config", o.config_path, "--state", t.state_dir, "-o",
                       mount_opts, t.root},
                      t.root, log, stop);
    std::error_code self_ec;
    const std::string self = sfs::read_symlink("/proc/self/exe", self_ec).string();
    if (!self_ec) {
      t.sync_cmd = {self, "--config", o.config_path, "--state", t.state_dir, "sync"};
    }
    if (t.pid) {
      Workloads(&t, o, log, stop);
      Unmount(t.root, t.pid, log);
    } else {
      t.fig.note = "shardfs did not mount (see " + log + ")";
    }
    done.push_back(t);
  }
  PrintTable(done, tree_files, o);
  return 0;
}

}  // namespace shardfs::shardctl
