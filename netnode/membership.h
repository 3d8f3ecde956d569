// Membership: the node's view of its peers (PROTOCOL.md §4.10, §6.1).
//
// Every heartbeat the node sends PEERS to each peer it knows, and to each
// bootstrap endpoint not yet identified, carrying its own entry first and
// its whole view after it; the reply is the peer's view, its own entry
// first. So a node learns of every other node within a few heartbeats of
// meeting any one of them, and a restarted node (same identity file, so the
// same id, maybe a new endpoint) is recognised by its id; the entry with
// the higher incarnation (start time) carries the current endpoint.
//
// Liveness is what this node itself observes, never hearsay: a peer is up
// while it answered (or sent us a PEERS request) within `suspect_after`,
// suspect until `down_after` (the grace period, long by default since home
// machines reboot), then down, which makes its stripes' coordinators
// rebuild its shards (repair.h). A peer that announces kLeft (graceful
// exit) is down at once. A peer learned by gossip but never heard is
// suspect from the moment it was learned.
//
// Known peers are saved to DATA_DIR/peers (id and endpoint per line) so a
// restart can reach the cluster without its bootstrap peers.
//
// Thread-safety: thread-safe. OnPeers runs on the server's I/O thread, the
// heartbeat on its own thread, replies on the transport's I/O thread; one
// mutex (a leaf) guards the table. `on_change` is called without it.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "lib/cluster_client.h"
#include "lib/transport.h"
#include "lib/wire_messages.h"

namespace shardfs {

struct MembershipOptions {
  NodeId self_id = 0;
  std::string self_endpoint;  // advertised
  std::string zone;
  uint64_t incarnation = 0;  // this process's start, unix ms
  std::vector<std::string> bootstrap;
  std::chrono::milliseconds heartbeat{1000};
  std::chrono::milliseconds suspect_after{3500};
  std::chrono::milliseconds down_after{std::chrono::minutes(30)};
  std::string peers_file;  // "" : not persisted
  // Own usage for the self entry (capacity, used, free, shard count).
  std::function<wire::PeerEntry()> self_usage;
};

class Membership {
 public:
  // REQUIRES: `rpc` outlives the membership (Stop() first).
  Membership(RpcClient* rpc, MembershipOptions options);
  ~Membership();  // Stop()
  Membership(const Membership&) = delete;
  Membership& operator=(const Membership&) = delete;

  // Loads the peers file and starts the heartbeat thread.
  void Start();
  // Joins the heartbeat thread. Replies still in flight are dropped.
  void Stop();

  // Called on every state change of a peer (up, suspect, down, left), from
  // the heartbeat thread. Set before Start().
  void SetOnChange(std::function<void()> fn) { on_change_ = std::move(fn); }

  // A PEERS request arrived (I/O thread): learn from it, answer with our view.
  wire::PeersReply OnPeers(const wire::PeersRequest& req);
  // Any other request from a node also proves it alive (not used for clients).
  void Heard(NodeId id);

  // Our view, self first.
  std::vector<wire::PeerEntry> View() const;
  // For placement (placement.h): every known node with `up` = state up,
  // self included.
  std::vector<NodeInfo> PlacementNodes() const;
  // State of `id` as seen here; self is up (or left). nullopt: unknown.
  std::optional<wire::PeerState> StateOf(NodeId id) const;
  std::optional<std::string> EndpointOf(NodeId id) const;
  // True when `id` is self or up or suspect: worth asking, not yet replaced.
  bool Reachable(NodeId id) const;

  // Graceful exit: from now on our own entry says kLeft.
  void SetLeaving();
  // Sends one round of PEERS now and waits (at most `wait`) for the replies,
  // so peers hear of a state change before the process exits.
  void AnnounceNow(std::chrono::milliseconds wait);

 private:
  struct Peer {
    NodeId id = 0;
    std::string endpoint;
    std::string zone;
    uint64_t incarnation = 0;
    uint64_t capacity = 0, used = 0, free = 0, shards = 0;
    Clock::time_point known_since{};
    Clock::time_point last_heard{};
    bool heard = false;
    bool left = false;
    wire::PeerState state = wire::PeerState::kSuspect;
    bool in_flight = false;
  };

  void Loop();
  // One round: PEERS to every peer and unidentified bootstrap endpoint.
  // `done` (may be null) runs once per reply or failure.
  size_t SendRound(const std::function<void()>& done);
  void OnReply(const std::string& endpoint, NodeId expected, Result<RpcReply> r);
  // REQUIRES: mu_ held.
  void MergeLocked(const wire::PeerEntry& e, bool direct);
  wire::PeerEntry SelfEntryLocked() const;
  std::vector<wire::PeerEntry> ViewLocked() const;
  // Recomputes states; returns the peers that changed (for logs).
  bool UpdateStatesLocked(Clock::time_point now);
  void LoadPeersFile();
  void SavePeersFileIfChanged();

  // Fixed after construction.
  RpcClient* const rpc_;
  const MembershipOptions options_;
  std::function<void()> on_change_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  // Guarded by mu_.
  std::map<NodeId, Peer> peers_;
  std::vector<std::string> unidentified_;  // bootstrap endpoints not yet answered
  std::map<std::string, bool> unidentified_in_flight_;
  bool leaving_ = false;
  bool stopping_ = false;
  std::string saved_peers_;  // last content written to the peers file

  std::thread thread_;
};

}  // namespace shardfs
