// Suspect nodes: storage nodes caught returning altered shard bytes (a
// payload that fails the CRC32C or SHA-256 the client's locator records, or
// a forged shard found by the AES-GCM tag). SegmentReader reports them here;
// `shardctl status` lists them.
//
// Each report appends one line to the suspect file, next to the client
// config (SuspectNodesFileFor: "<client.conf>.suspects"):
//   <unix seconds> <node id hex> <reason...>\n
// O_APPEND writes of one short line, so the FUSE daemon and shardctl
// commands of one config can report at once. The file is capped
// (kMaxSuspectFileSize): past it, reports go to the log only. Nodes that
// merely fail (timeouts, refusals) are not suspects: that is "down".
//
// Thread-safety: thread-safe (one mutex around the path and the counts).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/ids.h"
#include "lib/status.h"

namespace shardfs {

inline constexpr uint64_t kMaxSuspectFileSize = 1 << 20;

struct SuspectNode {
  NodeId node = 0;
  uint64_t count = 0;
  int64_t first_unix = 0;
  int64_t last_unix = 0;
  std::string last_reason;
};

// "<config path>.suspects" ("" for a config built in code).
std::string SuspectNodesFileFor(const std::string& config_path);
// Where this process records reports ("" : log only). Set once a client
// config is known (ClusterClient::Connect).
void SetSuspectNodesFile(std::string path);
// Records one report: a warning in the log always, a line in the file when
// one is set. Never fails the caller (a read must not fail because the
// report could not be written).
void ReportSuspectNode(NodeId node, std::string_view reason);
// Reports made by this process so far (tests).
uint64_t SuspectReportsInProcess();

// The file summed per node, most recent first. A missing file is an empty
// list; malformed lines are skipped.
Result<std::vector<SuspectNode>> LoadSuspectNodes(const std::string& path);

}  // namespace shardfs
