// placeholder: being written
#include "tools/commands.h"
namespace shardfs::shardctl {
void RegisterClusterCommands(CLI::App&, GlobalOptions&) {}
}
