// shardctl: the admin and developer tool (man/shardctl.8.rst).
// Parses the command line with CLI11 and runs the chosen subcommand's action.
#include <cstdio>
#include <functional>
#include <map>

#include "lib/log.h"
#include "tools/commands.h"

namespace shardfs::shardctl {
namespace {
std::map<CLI::App*, std::function<int()>>& Actions() {
  static std::map<CLI::App*, std::function<int()>> actions;
  return actions;
}
}  // namespace

void SetAction(CLI::App* sub, std::function<int()> action) {
  Actions()[sub] = std::move(action);
}

}  // namespace shardfs::shardctl

int main(int argc, char** argv) {
  using namespace shardfs::shardctl;
  CLI::App app{"shardctl: manage shardfs volumes, keys and local clusters"};
  app.require_subcommand(1);
  GlobalOptions global;
  app.add_option("--config", global.config_path, "client config file (client.conf)");
  app.add_option("--state", global.state_dir, "local state directory of the volume");
  app.add_option("--log-level", global.log_level, "debug, info, warning or error")
      ->capture_default_str();
  RegisterClusterCommands(app, global);
  RegisterObjectCommands(app, global);
  RegisterNodesCommands(app, global);
  RegisterStatusCommand(app, global);
  RegisterBenchCommand(app, global);
  RegisterDriveCommands(app, global);
  RegisterRestoreCommand(app, global);
  RegisterFsckCommand(app, global);
  RegisterKeyCommands(app, global);
  CLI11_PARSE(app, argc, argv);

  shardfs::LogLevel level = shardfs::LogLevel::kWarning;
  if (!shardfs::ParseLogLevel(global.log_level, &level)) {
    std::fprintf(stderr, "shardctl: unknown --log-level '%s'\n", global.log_level.c_str());
    return 2;
  }
  shardfs::InitLogging("shardctl", level);
  for (CLI::App* sub : app.get_subcommands()) {
    // The deepest chosen subcommand with an action runs.
    CLI::App* leaf = sub;
    while (!leaf->get_subcommands().empty()) leaf = leaf->get_subcommands().front();
    auto it = Actions().find(leaf);
    if (it != Actions().end()) return it->second();
  }
  std::fprintf(stderr, "shardctl: nothing to do (see --help)\n");
  return 2;
}
