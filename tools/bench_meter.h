// Measurement helpers for `shardctl bench`: wall time and CPU time of this
// process (getrusage, all threads) plus that of other processes (the local
// nodes, from /proc/PID/stat), and the page-cache dropping the cold reads need.
//
// Thread-safety: CpuMeter is a value; Sample() may be called from any thread.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace shardfs::shardctl {

// CPU seconds used so far by this process and by `pids` (user + system).
struct CpuSample {
  double wall_s = 0;  // steady clock
  double self_cpu_s = 0;
  double nodes_cpu_s = 0;
};

class CpuMeter {
 public:
  explicit CpuMeter(std::vector<pid_t> node_pids) : node_pids_(std::move(node_pids)) {}
  CpuSample Sample() const;

 private:
  std::vector<pid_t> node_pids_;
};

// One measured stage: `bytes` moved between two samples.
struct StageResult {
  std::string name;
  double bytes = 0;
  CpuSample begin;
  CpuSample end;
  std::string note;  // printed after the row ("caches dropped", errors)
  bool failed = false;

  double seconds() const { return end.wall_s - begin.wall_s; }
  double mb_per_s() const;              // 10^6 bytes per second
  double client_core_s_per_gb() const;  // per 10^9 bytes
  double nodes_core_s_per_gb() const;
};

// Drops clean page-cache pages so the next read comes from the disk.
// First posix_fadvise(DONTNEED) on every file in `paths` (works unprivileged
// for clean pages; directories are walked), then, when writable (root),
// sync + /proc/sys/vm/drop_caches = 3. Returns a description of what was
// done ("drop_caches" or "fadvise only: ...").
std::string DropCaches(const std::vector<std::string>& paths);

}  // namespace shardfs::shardctl
