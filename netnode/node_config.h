// Node configuration: the [node] section of a TOML file (shardfs.conf(5))
// overlaid by command-line flags (shardfs-node(8)); flags win.
//
//   [node]
//   data_dir = "/var/lib/shardfs-node"   # relative: to the config file
//   listen = "tcp://127.0.0.1:0"         # port 0 or *: the OS picks
//   advertise = "tcp://host:7000"        # given to clients; default: bound
//   zone = "default"                     # failure-zone label
//   capacity = "500G"                    # bytes; K/M/G/T suffixes (1024)
//   peers = ["tcp://10.0.0.2:7000"]      # bootstrap peers (membership.h)
//   workers = 2                          # disk worker threads
//   log_level = "info"                   # debug, info, warning, error
//   heartbeat_ms = 1000                  # PEERS to every peer this often
//   down_after = 1800                    # s of silence before repair starts
//   repair_threshold = 0                 # repair below this many shards; 0: n
//   repair_bandwidth = "8M"              # bytes/s of repair traffic; 0: unlimited
//   audit_interval = 60                  # s between audit passes (audit_turn.h)
//   scrub_rate = "4M"                    # bytes/s re-read by the scrubber; 0: off
//   scrub_interval = 604800              # s before a shard is re-verified
//   join = "shardfs1...."                # join token (shardctl invite); first start
//   max_requests_per_peer = 64           # in flight per peer key before BUSY
//   insecure_no_curve = false            # benchmark only; loopback listen only
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/status.h"

namespace shardfs {

struct NodeConfig {
  std::string data_dir;
  std::string listen = "tcp://127.0.0.1:0";
  std::string advertise;  // "": the bound endpoint
  std::string zone = "default";
  uint64_t capacity_bytes = 0;  // 0: the size of the data dir's file system
  std::vector<std::string> peers;
  int workers = 2;
  std::string log_level = "info";
  std::string pid_file;  // flag only
  // Membership, repair and scrub (membership.h, repairer.h, scrubber.h).
  int heartbeat_ms = 1000;
  double down_after_s = 1800;  // the grace period: home machines reboot
  int repair_threshold = 0;    // 0: n (every missing shard is repaired)
  uint64_t repair_bandwidth = 8 << 20;
  double audit_interval_s = 60;
  uint64_t scrub_rate = 4 << 20;
  double scrub_interval_s = 7 * 24 * 3600;
  // Security (SECURITY.md): the network to join on first start (a token;
  // "" founds a new network unless DATA_DIR/network exists), the per-peer
  // request cap, and the bench-only switch that turns CURVE off.
  std::string join;
  int max_requests_per_peer = 64;
  bool insecure_no_curve = false;
};

// Reads `path` into `cfg` (keys absent from the file keep their value).
// InvalidArgument naming the file, the key and the problem on a parse
// error, an unknown key or section, or a bad value.
Status LoadNodeConfigFile(const std::string& path, NodeConfig* cfg);

// Checks the whole config after flags are applied; makes data_dir absolute.
Status FinishNodeConfig(NodeConfig* cfg);

// "1048576", "512K", "100M", "2G", "1T" (powers of 1024; case-insensitive;
// an optional trailing "B" or "iB"). InvalidArgument otherwise or on
// overflow.
Result<uint64_t> ParseByteSize(std::string_view text);

}  // namespace shardfs
