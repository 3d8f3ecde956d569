// `shardctl status` (man/shardctl.8.rst): the health of the whole cluster
// as the nodes report it, from the client config's bootstrap endpoints.
//
//   nodes    every node any reachable node knows of (PEERS), with its state
//            (up if we reach it, else the state the answering node's view
//            gives: suspect, down, left), zone, used and free space, and the
//            repair and scrub counters it reports (NODE_STATS);
//   stripes  from LIST_HOLDINGS of every reachable node: a shard counts as
//            healthy when a reachable node lists it intact, at the stripe's
//            newest locator version, and that locator names that node for
//            its index; copies that fail this are orphans awaiting
//            collection, never counted twice;
//   repair   queue, active repairs and totals, summed over the nodes;
//   suspects nodes this config's clients caught returning altered shard
//            bytes (lib/suspect_nodes.h: "<config>.suspects"); shown only,
//            not part of the exit status.
//
// Exit status: 0 every stripe has all n shards healthy on live nodes; 1
// some stripe is degraded; 2 some stripe is at risk (k or fewer healthy
// shards) or lost; 3 the status could not be taken (config, no node).
//
// Thread-safety: the action runs on the main thread.
#include <algorithm>
#include <cinttypes>
#include <condition_variable>
#include <ctime>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "lib/client_config.h"
#include "lib/node_table.h"
#include "lib/suspect_nodes.h"
#include "lib/transport.h"
#include "tools/commands.h"
#include "tools/drive_state.h"

