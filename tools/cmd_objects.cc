// placeholder: being written
#include "tools/commands.h"
namespace shardfs::shardctl {
void RegisterObjectCommands(CLI::App&, GlobalOptions&) {}
}
