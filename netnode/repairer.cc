// The self-healing loop. See repairer.h; the convergence rules are in
// PROTOCOL.md §4.11 and §6.3.
#include "netnode/repairer.h"

#include <algorithm>
#include <condition_variable>
#include <future>
#include <map>
#include <optional>
#include <set>

#include "lib/checksum.h"
#include "lib/log.h"
#include "lib/placement.h"
#include "netnode/audit_turn.h"
#include "netnode/rebuild.h"

namespace shardfs {
namespace {

uint64_t WallMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

std::string Indexes(const std::vector<int>& v) {
  std::string s;
  for (int i : v) s += (s.empty() ? "" : ",") + std::to_string(i);
  return s;
}

}  // namespace

Repairer::Repairer(ShardStore* store, Membership* membership, RpcClient* rpc, RepairOptions options)
    : store_(store),
      membership_(membership),
      rpc_(rpc),
      options_(options),
      limiter_(options.bandwidth) {}

Repairer::~Repairer() { Stop(); }

Status Repairer::Start() {
  ASSIGN_OR_RETURN(catalog_, store_->OpenCatalog());
  thread_ = std::thread([this] { Loop(); });
  return Status::OK();
}

void Repairer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  limiter_.Stop();
  if (thread_.joinable()) thread_.join();
}

void Repairer::RequestPass() {
  std::lock_guard<std::mutex> lock(mu_);
  pass_requested_ = true;
  cv_.notify_all();
}

size_t Repairer::HandOff() {
  std::unique_lock<std::mutex> lock(mu_);
  handoff_requested_ = true;
  cv_.notify_all();
  cv_.wait(lock, [&] { return handoff_done_ || stopping_; });
  return handoff_left_;
}

wire::NodeStats Repairer::Stats() const {
  wire::NodeStats s;
  s.repair_queued = queued_.load();
  s.repair_active = active_.load();
  s.repaired_shards = repaired_shards_.load();
  s.repaired_bytes = repaired_bytes_.load();
  s.repair_failures = failures_.load();
  s.scrubbed_shards = scrubbed_.load();
  s.corrupt_found = corrupt_found_.load();
  s.orphans_collected = orphans_.load();
  s.stripes_lost = lost_.load();
  s.audits = audits_.load();
  return s;
}

AuditContext Repairer::AuditCtx() {
  AuditContext ctx;
  ctx.rpc = rpc_;
  ctx.membership = membership_;
  ctx.catalog = catalog_.get();
  ctx.self = options_.self;
  ctx.timeout = options_.sync_timeout;
  ctx.now_ms = WallMs();
  return ctx;
}

void Repairer::Loop() {
  while (true) {
    bool handoff = false;
    bool requested = false;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, options_.audit_interval,
                   [&] { return stopping_ || pass_requested_ || handoff_requested_; });
      if (stopping_) return;
      handoff = handoff_requested_;
      requested = pass_requested_;
      pass_requested_ = false;
    }
    if (!handoff) {
      RunPass(requested);
      continue;
    }
    // Graceful exit: every stripe, our shards go elsewhere.
    size_t left = 0;
    std::optional<StripeId> after;
    while (true) {
      auto page = catalog_->Stripes(after, 256);
      if (!page.ok()) {
        LOG_ERROR("hand-off: {}", page.status().ToString());
        break;
      }
      if (page->empty()) break;
      after = page->back();
      for (const StripeId& s : *page) left += HandOffStripe(s);
    }
    std::lock_guard<std::mutex> lock(mu_);
    handoff_left_ = left;
    handoff_done_ = true;
    cv_.notify_all();
    return;  // the node exits next
  }
}

Result<std::vector<Repairer::Ranked>> Repairer::RankStripes(uint64_t round) {
  std::vector<Ranked> out;
  std::optional<StripeId> after;
  while (true) {
    ASSIGN_OR_RETURN(auto page, catalog_->Stripes(after, 512));
    if (page.empty()) break;
    after = page.back();
    for (const StripeId& s : page) {
      ASSIGN_OR_RETURN(auto rows, catalog_->StripeRows(s));
      if (rows.empty()) continue;
      Ranked r;
      r.stripe = s;
      const Locator* newest = &rows.front().locator;
      r.n = rows.front().locator.n();
      for (const ShardRecord& row : rows) {
        if (LocatorNewer(row.locator, *newest)) newest = &row.locator;
        r.own_corrupt = r.own_corrupt || row.state == ShardState::kCorrupt;
      }
      for (const ShardRecord& row : rows) {
        const int i = row.key.index;
        r.holds_orphan =
            r.holds_orphan || i >= newest->n() || newest->shards[i].node != options_.self;
      }
      r.our_turn = IsOurAuditTurn(*newest, options_.self, round);
      for (const ShardLocation& sh : newest->shards) {
        r.live += membership_->Reachable(sh.node) ? 1 : 0;
      }
      out.push_back(r);
    }
  }
  // Fewest live shards first: those are a loss or two from being lost.
  std::stable_sort(out.begin(), out.end(), [](const Ranked& a, const Ranked& b) {
    if (a.live != b.live) return a.live < b.live;
    return a.own_corrupt > b.own_corrupt;
  });
  return out;
}