namespace shardfs::shardctl {
namespace {

constexpr int kExitHealthy = 0;
constexpr int kExitDegraded = 1;
constexpr int kExitAtRisk = 2;
constexpr int kExitError = 3;

struct NodeRow {
  NodeInfo info;
  std::string state;  // up, suspect, down, left, unreachable
  bool reached = false;
  wire::NodeStats stats;
};

struct Copy {
  NodeId node;
  uint32_t version;
  bool named;
  bool corrupt;
};

struct StripeRow {
  int k = 0, m = 0;
  uint32_t newest = 0;
  std::map<int, std::vector<Copy>> copies;  // by index
  // Filled by Classify():
  int healthy = 0;
  int orphans = 0;
  int corrupt = 0;
  bool zone_conflict = false;
  std::map<int, NodeId> holder;  // healthy index -> node
};

// "2026-11-23 17:20:05 UTC" for a suspect report.
std::string FormatUnixTime(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  char buf[40];
  if (::gmtime_r(&tt, &tm) == nullptr || std::strftime(buf, sizeof(buf), "%F %T UTC", &tm) == 0) {
    return std::to_string(t);
  }
  return buf;
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// PING every reached node again, in parallel, for its counters.
void FetchStats(RpcClient& rpc, std::vector<NodeRow>& rows, std::chrono::milliseconds timeout) {
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    size_t left = 0;
  };
  auto shared = std::make_shared<Shared>();
  std::vector<wire::NodeStats> out(rows.size());
  auto results = std::make_shared<std::vector<wire::NodeStats>>(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) {
    if (!rows[i].reached) continue;
    {
      std::lock_guard<std::mutex> lock(shared->mu);
      ++shared->left;
    }
    rpc.Send(rows[i].info.endpoint, wire::NodeStatsRequest{}, Payload{}, Clock::now() + timeout,
             [shared, results, i](Result<RpcReply> r) {
               wire::NodeStats reply;
               Status st = r.ok() ? ParseReply(*r, &reply) : r.status();
               std::lock_guard<std::mutex> lock(shared->mu);
               if (st.ok()) (*results)[i] = reply;
               if (--shared->left == 0) shared->cv.notify_all();
             });
  }
  std::unique_lock<std::mutex> lock(shared->mu);
  shared->cv.wait(lock, [&] { return shared->left == 0; });
  for (size_t i = 0; i < rows.size(); ++i) rows[i].stats = (*results)[i];
}

// Every shard a node lists, page by page.
Status ListAll(RpcClient& rpc, const NodeRow& node, std::chrono::milliseconds timeout,
               std::map<StripeId, StripeRow>* stripes) {
  wire::ListHoldingsRequest req;
  req.limit = wire::kMaxListLimit;
  while (true) {
    auto r = rpc.Call(node.info.endpoint, req, Clock::now() + timeout);
    wire::ListHoldingsReply reply;
    Status st = r.ok() ? ParseReply(*r, &reply) : r.status();
    if (!st.ok()) return st;
    for (const wire::ListEntry& e : reply.entries) {
      StripeRow& s = (*stripes)[e.stripe];
      if (e.k != 0 && (s.k == 0 || e.locator_version >= s.newest)) {
        s.k = e.k;
        s.m = e.m;
      }
      s.newest = std::max(s.newest, e.locator_version);
      s.copies[e.index].push_back(Copy{node.info.id, e.locator_version, e.named, e.corrupt});
    }
    if (!reply.more || reply.entries.empty()) return Status::OK();
    req.has_cursor = true;
    req.after_stripe = reply.entries.back().stripe;
    req.after_index = reply.entries.back().index;
  }
}

void Classify(StripeRow& s, const std::map<NodeId, std::string>& zone_of, size_t zones) {
  std::map<std::string, int> per_zone;
  for (auto& [index, copies] : s.copies) {
    bool have = false;
    for (const Copy& c : copies) {
      if (c.corrupt) {
        ++s.corrupt;
        continue;
      }
      if (!have && c.named && c.version == s.newest) {
        have = true;
        s.holder[index] = c.node;
        auto z = zone_of.find(c.node);
        if (z != zone_of.end()) ++per_zone[z->second];
      } else if (!(c.named && c.version == s.newest)) {
        ++s.orphans;  // not (or no longer) where the newest locator says
      }
    }
    s.healthy += have ? 1 : 0;
  }
  const int n = s.k + s.m;
  // With at least n zones no two shards of a stripe may share one; with
  // fewer, no zone may hold more than its share (rounded up).
  const int limit = zones == 0 ? n : (n + static_cast<int>(zones) - 1) / static_cast<int>(zones);
  for (const auto& [zone, count] : per_zone) s.zone_conflict = s.zone_conflict || count > limit;
}

int RunStatus(const GlobalOptions& global, bool json, bool raw_bytes) {
  if (global.config_path.empty()) {
    std::fprintf(stderr, "shardctl status: no client config given (use --config FILE)\n");
    return kExitError;
  }
  auto cfg = LoadClientConfig(global.config_path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "shardctl status: %s\n", cfg.status().ToString().c_str());
    return kExitError;
  }
  auto rpc = RpcClient::Create();
  if (!rpc.ok()) {
    std::fprintf(stderr, "shardctl status: %s\n", rpc.status().ToString().c_str());
    return kExitError;
  }
  const auto timeout = std::chrono::milliseconds(std::min(cfg->timeout_ms, 2000));
  const auto list_timeout = std::chrono::milliseconds(std::max(cfg->timeout_ms, 5000));
  std::vector<NodeRow> nodes;
  std::map<StripeId, StripeRow> stripes;
  std::vector<std::string> errors;
  {
    NodeTable table(rpc->get(), cfg->nodes, timeout);
    table.Refresh();
    std::map<NodeId, wire::PeerEntry> view;
    for (const wire::PeerEntry& p : table.PeerView()) view[p.node_id] = p;
    std::set<NodeId> seen;
    for (const NodeInfo& n : table.Snapshot()) {
      if (n.id == 0) continue;
      // One row per node: the entry we reached, if any.
      auto it = std::find_if(nodes.begin(), nodes.end(),
                             [&](const NodeRow& r) { return r.info.id == n.id; });
      if (it != nodes.end()) {
        if (!it->reached && n.up) it->info = n, it->reached = true, it->state = "up";
        continue;
      }
      NodeRow row;
      row.info = n;
      row.reached = n.up;
      nodes.push_back(row);
    }
    for (auto& [id, p] : view) {
      if (std::none_of(nodes.begin(), nodes.end(),
                       [&](const NodeRow& r) { return r.info.id == id; })) {
        NodeRow row;
        row.info.id = id;
        row.info.endpoint = p.endpoint;
        row.info.zone = p.zone;
        row.info.capacity_bytes = p.capacity_bytes;
        row.info.used_bytes = p.used_bytes;
        row.info.free_bytes = p.free_bytes;
        row.info.shard_count = p.shard_count;
        nodes.push_back(row);
      }
    }
    for (NodeRow& r : nodes) {
      if (r.reached) {
        r.state = "up";
        continue;
      }
      auto p = view.find(r.info.id);
      r.state = p == view.end()                           ? "unreachable"
                : p->second.state == wire::PeerState::kUp ? "unreachable"
                                                          : wire::PeerStateName(p->second.state);
    }
    FetchStats(**rpc, nodes, timeout);
    for (NodeRow& r : nodes) {
      if (!r.reached) continue;
      Status st = ListAll(**rpc, r, list_timeout, &stripes);
      if (!st.ok()) errors.push_back(r.info.endpoint + ": " + st.ToString());
    }
    (*rpc)->Shutdown();  // before the table goes: no callback may outlive it
  }
  std::sort(nodes.begin(), nodes.end(),
            [](const NodeRow& a, const NodeRow& b) { return a.info.endpoint < b.info.endpoint; });
  size_t reached = 0;
  for (const NodeRow& r : nodes) reached += r.reached ? 1 : 0;
  if (reached == 0) {
    std::fprintf(stderr, "shardctl status: none of the %zu configured nodes answered\n",
                 cfg->nodes.size());
    return kExitError;
  }

