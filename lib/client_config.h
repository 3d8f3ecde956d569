// Client configuration (client.conf, TOML; shardfs.conf(5) documents it).
//
//   [volume]
//   key_file = "/path/volume.key"   # master key, mode 0600 (key_file.h)
//   identity_file = "/path/client.id" # client keypair (owner of its shards)
//   k = 4
//   m = 2
//   segment_size = 4194304           # bytes, 64 KiB .. 16 MiB
//   [cluster]
//   nodes = ["tcp://127.0.0.1:40001", ...]  # at least one reachable
//   timeout_ms = 5000                # per request before trying elsewhere
//   network_file = "/path/network.token" # join token, mode 0600 (curve_keys.h)
//   insecure_no_curve = false        # benchmark only, loopback nodes only
//
// Loading also loads (or creates) the identity and the network file and
// installs the resulting CURVE keys as the process default for RpcClients
// (curve_keys.h), so every socket of a client process is CURVE.
//
// Relative paths are resolved against the config file's directory.
//
// Thread-safety: plain values.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "lib/curve_keys.h"
#include "lib/status.h"

namespace shardfs {

struct ClientConfig {
  std::string key_file;
  std::string identity_file;
  int k = 4;
  int m = 2;
  size_t segment_size = 4 * 1024 * 1024;
  std::vector<std::string> nodes;
  int timeout_ms = 5000;
  std::string network_file;  // "" : $SHARDFS_NETWORK_FILE
  bool insecure_no_curve = false;
  CurveClientKeys curve;     // filled by LoadClientConfig; not written
  std::string path;  // the file this was loaded from ("" if built in code)
};

// InvalidArgument naming the key and the file on any bad value; the
// network file's errors (missing, mode, malformed) name it too.
Result<ClientConfig> LoadClientConfig(const std::string& path);
// Loads the network file and identity named by `cfg` into cfg->curve.
// InvalidArgument when no network file is configured (and not insecure).
Status LoadClientCurveKeys(ClientConfig* cfg);
// Atomic replace (tmp + fsync + rename), mode 0600. An empty network_file
// is written as DefaultNetworkFile() (the one this process loaded).
Status WriteClientConfig(const std::string& path, const ClientConfig& cfg);

}  // namespace shardfs
