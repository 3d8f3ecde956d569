// Peer table and heartbeats. See membership.h; PROTOCOL.md §4.10, §6.1.
#include "netnode/membership.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "lib/log.h"
#include "netnode/daemon_files.h"

namespace shardfs {

using wire::PeerEntry;
using wire::PeerState;

Membership::Membership(RpcClient* rpc, MembershipOptions options)
    : rpc_(rpc), options_(std::move(options)) {
  for (const std::string& ep : options_.bootstrap) {
    if (ep != options_.self_endpoint) unidentified_.push_back(ep);
  }
}

Membership::~Membership() { Stop(); }

void Membership::Start() {
  LoadPeersFile();
  thread_ = std::thread([this] { Loop(); });
}

void Membership::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Membership::Loop() {
  auto next = Clock::now();
  int rounds = 0;
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_until(lock, next, [&] { return stopping_; })) return;
    }
    next += options_.heartbeat;
    if (next < Clock::now()) next = Clock::now() + options_.heartbeat;  // we were stopped
    SendRound(nullptr);
    bool changed;
    {
      std::lock_guard<std::mutex> lock(mu_);
      changed = UpdateStatesLocked(Clock::now());
    }
    if (changed && on_change_) on_change_();
    // The file changes rarely; checking every few beats is plenty.
    if (++rounds % 5 == 1) SavePeersFileIfChanged();
  }
}

size_t Membership::SendRound(const std::function<void()>& done) {
  wire::PeersRequest req;
  req.from_node = true;
  std::vector<std::pair<std::string, NodeId>> targets;
  {
    std::lock_guard<std::mutex> lock(mu_);
    req.peers = ViewLocked();
    for (auto& [id, p] : peers_) {
      if (p.in_flight || p.endpoint.empty()) continue;
      p.in_flight = true;
      targets.emplace_back(p.endpoint, id);
    }
    for (const std::string& ep : unidentified_) {
      bool& busy = unidentified_in_flight_[ep];
      if (busy) continue;
      busy = true;
      targets.emplace_back(ep, 0);
    }
  }
  // A reply later than a beat or two is as good as none: the peer is slow.
  const auto timeout =
      std::min<Clock::duration>(2 * options_.heartbeat, std::chrono::milliseconds(5000));
  for (const auto& [ep, id] : targets) {
    rpc_->Send(ep, req, Payload{}, Clock::now() + timeout,
               [this, ep = ep, id = id, done](Result<RpcReply> r) {
                 OnReply(ep, id, std::move(r));
                 if (done) done();
               });
  }
  return targets.size();
}

void Membership::OnReply(const std::string& endpoint, NodeId expected, Result<RpcReply> r) {
  wire::PeersReply reply;
  Status st = r.ok() ? ParseReply(*r, &reply) : r.status();
  std::lock_guard<std::mutex> lock(mu_);
  if (expected == 0) {
    unidentified_in_flight_[endpoint] = false;
  } else if (auto it = peers_.find(expected); it != peers_.end()) {
    it->second.in_flight = false;
  }
  if (!st.ok()) {
    LOG_DEBUG("PEERS to {}: {}", endpoint, st.ToString());
    return;
  }
  const PeerEntry& self = reply.peers.front();
  if (self.node_id == 0 || self.node_id == options_.self_id) return;
  if (expected != 0 && self.node_id != expected) {
    // Another node now answers at that address; the old one will go down.
    LOG_INFO("peer {} answered at {} where {} used to be", NodeIdHex(self.node_id), endpoint,
             NodeIdHex(expected));
  }
  if (expected == 0) {
    unidentified_.erase(std::remove(unidentified_.begin(), unidentified_.end(), endpoint),
                        unidentified_.end());
    unidentified_in_flight_.erase(endpoint);
  }
  PeerEntry direct = self;
  if (direct.endpoint.empty()) direct.endpoint = endpoint;
  MergeLocked(direct, /*direct=*/true);
  for (size_t i = 1; i < reply.peers.size(); ++i) MergeLocked(reply.peers[i], false);
}

