// shardfs command-line parsing. See options.h.
#include "fs/options.h"

#include <cstdlib>
#include <set>
#include <sstream>

namespace shardfs::fs {
namespace {

// Mount options that only mean something to mount(8) or fstab.
bool IgnoredMountOption(const std::string& o) {
  static const std::set<std::string> kIgnored = {"defaults", "auto", "noauto", "user",
                                                 "users",    "nouser", "_netdev", "nofail",
                                                 "rw"};
  return kIgnored.count(o) || o.rfind("x-", 0) == 0 || o.rfind("comment=", 0) == 0;
}

// Options libfuse's mount understands, passed through unchanged.
bool FuseMountOption(const std::string& o) {
  static const std::set<std::string> kFlags = {
      "allow_other", "allow_root", "nosuid", "nodev",   "noexec", "suid",     "dev",
      "exec",        "noatime",    "atime",  "relatime", "dirsync", "sync",   "async",
      "auto_unmount"};
  if (kFlags.count(o)) return true;
  for (const char* prefix : {"fsname=", "subtype=", "max_read="}) {
    if (o.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

bool ParseInt(const std::string& s, int lo, int hi, int* out) {
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || v < lo || v > hi) return false;
  *out = static_cast<int>(v);
  return true;
}

}  // namespace

bool ParseSize(const std::string& text, uint64_t* out) {
  if (text.empty()) return false;
  char* end = nullptr;
  unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (end == text.c_str()) return false;
  std::string suffix(end);
  uint64_t mult = 1;
  if (suffix == "K" || suffix == "k") mult = 1ull << 10;
  else if (suffix == "M" || suffix == "m") mult = 1ull << 20;
  else if (suffix == "G" || suffix == "g") mult = 1ull << 30;
  else if (suffix == "T" || suffix == "t") mult = 1ull << 40;
  else if (!suffix.empty()) return false;
  *out = v * mult;
  return true;
}

Status ApplyOptionList(const std::string& list, MountOptions* opts) {
  std::stringstream ss(list);
  std::string o;
  while (std::getline(ss, o, ',')) {
    if (o.empty() || IgnoredMountOption(o)) continue;
    const auto eq = o.find('=');
    const std::string key = o.substr(0, eq);
    const std::string val = eq == o.npos ? "" : o.substr(eq + 1);
    auto bad = [&] { return Status::InvalidArgument("bad mount option '" + o + "'"); };
    if (key == "upload") {
      if (val == "writeback") opts->upload_sync = false;
      else if (val == "sync") opts->upload_sync = true;
      else return Status::InvalidArgument("-o upload= takes writeback or sync, not '" + val + "'");
    } else if (key == "cache_size") {
      if (!ParseSize(val, &opts->cache_size)) return bad();
    } else if (key == "sync_timeout") {
      if (!ParseInt(val, 1, 86400, &opts->sync_timeout_s)) return bad();
    } else if (key == "upload_inflight") {
      if (!ParseInt(val, 1, 64, &opts->upload_inflight)) return bad();
    } else if (key == "upload_delay") {
      if (!ParseInt(val, 0, 3600, &opts->upload_delay_s)) return bad();
    } else if (key == "staging_limit") {
      if (!ParseSize(val, &opts->staging_limit)) return bad();
    } else if (key == "disk_reserve") {
      if (!ParseSize(val, &opts->disk_reserve)) return bad();
    } else if (key == "max_threads") {
      if (!ParseInt(val, 1, 256, &opts->max_threads)) return bad();
    } else if (key == "attr_timeout") {
      char* end = nullptr;
      opts->attr_timeout = std::strtod(val.c_str(), &end);
      if (val.empty() || *end != '\0' || opts->attr_timeout < 0) return bad();
    } else if (key == "no_writeback_cache") {
      opts->writeback_cache = false;
    } else if (key == "state") {
      opts->state_dir = val;
    } else if (key == "config") {
      opts->config_path = val;
    } else if (key == "debug") {
      opts->debug = true;
    } else if (key == "ro") {
      opts->read_only = true;
      opts->fuse_opts.push_back("ro");
    } else if (FuseMountOption(o)) {
      opts->fuse_opts.push_back(o);
    } else if (Status st = ApplySnapshotOption(key, val, &opts->snapshot); !st.IsNotFound()) {
      RETURN_IF_ERROR(st);
    } else {
      return Status::InvalidArgument("unknown mount option '" + o + "' (see shardfs --help)");
    }
  }
  return Status::OK();
}

Result<MountOptions> ParseMountOptions(int argc, char** argv, bool as_mount_helper) {
  MountOptions opts;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const std::string& name) -> Result<std::string> {
      const std::string prefix = name + "=";
      if (a.rfind(prefix, 0) == 0) return a.substr(prefix.size());
      if (i + 1 >= argc) return Status::InvalidArgument(name + " needs a value");
      return std::string(argv[++i]);
    };
    if (a == "-h" || a == "--help") {
      opts.help = true;
    } else if (a == "-V" || a == "--version") {
      opts.version = true;
    } else if (a == "-f" || a == "--foreground") {
      opts.foreground = true;
    } else if (a == "-d" || a == "--debug") {
      opts.debug = true;
      opts.foreground = true;
    } else if (a == "-o" || a.rfind("-o", 0) == 0) {
      std::string list = a.size() > 2 ? a.substr(2) : "";
      if (list.empty()) {
        if (i + 1 >= argc) return Status::InvalidArgument("-o needs a value");
        list = argv[++i];
      }
      RETURN_IF_ERROR(ApplyOptionList(list, &opts));
    } else if (a == "--config" || a.rfind("--config=", 0) == 0) {
      ASSIGN_OR_RETURN(opts.config_path, value("--config"));
    } else if (a == "--state" || a.rfind("--state=", 0) == 0) {
      ASSIGN_OR_RETURN(opts.state_dir, value("--state"));
    } else if (a == "--log-level" || a.rfind("--log-level=", 0) == 0) {
      ASSIGN_OR_RETURN(opts.log_level, value("--log-level"));
    } else if (a == "--log-file" || a.rfind("--log-file=", 0) == 0) {
      ASSIGN_OR_RETURN(opts.log_file, value("--log-file"));
      if (opts.log_file.empty()) return Status::InvalidArgument("--log-file needs a path");
    } else if (as_mount_helper && (a == "-n" || a == "-s" || a == "-v")) {
      // mount(8) passes these: no mtab, sloppy, verbose. Nothing to do.
    } else if (!a.empty() && a[0] == '-' && a != "-") {
      return Status::InvalidArgument("unknown option '" + a + "' (see --help)");
    } else {
      positional.push_back(a);
    }
  }
  if (opts.help || opts.version) return opts;
  // Two positionals are the mount-helper form (mount.fuse3 runs
  // "shardfs CONFIG MOUNTPOINT -o ..." for mount -t fuse.shardfs).
  if (positional.size() == 2) {
    opts.config_path = positional[0];
    opts.mountpoint = positional[1];
  } else if (positional.size() == 1 && !as_mount_helper) {
    opts.mountpoint = positional[0];
  } else if (as_mount_helper) {
    return Status::InvalidArgument("usage: mount.shardfs CONFIG MOUNTPOINT [-o OPTIONS]");
  } else {
    return Status::InvalidArgument("expected MOUNTPOINT or CONFIG MOUNTPOINT (see --help)");
  }
  if (opts.config_path.empty()) return Status::InvalidArgument("--config FILE is required");
  return opts;
}

std::string UsageText(const std::string& program) {
  return "usage: " + program +
         " --config FILE [options] MOUNTPOINT\n"
         "       " + program + " [options] CONFIG MOUNTPOINT\n"
         "       mount.shardfs CONFIG MOUNTPOINT [-o OPTIONS]\n"
         "\n"
         "Mounts a shardfs volume. Unmount with: fusermount3 -u MOUNTPOINT\n"
         "\n"
         "options:\n"
         "  --config FILE          client configuration (client.conf)\n"
         "  --state DIR            local state directory (default\n"
         "                         ~/.local/share/shardfs/VOLUME_ID)\n"
         "  -f, --foreground       stay in the foreground\n"
         "  -d, --debug            trace FUSE requests (implies -f)\n"
         "  --log-level LEVEL      debug, info, warning or error (default info)\n"
         "  --log-file PATH        append the log to PATH (default: stderr in the\n"
         "                         foreground, syslog once detached)\n"
         "  -o OPT[,OPT...]        mount options:\n"
         "      upload=writeback   close/fsync durable locally, upload in background (default)\n"
         "      upload=sync        close/fsync wait until the cluster has every shard\n"
         "      sync_timeout=SECONDS  longest wait of upload=sync (default 120)\n"
         "      cache_size=SIZE    read cache limit, K/M/G/T suffixes (default 1G)\n"
         "      upload_inflight=N  segments uploading at once (default 8)\n"
         "      upload_delay=SECONDS  writeback: while files keep being written, uploads\n"
         "                         wait for a second of quiet, at most SECONDS (30; 0: never)\n"
         "      staging_limit=SIZE writers wait for uploads while staging holds more\n"
         "                         than SIZE (default 1G; 0: never wait)\n"
         "      disk_reserve=SIZE  free space writes and the read cache leave on the\n"
         "                         state dir's disk for the metadata (default 64M)\n"
         "      max_threads=N      FUSE worker threads (default 16)\n"
         "      attr_timeout=SECONDS  kernel attribute and name cache time (default 60)\n"
         "      no_writeback_cache disable the kernel's writeback cache\n"
         "      snapshot=off       no metadata snapshots in the network\n"
         "      snapshot_quiet=SECONDS  snapshot after this long without changes (30)\n"
         "      snapshot_interval=SECONDS  at least this often while changes go on (600)\n"
         "      snapshot_keep=N    snapshots kept in the network (3)\n"
         "      snapshot_drain=SECONDS  at unmount, wait for uploads before the last (10)\n"
         "      lease=off          no network lease (unsafe: two machines could write)\n"
         "      lease_ttl=SECONDS  a lease holder silent this long looks stale (60)\n"
         "      break_lease        take the network lease whoever holds it\n"
         "      ignore_snapshots   mount although the network's snapshots are not this\n"
         "                         state dir's ancestors\n"
         "      state=DIR          same as --state\n"
         "      config=FILE        same as --config\n"
         "      allow_other        let other users access the mount\n"
         "      ro                 read-only mount\n"
         "      debug              same as -d\n"
         "  -h, --help             show this help\n"
         "  -V, --version          show the version\n";
}

}  // namespace shardfs::fs