  std::map<NodeId, std::string> zone_of;
  std::set<std::string> zones;
  for (const NodeRow& r : nodes) {
    zone_of[r.info.id] = r.info.zone;
    if (r.state == "up") zones.insert(r.info.zone);
  }
  int healthy = 0, degraded = 0, at_risk = 0, lost = 0, orphans = 0, corrupt = 0, conflicts = 0;
  for (auto& [id, s] : stripes) {
    if (s.k == 0) s.k = cfg->k, s.m = cfg->m;  // listed by old nodes only
    Classify(s, zone_of, zones.size());
    const int n = s.k + s.m;
    if (s.healthy >= n) {
      ++healthy;
    } else if (s.healthy > s.k) {
      ++degraded;
    } else if (s.healthy >= s.k) {
      ++at_risk;
    } else {
      ++lost;
    }
    orphans += s.orphans;
    corrupt += s.corrupt;
    conflicts += s.zone_conflict ? 1 : 0;
  }
  wire::NodeStats total;
  for (const NodeRow& r : nodes) {
    total.repair_queued += r.stats.repair_queued;
    total.repair_active += r.stats.repair_active;
    total.repaired_shards += r.stats.repaired_shards;
    total.repaired_bytes += r.stats.repaired_bytes;
    total.repair_failures += r.stats.repair_failures;
    total.scrubbed_shards += r.stats.scrubbed_shards;
    total.corrupt_found += r.stats.corrupt_found;
    total.orphans_collected += r.stats.orphans_collected;
    total.audits += r.stats.audits;
  }
  int code = kExitHealthy;
  if (degraded > 0) code = kExitDegraded;
  if (at_risk + lost > 0) code = kExitAtRisk;
  const char* verdict = code == kExitHealthy    ? "healthy"
                        : code == kExitDegraded ? "degraded"
                                                : "at risk";

  // Nodes this client config's clients caught returning altered shard
  // bytes (lib/suspect_nodes.h). Information only: not in the exit status.
  auto suspects = LoadSuspectNodes(SuspectNodesFileFor(global.config_path));
  if (!suspects.ok()) errors.push_back(suspects.status().ToString());
  const std::vector<SuspectNode> no_suspects;
  const std::vector<SuspectNode>& suspect_list = suspects.ok() ? *suspects : no_suspects;

