// SegmentReader implementation. See segment_reader.h.
//
// The I/O thread only queues replies (Fetch); CRC checks, copies, decode and
// decryption run on the reading thread, so many reads proceed in parallel
// and the transport thread stays light.
#include "lib/segment_reader.h"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>

#include "lib/checksum.h"
#include "lib/log.h"
#include "lib/suspect_nodes.h"

namespace shardfs {

// Replies handed from the I/O thread to the reading thread. Shared with the
// callbacks, so hedged requests still in flight after Read returns are
// harmless.
struct SegmentReader::Fetch {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::pair<int, Result<RpcReply>>> arrived;  // guarded by mu
};

namespace {

enum class Slot { kIdle, kRequested, kGood, kBad };

// Per-read state on the reading thread.
struct ReadState {
  const Locator* loc;
  std::vector<Slot> slots;
  std::vector<zmq::message_t> payloads;
  std::vector<int> candidates;  // request order
  size_t next_candidate = 0;
  int outstanding = 0;
  int good = 0;
  std::vector<std::string> errors;
};

}  // namespace

SegmentReader::SegmentReader(RpcClient* rpc, NodeTable* nodes, BufferPool* pool, const Key& master,
                             std::chrono::milliseconds timeout)
    : rpc_(rpc), nodes_(nodes), pool_(pool), master_(master), timeout_(timeout) {}

Result<std::shared_ptr<const Codec>> SegmentReader::CodecFor(int k, int m) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = codecs_.find({k, m});
  if (it != codecs_.end()) return it->second;
  ASSIGN_OR_RETURN(auto codec, Codec::Create(k, m));
  codecs_.emplace(std::make_pair(k, m), codec);
  return codec;
}

