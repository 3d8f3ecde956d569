// SegmentWriter: one plaintext segment -> n acknowledged shards.
//
// On the calling thread: a fresh stripe id, placement, AES-GCM seal straight
// into the data area of one n * shard_size buffer, ISA-L parity into the rest,
// CRC32C + SHA-256 of every shard, the locator. Then n PUT_SHARD go out in
// parallel, each payload frame pointing into that one buffer (zero copy).
//
// A shard whose node fails, times out or is full is placed again
// (placement.h PlaceReplacement: a node holding nothing of the stripe, in an
// unused zone if any) and re-sent, at most kMaxAttemptsPerShard times per
// shard. The write succeeds only when all n are acknowledged. On failure the
// shards already stored are deleted (best effort, also those acknowledged
// later).
//
// Node-side locator copies: every PUT carries the locator as known when that
// PUT is sent, so after a replacement the copies on the other nodes still
// name the first node for that index. The returned locator (what the client
// stores) is the final one; node copies are brought up to date by repair
// (issue 4), and a client looking a stripe up by id (stripe_lookup.h)
// trusts the nodes' shard lists over their locator copies.
//
// Small clusters: when fewer than n nodes are usable, shards are doubled up
// (PlaceStripeDegraded) with at most max(m, 1) per node, so the stripe still
// survives the loss of any one node; a warning is logged.
//
// Thread-safety: Write may be called from any number of threads at once.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "lib/buffer_pool.h"
#include "lib/crypto.h"
#include "lib/erasure.h"
#include "lib/locator.h"
#include "lib/node_table.h"
#include "lib/transport.h"

namespace shardfs {

class SegmentWriter {
 public:
  using Done = std::function<void(Result<Locator>)>;
  static constexpr int kMaxAttemptsPerShard = 3;

  // REQUIRES: every pointer outlives the writer and every write it started
  // (shut the transport down first: that ends them all).
  SegmentWriter(RpcClient* rpc, NodeTable* nodes, BufferPool* pool,
                std::shared_ptr<const Codec> codec, const Key& master, std::string owner,
                std::chrono::milliseconds timeout);
  SegmentWriter(const SegmentWriter&) = delete;
  SegmentWriter& operator=(const SegmentWriter&) = delete;

  // Prepares and sends; `done` runs exactly once: on the transport's I/O
  // thread, or on this thread when the write fails before anything was sent
  // (bad size, no placement). `plaintext` is not used after Write returns.
  // REQUIRES: 0 < plaintext.size(), sealed shards fit wire::kMaxShardSize.
  void Write(std::span<const uint8_t> plaintext, Done done);

 private:
  struct Op;

  void SendShard(const std::shared_ptr<Op>& op, int index);
  void OnReply(const std::shared_ptr<Op>& op, int index, NodeId node, Result<RpcReply> r);
  void DeleteBestEffort(const std::string& endpoint, const StripeId& stripe, int index);

  // Fixed after construction.
  RpcClient* const rpc_;
  NodeTable* const nodes_;
  BufferPool* const pool_;
  const std::shared_ptr<const Codec> codec_;
  const Key master_;
  const std::string owner_;
  const std::chrono::milliseconds timeout_;

  std::atomic<uint64_t> degraded_{0};  // stripes placed with doubled-up nodes
};

}  // namespace shardfs
