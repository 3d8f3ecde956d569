// `shardctl cluster start|stop|status`: a local development cluster of
// shardfs-node processes on 127.0.0.1 (man/shardctl.8.rst, "cluster").
// The process handling lives in local_cluster.{h,cc}, shared with bench.
//
// Thread-safety: runs on the main thread only.
#include <cstdio>
#include <string>

#include "tools/commands.h"
#include "tools/local_cluster.h"

namespace shardfs::shardctl {
namespace {

constexpr int kStopTimeoutMs = 10000;

int RunStart(const LocalClusterOptions& opts) {
  Result<LocalCluster> cluster = StartLocalCluster(opts);
  if (!cluster.ok()) {
    std::fprintf(stderr, "shardctl cluster start: %s\n", cluster.status().ToString().c_str());
    return 1;
  }
  for (const LocalNode& node : cluster->nodes) {
    std::printf("node-%d pid %d %s\n", node.index, static_cast<int>(node.pid),
                node.endpoint.c_str());
  }
  std::printf("client config: %s\n", cluster->config_path.c_str());
  return 0;
}

int RunStop(const std::string& dir) {
  Result<StopReport> report = StopLocalCluster(dir, kStopTimeoutMs);
  if (!report.ok()) {
    std::fprintf(stderr, "shardctl cluster stop: %s\n", report.status().ToString().c_str());
    return 1;
  }
  std::printf("stopped %d node(s)", report->stopped + report->killed);
  if (report->killed > 0) std::printf(", %d of them with SIGKILL", report->killed);
  if (report->not_running > 0) std::printf(", %d were not running", report->not_running);
  std::printf("\n");
  return 0;
}

int RunStatus(const std::string& dir) {
  std::vector<LocalNode> nodes = LocalClusterStatus(dir);
  if (nodes.empty()) {
    std::fprintf(stderr, "shardctl cluster status: no node-* directories in %s\n", dir.c_str());
    return 1;
  }
  int alive = 0;
  std::printf("%-8s %-8s %-6s %s\n", "NODE", "PID", "STATE", "ENDPOINT");
  for (const LocalNode& node : nodes) {
    alive += node.alive ? 1 : 0;
    std::printf("node-%-3d %-8s %-6s %s\n", node.index,
                node.pid ? std::to_string(node.pid).c_str() : "-", node.alive ? "up" : "down",
                node.endpoint.empty() ? "-" : node.endpoint.c_str());
  }
  std::printf("%d of %zu node(s) running\n", alive, nodes.size());
  return alive == static_cast<int>(nodes.size()) ? 0 : 3;
}

}  // namespace

// cmd_invite.cc; registered here so commands.h and shardctl_main.cc stay as
// they are (a top-level command all the same).
void RegisterInviteCommand(CLI::App& app, GlobalOptions& global);

void RegisterClusterCommands(CLI::App& app, GlobalOptions& global) {
  RegisterInviteCommand(app, global);
  CLI::App* cluster = app.add_subcommand("cluster", "start, stop or inspect a local cluster");
  cluster->require_subcommand(1);

  auto opts = std::make_shared<LocalClusterOptions>();
  CLI::App* start = cluster->add_subcommand("start", "start N shardfs-node processes on 127.0.0.1");
  start->add_option("--dir", opts->dir, "cluster directory (node-1..node-N, client.conf)")
      ->required();
  start->add_option("--nodes", opts->nodes, "number of nodes")->capture_default_str();
  start->add_option("--k", opts->k, "data shards per segment")->capture_default_str();
  start->add_option("--m", opts->m, "parity shards per segment")->capture_default_str();
  start
      ->add_option("--zones", opts->zones,
                   "zone labels zone-1..zone-Z, round robin (0: one per node)")
      ->capture_default_str();
  start->add_option("--capacity", opts->capacity, "quota of each node (suffix K, M, G, T)");
  start->add_option("--down-after", opts->down_after_s,
                    "seconds of silence before a node's shards are repaired (node default: 1800)");
  start
      ->add_option("--node-arg", opts->node_args,
                   "extra shardfs-node flag for every node, e.g. --node-arg=--scrub-rate=64M "
                   "(repeatable)")
      ->allow_extra_args(false);
  start->add_option("--node-binary", opts->node_binary, "shardfs-node executable to run");
  start->add_option("--node-log-level", opts->node_log_level, "log level of the nodes")
      ->capture_default_str();
  start->add_option("--timeout-ms", opts->start_timeout_ms, "milliseconds to wait for the nodes")
      ->capture_default_str();
  SetAction(start, [opts] { return RunStart(*opts); });

  auto stop_dir = std::make_shared<std::string>();
  CLI::App* stop = cluster->add_subcommand("stop", "stop the nodes of a local cluster");
  stop->add_option("--dir", *stop_dir, "cluster directory")->required();
  SetAction(stop, [stop_dir] { return RunStop(*stop_dir); });

  auto status_dir = std::make_shared<std::string>();
  CLI::App* status = cluster->add_subcommand("status", "list the nodes of a local cluster");
  status->add_option("--dir", *status_dir, "cluster directory")->required();
  SetAction(status, [status_dir] { return RunStatus(*status_dir); });
}

}  // namespace shardfs::shardctl
