// shardctl subcommands: each family registers itself on the CLI11 app.
// One file per family (STYLE.md §1); shardctl_main.cc only wires them up.
#pragma once

#include <CLI/CLI.hpp>

namespace shardfs::shardctl {

// Options every client command shares (--config, --state).
struct GlobalOptions {
  std::string config_path;
  std::string state_dir;
  std::string log_level = "warning";
};

void RegisterClusterCommands(CLI::App& app, GlobalOptions& global);  // cmd_cluster.cc
void RegisterObjectCommands(CLI::App& app, GlobalOptions& global);   // cmd_objects.cc: put, get
void RegisterNodesCommands(CLI::App& app, GlobalOptions& global);    // cmd_nodes.cc: nodes
void RegisterBenchCommand(CLI::App& app, GlobalOptions& global);     // cmd_bench.cc
// cmd_drive.cc: sync, cache drop, stat (around a shardfs mount)
void RegisterDriveCommands(CLI::App& app, GlobalOptions& global);
void RegisterStatusCommand(CLI::App& app, GlobalOptions& global);    // cmd_status.cc: status
void RegisterRestoreCommand(CLI::App& app, GlobalOptions& global);   // cmd_restore.cc: restore
void RegisterFsckCommand(CLI::App& app, GlobalOptions& global);      // cmd_fsck.cc: fsck
void RegisterKeyCommands(CLI::App& app, GlobalOptions& global);      // cmd_key.cc: key protect, ...

// A command's action runs after parsing; it returns the process exit status.
// Each Register* stores its action with SetAction so main can run it.
void SetAction(CLI::App* sub, std::function<int()> action);

}  // namespace shardfs::shardctl
