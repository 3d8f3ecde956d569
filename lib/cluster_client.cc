// ClusterClient::Connect and the one concrete client. See cluster_client.h.
//
// Ownership and shutdown order: the transport is shut down first (every
// pending callback runs, with Aborted, on the I/O thread before it exits),
// then the writer, reader and node table those callbacks use are destroyed.
// The destructor first waits for the segments still in flight, so a write
// started before destruction still finishes or fails by its deadlines.
#include "lib/cluster_client.h"

#include <condition_variable>
#include <future>
#include <map>
#include <mutex>

#include "lib/buffer_pool.h"
#include "lib/client_identity.h"
#include "lib/log.h"
#include "lib/node_table.h"
#include "lib/segment_reader.h"
#include "lib/segment_writer.h"
#include "lib/stripe_lookup.h"
#include "lib/suspect_nodes.h"
#include "lib/transport.h"

namespace shardfs {
namespace {

// Segments a client keeps in flight before WriteSegmentAsync blocks: enough
// to keep every node busy while the caller seals the next ones, few enough
// to bound memory (each pins n * shard_size bytes).
constexpr int kMaxInFlight = 8;
// Pings wait at most this long, so a dead node slows Connect down by no
// more than this even with a long request timeout.
constexpr std::chrono::milliseconds kMaxPingTimeout{2000};

class ClusterClientImpl final : public ClusterClient {
 public:
  ClusterClientImpl(const ClientConfig& cfg, const Key& master, ClientIdentity identity,
                    std::unique_ptr<RpcClient> rpc, std::shared_ptr<const Codec> codec)
      : cfg_(cfg),
        identity_(std::move(identity)),
        timeout_(cfg.timeout_ms),
        rpc_(std::move(rpc)),
        pool_(2 * kMaxInFlight + 4),
        nodes_(rpc_.get(), cfg.nodes, std::min(timeout_, kMaxPingTimeout)),
        writer_(rpc_.get(), &nodes_, &pool_, codec, master, identity_.public_key, timeout_),
        reader_(rpc_.get(), &nodes_, &pool_, master, timeout_) {}

