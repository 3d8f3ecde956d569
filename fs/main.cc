// shardfs / mount.shardfs: mounts a volume (man/shardfs.1.rst).
//
// Startup: parse -> load config and key -> daemonize (fork before any
// thread or database exists; the parent waits on a pipe for the child's
// verdict so mount errors reach the terminal) -> lease + SQLite + recovery
// -> FUSE session -> signal handlers -> cluster + uploader threads -> mount
// -> report ready -> loop. Teardown in reverse (STYLE.md §4).
//
// Logging: stderr in the foreground, syslog once detached, or with
// --log-file a file (plus stderr until the mount is up, so a failing mount
// still explains itself on the terminal). libfuse's own messages are routed
// into the same log.
#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fs/ops.h"
#include "fs/options.h"
#include "fs/snapshot_service.h"
#include "fs/volume.h"
#include "lib/client_config.h"
#include "lib/key_file.h"
#include "lib/log.h"

namespace shardfs::fs {
namespace {

// The --log-file sink, shared by the loggers before and after detaching.
spdlog::sink_ptr g_log_file;

// Makes the default logger write to the log file, and to stderr too when
// `with_stderr`. The loggers replaced are kept alive: other threads may be
// in the middle of a call on them (spdlog hands out a raw pointer).
void UseLogFile(bool with_stderr) {
  static std::vector<std::shared_ptr<spdlog::logger>> retired;
  retired.push_back(spdlog::default_logger());
  std::vector<spdlog::sink_ptr> sinks = {g_log_file};
  if (with_stderr) sinks.push_back(std::make_shared<spdlog::sinks::stderr_sink_mt>());
  auto logger = std::make_shared<spdlog::logger>(
      with_stderr ? "shardfs-file-stderr" : "shardfs-file", sinks.begin(), sinks.end());
  // %P: the pid of the process logging (the daemon's after the fork).
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e shardfs[%P] %l: %v");
  logger->set_level(retired.back()->level());
  logger->flush_on(spdlog::level::debug);  // a crash must not eat the last lines
  spdlog::set_default_logger(logger);
}

Status OpenLogFile(const std::string& path) {
  try {
    g_log_file = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, /*truncate=*/false);
  } catch (const spdlog::spdlog_ex& e) {
    return Status::IOError(std::string("--log-file: ") + e.what());
  }
  UseLogFile(/*with_stderr=*/true);
  return Status::OK();
}

// libfuse's messages (fuse_log) into our log.
void FuseLog(enum fuse_log_level level, const char* fmt, va_list ap) {
  char buf[1024];
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  std::string_view msg(buf);
  while (!msg.empty() && msg.back() == '\n') msg.remove_suffix(1);
  if (msg.substr(0, 6) == "fuse: ") msg.remove_prefix(6);
  // spdlog's functions, not the LOG_ macros: the sink headers above set
  // SPDLOG_ACTIVE_LEVEL before lib/log.h could, which compiles LOG_DEBUG out
  // in this file; the request trace of -d must not vanish.
  if (level <= FUSE_LOG_ERR) spdlog::error("fuse: {}", msg);
  else if (level <= FUSE_LOG_WARNING) spdlog::warn("fuse: {}", msg);
  else if (level <= FUSE_LOG_INFO) spdlog::info("fuse: {}", msg);
  else spdlog::debug("fuse: {}", msg);
}

// The parent side of daemonizing: blocks until the child reports, then
// exits with the child's verdict. The child keeps `report_fd`.
int ForkDaemon(int* report_fd) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    std::perror("shardfs: pipe");
    return -1;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("shardfs: fork");
    return -1;
  }
  if (pid == 0) {
    ::close(fds[0]);
    *report_fd = fds[1];
    return 0;
  }
  ::close(fds[1]);
  char verdict = 1;
  ssize_t n;
  do {
    n = ::read(fds[0], &verdict, 1);
  } while (n < 0 && errno == EINTR);
  // No byte: the child died before reporting (its stderr said why).
  ::_exit(n == 1 ? verdict : 1);
}

