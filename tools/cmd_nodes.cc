// `shardctl nodes` (man/shardctl.8.rst): pings every node of the client
// config and prints one line per endpoint: node id, endpoint, zone, state,
// used, free, capacity, shard count. Needs no volume key.
//
// Exit status: 0 when at least one node answered, 1 when none did (the
// table is printed either way) or on a config error.
//
// Thread-safety: the action runs on the main thread.
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <string>

#include "lib/client_config.h"
#include "lib/node_table.h"
#include "lib/transport.h"
#include "tools/commands.h"
#include "tools/drive_state.h"

namespace shardfs::shardctl {
namespace {

int RunNodes(const GlobalOptions& global, bool raw_bytes) {
  if (global.config_path.empty()) {
    std::fprintf(stderr, "shardctl nodes: no client config given (use --config FILE)\n");
    return 1;
  }
  auto cfg = LoadClientConfig(global.config_path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "shardctl nodes: %s\n", cfg.status().ToString().c_str());
    return 1;
  }
  auto rpc = RpcClient::Create();
  if (!rpc.ok()) {
    std::fprintf(stderr, "shardctl nodes: %s\n", rpc.status().ToString().c_str());
    return 1;
  }
  const auto timeout = std::chrono::milliseconds(std::min(cfg->timeout_ms, 2000));
  size_t up = 0;
  std::vector<NodeInfo> nodes;
  {
    NodeTable table(rpc->get(), cfg->nodes, timeout);
    up = table.Refresh();
    nodes = table.Snapshot();
    (*rpc)->Shutdown();  // before the table goes: no callback may outlive it
  }
  auto size = [&](uint64_t n) { return raw_bytes ? std::to_string(n) : FormatBytes(n); };
  std::printf("%-16s  %-26s  %-10s  %-5s  %12s  %12s  %12s  %8s\n", "NODE", "ENDPOINT", "ZONE",
              "STATE", "USED", "FREE", "CAPACITY", "SHARDS");
  uint64_t total_free = 0;
  for (const NodeInfo& n : nodes) {
    const bool known = n.id != 0;
    if (n.up) total_free += n.free_bytes;
    std::printf("%-16s  %-26s  %-10s  %-5s  %12s  %12s  %12s  %8s\n",
                known ? NodeIdHex(n.id).c_str() : "-", n.endpoint.c_str(),
                n.zone.empty() ? "-" : n.zone.c_str(), n.up ? "up" : "down",
                known ? size(n.used_bytes).c_str() : "-", known ? size(n.free_bytes).c_str() : "-",
                known ? size(n.capacity_bytes).c_str() : "-",
                known ? std::to_string(n.shard_count).c_str() : "-");
  }
  std::printf("%zu of %zu node(s) up, %s free on the up nodes\n", up, nodes.size(),
              size(total_free).c_str());
  if (up == 0) {
    std::fprintf(stderr, "shardctl nodes: Unavailable: none of the %zu configured nodes answered\n",
                 nodes.size());
    return 1;
  }
  return 0;
}

}  // namespace

void RegisterNodesCommands(CLI::App& app, GlobalOptions& global) {
  auto raw = std::make_shared<bool>(false);
  CLI::App* nodes = app.add_subcommand("nodes", "list the nodes with their state and free space");
  nodes->add_flag("--bytes", *raw, "print sizes as exact byte counts");
  SetAction(nodes, [&global, raw] { return RunNodes(global, *raw); });
}

}  // namespace shardfs::shardctl
