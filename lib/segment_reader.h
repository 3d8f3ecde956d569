// SegmentReader: a locator -> the segment's plaintext.
//
// GET_SHARD goes to the k data shards first (the code is systematic: when
// they all arrive intact the sealed segment is just their concatenation, no
// decode). Every payload's CRC32C is checked on arrival against the
// locator. A shard that fails (error reply, timeout, wrong size or CRC) is
// replaced by the next candidate: parity shards first, then shards on nodes
// believed down. Nodes already known to be down are not asked first.
// Hedging: each timeout/4 that passes without k good shards, one more
// candidate is asked, so one slow node costs a quarter timeout, not a
// whole one.
//
// With fewer than k data shards: ISA-L rebuilds the data from any k, then
// AES-GCM opens. If the tag fails although every shard matched its CRC, a
// node returned forged bytes with a matching CRC (CRC32C is not a MAC):
// every remaining shard is fetched, shards whose SHA-256 differs from the
// locator's are dropped, and other k-subsets are tried (at most kMaxSubsets)
// before giving up with AuthFailed.
//
// A node that answers OK with bytes not matching the locator (size, CRC32C
// or SHA-256) is reported with ReportSuspectNode (lib/suspect_nodes.h);
// `shardctl status` lists those nodes. Error replies are not suspicious.
//
// Thread-safety: Read may be called from any number of threads at once.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "lib/buffer_pool.h"
#include "lib/crypto.h"
#include "lib/erasure.h"
#include "lib/locator.h"
#include "lib/node_table.h"
#include "lib/transport.h"

namespace shardfs {

class SegmentReader {
 public:
  static constexpr int kMaxSubsets = 64;

  // REQUIRES: the pointers outlive the reader.
  SegmentReader(RpcClient* rpc, NodeTable* nodes, BufferPool* pool, const Key& master,
                std::chrono::milliseconds timeout);
  SegmentReader(const SegmentReader&) = delete;
  SegmentReader& operator=(const SegmentReader&) = delete;

  // Byte-exact plaintext, or AuthFailed (wrong key, tampering), Unavailable
  // (fewer than k intact shards), InvalidArgument (malformed locator).
  Result<std::vector<uint8_t>> Read(const Locator& loc);

 private:
  struct Fetch;

  Result<std::shared_ptr<const Codec>> CodecFor(int k, int m);

  // Fixed after construction.
  RpcClient* const rpc_;
  NodeTable* const nodes_;
  BufferPool* const pool_;
  const Key master_;
  const std::chrono::milliseconds timeout_;

  std::mutex mu_;
  std::map<std::pair<int, int>, std::shared_ptr<const Codec>> codecs_;  // guarded by mu_
};

}  // namespace shardfs
