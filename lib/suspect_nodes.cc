// Suspect node reports. See suspect_nodes.h.
#include "lib/suspect_nodes.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>

#include "lib/log.h"

namespace shardfs {
namespace {

std::mutex g_mu;
std::string g_path;  // guarded by g_mu
std::atomic<uint64_t> g_reports{0};

}  // namespace

std::string SuspectNodesFileFor(const std::string& config_path) {
  return config_path.empty() ? std::string() : config_path + ".suspects";
}

void SetSuspectNodesFile(std::string path) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_path = std::move(path);
}

uint64_t SuspectReportsInProcess() { return g_reports.load(); }

void ReportSuspectNode(NodeId node, std::string_view reason) {
  ++g_reports;
  LOG_WARN("node {} returned altered shard data ({}); it is recorded as a suspect",
           NodeIdHex(node), reason);
  std::string path;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    path = g_path;
  }
  if (path.empty()) return;
  std::string line = std::to_string(static_cast<long long>(std::time(nullptr))) + " " +
                     NodeIdHex(node) + " ";
  for (char c : reason.substr(0, 300)) line.push_back(c == '\n' || c == '\r' ? ' ' : c);
  line.push_back('\n');
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) {
    LOG_WARN("cannot record suspect node in {}: {}", path, std::strerror(errno));
    return;
  }
  struct stat st;
  if (::fstat(fd, &st) == 0 && static_cast<uint64_t>(st.st_size) < kMaxSuspectFileSize) {
    if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      LOG_WARN("cannot record suspect node in {}: {}", path, std::strerror(errno));
    }
  }
  ::close(fd);
}

Result<std::vector<SuspectNode>> LoadSuspectNodes(const std::string& path) {
  std::vector<SuspectNode> out;
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return out;
    return Status::FromErrno(errno, "open " + path);
  }
  std::map<NodeId, SuspectNode> by_node;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    long long when = 0;
    std::string hex;
    if (!(ls >> when >> hex) || hex.size() != 16) continue;
    std::optional<NodeId> parsed = NodeIdFromHex(hex);
    if (!parsed) continue;
    const NodeId id = *parsed;
    std::string reason;
    std::getline(ls >> std::ws, reason);
    SuspectNode& s = by_node[id];
    s.node = id;
    if (s.count == 0 || when < s.first_unix) s.first_unix = when;
    if (s.count == 0 || when >= s.last_unix) {
      s.last_unix = when;
      s.last_reason = reason;
    }
    ++s.count;
  }
  for (auto& [id, s] : by_node) out.push_back(std::move(s));
  std::sort(out.begin(), out.end(),
            [](const SuspectNode& a, const SuspectNode& b) { return a.last_unix > b.last_unix; });
  return out;
}

}  // namespace shardfs
