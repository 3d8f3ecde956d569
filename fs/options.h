// Command line of shardfs and mount.shardfs (man/shardfs.1.rst).
//
//   shardfs --config FILE [--state DIR] [-f] [-d] [--log-level L] [--log-file PATH]
//           [-o OPT,...] MOUNTPOINT
//   mount.shardfs CONFIG MOUNTPOINT [-o OPT,...] [-f] [-n] [-s] [-v]
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "fs/snapshot_options.h"
#include "lib/status.h"

namespace shardfs::fs {

struct MountOptions {
  std::string config_path;
  std::string mountpoint;
  std::string state_dir;  // empty: ~/.local/share/shardfs/<volume id>
  bool foreground = false;
  bool debug = false;  // FUSE request tracing + debug log level
  std::string log_level = "info";
  std::string log_file;  // --log-file: append here instead of stderr/syslog
  bool upload_sync = false;           // -o upload=sync
  uint64_t cache_size = 1ull << 30;   // -o cache_size=SIZE
  int sync_timeout_s = 120;           // -o sync_timeout=SECONDS
  int upload_inflight = 8;            // -o upload_inflight=N
  // -o upload_delay=SECONDS: longest time uploads wait for a busy drive to
  // go quiet (writeback only; fs/upload_queue.h, "Pacing"). 0: never wait.
  int upload_delay_s = 30;
  uint64_t staging_limit = 1ull << 30;  // -o staging_limit=SIZE (0: no backpressure)
  // -o disk_reserve=SIZE: free space staging and the read cache leave on
  // the state dir's disk for the metadata (fs/disk_reserve.h). 0: none.
  uint64_t disk_reserve = 64ull << 20;
  int max_threads = 16;               // -o max_threads=N (FUSE workers)
  // -o attr_timeout=SECONDS: attributes, names and negative names. The
  // lease makes this mount the volume's only writer and every change passes
  // through the kernel, so a long cache time costs no correctness.
  double attr_timeout = 60.0;
  bool writeback_cache = true;        // -o no_writeback_cache turns it off
  bool read_only = false;
  // snapshot*, lease*, break_lease, ignore_snapshots (fs/SNAPSHOTS.md §1).
  SnapshotOptions snapshot;
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
