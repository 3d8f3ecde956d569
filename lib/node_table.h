// NodeTable: the nodes a client knows, learned by PINGing the endpoints of
// its config (issue 4 adds peer tables learned from the nodes themselves).
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
  // ping timeout). Returns how many nodes are up.
  size_t Refresh();

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

  // Fixed after construction.
  RpcClient* const rpc_;
  const std::chrono::milliseconds ping_timeout_;
  const std::chrono::milliseconds retry_interval_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  // Guarded by mu_.
  std::vector<Entry> entries_;
};

}  // namespace shardfs
