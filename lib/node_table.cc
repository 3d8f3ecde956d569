// NodeTable implementation. See node_table.h.
#include "lib/node_table.h"

#include "lib/log.h"

namespace shardfs {

namespace {
constexpr std::chrono::seconds kDiscoveryInterval{30};
}  // namespace

struct NodeTable::Round {
  size_t outstanding = 0;  // guarded by NodeTable::mu_
};

NodeTable::NodeTable(RpcClient* rpc, std::vector<std::string> endpoints,
                     std::chrono::milliseconds ping_timeout,
                     std::chrono::milliseconds retry_interval)
    : rpc_(rpc), ping_timeout_(ping_timeout), retry_interval_(retry_interval) {
  for (std::string& ep : endpoints) {
    Entry e;
    e.info.endpoint = std::move(ep);
    entries_.push_back(std::move(e));
  }
}

size_t NodeTable::PingRound(std::vector<size_t> which) {
  auto round = std::make_shared<Round>();
  std::vector<size_t> to_ping;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i : which) {
      // A ping already in flight will update the entry; do not wait for it.
      if (entries_[i].ping_in_flight) continue;
      MarkPingLocked(i);
      to_ping.push_back(i);
    }
    round->outstanding = to_ping.size();
  }
  for (size_t i : to_ping) SendPing(i, round);
  // The transport runs every callback by its deadline (plus one poll
  // round), so this wait is bounded by the ping timeout.
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return round->outstanding == 0; });
  size_t up = 0;
  for (const Entry& e : entries_) up += e.info.up ? 1 : 0;
  return up;
}

size_t NodeTable::Refresh() {
  std::vector<size_t> all;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < entries_.size(); ++i) all.push_back(i);
  }
  size_t up = PingRound(all);
  if (up == 0) return 0;
  const size_t before = [&] {
    std::lock_guard<std::mutex> lock(mu_);
    return entries_.size();
  }();
  if (Discover() == 0) return up;
  std::vector<size_t> fresh;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = before; i < entries_.size(); ++i) fresh.push_back(i);
  }
  return PingRound(fresh);
}

size_t NodeTable::Discover() {
  std::vector<std::string> up;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (discovery_in_flight_) return 0;
    discovery_in_flight_ = true;
    last_discovery_ = Clock::now();
    for (const Entry& e : entries_) {
      if (e.info.up) up.push_back(e.info.endpoint);
    }
  }
  size_t added = 0;
  for (const std::string& ep : up) {
    auto r = rpc_->Call(ep, wire::PeersRequest{}, Clock::now() + ping_timeout_);
    wire::PeersReply reply;
    Status st = r.ok() ? ParseReply(*r, &reply) : r.status();
    if (!st.ok()) {
      // An older node (UNKNOWN_COMMAND) or a slow one: ask the next.
      LOG_DEBUG("peer table from {}: {}", ep, st.ToString());
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    added = MergePeersLocked(reply);
    break;
  }
  std::lock_guard<std::mutex> lock(mu_);
  discovery_in_flight_ = false;
  return added;
}

size_t NodeTable::MergePeersLocked(const wire::PeersReply& reply) {
  size_t added = 0;
  peer_view_ = reply.peers;
  for (const wire::PeerEntry& p : reply.peers) {
    if (p.node_id == 0 || p.endpoint.empty()) continue;
    bool known = false;
    for (const Entry& e : entries_) {
      // A known id at a new endpoint (a restart on another port) gets an
      // entry of its own; Find() prefers whichever is up.
      known = known || e.info.endpoint == p.endpoint;
    }
    if (known) continue;
    Entry e;
    e.info.endpoint = p.endpoint;
    e.info.id = p.node_id;
    e.info.zone = p.zone;
    entries_.push_back(std::move(e));
    ++added;
  }
  return added;
}

void NodeTable::RefreshDownAsync() {
  const auto now = Clock::now();
  std::vector<size_t> to_ping;
  std::string discover_at;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < entries_.size(); ++i) {
      Entry& e = entries_[i];
      if (e.info.up || e.ping_in_flight || now - e.last_ping < retry_interval_) continue;
      MarkPingLocked(i);
      to_ping.push_back(i);
    }
    // Now and then, learn of nodes that joined since.
    if (!discovery_in_flight_ && now - last_discovery_ > kDiscoveryInterval) {
      for (const Entry& e : entries_) {
        if (e.info.up) {
          discover_at = e.info.endpoint;
          break;
        }
      }
      if (!discover_at.empty()) {
        discovery_in_flight_ = true;
        last_discovery_ = now;
      }
    }
  }
  for (size_t i : to_ping) SendPing(i, nullptr);
  if (discover_at.empty()) return;
  rpc_->Send(discover_at, wire::PeersRequest{}, Payload{}, Clock::now() + ping_timeout_,
             [this](Result<RpcReply> r) {
               wire::PeersReply reply;
               Status st = r.ok() ? ParseReply(*r, &reply) : r.status();
               std::lock_guard<std::mutex> lock(mu_);
               discovery_in_flight_ = false;
               // New entries are down with no ping yet: the next
               // RefreshDownAsync pings them.
               if (st.ok()) MergePeersLocked(reply);
             });
}

