// One stripe's audit. See stripe_audit.h.
#include "netnode/stripe_audit.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <set>

#include "lib/log.h"
#include "lib/placement.h"

namespace shardfs {
namespace {

struct Round {
  std::mutex mu;
  std::condition_variable cv;
  size_t left = 0;
  std::map<NodeId, wire::SyncLocatorReply> replies;
};

// SYNC_LOCATOR offering `loc` to each (node, endpoint); waits for all.
std::map<NodeId, wire::SyncLocatorReply> SyncRound(
    RpcClient* rpc, const Locator& loc, const std::vector<std::pair<NodeId, std::string>>& targets,
    std::chrono::milliseconds timeout) {
  auto round = std::make_shared<Round>();
  round->left = targets.size();
  wire::SyncLocatorRequest req;
  req.stripe = loc.stripe;
  req.has_locator = true;
  req.locator = loc;
  const auto deadline = Clock::now() + timeout;
  for (const auto& [id, ep] : targets) {
    rpc->Send(ep, req, Payload{}, deadline,
              [round, id = id, stripe = loc.stripe](Result<RpcReply> r) {
                wire::SyncLocatorReply reply;
                Status st = r.ok() ? ParseReply(*r, &reply) : r.status();
                std::lock_guard<std::mutex> lock(round->mu);
                if (st.ok() && (!reply.has_locator || reply.locator.stripe == stripe)) {
                  round->replies[id] = std::move(reply);
                }
                if (--round->left == 0) round->cv.notify_all();
              });
  }
  std::unique_lock<std::mutex> lock(round->mu);
  round->cv.wait(lock, [&] { return round->left == 0; });
  return std::move(round->replies);
}

}  // namespace

int StripeAudit::Count(SlotHealth h) const {
  return static_cast<int>(std::count(slots.begin(), slots.end(), h));
}

NodeId StripeAudit::Coordinator() const {
  NodeId best = 0;
  double best_score = 0;
  for (size_t i = 0; i < slots.size(); ++i) {
    if (slots[i] != SlotHealth::kHealthy) continue;
    const NodeId id = newest.shards[i].node;
    const double score = PlacementScore(newest.stripe, id, 1);
    if (best == 0 || score > best_score || (score == best_score && id < best)) {
      best = id;
      best_score = score;
    }
  }
  return best;
}

const ShardRecord* StripeAudit::OwnRow(int index) const {
  for (const ShardRecord& r : own) {
    if (r.key.index == index) return &r;
  }
  return nullptr;
}

Result<StripeAudit> AuditStripe(const StripeId& stripe, const AuditContext& ctx) {
  StripeAudit a;
  ASSIGN_OR_RETURN(a.own, ctx.catalog->StripeRows(stripe));
  if (a.own.empty()) return Status::NotFound("no shard of stripe " + stripe.Hex() + " here");
  a.newest = a.own.front().locator;
  uint64_t newest_row_ms = 0;
  for (const ShardRecord& r : a.own) {
    if (LocatorNewer(r.locator, a.newest)) a.newest = r.locator;
    newest_row_ms = std::max(newest_row_ms, r.created_ms);
  }

  // Round 1: every up node our newest locator names.
  auto targets_for = [&](const Locator& loc, const std::set<NodeId>& skip) {
    std::vector<std::pair<NodeId, std::string>> out;
    std::set<NodeId> seen = skip;
    for (const ShardLocation& s : loc.shards) {
      if (s.node == ctx.self || !seen.insert(s.node).second) continue;
      if (ctx.membership->StateOf(s.node) != wire::PeerState::kUp) continue;
      if (auto ep = ctx.membership->EndpointOf(s.node)) out.emplace_back(s.node, *ep);
    }
    return out;
  };
  const Locator offered = a.newest;
  a.replies = SyncRound(ctx.rpc, offered, targets_for(offered, {}), ctx.timeout);
  for (const auto& [id, r] : a.replies) {
    if (r.has_locator && r.locator.stripe == stripe && LocatorNewer(r.locator, a.newest)) {
      a.newest = r.locator;
    }
  }

  if (!(a.newest == offered)) {
    bool changed = false;
    RETURN_IF_ERROR(ctx.catalog->AdoptLocator(a.newest, &changed));
    if (changed) {
      ASSIGN_OR_RETURN(a.own, ctx.catalog->StripeRows(stripe));
    }
    // Round 2: nodes only the newer locator names, and those that were behind.
    std::set<NodeId> asked;
    for (const auto& [id, r] : a.replies) asked.insert(id);
    auto targets = targets_for(a.newest, asked);
    for (const auto& [id, r] : a.replies) {
      if (!r.has_locator || LocatorNewer(a.newest, r.locator)) {
        if (auto ep = ctx.membership->EndpointOf(id)) targets.emplace_back(id, *ep);
      }
    }
    for (auto& [id, r] : SyncRound(ctx.rpc, a.newest, targets, ctx.timeout)) {
      a.replies[id] = std::move(r);
    }
  }

  const bool young = ctx.now_ms < newest_row_ms + kYoungStripeMs;
  a.slots.assign(a.newest.n(), SlotHealth::kUnknown);
  for (int i = 0; i < a.newest.n(); ++i) {
    const NodeId node = a.newest.shards[i].node;
    const uint64_t bit = uint64_t{1} << i;
    SlotHealth& h = a.slots[i];
    if (node == ctx.self) {
      const ShardRecord* row = a.OwnRow(i);
      if (row == nullptr) {
        h = young ? SlotHealth::kUnknown : SlotHealth::kMissing;
      } else {
        h = row->state == ShardState::kOk ? SlotHealth::kHealthy : SlotHealth::kCorrupt;
      }
      continue;
    }
    if (auto it = a.replies.find(node); it != a.replies.end()) {
      if (it->second.held_ok & bit) {
        h = SlotHealth::kHealthy;
      } else if (it->second.held_corrupt & bit) {
        h = SlotHealth::kCorrupt;
      } else {
        h = young ? SlotHealth::kUnknown : SlotHealth::kMissing;
      }
      continue;
    }
    auto state = ctx.membership->StateOf(node);
    if (!state || *state == wire::PeerState::kDown || *state == wire::PeerState::kLeft) {
      h = SlotHealth::kMissing;
    } else {
      h = SlotHealth::kUnknown;  // suspect, or up but silent this time
    }
  }
  return a;
}

size_t PublishLocator(RpcClient* rpc, const Locator& loc, const std::vector<std::string>& endpoints,
                      std::chrono::milliseconds timeout) {
  std::vector<std::pair<NodeId, std::string>> targets;
  NodeId fake = 1;  // only to key the replies
  for (const std::string& ep : endpoints) targets.emplace_back(fake++, ep);
  return SyncRound(rpc, loc, targets, timeout).size();
}

}  // namespace shardfs