void Report(int* fd, char verdict) {
  if (*fd < 0) return;
  (void)!::write(*fd, &verdict, 1);
  ::close(*fd);
  *fd = -1;
}

// After a successful mount: leave the terminal.
void Detach() {
  ::setsid();
  (void)!::chdir("/");
  int null = ::open("/dev/null", O_RDWR);
  if (null >= 0) {
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(null, 2);
    if (null > 2) ::close(null);
  }
}

Status CheckMountpoint(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOTCONN) {
      return Status::InvalidArgument(
          "mountpoint " + path +
          " is a dead mount (a crashed shardfs?): run 'fusermount3 -u " + path + "' first");
    }
    return Status::FromErrno(errno, "mountpoint " + path);
  }
  if (!S_ISDIR(st.st_mode)) return Status::InvalidArgument("mountpoint " + path + " is not a directory");
  return Status::OK();
}

int Run(const MountOptions& opts) {
  auto cfg = LoadClientConfig(opts.config_path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "shardfs: %s\n", cfg.status().ToString().c_str());
    return 1;
  }
  auto key = LoadKeyFile(cfg->key_file);
  if (!key.ok()) {
    std::fprintf(stderr, "shardfs: key file: %s\n", key.status().ToString().c_str());
    return 1;
  }
  auto volume_id = VolumeIdFor(*key);
  if (!volume_id.ok()) {
    std::fprintf(stderr, "shardfs: %s\n", volume_id.status().ToString().c_str());
    return 1;
  }
  const std::string state_dir =
      opts.state_dir.empty() ? DefaultStateDir(*volume_id) : opts.state_dir;
  if (Status st = CheckMountpoint(opts.mountpoint); !st.ok()) {
    std::fprintf(stderr, "shardfs: %s\n", st.ToString().c_str());
    return 1;
  }

  int report_fd = -1;
  if (!opts.foreground && ForkDaemon(&report_fd) != 0) return 1;
  auto fail = [&](const std::string& what) {
    LOG_ERROR("{}", what);
    Report(&report_fd, 1);
    return 1;
  };

  auto volume = Volume::Open(opts, *cfg, *key, state_dir, *volume_id);
  if (!volume.ok()) return fail(volume.status().ToString());
  Volume* v = volume->get();

  // libfuse's own options: default_permissions makes the kernel check
  // modes and ownership against our attributes (issue: ext4 semantics).
  std::vector<std::string> argv_s = {"shardfs", "-o",
                                     "default_permissions,fsname=shardfs:" + *volume_id +
                                         ",subtype=shardfs"};
  for (const std::string& o : opts.fuse_opts) {
    argv_s.push_back("-o");
    argv_s.push_back(o);
  }
  if (opts.debug) argv_s.push_back("-d");
  std::vector<char*> argv_c;
  for (std::string& s : argv_s) argv_c.push_back(s.data());
  struct fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv_c.size()), argv_c.data());
  const struct fuse_lowlevel_ops& ops = FuseOps();
  struct fuse_session* se = fuse_session_new(&args, &ops, sizeof(ops), v);
  if (!se) return fail("cannot create the FUSE session (bad -o option?)");
  struct SessionGuard {
    fuse_session* se;
    ~SessionGuard() { fuse_session_destroy(se); }
  } session_guard{se};

  if (fuse_set_signal_handlers(se) != 0) return fail("cannot install signal handlers");
  struct SignalGuard {
    fuse_session* se;
    ~SignalGuard() { fuse_remove_signal_handlers(se); }
  } signal_guard{se};

  // Network lease and metadata snapshots (SNAPSHOTS.md), before any upload.
  auto snapshots = SnapshotService::Start(opts, *cfg, *key, state_dir, *volume_id);
  if (!snapshots.ok()) return fail(snapshots.status().ToString());
  if (Status st = v->StartNetwork(); !st.ok()) return fail(st.ToString());
  struct NetworkGuard {
    Volume* v;
    ~NetworkGuard() { v->Stop(); }
  } network_guard{v};

  if (fuse_session_mount(se, opts.mountpoint.c_str()) != 0) {
    return fail("cannot mount on " + opts.mountpoint);
  }
  struct MountGuard {
    fuse_session* se;
    ~MountGuard() { fuse_session_unmount(se); }
  } mount_guard{se};

  LOG_INFO("volume {} mounted on {} (state {}, upload={})", *volume_id, opts.mountpoint,
           state_dir, opts.upload_sync ? "sync" : "writeback");
  if (!opts.foreground) {
    v->RecordLeasePid();
    Report(&report_fd, 0);
    Detach();
    if (g_log_file) {
      UseLogFile(/*with_stderr=*/false);
    } else {
      static auto retired = spdlog::default_logger();  // see UseLogFile
      LogToSyslog("shardfs");
    }
  } else if (g_log_file) {
    UseLogFile(/*with_stderr=*/false);
  }

  struct fuse_loop_config loop_cfg;
  std::memset(&loop_cfg, 0, sizeof(loop_cfg));
  loop_cfg.clone_fd = 0;
  loop_cfg.max_idle_threads = static_cast<unsigned>(opts.max_threads);
  int rc = fuse_session_loop_mt(se, &loop_cfg);
  // The final snapshot reads the database through its own connection.
  if (Status st = v->CommitMetadata(); !st.ok()) LOG_ERROR("unmount: {}", st.ToString());
  (*snapshots)->Finish();  // final snapshot, lease released (SNAPSHOTS.md §1)
  LOG_INFO("unmounting {} (loop returned {})", opts.mountpoint, rc);
  return rc == 0 ? 0 : 1;
}

}  // namespace
}  // namespace shardfs::fs