void Repairer::RunPass(bool every_stripe) {
  auto ranked = RankStripes(AuditRound(WallMs(), options_.audit_interval));
  if (!ranked.ok()) {
    LOG_ERROR("repair pass: {}", ranked.status().ToString());
    return;
  }
  // The queue gauge: stripes with a shard on a node we do not reach, or a
  // corrupt shard of ours. Audits decide what really needs doing.
  auto needs_work = [](const Ranked& r) { return r.own_corrupt || r.live < r.n; };
  auto due = [&](const Ranked& r) {
    return every_stripe || needs_work(r) || r.holds_orphan || r.our_turn;
  };
  uint64_t queued = 0;
  for (const Ranked& r : *ranked) queued += needs_work(r) ? 1 : 0;
  queued_ = queued;
  uint64_t lost = 0;
  bool completed = true;
  for (const Ranked& r : *ranked) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_ || handoff_requested_ || pass_requested_) {
        completed = false;
        break;  // rank again
      }
    }
    if (!due(r)) {
      lost += unrepairable_.count(r.stripe);  // as its last audit found it
      continue;
    }
    lost += AuditAndAct(r.stripe) ? 1 : 0;
    if (needs_work(r) && queued_ > 0) --queued_;
  }
  queued_ = 0;
  lost_ = lost;
  if (!completed) return;
  // Forget stripes we no longer hold (collected, deleted).
  std::set<StripeId> held;
  for (const Ranked& r : *ranked) held.insert(r.stripe);
  std::erase_if(unrepairable_, [&](const StripeId& s) { return !held.count(s); });
  if (lost == last_lost_) return;
  // One line per change, with how many peers we reach: "every stripe is
  // lost" on a node that reaches nobody means this node is cut off.
  size_t peers = 0, up = 0;
  for (const wire::PeerEntry& e : membership_->View()) {
    if (e.node_id == options_.self) continue;
    ++peers;
    up += e.state == wire::PeerState::kUp ? 1 : 0;
  }
  if (lost > 0) {
    LOG_ERROR("{} of {} stripes held here have fewer than k healthy shards ({} of {} peers up{})",
              lost, ranked->size(), up, peers,
              up == 0 && peers > 0 ? ": is this node cut off?" : "");
  } else {
    LOG_INFO("every stripe held here has at least k healthy shards again ({} of {} peers up)", up,
             peers);
  }
  last_lost_ = lost;
}

bool Repairer::AuditAndAct(const StripeId& stripe) {
  auto audited = AuditStripe(stripe, AuditCtx());
  audits_.fetch_add(1, std::memory_order_relaxed);
  if (!audited.ok()) {
    if (!audited.status().IsNotFound()) {
      LOG_WARN("audit of stripe {}: {}", stripe.Hex(), audited.status().ToString());
    } else {
      unrepairable_.erase(stripe);  // we hold nothing of it any more
    }
    return false;
  }
  StripeAudit& a = *audited;
  CollectOrphans(a);
  for (int i = 0; i < a.newest.n(); ++i) {
    if (a.newest.shards[i].node != options_.self) continue;
    const ShardRecord* row = a.OwnRow(i);
    // Below k healthy shards there is nothing to heal from (reported below).
    if (row && row->state == ShardState::kCorrupt && a.Count(SlotHealth::kHealthy) >= a.newest.k) {
      HealOwn(a, i);
    }
  }
  const int n = a.newest.n(), k = a.newest.k;
  const int healthy = a.Count(SlotHealth::kHealthy);
  const int threshold = options_.threshold <= 0 ? n : std::clamp(options_.threshold, k, n);
  if (healthy >= k && unrepairable_.erase(stripe) > 0) {
    LOG_INFO("stripe {}: {} of {} shards healthy again", stripe.Hex(), healthy, n);
  }
  if (healthy >= threshold || a.Count(SlotHealth::kMissing) + a.Count(SlotHealth::kCorrupt) == 0) {
    return false;
  }
  if (healthy < k) {
    // No coordinator can exist below k. Every holder says so, once when it
    // happens (RunPass sums them up per pass).
    if (unrepairable_.insert(stripe).second) {
      LOG_ERROR("stripe {}: only {} of the {} shards needed are healthy: cannot repair now",
                stripe.Hex(), healthy, k);
    }
    return true;
  }
  if (a.Coordinator() != options_.self || a.Count(SlotHealth::kMissing) == 0) return false;
  RepairMissing(a);
  return false;
}

