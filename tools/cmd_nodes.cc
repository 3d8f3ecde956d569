// placeholder: being written
#include "tools/commands.h"
namespace shardfs::shardctl {
void RegisterNodesCommands(CLI::App&, GlobalOptions&) {}
}
