// One call from a client.conf path to a connected ClusterClient: load the
// config (client_config.h), the volume key it names (key_file.h), then
// ClusterClient::Connect. For shardctl's client commands and benchmarks.
//
// Thread-safety: may be called from any thread.
#pragma once

#include <memory>
#include <string>

#include "lib/cluster_client.h"

namespace shardfs {

// Errors name what failed: "no --config given", the config file and key,
// the key file and its mode, or the nodes that did not answer.
Result<std::unique_ptr<ClusterClient>> ConnectWithConfigFile(const std::string& config_path);

}  // namespace shardfs