void Repairer::CollectOrphans(const StripeAudit& a) {
  for (const ShardRecord& row : a.own) {
    const int i = row.key.index;
    if (i >= a.newest.n() || a.newest.shards[i].node == options_.self) continue;
    // Only once the node that replaced us confirmed it holds the shard.
    if (a.slots[i] != SlotHealth::kHealthy) continue;
    Status st = store_->Delete(catalog_.get(), row.key, row.owner);
    if (st.ok() || st.IsNotFound()) {
      orphans_.fetch_add(1, std::memory_order_relaxed);
      LOG_INFO("stripe {}: collected orphan shard {} (now on node {}, locator version {})",
               a.newest.stripe.Hex(), i, NodeIdHex(a.newest.shards[i].node), a.newest.version);
    } else {
      LOG_WARN("stripe {}: cannot collect orphan shard {}: {}", a.newest.stripe.Hex(), i,
               st.ToString());
    }
  }
}

void Repairer::HealOwn(const StripeAudit& a, int index) {
  std::vector<RebuildSource> sources;
  for (int i = 0; i < a.newest.n(); ++i) {
    if (i == index || a.slots[i] != SlotHealth::kHealthy) continue;
    const NodeId node = a.newest.shards[i].node;
    RebuildSource src;
    src.index = i;
    src.local = node == options_.self;
    if (!src.local) {
      auto ep = membership_->EndpointOf(node);
      if (!ep) continue;
      src.endpoint = *ep;
    }
    sources.push_back(std::move(src));
  }
  // Local shards first: they cost no bandwidth.
  std::stable_partition(sources.begin(), sources.end(),
                        [](const RebuildSource& s) { return s.local; });
  RebuildContext ctx{rpc_, store_, catalog_.get(), &limiter_, options_.shard_timeout, nullptr};
  active_ = 1;
  auto rebuilt = RebuildShards(a.newest, sources, {index}, ctx);
  active_ = 0;
  const ShardRecord* row = a.OwnRow(index);
  if (!rebuilt.ok() || row == nullptr) {
    failures_.fetch_add(1, std::memory_order_relaxed);
    LOG_WARN("stripe {}: cannot heal corrupt shard {}: {}", a.newest.stripe.Hex(), index,
             rebuilt.ok() ? "row vanished" : rebuilt.status().ToString());
    return;
  }
  auto bytes = rebuilt->at(index);
  PutArgs args;
  args.key = row->key;
  args.crc32c = a.newest.shards[index].crc32c;
  args.owner = row->owner;
  args.locator = a.newest;
  args.payload = {bytes->data(), bytes->size()};
  std::promise<Status> done;
  auto f = done.get_future();
  store_->Put(catalog_.get(), args, [&done](Status st) { done.set_value(std::move(st)); });
  Status st = f.get();
  if (!st.ok()) {
    failures_.fetch_add(1, std::memory_order_relaxed);
    LOG_WARN("stripe {}: rewriting healed shard {}: {}", a.newest.stripe.Hex(), index,
             st.ToString());
    return;
  }
  repaired_shards_.fetch_add(1, std::memory_order_relaxed);
  repaired_bytes_.fetch_add(bytes->size(), std::memory_order_relaxed);
  LOG_INFO("stripe {}: healed corrupt shard {} (rebuilt from {} others)", a.newest.stripe.Hex(),
           index, a.newest.k);
}

