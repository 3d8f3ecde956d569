// The drive part of `shardctl bench` (issue 3, "Benchmark"): the same
// workloads on four targets measured in one run, so the figures compare:
//
//   local        a plain directory on the temp dir's file system
//   passthrough  libfuse's passthrough_ll example over a plain directory,
//                compiled at bench time from Debian's packaged source
//                (/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c);
//                skipped with a note when the source or a compiler is missing.
//                passthrough_ll holds a descriptor per inode and fails an
//                rsync of a 20k-file tree under a 20,000-descriptor limit;
//                the rsync is then measured on the high-level passthrough
//                example (passthrough.c, path-based), with a note
//   shardfs-wb   a shardfs mount of the bench cluster, -o upload=writeback
//   shardfs-sync the same with -o upload=sync
//
// Workloads: sequential write of --size with fio (bs=1M, buffered,
// end_fsync=1), sequential read of it after dropping caches (where root),
// N files of 4 KiB created, stat'ed and deleted by an in-process loop, and
// rsync -a of a real tree. For shardfs, `shardctl sync` after the write,
// the small files and the rsync: each phase starts with nothing left to
// upload, and the write and the rsync are also timed until the nodes have
// all of their data. For FUSE targets the mount process's peak
// resident memory (VmHWM) is reported. Figures and ratios to passthrough,
// each with the goal and whether this run met it; the exit status
// never depends on them. The goal for rsync is for a tree of 20k files or
// more (/usr/share/man here; /usr/include has about 9k).
//
// Every process it starts is stopped and every mount unmounted before
// RunDriveBench returns, also when `stop` becomes true (Ctrl-C).
//
// Thread-safety: call from one thread; it forks and execs helpers.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace shardfs::shardctl {

struct DriveBenchOptions {
  std::string dir;              // scratch dir (created subdirs are removed)
  std::string config_path;      // client.conf of a running cluster
  std::string shardfs_binary;   // "" = next to shardctl, ../fs/shardfs, $PATH
  uint64_t size = 1ull << 30;   // bytes for the sequential write/read
  int files = 10000;            // small files created, stat'ed, deleted
  std::string rsync_source = "/usr/include";
};

// Runs the drive workloads and prints the table; 0 unless setup failed.
int RunDriveBench(const DriveBenchOptions& opts, const std::atomic<bool>& stop);

}  // namespace shardfs::shardctl