Result<std::vector<uint8_t>> SegmentReader::Read(const Locator& loc) {
  const int k = loc.k, n = loc.n();
  const std::string what = "stripe " + loc.stripe.Hex();
  if (k < 1 || n > wire::kMaxShards || static_cast<int>(loc.shards.size()) != n ||
      loc.shard_size == 0 || loc.shard_size > wire::kMaxShardSize ||
      loc.sealed_size < kSealOverhead ||
      static_cast<uint64_t>(loc.sealed_size) > static_cast<uint64_t>(k) * loc.shard_size) {
    return Status::InvalidArgument(what + ": malformed locator");
  }
  ASSIGN_OR_RETURN(auto codec, CodecFor(k, loc.m));
  const size_t ss = loc.shard_size;
  nodes_->RefreshDownAsync();

  ReadState rs;
  rs.loc = &loc;
  rs.slots.assign(n, Slot::kIdle);
  rs.payloads.resize(n);
  // Data shards on live nodes, then parity on live nodes, then the rest.
  std::vector<bool> live(n);
  for (int i = 0; i < n; ++i) {
    auto node = nodes_->Find(loc.shards[i].node);
    live[i] = node && node->up;
  }
  for (int pass = 0; pass < 2; ++pass) {
    for (int i = 0; i < n; ++i) {
      if (live[i] == (pass == 0)) rs.candidates.push_back(i);
    }
  }

  auto fetch = std::make_shared<Fetch>();
  auto request_one = [&]() -> bool {
    while (rs.next_candidate < rs.candidates.size()) {
      const int i = rs.candidates[rs.next_candidate++];
      auto node = nodes_->Find(loc.shards[i].node);
      if (!node) {
        rs.slots[i] = Slot::kBad;
        rs.errors.push_back("shard " + std::to_string(i) + ": node " +
                            NodeIdHex(loc.shards[i].node) + " is not in the node table");
        continue;
      }
      wire::GetShardRequest req;
      req.stripe = loc.stripe;
      req.index = static_cast<ShardIndex>(i);
      rs.slots[i] = Slot::kRequested;
      ++rs.outstanding;
      const NodeId id = loc.shards[i].node;
      rpc_->Send(node->endpoint, req, Payload{}, Clock::now() + timeout_,
                 [this, fetch, i, id](Result<RpcReply> r) {
                   // Here, not in accept(): a hedged request may time out
                   // after Read has returned, and the node is down all the same.
                   if (!r.ok()) nodes_->ReportFailure(id, r.status());
                   std::lock_guard<std::mutex> lock(fetch->mu);
                   fetch->arrived.emplace_back(i, std::move(r));
                   fetch->cv.notify_one();
                 });
      return true;
    }
    return false;
  };
  // Checks one arrival; keeps the payload when good.
  auto accept = [&](int i, Result<RpcReply> r) {
    --rs.outstanding;
    const std::string shard = "shard " + std::to_string(i);
    Status st = r.status();
    wire::GetShardReply reply;
    if (st.ok()) st = ParseReply(*r, &reply);
    // A node that answers OK with bytes that do not match the locator lied
    // (it checks its own CRC before serving, and CURVE rules out the wire):
    // a suspect. An error reply, even "corrupt", is an honest node.
    bool altered = false;
    if (st.ok() && (!r->has_payload || r->payload.size() != ss || reply.shard_size != ss)) {
      st = Status::Corruption("wrong shard size");
      altered = true;
    }
    if (st.ok() && Crc32c(r->payload_bytes()) != loc.shards[i].crc32c) {
      st = Status::Corruption("CRC32C mismatch (bit rot or a lying node)");
      altered = true;
    }
    if (altered) {
      ReportSuspectNode(loc.shards[i].node,
                        what + " " + shard + ": " + std::string(st.message()));
    }
    if (!st.ok()) {
      rs.slots[i] = Slot::kBad;
      rs.errors.push_back(shard + " (node " + NodeIdHex(loc.shards[i].node) +
                          "): " + st.ToString());
      return;
    }
    rs.payloads[i] = std::move(r->payload);
    rs.slots[i] = Slot::kGood;
    ++rs.good;
  };
  // Waits for one arrival until `until`; false on timeout.
  auto wait_one = [&](Clock::time_point until) -> bool {
    std::unique_lock<std::mutex> lock(fetch->mu);
    if (!fetch->cv.wait_until(lock, until, [&] { return !fetch->arrived.empty(); })) return false;
    auto [i, r] = std::move(fetch->arrived.front());
    fetch->arrived.pop_front();
    lock.unlock();
    accept(i, std::move(r));
    return true;
  };

  const auto hedge_every = std::max<Clock::duration>(timeout_ / 4, std::chrono::milliseconds(10));
  auto next_hedge = Clock::now() + hedge_every;
  while (rs.good < k) {
    // Keep enough requests out to reach k if they all succeed.
    while (rs.good + rs.outstanding < k && request_one()) {
    }
    if (rs.outstanding == 0) break;  // nothing left to ask
    if (!wait_one(next_hedge)) {
      request_one();  // a slow node: ask one more shard
      next_hedge += hedge_every;
    }
  }
  if (rs.good < k) {
    std::string msg = what + ": only " + std::to_string(rs.good) + " of the " + std::to_string(k) +
                      " shards needed could be fetched intact";
    for (const std::string& e : rs.errors) msg += "; " + e;
    return Status::Unavailable(msg);
  }

  // Decode (if needed) and open one k-subset of the good shards.
  std::shared_ptr<PooledBuffer> buffer;
  try {
    buffer = pool_->Get(static_cast<size_t>(n) * ss);
  } catch (const std::bad_alloc&) {
    return Status::IOError("out of memory for a segment buffer", ENOMEM);
  }
  auto try_open = [&](const std::vector<int>& subset) -> Result<std::vector<uint8_t>> {
    std::array<bool, wire::kMaxShards> present{};
    for (int i : subset) present[i] = true;
    std::vector<uint8_t*> ptrs(n);
    bool all_data = true;
    for (int i = 0; i < n; ++i) {
      uint8_t* slot = buffer->data + static_cast<size_t>(i) * ss;
      if (i < k) {
        all_data = all_data && present[i];
        if (present[i]) std::memcpy(slot, rs.payloads[i].data(), ss);
        ptrs[i] = slot;
      } else {
        // Present parity is read in place from the received frame.
        ptrs[i] = present[i] ? static_cast<uint8_t*>(rs.payloads[i].data()) : slot;
      }
    }
    if (!all_data) {
      RETURN_IF_ERROR(codec->Reconstruct(ss, ptrs, std::span<const bool>(present.data(), n)));
    }
    std::vector<uint8_t> plain;
    RETURN_IF_ERROR(OpenSegment(master_, loc.stripe,
                                std::span<const uint8_t>(buffer->data, loc.sealed_size), &plain));
    return plain;
  };

  std::vector<int> first;
  for (int i = 0; i < n && static_cast<int>(first.size()) < k; ++i) {
    if (rs.slots[i] == Slot::kGood) first.push_back(i);
  }
  auto opened = try_open(first);
  // (OpenSegment's errors already name the stripe.)
  if (opened.ok() || opened.status().code() != Code::kAuthFailed) return opened;

  // Every shard matched its CRC, yet the tag failed: fetch the rest and try
  // other subsets, in case one node forged a shard with a matching CRC.
  while (request_one()) {
  }
  while (rs.outstanding > 0) wait_one(Clock::now() + timeout_ + std::chrono::seconds(1));
  // The locator also records each shard's SHA-256: a forged shard with a
  // matching CRC fails it, and names its node. Only on this rare path, so
  // the normal read pays for CRC32C alone.
  for (int i = 0; i < n; ++i) {
    if (rs.slots[i] != Slot::kGood || loc.shards[i].sha256 == Sha256Digest{}) continue;
    const auto* p = static_cast<const uint8_t*>(rs.payloads[i].data());
    if (Sha256(std::span<const uint8_t>(p, ss)) != loc.shards[i].sha256) {
      rs.slots[i] = Slot::kBad;
      ReportSuspectNode(loc.shards[i].node, what + " shard " + std::to_string(i) +
                                                ": SHA-256 mismatch behind a matching CRC32C "
                                                "(forged shard)");
    }
  }
  std::vector<int> good;
  for (int i = 0; i < n; ++i) {
    if (rs.slots[i] == Slot::kGood) good.push_back(i);
  }
  if (static_cast<int>(good.size()) < k) {
    return Status::AuthFailed(what + ": fewer than k shards left after dropping forged ones");
  }
  // Lexicographic k-combinations of `good`, as index vectors into it.
  std::vector<int> pick(k);
  for (int j = 0; j < k; ++j) pick[j] = j;
  int tried = 0;
  const int g = static_cast<int>(good.size());
  while (tried < kMaxSubsets) {
    std::vector<int> subset(k);
    for (int j = 0; j < k; ++j) subset[j] = good[pick[j]];
    if (subset != first) {
      ++tried;
      auto again = try_open(subset);
      if (again.ok()) {
        LOG_WARN("{}: a node returned forged shard data; read succeeded without it", what);
        return again;
      }
    }
    int j = k - 1;
    while (j >= 0 && pick[j] == g - k + j) --j;
    if (j < 0) break;
    ++pick[j];
    for (int l = j + 1; l < k; ++l) pick[l] = pick[l - 1] + 1;
  }
  return opened.status();
}

}  // namespace shardfs
