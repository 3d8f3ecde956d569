// Stripe audit: what the holders of one stripe say about it, right now.
//
// The auditing node offers its newest locator (SYNC_LOCATOR, PROTOCOL.md
// §4.11) to every up node the locator names; each adopts it if it
// supersedes its own and answers with its newest and the shards it holds.
// If someone knew a newer locator, the auditor adopts it and offers it to
// the nodes that newer locator names and to every answering node that was
// behind, so one audit brings every reachable holder to the newest
// locator (that is how concurrent or interrupted repairs converge).
//
// Then each shard index gets a health, from the newest locator:
//   kHealthy  its node is us and our copy is intact, or it said it holds it
//   kCorrupt  its node holds it but found it corrupt (that node heals it)
//   kMissing  its node is down, has left, is unknown, or is up and said it
//             does not hold it (only for stripes older than kYoungStripe,
//             so a PUT still in flight is not taken for a loss)
//   kUnknown  its node is suspect, or up but did not answer: not counted
//             healthy, not repaired either (it may just be slow or paused)
//
// Thread-safety: AuditStripe runs on the calling thread (which owns
// `catalog`) and blocks on the network; it must not be a transport callback.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <vector>

#include "lib/locator.h"
#include "lib/status.h"
#include "lib/transport.h"
#include "lib/wire_messages.h"
#include "netnode/catalog.h"
#include "netnode/membership.h"

namespace shardfs {

enum class SlotHealth { kHealthy, kCorrupt, kMissing, kUnknown };

struct StripeAudit {
  Locator newest;
  std::vector<ShardRecord> own;   // our rows of the stripe, newest locator adopted
  std::vector<SlotHealth> slots;  // by shard index of `newest`
  std::map<NodeId, wire::SyncLocatorReply> replies;  // nodes that answered

  int Count(SlotHealth h) const;
  // The one live holder that repairs this stripe: of the nodes holding a
  // healthy shard, the one with the highest rendezvous score for the
  // stripe (placement.h). Every holder that sees the same answers computes
  // the same node. 0 when no shard is healthy.
  NodeId Coordinator() const;
  // Our row for `index`, or nullptr.
  const ShardRecord* OwnRow(int index) const;
};

struct AuditContext {
  RpcClient* rpc = nullptr;
  Membership* membership = nullptr;
  Catalog* catalog = nullptr;  // the calling thread's
  NodeId self = 0;
  std::chrono::milliseconds timeout{2000};
  uint64_t now_ms = 0;  // wall clock, for the age of our rows
};

// A stripe is "young" for this long after our copy was stored: an absent
// shard may be a PUT still on its way.
inline constexpr uint64_t kYoungStripeMs = 30000;

// NotFound when we hold nothing of the stripe (any more).
Result<StripeAudit> AuditStripe(const StripeId& stripe, const AuditContext& ctx);

// Offers `loc` to every endpoint and waits for the answers (at most the
// timeout). Returns how many answered.
size_t PublishLocator(RpcClient* rpc, const Locator& loc, const std::vector<std::string>& endpoints,
                      std::chrono::milliseconds timeout);

}  // namespace shardfs
