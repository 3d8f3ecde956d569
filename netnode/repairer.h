// Repairer: the node's self-healing loop (issue 4; PROTOCOL.md §6.3).
//
// One thread, with its own catalog connection, audits the stripes this
// node holds a shard of (stripe_audit.h) in passes. A pass that a peer's
// state change (down, back, left) or the scrubber's finding a corrupt
// shard started audits every stripe held. The pass every `audit_interval`
// audits the stripes that look unhealthy (a holder we do not reach, a
// corrupt copy of ours), those we hold a copy of that their newest locator
// gives to another node (orphans to collect), and of the rest only those
// whose audit turn is ours (audit_turn.h): the holders of a healthy-looking
// stripe take turns instead of each auditing it every interval. A pass
// first ranks the stripes by risk as this node sees it (fewest shards on
// live nodes first, then own corrupt shards) and audits them in that order;
// a new request interrupts the pass and starts a freshly ranked one.
//
// After an audit, for that stripe:
//   - orphans: our copy of an index the newest locator gives to another
//     node, which confirmed it holds it intact, is deleted;
//   - healing: our own copy found corrupt is rebuilt from k others and
//     rewritten in place (same bytes, same locator);
//   - repair: if we are the stripe's coordinator (StripeAudit::Coordinator)
//     and fewer than `threshold` shards are healthy, the missing ones are
//     rebuilt (rebuild.h), placed on nodes holding nothing of the stripe
//     (placement.h, other zones first), stored there with the locator at
//     version + 1, and that locator is published to every holder.
// Fewer than k healthy shards: the stripe is lost (logged, counted).
//
// All shard bytes the repairer moves (fetched and sent) pass a token
// bucket (`bandwidth` bytes/s), so repair never floods a home uplink.
//
// Graceful exit: HandOff() moves every shard we hold to another node the
// same way (locator version + 1), then returns; the caller exits.
//
// Thread-safety: public methods may be called from any thread. Stats are
// atomics, readable from the I/O thread without blocking.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "lib/status.h"
#include "lib/transport.h"
#include "lib/wire_messages.h"
#include "netnode/catalog.h"
#include "netnode/membership.h"
#include "netnode/rate_limiter.h"
#include "netnode/shard_store.h"
#include "netnode/stripe_audit.h"

namespace shardfs {

struct RepairOptions {
  NodeId self = 0;
  int threshold = 0;             // repair below this many healthy shards; 0: n
  uint64_t bandwidth = 8 << 20;  // bytes/s of shard traffic; 0: unlimited
  std::chrono::milliseconds audit_interval{std::chrono::seconds(60)};
  std::chrono::milliseconds sync_timeout{2000};    // SYNC_LOCATOR
  std::chrono::milliseconds shard_timeout{15000};  // GET/PUT of whole shards
};

class Repairer {
 public:
  // REQUIRES: every pointer outlives the repairer (Stop() first).
  Repairer(ShardStore* store, Membership* membership, RpcClient* rpc, RepairOptions options);
  ~Repairer();  // Stop()
  Repairer(const Repairer&) = delete;
  Repairer& operator=(const Repairer&) = delete;

  Status Start();
  void Stop();

  // Audit everything soon (membership change, corruption, a new locator).
  void RequestPass();
  // Blocks until every shard we hold was handed off (or could not be).
  // Returns how many shards stayed here.
  size_t HandOff();

  wire::NodeStats Stats() const;
  void CountScrubbed() { scrubbed_.fetch_add(1, std::memory_order_relaxed); }
  void CountCorrupt() { corrupt_found_.fetch_add(1, std::memory_order_relaxed); }

 private:
  struct Ranked {
    StripeId stripe;
    int live = 0;  // shards on nodes we do not consider down
    int n = 0;
    bool own_corrupt = false;
    bool holds_orphan = false;  // a row of ours for an index given elsewhere
    bool our_turn = false;      // audit_turn.h, for this pass's round
  };

  void Loop();
  // REQUIRES: on the repairer thread (catalog_). `every_stripe`: audit
  // all, not only those due (a requested pass).
  void RunPass(bool every_stripe);
  Result<std::vector<Ranked>> RankStripes(uint64_t round);
  // True when the stripe has fewer than k healthy shards (lost for now).
  bool AuditAndAct(const StripeId& stripe);
  void CollectOrphans(const StripeAudit& a);
  void HealOwn(const StripeAudit& a, int index);
  void RepairMissing(const StripeAudit& a);
  size_t HandOffStripe(const StripeId& stripe);
  // Stores `shards` (index -> bytes) at `targets` (index -> node) with
  // locator `loc`. Returns the indexes acknowledged.
  std::vector<int> PutShards(const Locator& loc, const std::string& owner,
                             const std::map<int, std::shared_ptr<std::vector<uint8_t>>>& shards,
                             const std::map<int, NodeInfo>& targets);
  // Adopts `loc` here and offers it to every up node it or `also` names.
  void Publish(const Locator& loc, const std::vector<NodeId>& also);
  AuditContext AuditCtx();

  // Fixed after construction.
  ShardStore* const store_;
  Membership* const membership_;
  RpcClient* const rpc_;
  const RepairOptions options_;
  RateLimiter limiter_;
  std::unique_ptr<Catalog> catalog_;  // repairer thread only
  // Repairer thread only. Stripes already reported below k: each is logged
  // once when it becomes unrepairable, not on every pass, so a node cut off
  // from its peers (which sees every stripe that way) does not flood its
  // log; `last_lost_` is the count the last summary line gave.
  std::set<StripeId> unrepairable_;
  uint64_t last_lost_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  // Guarded by mu_.
  bool stopping_ = false;
  bool pass_requested_ = true;  // a first pass soon after start
  bool handoff_requested_ = false;
  bool handoff_done_ = false;
  size_t handoff_left_ = 0;

  std::thread thread_;

  std::atomic<uint64_t> queued_{0}, active_{0}, repaired_shards_{0}, repaired_bytes_{0},
      failures_{0}, scrubbed_{0}, corrupt_found_{0}, orphans_{0}, lost_{0}, audits_{0};
};

}  // namespace shardfs
