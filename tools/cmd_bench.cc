// placeholder: being written
#include "tools/commands.h"
namespace shardfs::shardctl {
void RegisterBenchCommand(CLI::App&, GlobalOptions&) {}
}