void Repairer::RepairMissing(const StripeAudit& a) {
  const StripeId& stripe = a.newest.stripe;
  std::vector<int> missing;
  std::vector<NodeId> holders, excluded;
  std::vector<RebuildSource> sources;
  for (int i = 0; i < a.newest.n(); ++i) {
    const NodeId node = a.newest.shards[i].node;
    if (a.slots[i] == SlotHealth::kMissing) {
      missing.push_back(i);
      excluded.push_back(node);
      continue;
    }
    holders.push_back(node);
    if (a.slots[i] != SlotHealth::kHealthy) continue;
    RebuildSource src;
    src.index = i;
    src.local = node == options_.self;
    if (!src.local) {
      auto ep = membership_->EndpointOf(node);
      if (!ep) continue;
      src.endpoint = *ep;
    }
    sources.push_back(std::move(src));
  }
  std::stable_partition(sources.begin(), sources.end(),
                        [](const RebuildSource& s) { return s.local; });
  std::string owner;
  for (const ShardRecord& r : a.own) owner = r.owner;

  // Where each missing shard goes: a node holding nothing of the stripe,
  // in a zone the stripe does not use yet if there is one.
  const std::vector<NodeInfo> nodes = membership_->PlacementNodes();
  std::map<int, NodeInfo> targets;
  for (int i : missing) {
    auto t = PlaceReplacement(stripe, nodes, a.newest.shard_size, holders, excluded, 1);
    if (!t.ok()) {
      LOG_WARN("stripe {}: no node for shard {}: {}", stripe.Hex(), i, t.status().message());
      continue;
    }
    holders.push_back(t->id);
    targets.emplace(i, *t);
  }
  if (targets.empty()) {
    failures_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  std::vector<int> wanted;
  for (const auto& [i, node] : targets) wanted.push_back(i);

  active_ = 1;
  const auto t0 = Clock::now();
  RebuildContext ctx{rpc_, store_, catalog_.get(), &limiter_, options_.shard_timeout, nullptr};
  auto rebuilt = RebuildShards(a.newest, sources, wanted, ctx);
  if (!rebuilt.ok()) {
    active_ = 0;
    failures_.fetch_add(1, std::memory_order_relaxed);
    LOG_WARN("stripe {}: repair of shards {} failed: {}", stripe.Hex(), Indexes(wanted),
             rebuilt.status().ToString());
    return;
  }
  Locator next = a.newest;
  next.version = a.newest.version + 1;
  for (const auto& [i, node] : targets) next.shards[i].node = node.id;
  std::vector<int> stored = PutShards(next, owner, *rebuilt, targets);
  active_ = 0;
  if (stored.empty()) {
    failures_.fetch_add(1, std::memory_order_relaxed);
    LOG_WARN("stripe {}: no replacement shard could be stored", stripe.Hex());
    return;
  }
  // Shards whose PUT failed keep their old (missing) node: next pass.
  for (const auto& [i, node] : targets) {
    if (std::find(stored.begin(), stored.end(), i) == stored.end()) {
      next.shards[i].node = a.newest.shards[i].node;
    }
  }
  std::vector<NodeId> also;
  for (const auto& [id, r] : a.replies) also.push_back(id);
  Publish(next, also);
  repaired_shards_.fetch_add(stored.size(), std::memory_order_relaxed);
  repaired_bytes_.fetch_add(stored.size() * a.newest.shard_size, std::memory_order_relaxed);
  std::string where;
  for (int i : stored) {
    where += (where.empty() ? "" : ", ") + std::to_string(i) + " -> " +
             NodeIdHex(targets.at(i).id) + " (" + targets.at(i).zone + ")";
  }
  const double ms =
      std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count() / 1e3;
  LOG_INFO(
      "stripe {}: repaired shards {} in {:.0f} ms; locator version {} ({} of {} healthy before)",
      stripe.Hex(), where, ms, next.version, a.Count(SlotHealth::kHealthy), a.newest.n());
}

std::vector<int> Repairer::PutShards(
    const Locator& loc, const std::string& owner,
    const std::map<int, std::shared_ptr<std::vector<uint8_t>>>& shards,
    const std::map<int, NodeInfo>& targets) {
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    size_t left = 0;
    std::vector<int> ok;
  };
  auto shared = std::make_shared<Shared>();
  std::vector<std::pair<int, const NodeInfo*>> todo;
  for (const auto& [i, node] : targets) {
    if (shards.count(i)) todo.emplace_back(i, &node);
  }
  shared->left = todo.size();
  for (const auto& [i, node] : todo) {
    const auto& bytes = shards.at(i);
    if (!limiter_.Acquire(bytes->size())) {
      std::lock_guard<std::mutex> lock(shared->mu);
      if (--shared->left == 0) shared->cv.notify_all();
      continue;
    }
    wire::PutShardRequest req;
    req.stripe = loc.stripe;
    req.index = static_cast<ShardIndex>(i);
    req.crc32c = loc.shards[i].crc32c;
    req.owner = owner;
    req.locator = loc;
    Payload payload{bytes, bytes->data(), bytes->size()};
    const std::string ep = node->endpoint;
    rpc_->Send(ep, req, std::move(payload), Clock::now() + options_.shard_timeout,
               [shared, i = i, ep, stripe = loc.stripe](Result<RpcReply> r) {
                 wire::PutShardReply reply;
                 Status st = r.ok() ? ParseReply(*r, &reply) : r.status();
                 if (!st.ok()) {
                   LOG_WARN("stripe {}: storing rebuilt shard {} on {}: {}", stripe.Hex(), i, ep,
                            st.ToString());
                 }
                 std::lock_guard<std::mutex> lock(shared->mu);
                 if (st.ok()) shared->ok.push_back(i);
                 if (--shared->left == 0) shared->cv.notify_all();
               });
  }
  std::unique_lock<std::mutex> lock(shared->mu);
  shared->cv.wait(lock, [&] { return shared->left == 0; });
  std::sort(shared->ok.begin(), shared->ok.end());
  return shared->ok;
}