  ~ClusterClientImpl() override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return in_flight_ == 0; });
    }
    rpc_->Shutdown();
  }

  size_t Start() { return nodes_.Refresh(); }

  void WriteSegmentAsync(std::vector<uint8_t> plaintext, WriteDone done) override {
    if (plaintext.empty() || plaintext.size() > cfg_.segment_size) {
      done(Status::InvalidArgument("segment of " + std::to_string(plaintext.size()) +
                                   " bytes (must be 1.." + std::to_string(cfg_.segment_size) +
                                   ")"));
      return;
    }
    Acquire();
    writer_.Write(plaintext, [this, done = std::move(done)](Result<Locator> r) {
      done(std::move(r));
      Release();
    });
  }

  Result<Locator> WriteSegment(std::span<const uint8_t> plaintext) override {
    if (plaintext.empty() || plaintext.size() > cfg_.segment_size) {
      return Status::InvalidArgument("segment of " + std::to_string(plaintext.size()) +
                                     " bytes (must be 1.." + std::to_string(cfg_.segment_size) +
                                     ")");
    }
    auto promise = std::make_shared<std::promise<Result<Locator>>>();
    auto future = promise->get_future();
    Acquire();
    writer_.Write(plaintext, [this, promise](Result<Locator> r) {
      promise->set_value(std::move(r));
      Release();
    });
    return future.get();
  }

  // A locator the caller stored may be stale: a repair moved shards since
  // (PROTOCOL.md §6.3). When too few of its shards can be read, the
  // holders are asked for the newest locator and the read is retried with
  // it; newer locators are remembered, so the next read uses them at once.
  Result<std::vector<uint8_t>> ReadSegment(const Locator& loc) override {
    Locator use = Newest(loc);
    auto r = reader_.Read(use);
    if (r.ok() || r.status().code() != Code::kUnavailable) return r;
    nodes_.RefreshDownAsync();
    auto newest = AskHoldersForNewest(*rpc_, nodes_, use, timeout_);
    if (!newest.ok() || !LocatorNewer(*newest, use)) {
      // The holders we reach know nothing newer: ask every node.
      auto found = LookupStripe(*rpc_, nodes_, loc.stripe, timeout_);
      if (!found.ok() || !LocatorNewer(*found, use)) return r;
      newest = std::move(found);
    }
    LOG_INFO("stripe {}: locator version {} is stale; reading with version {}", loc.stripe.Hex(),
             use.version, newest->version);
    Remember(*newest);
    return reader_.Read(*newest);
  }

  // Deletes the shards named by the given locator and by the newest one
  // its holders know (a repair may have moved some), so nothing is left.
  Status DeleteSegment(const Locator& given) override {
    Locator newest = Newest(given);
    if (auto asked = AskHoldersForNewest(*rpc_, nodes_, newest, timeout_); asked.ok()) {
      newest = std::move(*asked);
    }
    Status st = DeleteShards(newest);
    if (!(newest == given)) {
      Locator old = given;  // shards the repair moved away are orphans, but ours
      for (int i = 0; i < old.n() && i < newest.n(); ++i) {
        auto n = nodes_.Find(old.shards[i].node);
        // A node that is down keeps its copy; its own audit collects it.
        if (old.shards[i].node == newest.shards[i].node || !n || !n->up) old.shards[i].node = 0;
      }
      Status st2 = DeleteShards(old, /*skip_zero=*/true);
      if (st.ok() && !st2.ok() && !st2.IsUnavailable()) st = st2;
    }
    std::lock_guard<std::mutex> lock(mu_);
    newer_.erase(given.stripe);
    return st;
  }

  Status DeleteShards(const Locator& loc, bool skip_zero = false) {
    struct Shared {
      std::mutex mu;
      std::condition_variable cv;
      int left = 0;
      Status first;
    };
    auto shared = std::make_shared<Shared>();
    std::vector<std::pair<std::string, int>> targets;
    Status unknown;
    for (int i = 0; i < static_cast<int>(loc.shards.size()); ++i) {
      if (skip_zero && loc.shards[i].node == 0) continue;
      auto node = nodes_.Find(loc.shards[i].node);
      if (!node) {
        if (unknown.ok()) {
          unknown =
              Status::Unavailable("stripe " + loc.stripe.Hex() + " shard " + std::to_string(i) +
                                  ": node " + NodeIdHex(loc.shards[i].node) + " is unknown");
        }
        continue;
      }
      targets.emplace_back(node->endpoint, i);
    }
    shared->left = static_cast<int>(targets.size());
    for (auto& [endpoint, i] : targets) {
      wire::DeleteShardRequest req;
      req.stripe = loc.stripe;
      req.index = static_cast<ShardIndex>(i);
      req.owner = identity_.public_key;
      std::string what =
          "stripe " + loc.stripe.Hex() + " shard " + std::to_string(i) + " on " + endpoint;
      rpc_->Send(endpoint, req, Payload{}, Clock::now() + timeout_,
                 [shared, what](Result<RpcReply> r) {
                   wire::DeleteShardReply reply;
                   Status st = r.ok() ? ParseReply(*r, &reply) : r.status();
                   std::lock_guard<std::mutex> lock(shared->mu);
                   if (!st.ok() && !st.IsNotFound() && shared->first.ok()) {
                     shared->first = st.With(what);
                   }
                   if (--shared->left == 0) shared->cv.notify_all();
                 });
    }
    std::unique_lock<std::mutex> lock(shared->mu);
    shared->cv.wait(lock, [&] { return shared->left == 0; });
    return shared->first.ok() ? unknown : shared->first;
  }

  std::vector<NodeInfo> Nodes() override {
    nodes_.Refresh();
    return nodes_.Snapshot();
  }

  const ClientConfig& config() const override { return cfg_; }

  Result<Locator> Lookup(const StripeId& stripe) {
    nodes_.RefreshDownAsync();
    return LookupStripe(*rpc_, nodes_, stripe, timeout_);
  }

 private:
  static constexpr size_t kMaxRemembered = 4096;

  Locator Newest(const Locator& loc) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = newer_.find(loc.stripe);
    if (it != newer_.end() && LocatorNewer(it->second, loc)) return it->second;
    return loc;
  }
  void Remember(const Locator& loc) {
    std::lock_guard<std::mutex> lock(mu_);
    if (newer_.size() >= kMaxRemembered) newer_.clear();  // crude bound; a miss costs one lookup
    newer_[loc.stripe] = loc;
  }

  void Acquire() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return in_flight_ < kMaxInFlight; });
    ++in_flight_;
  }
  // Notifies under the lock: once in_flight_ drops to 0 the destructor may
  // run, and `this` must not be touched after the unlock.
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    --in_flight_;
    cv_.notify_all();
  }

  // Fixed after construction.
  const ClientConfig cfg_;
  const ClientIdentity identity_;
  const std::chrono::milliseconds timeout_;
  std::unique_ptr<RpcClient> rpc_;  // shut down before the members below go
  BufferPool pool_;
  NodeTable nodes_;
  SegmentWriter writer_;
  SegmentReader reader_;

  std::mutex mu_;
  std::condition_variable cv_;
  int in_flight_ = 0;  // guarded by mu_: segments written but not done
  std::map<StripeId, Locator> newer_;  // guarded by mu_: locators learned after a repair
};

}  // namespace

