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
//
// Relative paths are resolved against the config file's directory.
//
// Thread-safety: plain values.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

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
  std::string path;  // the file this was loaded from ("" if built in code)
};

// InvalidArgument naming the key and the file on any bad value.
Result<ClientConfig> LoadClientConfig(const std::string& path);
// Atomic replace (tmp + fsync + rename), mode 0600.
Status WriteClientConfig(const std::string& path, const ClientConfig& cfg);

}  // namespace shardfs