std::vector<wire::PeerEntry> NodeTable::PeerView() const {
  std::lock_guard<std::mutex> lock(mu_);
  return peer_view_;
}

void NodeTable::MarkPingLocked(size_t i) {
  entries_[i].ping_in_flight = true;
  entries_[i].last_ping = Clock::now();
}

// Called without mu_: after Shutdown() the transport calls back inline.
void NodeTable::SendPing(size_t i, std::shared_ptr<Round> round) {
  std::string endpoint;
  {
    std::lock_guard<std::mutex> lock(mu_);
    endpoint = entries_[i].info.endpoint;
  }
  rpc_->Send(endpoint, wire::PingRequest{}, Payload{}, Clock::now() + ping_timeout_,
             [this, i, round](Result<RpcReply> r) {
               OnPing(i, std::move(r));
               if (round) {
                 std::lock_guard<std::mutex> lock(mu_);
                 if (--round->outstanding == 0) cv_.notify_all();
               }
             });
}

void NodeTable::OnPing(size_t i, Result<RpcReply> r) {
  wire::PingReply ping;
  Status st = r.ok() ? ParseReply(*r, &ping) : r.status();
  std::lock_guard<std::mutex> lock(mu_);
  Entry& e = entries_[i];
  e.ping_in_flight = false;
  if (!st.ok()) {
    if (e.info.up) LOG_WARN("node {} is down: {}", e.info.endpoint, st.ToString());
    e.info.up = false;
    e.last_error = st.ToString();
    return;
  }
  if (ping.node_id == 0) {
    e.info.up = false;
    e.last_error = "node reported id 0";
    return;
  }
  if (!e.info.up && e.info.id != 0) LOG_INFO("node {} is up again", e.info.endpoint);
  if (e.info.id != 0 && e.info.id != ping.node_id) {
    LOG_WARN("node at {} changed id from {} to {}", e.info.endpoint, NodeIdHex(e.info.id),
             NodeIdHex(ping.node_id));
  }
  e.info.id = ping.node_id;
  e.info.zone = ping.zone;
  e.info.capacity_bytes = ping.capacity_bytes;
  e.info.used_bytes = ping.used_bytes;
  e.info.free_bytes = ping.free_bytes;
  e.info.shard_count = ping.shard_count;
  e.info.up = true;
  e.last_error.clear();
}

std::vector<NodeInfo> NodeTable::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<NodeInfo> out;
  out.reserve(entries_.size());
  for (const Entry& e : entries_) out.push_back(e.info);
  return out;
}

std::optional<NodeInfo> NodeTable::Find(NodeId id) const {
  std::lock_guard<std::mutex> lock(mu_);
  const Entry* found = nullptr;
  for (const Entry& e : entries_) {
    if (e.info.id != id) continue;
    if (e.info.up) return e.info;
    if (found == nullptr) found = &e;
  }
  if (found == nullptr) return std::nullopt;
  return found->info;
}

size_t NodeTable::UpCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t up = 0;
  for (const Entry& e : entries_) up += e.info.up ? 1 : 0;
  return up;
}

void NodeTable::ReportFailure(NodeId id, const Status& why) {
  std::lock_guard<std::mutex> lock(mu_);
  for (Entry& e : entries_) {
    if (e.info.id != id) continue;
    if (why.IsNoSpace()) {
      e.info.free_bytes = 0;
    } else if (why.IsTimedOut() || why.IsUnavailable()) {
      if (e.info.up) LOG_WARN("node {} marked down: {}", e.info.endpoint, why.ToString());
      e.info.up = false;
      e.last_error = why.ToString();
      e.last_ping = Clock::now();  // retry after retry_interval_ from now
    }
  }
}

void NodeTable::ReportStored(NodeId id, uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  for (Entry& e : entries_) {
    if (e.info.id != id) continue;
    e.info.free_bytes = e.info.free_bytes > bytes ? e.info.free_bytes - bytes : 0;
    e.info.used_bytes += bytes;
    ++e.info.shard_count;
  }
}

}  // namespace shardfs