Result<std::unique_ptr<ClusterClient>> ClusterClient::Connect(const ClientConfig& cfg,
                                                              const Key& master) {
  if (cfg.nodes.empty()) return Status::InvalidArgument("no node endpoints configured");
  if (cfg.segment_size == 0 || cfg.timeout_ms <= 0) {
    return Status::InvalidArgument("segment_size and timeout_ms must be positive");
  }
  ASSIGN_OR_RETURN(auto codec, Codec::Create(cfg.k, cfg.m));
  const size_t max_shard = Codec::ShardSize(cfg.segment_size + kSealOverhead, cfg.k);
  if (max_shard > wire::kMaxShardSize) {
    return Status::InvalidArgument("segment_size " + std::to_string(cfg.segment_size) +
                                   " gives shards above the protocol's limit");
  }
  ASSIGN_OR_RETURN(ClientIdentity identity, LoadOrCreateClientIdentity(cfg.identity_file));
  // Nodes caught returning altered bytes are listed next to the config, where
  // `shardctl status` reads them (lib/suspect_nodes.h).
  if (!cfg.path.empty()) SetSuspectNodesFile(SuspectNodesFileFor(cfg.path));
  // SECURITY.md §2: the sockets authenticate with the same keypair that
  // owns the shards. A config built in code may name a network file that
  // LoadClientConfig did not load yet.
  RpcOptions ro;
  ro.curve = cfg.curve;
  if (ro.curve.empty() && !cfg.insecure_no_curve && !cfg.network_file.empty()) {
    ClientConfig copy = cfg;
    RETURN_IF_ERROR(LoadClientCurveKeys(&copy));
    ro.curve = copy.curve;
  }
  if (!ro.curve.empty()) {
    // The config's keys may be another identity's (a snapshot client with
    // its own owner file): the sockets use this client's identity.
    ro.curve.public_key = identity.public_key;
    ro.curve.secret_key = identity.secret_key;
  }
  if (cfg.insecure_no_curve) ro.curve = {};
  ASSIGN_OR_RETURN(auto rpc, cfg.insecure_no_curve ? RpcClient::CreatePlain(ro)
                                                   : RpcClient::Create(ro));
  std::unique_ptr<ClusterClientImpl> client;
  try {
    client = std::make_unique<ClusterClientImpl>(cfg, master, std::move(identity), std::move(rpc),
                                                 std::move(codec));
  } catch (const std::bad_alloc&) {
    return Status::IOError("out of memory", ENOMEM);
  }
  const size_t up = client->Start();
  if (up == 0) {
    std::string msg =
        "none of the " + std::to_string(cfg.nodes.size()) + " configured nodes answered (";
    for (size_t i = 0; i < cfg.nodes.size(); ++i) msg += (i ? ", " : "") + cfg.nodes[i];
    msg += ")";
    if (!ro.curve.empty()) {
      msg += "; if they are running, they refused the CURVE handshake: is " +
             (cfg.network_file.empty() ? std::string("the network file") : cfg.network_file) +
             " a network key of their network (shardctl invite)?";
    }
    return Status::Unavailable(msg);
  }
  if (up < static_cast<size_t>(cfg.k + cfg.m)) {
    LOG_WARN("only {} of {} nodes answered; k + m = {}", up, cfg.nodes.size(), cfg.k + cfg.m);
  }
  return std::unique_ptr<ClusterClient>(std::move(client));
}

Result<Locator> FindLocator(ClusterClient& client, const StripeId& stripe) {
  auto* impl = dynamic_cast<ClusterClientImpl*>(&client);
  if (impl == nullptr) return Status::InvalidArgument("FindLocator needs a connected client");
  return impl->Lookup(stripe);
}

}  // namespace shardfs
