// ConnectWithConfigFile. See client_connect.h.
#include "lib/client_connect.h"

#include "lib/client_config.h"
#include "lib/key_file.h"

namespace shardfs {

Result<std::unique_ptr<ClusterClient>> ConnectWithConfigFile(const std::string& config_path) {
  if (config_path.empty()) {
    return Status::InvalidArgument("no client config given (use --config FILE)");
  }
  ASSIGN_OR_RETURN(ClientConfig cfg, LoadClientConfig(config_path));
  auto key = LoadKeyFile(cfg.key_file);
  if (!key.ok()) return key.status().With(config_path + ": volume.key_file");
  return ClusterClient::Connect(cfg, *key);
}

}  // namespace shardfs