void Repairer::Publish(const Locator& loc, const std::vector<NodeId>& also) {
  bool changed = false;
  Status st = catalog_->AdoptLocator(loc, &changed);
  if (!st.ok()) LOG_WARN("stripe {}: adopting locator: {}", loc.stripe.Hex(), st.ToString());
  std::set<NodeId> ids(also.begin(), also.end());
  for (const ShardLocation& s : loc.shards) ids.insert(s.node);
  std::vector<std::string> endpoints;
  for (NodeId id : ids) {
    if (id == options_.self || membership_->StateOf(id) != wire::PeerState::kUp) continue;
    if (auto ep = membership_->EndpointOf(id)) endpoints.push_back(*ep);
  }
  PublishLocator(rpc_, loc, endpoints, options_.sync_timeout);
}

size_t Repairer::HandOffStripe(const StripeId& stripe) {
  auto audited = AuditStripe(stripe, AuditCtx());
  if (!audited.ok()) return 0;
  StripeAudit& a = *audited;
  CollectOrphans(a);
  std::vector<NodeId> holders, excluded{options_.self};
  std::map<int, std::shared_ptr<std::vector<uint8_t>>> shards;
  std::string owner;
  size_t mine = 0;
  for (int i = 0; i < a.newest.n(); ++i) {
    const NodeId node = a.newest.shards[i].node;
    if (node != options_.self) {
      holders.push_back(node);
      continue;
    }
    ++mine;
    const ShardRecord* row = a.OwnRow(i);
    if (row == nullptr || row->state != ShardState::kOk) continue;
    owner = row->owner;
    auto bytes = store_->Get(catalog_.get(), row->key, 0, 0);
    if (!bytes.ok() || Sha256({bytes->data(), bytes->length}) != a.newest.shards[i].sha256)
      continue;
    shards.emplace(
        i, std::make_shared<std::vector<uint8_t>>(bytes->data(), bytes->data() + bytes->length));
  }
  if (shards.empty()) return mine;
  const std::vector<NodeInfo> nodes = membership_->PlacementNodes();
  std::map<int, NodeInfo> targets;
  for (const auto& [i, bytes] : shards) {
    auto t = PlaceReplacement(stripe, nodes, a.newest.shard_size, holders, excluded, 1);
    if (!t.ok()) continue;
    holders.push_back(t->id);
    targets.emplace(i, *t);
  }
  Locator next = a.newest;
  next.version = a.newest.version + 1;
  for (const auto& [i, node] : targets) next.shards[i].node = node.id;
  std::vector<int> stored = PutShards(next, owner, shards, targets);
  if (stored.empty()) return mine;
  for (const auto& [i, node] : targets) {
    if (std::find(stored.begin(), stored.end(), i) == stored.end()) {
      next.shards[i].node = options_.self;
    }
  }
  std::vector<NodeId> also;
  for (const auto& [id, r] : a.replies) also.push_back(id);
  Publish(next, also);
  for (int i : stored) {
    const ShardRecord* row = a.OwnRow(i);
    if (row) (void)store_->Delete(catalog_.get(), row->key, row->owner);
  }
  LOG_INFO("stripe {}: handed off shards {} (locator version {})", stripe.Hex(), Indexes(stored),
           next.version);
  return mine - stored.size();
}

}  // namespace shardfs