  if (json) {
    std::printf("{\"nodes\": [");
    for (size_t i = 0; i < nodes.size(); ++i) {
      const NodeRow& r = nodes[i];
      const wire::NodeStats& st = r.stats;
      std::printf(
          "%s\n  {\"id\": %s, \"endpoint\": %s, \"zone\": %s, \"state\": %s, \"used\": %" PRIu64
          ", \"free\": %" PRIu64 ", \"capacity\": %" PRIu64 ", \"shards\": %" PRIu64
          ", \"repair_queued\": %" PRIu64 ", \"repair_active\": %" PRIu64
          ", \"repaired_shards\": %" PRIu64 ", \"repaired_bytes\": %" PRIu64
          ", \"repair_failures\": %" PRIu64 ", \"scrubbed_shards\": %" PRIu64
          ", \"corrupt_found\": %" PRIu64 ", \"orphans_collected\": %" PRIu64
          ", \"audits\": %" PRIu64 "}",
          i ? "," : "", JsonString(NodeIdHex(r.info.id)).c_str(),
          JsonString(r.info.endpoint).c_str(), JsonString(r.info.zone).c_str(),
          JsonString(r.state).c_str(), r.info.used_bytes, r.info.free_bytes, r.info.capacity_bytes,
          r.info.shard_count, st.repair_queued, st.repair_active, st.repaired_shards,
          st.repaired_bytes, st.repair_failures, st.scrubbed_shards, st.corrupt_found,
          st.orphans_collected, st.audits);
    }
    std::printf("\n], \"stripes\": [");
    bool first = true;
    for (const auto& [id, s] : stripes) {
      std::string holders;
      for (const auto& [index, node] : s.holder) {
        holders += (holders.empty() ? "" : ", ") + std::string("[") + std::to_string(index) + ", " +
                   JsonString(NodeIdHex(node)) + ", " + JsonString(zone_of[node]) + "]";
      }
      std::printf(
          "%s\n  {\"id\": \"%s\", \"k\": %d, \"m\": %d, \"version\": %u, \"healthy\": %d, "
          "\"orphans\": %d, \"corrupt\": %d, \"zone_conflict\": %s, \"holders\": [%s]}",
          first ? "" : ",", id.Hex().c_str(), s.k, s.m, s.newest, s.healthy, s.orphans, s.corrupt,
          s.zone_conflict ? "true" : "false", holders.c_str());
      first = false;
    }
    std::printf("\n], \"suspects\": [");
    for (size_t i = 0; i < suspect_list.size(); ++i) {
      const SuspectNode& sn = suspect_list[i];
      std::printf("%s\n  {\"id\": %s, \"reports\": %" PRIu64 ", \"first\": %lld, \"last\": %lld, "
                  "\"reason\": %s}",
                  i ? "," : "", JsonString(NodeIdHex(sn.node)).c_str(), sn.count,
                  static_cast<long long>(sn.first_unix), static_cast<long long>(sn.last_unix),
                  JsonString(sn.last_reason).c_str());
    }
    std::printf(
        "\n], \"summary\": {\"stripes\": %zu, \"healthy\": %d, \"degraded\": %d, "
        "\"at_risk\": %d, \"lost\": %d, \"orphans\": %d, \"corrupt\": %d, "
        "\"zone_conflicts\": %d, \"repair_queued\": %" PRIu64 ", \"repair_active\": %" PRIu64
        ", \"repaired_shards\": %" PRIu64 ", \"verdict\": \"%s\", \"errors\": %zu}}\n",
        stripes.size(), healthy, degraded, at_risk, lost, orphans, corrupt, conflicts,
        total.repair_queued, total.repair_active, total.repaired_shards, verdict, errors.size());
  } else {
    auto size = [&](uint64_t n) { return raw_bytes ? std::to_string(n) : FormatBytes(n); };
    std::printf("%-16s  %-26s  %-10s  %-11s  %10s  %10s  %7s  %8s\n", "NODE", "ENDPOINT", "ZONE",
                "STATE", "USED", "FREE", "SHARDS", "REPAIRED");
    for (const NodeRow& r : nodes) {
      std::printf("%-16s  %-26s  %-10s  %-11s  %10s  %10s  %7" PRIu64 "  %8" PRIu64 "\n",
                  NodeIdHex(r.info.id).c_str(), r.info.endpoint.c_str(),
                  r.info.zone.empty() ? "-" : r.info.zone.c_str(), r.state.c_str(),
                  size(r.info.used_bytes).c_str(), size(r.info.free_bytes).c_str(),
                  r.info.shard_count, r.stats.repaired_shards);
    }
    std::printf("\nnodes: %zu known, %zu up\n", nodes.size(), reached);
    std::printf("stripes: %zu: %d healthy, %d degraded, %d at risk, %d lost\n", stripes.size(),
                healthy, degraded, at_risk, lost);
    std::printf(
        "shards: %d orphan copies awaiting collection, %d corrupt, %d stripes with two "
        "shards in one zone\n",
        orphans, corrupt, conflicts);
    std::printf("repair: %" PRIu64 " stripes queued, %" PRIu64 " active; %" PRIu64
                " shards (%s) repaired, %" PRIu64 " failures, %" PRIu64 " orphans collected\n",
                total.repair_queued, total.repair_active, total.repaired_shards,
                size(total.repaired_bytes).c_str(), total.repair_failures, total.orphans_collected);
    std::printf("scrub: %" PRIu64 " shards verified, %" PRIu64 " found corrupt\n",
                total.scrubbed_shards, total.corrupt_found);
    if (suspect_list.empty()) {
      std::printf("suspect nodes: none\n");
    } else {
      std::printf("suspect nodes (returned altered shard bytes to this client):\n");
      for (const SuspectNode& sn : suspect_list) {
        std::printf("  %s  %" PRIu64 " report%s, last %s: %s\n", NodeIdHex(sn.node).c_str(),
                    sn.count, sn.count == 1 ? "" : "s", FormatUnixTime(sn.last_unix).c_str(),
                    sn.last_reason.c_str());
      }
    }
    std::printf("cluster is %s\n", verdict);
  }
  for (const std::string& e : errors) {
    std::fprintf(stderr, "shardctl status: listing %s\n", e.c_str());
  }
  return code;
}

}  // namespace

void RegisterStatusCommand(CLI::App& app, GlobalOptions& global) {
  auto json = std::make_shared<bool>(false);
  auto raw = std::make_shared<bool>(false);
  CLI::App* status = app.add_subcommand(
      "status", "cluster health: nodes, stripes healthy/degraded/at risk, repair");
  status->add_flag("--json", *json, "print the nodes, every stripe and a summary as JSON");
  status->add_flag("--bytes", *raw, "print sizes as exact byte counts");
  SetAction(status, [&global, json, raw] { return RunStatus(global, *json, *raw); });
}

}  // namespace shardfs::shardctl