wire::PeersReply Membership::OnPeers(const wire::PeersRequest& req) {
  wire::PeersReply reply;
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < req.peers.size(); ++i) {
    MergeLocked(req.peers[i], req.from_node && i == 0);
  }
  reply.peers = ViewLocked();
  return reply;
}

void Membership::Heard(NodeId id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = peers_.find(id);
  if (it == peers_.end()) return;
  it->second.last_heard = Clock::now();
  it->second.heard = true;
}

void Membership::MergeLocked(const PeerEntry& e, bool direct) {
  if (e.node_id == 0 || e.node_id == options_.self_id) return;
  const auto now = Clock::now();
  auto [it, inserted] = peers_.try_emplace(e.node_id);
  Peer& p = it->second;
  if (inserted) {
    p.id = e.node_id;
    p.known_since = now;
    LOG_INFO("learned of peer {} at {} (zone \"{}\"{})", NodeIdHex(e.node_id), e.endpoint, e.zone,
             direct ? "" : ", by gossip");
  }
  // The endpoint of the newest incarnation wins: a restarted node may have
  // a new port; gossip about its old life must not undo that.
  if (inserted || e.incarnation > p.incarnation || (direct && e.incarnation >= p.incarnation)) {
    if (!p.endpoint.empty() && p.endpoint != e.endpoint && !e.endpoint.empty()) {
      LOG_INFO("peer {} moved from {} to {}", NodeIdHex(e.node_id), p.endpoint, e.endpoint);
    }
    if (!e.endpoint.empty()) p.endpoint = e.endpoint;
    p.zone = e.zone;
    p.incarnation = e.incarnation;
    if (!direct && inserted) {
      p.capacity = e.capacity_bytes;
      p.used = e.used_bytes;
      p.free = e.free_bytes;
      p.shards = e.shard_count;
    }
  }
  if (direct) {
    p.capacity = e.capacity_bytes;
    p.used = e.used_bytes;
    p.free = e.free_bytes;
    p.shards = e.shard_count;
    p.last_heard = now;
    p.heard = true;
    p.left = e.state == PeerState::kLeft;
  }
}

bool Membership::UpdateStatesLocked(Clock::time_point now) {
  bool changed = false;
  for (auto& [id, p] : peers_) {
    PeerState s;
    const auto silent = now - (p.heard ? p.last_heard : p.known_since);
    if (p.left) {
      s = PeerState::kLeft;
    } else if (p.heard && silent < options_.suspect_after) {
      s = PeerState::kUp;
    } else if (silent < options_.down_after) {
      s = PeerState::kSuspect;
    } else {
      s = PeerState::kDown;
    }
    if (s == p.state) continue;
    changed = true;
    const auto secs = std::chrono::duration_cast<std::chrono::milliseconds>(silent).count() / 1e3;
    if (s == PeerState::kUp) {
      LOG_INFO("peer {} ({}) is up", NodeIdHex(id), p.endpoint);
    } else if (s == PeerState::kLeft) {
      LOG_INFO("peer {} ({}) has left the cluster", NodeIdHex(id), p.endpoint);
    } else {
      LOG_WARN("peer {} ({}) is {}: silent for {:.1f} s", NodeIdHex(id), p.endpoint,
               wire::PeerStateName(s), secs);
    }
    p.state = s;
  }
  return changed;
}

PeerEntry Membership::SelfEntryLocked() const {
  PeerEntry e = options_.self_usage ? options_.self_usage() : PeerEntry{};
  e.node_id = options_.self_id;
  e.state = leaving_ ? PeerState::kLeft : PeerState::kUp;
  e.incarnation = options_.incarnation;
  e.last_seen_ms_ago = 0;
  e.endpoint = options_.self_endpoint;
  e.zone = options_.zone;
  return e;
}

