// NodeTable: the nodes a client knows: the endpoints of its config, plus
// every node those nodes know of (PEERS, PROTOCOL.md §4.10), so a client
// needs only one reachable bootstrap endpoint. Refresh() pings, then asks
// one node that answered for its peer table and pings the nodes new to us;
// RefreshDownAsync() repeats the discovery now and then in the background.
//
// Each endpoint answers a PING with its node id, zone, capacity and free
// space. A node is up while it answers; a request that times out or cannot
// be sent marks it down at once (so placement and reads stop waiting on it),
// and down nodes are pinged again in the background, at most once per
// `retry_interval`, so a node that comes back is used again.
//
// Free space is re-learned on every ping and, in between, lowered locally by
// every shard this client stores, so placement's weights stay roughly right
// during a long upload.
//
// Thread-safety: every method may be called from any thread; ping callbacks
// update the table on the transport's I/O thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "lib/cluster_client.h"
#include "lib/transport.h"

namespace shardfs {

class NodeTable {
 public:
  // REQUIRES: `rpc` outlives the table and every ping it sent (shut the
  // transport down before destroying the table).
  NodeTable(RpcClient* rpc, std::vector<std::string> endpoints,
            std::chrono::milliseconds ping_timeout,
            std::chrono::milliseconds retry_interval = std::chrono::seconds(5));
  NodeTable(const NodeTable&) = delete;
  NodeTable& operator=(const NodeTable&) = delete;

  // Pings every endpoint in parallel and waits for the answers (at most the
  // ping timeout), then learns the peers of one node that answered and
  // pings the new ones. Returns how many nodes are up.
  size_t Refresh();

  // The peer table of the first node that answered the last discovery
  // (its own entry first; the states are its view). Empty if none did.
  std::vector<wire::PeerEntry> PeerView() const;

  // Pings, without waiting, every down endpoint whose last ping is older than
  // the retry interval. Cheap when everything is up.
  void RefreshDownAsync();

  // Every endpoint, in config order (id 0: never answered).
  std::vector<NodeInfo> Snapshot() const;
  // The node with this id, preferring an entry that is up.
  std::optional<NodeInfo> Find(NodeId id) const;
  size_t UpCount() const;

  // A request to `id` failed with `why`: timeouts and unreachable mark it
  // down; NoSpace sets its free space to 0 until the next ping.
  void ReportFailure(NodeId id, const Status& why);
  // `bytes` more are stored on `id` (updates free space locally).
  void ReportStored(NodeId id, uint64_t bytes);

 private:
  struct Entry {
    NodeInfo info;
    std::string last_error;
    Clock::time_point last_ping{};
    bool ping_in_flight = false;
  };
  struct Round;  // one Refresh(): how many pings are still out

  // REQUIRES: mu_ held. Sets ping_in_flight and the ping time.
  void MarkPingLocked(size_t i);
  // Pings entries_[i]; `round` (may be null) hears when it ends.
  // REQUIRES: mu_ not held; MarkPingLocked(i) done.
  void SendPing(size_t i, std::shared_ptr<Round> round);
  void OnPing(size_t i, Result<RpcReply> r);
  // Asks up nodes (in order, until one answers) for their peer table and
  // adds the nodes we did not know. Returns how many were added.
  // REQUIRES: mu_ not held; not on the I/O thread.
  size_t Discover();
  size_t PingRound(std::vector<size_t> which);
  // REQUIRES: mu_ held. Adds the nodes of `reply` we did not know.
  size_t MergePeersLocked(const wire::PeersReply& reply);

  // Fixed after construction.
  RpcClient* const rpc_;
  const std::chrono::milliseconds ping_timeout_;
  const std::chrono::milliseconds retry_interval_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  // Guarded by mu_.
  std::vector<Entry> entries_;
  std::vector<wire::PeerEntry> peer_view_;
  Clock::time_point last_discovery_{};
  bool discovery_in_flight_ = false;
};

}  // namespace shardfs
