// Command line of shardfs and mount.shardfs (man/shardfs.1.rst).
//
//   shardfs --config FILE [--state DIR] [-f] [-d] [--log-level L] [-o OPT,...] MOUNTPOINT
//   mount.shardfs CONFIG MOUNTPOINT [-o OPT,...] [-f] [-n] [-s] [-v]
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lib/status.h"

namespace shardfs::fs {

struct MountOptions {
  std::string config_path;
  std::string mountpoint;
  std::string state_dir;  // empty: ~/.local/share/shardfs/<volume id>
  bool foreground = false;
  bool debug = false;  // FUSE request tracing + debug log level
  std::string log_level = "info";
  bool upload_sync = false;           // -o upload=sync
  uint64_t cache_size = 1ull << 30;   // -o cache_size=SIZE
  int sync_timeout_s = 120;           // -o sync_timeout=SECONDS
  int upload_inflight = 8;            // -o upload_inflight=N
  int max_threads = 16;               // -o max_threads=N (FUSE workers)
  double attr_timeout = 1.0;          // -o attr_timeout=SECONDS (also entries)
  bool writeback_cache = true;        // -o no_writeback_cache turns it off
  bool read_only = false;
  std::vector<std::string> fuse_opts;  // passed to libfuse (-o allow_other, ...)
  bool help = false;
  bool version = false;
};

// Parses argv; `as_mount_helper` selects the mount.shardfs form.
// InvalidArgument with a message for the user on any error.
Result<MountOptions> ParseMountOptions(int argc, char** argv, bool as_mount_helper);
// Applies one -o list ("a,b=c") to `opts`.
Status ApplyOptionList(const std::string& list, MountOptions* opts);
// SIZE: a number with an optional K, M, G or T suffix (powers of 1024).
bool ParseSize(const std::string& text, uint64_t* out);

// The --help text (every option here is also in man/shardfs.1.rst).
std::string UsageText(const std::string& program);

}  // namespace shardfs::fs
