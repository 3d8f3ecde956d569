// SegmentWriter implementation. See segment_writer.h.
#include "lib/segment_writer.h"

#include <algorithm>
#include <cstring>
#include <mutex>
#include <set>

#include "lib/checksum.h"
#include "lib/log.h"
#include "lib/placement.h"

namespace shardfs {

// One segment in flight. Callbacks for its shards run on the I/O thread;
// the mutex also covers the first sends from the writing thread.
struct SegmentWriter::Op {
  std::shared_ptr<PooledBuffer> buffer;  // n * shard_size; pinned by payload frames
  Locator loc;
  std::vector<std::string> endpoints;  // per shard index, current node
  Done done;

  std::mutex mu;
  // Guarded by mu.
  std::vector<int> attempts;  // per shard index
  std::vector<bool> acked;
  std::vector<NodeId> failed;  // nodes that failed any shard of this op
  int remaining = 0;           // shards not yet acknowledged
  bool finished = false;       // `done` called (success or failure)
};

SegmentWriter::SegmentWriter(RpcClient* rpc, NodeTable* nodes, BufferPool* pool,
                             std::shared_ptr<const Codec> codec, const Key& master,
                             std::string owner, std::chrono::milliseconds timeout)
    : rpc_(rpc),
      nodes_(nodes),
      pool_(pool),
      codec_(std::move(codec)),
      master_(master),
      owner_(std::move(owner)),
      timeout_(timeout) {}

void SegmentWriter::Write(std::span<const uint8_t> plaintext, Done done) {
  const int k = codec_->k(), m = codec_->m(), n = codec_->n();
  const size_t sealed_size = plaintext.size() + kSealOverhead;
  const size_t shard_size = Codec::ShardSize(sealed_size, k);
  if (plaintext.empty() || shard_size > wire::kMaxShardSize) {
    done(Status::InvalidArgument("segment of " + std::to_string(plaintext.size()) +
                                 " bytes cannot be written"));
    return;
  }
  const StripeId stripe = StripeId::Random();

  // Placement first: no point sealing a segment that has nowhere to go.
  nodes_->RefreshDownAsync();
  const int max_per_node = std::max(m, 1);
  auto placed = PlaceStripeDegraded(stripe, nodes_->Snapshot(), n, max_per_node, shard_size);
  if (!placed.ok()) {
    nodes_->Refresh();  // the table may be stale (nodes came back); bounded by the ping timeout
    placed = PlaceStripeDegraded(stripe, nodes_->Snapshot(), n, max_per_node, shard_size);
  }
  if (!placed.ok()) {
    done(placed.status().With("placing stripe " + stripe.Hex()));
    return;
  }

  auto op = std::make_shared<Op>();
  try {
    op->buffer = pool_->Get(static_cast<size_t>(n) * shard_size);
  } catch (const std::bad_alloc&) {
    done(Status::IOError("out of memory for a segment buffer", ENOMEM));
    return;
  }
  uint8_t* base = op->buffer->data;
  Status st = SealSegmentInto(master_, stripe, plaintext, std::span<uint8_t>(base, sealed_size));
  if (!st.ok()) {
    done(st.With("sealing stripe " + stripe.Hex()));
    return;
  }
  // Padding of the last data shard must be zero: it is part of the code word.
  std::memset(base + sealed_size, 0, static_cast<size_t>(k) * shard_size - sealed_size);
  std::vector<uint8_t*> ptrs(n);
  for (int i = 0; i < n; ++i) ptrs[i] = base + static_cast<size_t>(i) * shard_size;
  st = codec_->Encode(shard_size, ptrs);
  if (!st.ok()) {
    done(st.With("encoding stripe " + stripe.Hex()));
    return;
  }

  Locator& loc = op->loc;
  loc.stripe = stripe;
  loc.version = 1;
  loc.k = static_cast<uint8_t>(k);
  loc.m = static_cast<uint8_t>(m);
  loc.shard_size = static_cast<uint32_t>(shard_size);
  loc.sealed_size = static_cast<uint32_t>(sealed_size);
  loc.shards.resize(n);
  for (int i = 0; i < n; ++i) {
    std::span<const uint8_t> shard(ptrs[i], shard_size);
    loc.shards[i].node = (*placed)[i].id;
    loc.shards[i].crc32c = Crc32c(shard);
    loc.shards[i].sha256 = Sha256(shard);
    op->endpoints.push_back((*placed)[i].endpoint);
  }
  op->done = std::move(done);
  op->attempts.assign(n, 1);
  op->acked.assign(n, false);
  op->remaining = n;
  std::set<NodeId> distinct;
  for (const ShardLocation& sh : loc.shards) distinct.insert(sh.node);
  if (static_cast<int>(distinct.size()) < n) {
    // Once per writer at warning level: a long upload would repeat it for
    // every segment.
    if (degraded_.fetch_add(1, std::memory_order_relaxed) == 0) {
      LOG_WARN(
          "only {} usable nodes for {} shards: some nodes hold two shards of a stripe "
          "(redundancy reduced until repair; stripe {} and later ones)",
          distinct.size(), n, stripe.Hex());
    } else {
      LOG_DEBUG("stripe {}: doubled up on {} nodes", stripe.Hex(), distinct.size());
    }
  }
  for (int i = 0; i < n; ++i) SendShard(op, i);
}

void SegmentWriter::SendShard(const std::shared_ptr<Op>& op, int index) {
  wire::PutShardRequest req;
  std::string endpoint;
  NodeId node;
  {
    std::lock_guard<std::mutex> lock(op->mu);
    req.stripe = op->loc.stripe;
    req.index = static_cast<ShardIndex>(index);
    req.crc32c = op->loc.shards[index].crc32c;
    req.owner = owner_;
    req.locator = op->loc;
    endpoint = op->endpoints[index];
    node = op->loc.shards[index].node;
  }
  const size_t shard_size = op->loc.shard_size;
  Payload payload{op->buffer, op->buffer->data + static_cast<size_t>(index) * shard_size,
                  shard_size};
  // Never under op->mu: after shutdown the transport calls back inline.
  rpc_->Send(
      endpoint, req, std::move(payload), Clock::now() + timeout_,
      [this, op, index, node](Result<RpcReply> r) { OnReply(op, index, node, std::move(r)); });
}

void SegmentWriter::OnReply(const std::shared_ptr<Op>& op, int index, NodeId node,
                            Result<RpcReply> r) {
  wire::PutShardReply ack;
  Status st = r.ok() ? ParseReply(*r, &ack) : r.status();
  const StripeId stripe = op->loc.stripe;  // immutable after Write
  const size_t shard_size = op->loc.shard_size;

  if (st.ok()) {
    nodes_->ReportStored(node, shard_size);
    Done done;
    Locator final_loc;
    bool orphan = false;
    std::string endpoint;
    {
      std::lock_guard<std::mutex> lock(op->mu);
      op->acked[index] = true;
      endpoint = op->endpoints[index];
      if (op->finished) {
        orphan = true;  // the write already failed: this shard is garbage
      } else if (--op->remaining == 0) {
        op->finished = true;
        final_loc = op->loc;
        done = std::move(op->done);
      }
    }
    if (orphan) DeleteBestEffort(endpoint, stripe, index);
    if (done) done(std::move(final_loc));
    return;
  }

  // Failure: place the shard elsewhere, or give up on the segment.
  nodes_->ReportFailure(node, st);
  const std::string failed_endpoint = [&] {
    std::lock_guard<std::mutex> lock(op->mu);
    return op->endpoints[index];
  }();
  LOG_DEBUG("stripe {} shard {}: {} failed: {}", stripe.Hex(), index, failed_endpoint,
            st.ToString());
  // A timed-out PUT may still land later: ask the node to drop it.
  if (st.IsTimedOut()) DeleteBestEffort(failed_endpoint, stripe, index);

  Status fail;
  bool resend = false;
  {
    std::lock_guard<std::mutex> lock(op->mu);
    if (op->finished) return;
    if (std::find(op->failed.begin(), op->failed.end(), node) == op->failed.end()) {
      op->failed.push_back(node);
    }
    if (op->attempts[index] >= kMaxAttemptsPerShard) {
      fail = st.With("stripe " + stripe.Hex() + " shard " + std::to_string(index) +
                     ": gave up after " + std::to_string(op->attempts[index]) + " attempts; last");
    } else {
      std::vector<NodeId> holders;
      for (int i = 0; i < op->loc.n(); ++i) {
        if (i != index) holders.push_back(op->loc.shards[i].node);
      }
      auto repl = PlaceReplacement(stripe, nodes_->Snapshot(), shard_size, holders, op->failed,
                                   std::max<int>(op->loc.m, 1));
      if (!repl.ok()) {
        fail = repl.status().With("stripe " + stripe.Hex() + " shard " + std::to_string(index) +
                                  " (" + st.ToString() + ")");
      } else {
        ++op->attempts[index];
        op->loc.shards[index].node = repl->id;
        op->endpoints[index] = repl->endpoint;
        resend = true;
      }
    }
  }
  if (resend) {
    SendShard(op, index);
    return;
  }

  // The write failed: report once, then clean up what was stored.
  Done done;
  std::vector<std::pair<std::string, int>> to_delete;
  {
    std::lock_guard<std::mutex> lock(op->mu);
    if (op->finished) return;
    op->finished = true;
    done = std::move(op->done);
    for (int i = 0; i < op->loc.n(); ++i) {
      if (op->acked[i]) to_delete.emplace_back(op->endpoints[i], i);
    }
  }
  done(fail);
  for (auto& [ep, i] : to_delete) DeleteBestEffort(ep, stripe, i);
}

void SegmentWriter::DeleteBestEffort(const std::string& endpoint, const StripeId& stripe,
                                     int index) {
  wire::DeleteShardRequest req;
  req.stripe = stripe;
  req.index = static_cast<ShardIndex>(index);
  req.owner = owner_;
  rpc_->Send(endpoint, req, Payload{}, Clock::now() + timeout_, [](Result<RpcReply>) {});
}

}  // namespace shardfs