std::vector<PeerEntry> Membership::ViewLocked() const {
  std::vector<PeerEntry> out;
  out.reserve(peers_.size() + 1);
  out.push_back(SelfEntryLocked());
  const auto now = Clock::now();
  for (const auto& [id, p] : peers_) {
    PeerEntry e;
    e.node_id = id;
    e.state = p.state;
    e.incarnation = p.incarnation;
    const auto since = p.heard ? p.last_heard : p.known_since;
    e.last_seen_ms_ago = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(now - since).count());
    e.endpoint = p.endpoint;
    e.zone = p.zone;
    e.capacity_bytes = p.capacity;
    e.used_bytes = p.used;
    e.free_bytes = p.free;
    e.shard_count = p.shards;
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<PeerEntry> Membership::View() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ViewLocked();
}

std::vector<NodeInfo> Membership::PlacementNodes() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<NodeInfo> out;
  PeerEntry self = SelfEntryLocked();
  NodeInfo me;
  me.id = self.node_id;
  me.endpoint = self.endpoint;
  me.zone = self.zone;
  me.capacity_bytes = self.capacity_bytes;
  me.used_bytes = self.used_bytes;
  me.free_bytes = self.free_bytes;
  me.shard_count = self.shard_count;
  me.up = !leaving_;
  out.push_back(std::move(me));
  for (const auto& [id, p] : peers_) {
    NodeInfo n;
    n.id = id;
    n.endpoint = p.endpoint;
    n.zone = p.zone;
    n.capacity_bytes = p.capacity;
    n.used_bytes = p.used;
    n.free_bytes = p.free;
    n.shard_count = p.shards;
    n.up = p.state == PeerState::kUp;
    out.push_back(std::move(n));
  }
  return out;
}

std::optional<PeerState> Membership::StateOf(NodeId id) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (id == options_.self_id) return leaving_ ? PeerState::kLeft : PeerState::kUp;
  auto it = peers_.find(id);
  if (it == peers_.end()) return std::nullopt;
  return it->second.state;
}

std::optional<std::string> Membership::EndpointOf(NodeId id) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (id == options_.self_id) return options_.self_endpoint;
  auto it = peers_.find(id);
  if (it == peers_.end() || it->second.endpoint.empty()) return std::nullopt;
  return it->second.endpoint;
}

bool Membership::Reachable(NodeId id) const {
  auto s = StateOf(id);
  return s && (*s == PeerState::kUp || *s == PeerState::kSuspect);
}

void Membership::SetLeaving() {
  std::lock_guard<std::mutex> lock(mu_);
  leaving_ = true;
}

void Membership::AnnounceNow(std::chrono::milliseconds wait) {
  struct Round {
    std::mutex mu;
    std::condition_variable cv;
    size_t replied = 0;
  };
  auto round = std::make_shared<Round>();
  const size_t sent = SendRound([round] {
    std::lock_guard<std::mutex> lock(round->mu);
    ++round->replied;
    round->cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(round->mu);
  round->cv.wait_for(lock, wait, [&] { return round->replied >= sent; });
}

void Membership::LoadPeersFile() {
  if (options_.peers_file.empty()) return;
  std::ifstream in(options_.peers_file);
  if (!in) return;
  std::string line;
  size_t n = 0;
  std::lock_guard<std::mutex> lock(mu_);
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string hex, endpoint;
    if (!(ls >> hex >> endpoint)) continue;
    auto id = NodeIdFromHex(hex);
    if (!id || *id == 0 || *id == options_.self_id) continue;
    auto [it, inserted] = peers_.try_emplace(*id);
    if (!inserted) continue;
    it->second.id = *id;
    it->second.endpoint = endpoint;
    it->second.known_since = Clock::now();
    ++n;
  }
  if (n) LOG_INFO("{} known peers loaded from {}", n, options_.peers_file);
}

void Membership::SavePeersFileIfChanged() {
  if (options_.peers_file.empty()) return;
  std::string text;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, p] : peers_) {
      if (!p.endpoint.empty()) text += NodeIdHex(id) + " " + p.endpoint + "\n";
    }
    if (text == saved_peers_) return;
    saved_peers_ = text;
  }
  Status st = WriteFileAtomic(options_.peers_file, text);
  if (!st.ok()) LOG_WARN("cannot save known peers: {}", st.ToString());
}

}  // namespace shardfs
