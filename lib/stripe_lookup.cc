// Stripe lookup by asking the nodes. See stripe_lookup.h.
#include "lib/stripe_lookup.h"

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>

namespace shardfs {
namespace {

struct Holder {
  NodeId node;
  std::string endpoint;
  uint32_t locator_version;
};

}  // namespace

Result<Locator> AskHoldersForNewest(RpcClient& rpc, NodeTable& nodes, const Locator& cached,
                                   std::chrono::milliseconds timeout) {
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    size_t left = 0;
    Locator best;
  };
  auto shared = std::make_shared<Shared>();
  shared->best = cached;
  std::vector<std::string> endpoints;
  for (const ShardLocation& s : cached.shards) {
    auto n = nodes.Find(s.node);
    if (!n || !n->up) continue;
    if (std::find(endpoints.begin(), endpoints.end(), n->endpoint) == endpoints.end()) {
      endpoints.push_back(n->endpoint);
    }
  }
  if (endpoints.empty()) {
    return Status::Unavailable("no holder of stripe " + cached.stripe.Hex() + " is up");
  }
  shared->left = endpoints.size();
  wire::SyncLocatorRequest req;
  req.stripe = cached.stripe;
  const auto deadline = Clock::now() + timeout;
  for (const std::string& ep : endpoints) {
    rpc.Send(ep, req, Payload{}, deadline, [shared, stripe = cached.stripe](Result<RpcReply> r) {
      wire::SyncLocatorReply reply;
      Status st = r.ok() ? ParseReply(*r, &reply) : r.status();
      std::lock_guard<std::mutex> lock(shared->mu);
      // Not trusted for integrity: the segment's GCM tag checks what is read.
      if (st.ok() && reply.has_locator && reply.locator.stripe == stripe &&
          reply.locator.k == shared->best.k && reply.locator.m == shared->best.m &&
          LocatorNewer(reply.locator, shared->best)) {
        shared->best = reply.locator;
      }
      if (--shared->left == 0) shared->cv.notify_all();
    });
  }
  std::unique_lock<std::mutex> lock(shared->mu);
  shared->cv.wait(lock, [&] { return shared->left == 0; });
  return shared->best;
}

Result<Locator> LookupStripe(RpcClient& rpc, NodeTable& nodes, const StripeId& stripe,
                             std::chrono::milliseconds timeout) {
  std::vector<NodeInfo> up;
  for (const NodeInfo& n : nodes.Snapshot()) {
    if (n.up && n.id != 0) up.push_back(n);
  }
  if (up.empty()) return Status::Unavailable("no node is up to look up stripe " + stripe.Hex());

  // 1. Who holds which index.
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    size_t left = 0;
    std::multimap<int, Holder> holders;  // by shard index
    std::vector<std::string> errors;
  };
  auto shared = std::make_shared<Shared>();
  shared->left = up.size();
  const auto deadline = Clock::now() + timeout;
  for (const NodeInfo& n : up) {
    wire::ListShardsRequest req;
    req.has_stripe_filter = true;
    req.stripe_filter = stripe;
    req.limit = wire::kMaxShards;  // one stripe has at most that many shards per node
    rpc.Send(n.endpoint, req, Payload{}, deadline, [shared, n, stripe](Result<RpcReply> r) {
      wire::ListShardsReply reply;
      Status st = r.ok() ? ParseReply(*r, &reply) : r.status();
      std::lock_guard<std::mutex> lock(shared->mu);
      if (st.ok()) {
        for (const wire::ListEntry& e : reply.entries) {
          if (e.stripe != stripe) continue;  // a node ignoring the filter
          shared->holders.emplace(e.index, Holder{n.id, n.endpoint, e.locator_version});
        }
      } else {
        shared->errors.push_back(n.endpoint + ": " + st.ToString());
      }
      if (--shared->left == 0) shared->cv.notify_all();
    });
  }
  std::multimap<int, Holder> holders;
  {
    std::unique_lock<std::mutex> lock(shared->mu);
    shared->cv.wait(lock, [&] { return shared->left == 0; });
    holders = shared->holders;
  }
  if (holders.empty()) {
    std::string msg = "stripe " + stripe.Hex() + " not found on any of the " +
                      std::to_string(up.size()) + " reachable nodes";
    for (const std::string& e : shared->errors) msg += "; " + e;
    return Status::NotFound(msg);
  }

  // 2. The locator, from holders of the newest version first.
  std::vector<std::pair<int, Holder>> order(holders.begin(), holders.end());
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return a.second.locator_version > b.second.locator_version;
  });
  Status last = Status::NotFound("no holder of stripe " + stripe.Hex() + " returned its locator");
  Locator loc;
  bool found = false;
  for (const auto& [index, h] : order) {
    wire::StatShardRequest req;
    req.stripe = stripe;
    req.index = static_cast<ShardIndex>(index);
    auto r = rpc.Call(h.endpoint, req, Clock::now() + timeout);
    wire::StatShardReply reply;
    Status st = r.ok() ? ParseReply(*r, &reply) : r.status();
    if (st.ok() && (reply.locator.stripe != stripe || reply.locator.k < 1 ||
                    static_cast<int>(reply.locator.shards.size()) != reply.locator.n() ||
                    index >= reply.locator.n())) {
      st = Status::Corruption("inconsistent locator");
    }
    if (!st.ok()) {
      last = st.With(h.endpoint + " (stat of stripe " + stripe.Hex() + ")");
      continue;
    }
    loc = std::move(reply.locator);
    found = true;
    break;
  }
  if (!found) return last;

  // 3. Trust the shard lists for where each index is now.
  for (int i = 0; i < loc.n(); ++i) {
    auto [b, e] = holders.equal_range(i);
    if (b == e) continue;
    bool listed = false;
    for (auto it = b; it != e; ++it) listed = listed || it->second.node == loc.shards[i].node;
    if (!listed) loc.shards[i].node = b->second.node;
  }
  return loc;
}

}  // namespace shardfs