int main(int argc, char** argv) {
  using namespace shardfs::fs;
  // Segment buffers (4 MiB, several per upload or fetch) come from the heap
  // arenas and are reused: served by mmap instead (a low mmap threshold),
  // each one was mapped, faulted in page by page and unmapped again, which
  // cost a fifth of the mount's CPU when reading from the nodes (perf). The
  // price is that resident memory stays at its high-water mark, which the
  // bounds on uploads and fetches in flight keep far below 300 MiB
  // (tests/fs/test_memory.py). Few arenas: few threads allocate big buffers.
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_ARENA_MAX, 4);
  std::string prog = argv[0];
  prog = prog.substr(prog.rfind('/') + 1);
  const bool helper = prog.rfind("mount.", 0) == 0;
  auto opts = ParseMountOptions(argc, argv, helper);
  if (!opts.ok()) {
    std::fprintf(stderr, "%s: %s\n", prog.c_str(), opts.status().message().c_str());
    return 2;
  }
  // The snapshot service reads its options from there (SNAPSHOTS.md §1).
  SetMountSnapshotOptions(opts->snapshot);
  if (opts->help) {
    std::fputs(UsageText(prog).c_str(), stdout);
    return 0;
  }
  if (opts->version) {
    std::printf("shardfs %s (libfuse %d)\n", SHARDFS_VERSION, fuse_version());
    return 0;
  }
  shardfs::LogLevel level = shardfs::LogLevel::kInfo;
  if (!shardfs::ParseLogLevel(opts->debug ? "debug" : opts->log_level, &level)) {
    std::fprintf(stderr, "%s: unknown --log-level '%s'\n", prog.c_str(), opts->log_level.c_str());
    return 2;
  }
  shardfs::InitLogging("shardfs", level);
  if (!opts->log_file.empty()) {
    if (auto st = OpenLogFile(opts->log_file); !st.ok()) {
      std::fprintf(stderr, "%s: %s\n", prog.c_str(), st.ToString().c_str());
      return 1;
    }
  }
  fuse_set_log_func(FuseLog);
  try {
    return Run(*opts);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shardfs: fatal: %s\n", e.what());
    return 1;
  }
}
