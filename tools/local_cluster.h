// A local development cluster: N shardfs-node processes on 127.0.0.1, one
// data dir each under a common DIR, plus the client files that reach them.
//
//   DIR/node-i/        data dir of node i (1-based), passed as --data-dir
//   DIR/node-i/pid     written by the node (--pid-file)
//   DIR/node-i/endpoint  written by the node once bound (OS-chosen port)
//   DIR/node-i/log     the node's stdout and stderr
//   DIR/volume.key     master key (key_file.h), created once, mode 0600
//   DIR/client.id      client identity, created by the client on first use
//   DIR/client.conf    client config (client_config.h), rewritten by start
//   DIR/network.token  the cluster's network (curve_keys.h), created once,
//                      mode 0600; copied to DIR/node-i/network
//
// SHARDFS_BENCH_NO_CURVE=1 in the environment starts the nodes with
// --insecure-no-curve and writes a client.conf without CURVE: only to
// measure what CURVE costs (SECURITY.md §6).
//
// Used by `shardctl cluster` (cmd_cluster.cc) and `shardctl bench`
// (cmd_bench.cc); man/shardctl.8.rst documents the layout for users.
//
// Nodes are detached (own session, stdin /dev/null) so they outlive the
// shardctl that started them. Stop identifies them by the pid files and
// signals a pid only if /proc/PID/cmdline still names that node's data dir,
// so a recycled pid is never signalled.
//
// Thread-safety: functions over processes and files; call from one thread.
// StartLocalCluster forks: call it before starting other threads.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "lib/status.h"

namespace shardfs::shardctl {

struct LocalClusterOptions {
  std::string dir;  // created if missing
  int nodes = 6;
  int k = 4;
  int m = 2;
  int zones = 0;            // 0: one zone per node
  std::string capacity;     // passed to --capacity as is; "" = node default
  std::string node_binary;  // "" = FindNodeBinary search order
  std::string node_log_level = "info";
  double down_after_s = 0;               // > 0: passed to --down-after
  std::vector<std::string> node_args;    // extra flags for every node, as given
  int start_timeout_ms = 10000;
  // Nodes with --insecure-no-curve and a client.conf saying so: only for
  // the benchmark's CURVE-cost reference (SECURITY.md §6), never for data.
  // SHARDFS_BENCH_NO_CURVE=1 in the environment has the same effect.
  bool insecure_no_curve = false;
};

struct LocalNode {
  int index = 0;         // 1-based
  std::string dir;       // DIR/node-i
  pid_t pid = 0;         // 0 if no pid file
  std::string endpoint;  // "" if not written yet
  bool alive = false;    // pid names a live process running this node
};

struct LocalCluster {
  std::string dir;          // absolute
  std::string config_path;  // DIR/client.conf
  std::vector<LocalNode> nodes;
};

// Search order: `flag`, $SHARDFS_NODE, next to this executable, then
// ../netnode/shardfs-node from it (meson build tree), then $PATH.
// NotFound listing every place tried.
Result<std::string> FindNodeBinary(const std::string& flag);

// Starts the nodes, waits until each has written its endpoint and accepts a
// TCP connection, then writes volume.key (unless present) and client.conf.
// Exists if a node of DIR is still running. On any failure every process it
// started is killed and the error carries the tail of the failing node's log.
Result<LocalCluster> StartLocalCluster(const LocalClusterOptions& opts);

struct StopReport {
  int stopped = 0;      // exited after SIGTERM
  int killed = 0;       // needed SIGKILL
  int not_running = 0;  // pid file present but process gone
};
// SIGTERM to every live node of DIR, waits up to `timeout_ms`, SIGKILLs the
// rest, removes the pid files. OK with zeros if nothing was running.
Result<StopReport> StopLocalCluster(const std::string& dir, int timeout_ms);

// What DIR/node-*/ says, with liveness checked now. Sorted by index.
std::vector<LocalNode> LocalClusterStatus(const std::string& dir);

// Last `max_lines` lines of a file (empty if unreadable), for error messages.
std::string TailFile(const std::string& path, int max_lines);

}  // namespace shardfs::shardctl
