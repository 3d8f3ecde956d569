// Reed-Solomon erasure coding over ISA-L (Cauchy matrix, systematic).
//
// A Codec holds k, m and the precomputed encode tables. Shards 0..k-1 are the
// data itself (systematic), k..k+m-1 parity. Any k of the n = k+m shards
// rebuild the rest. ISA-L's calls trust their sizes and report nothing, so
// every count and length is validated here before calling them.
//
// Thread-safety: a Codec is immutable after Create(); Encode and Reconstruct
// may run concurrently from many threads on distinct buffers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "lib/status.h"

namespace shardfs {

class Codec {
 public:
  // k >= 1, m >= 0, k + m <= wire::kMaxShards (64); InvalidArgument otherwise.
  static Result<std::shared_ptr<const Codec>> Create(int k, int m);

  Codec(const Codec&) = delete;
  Codec& operator=(const Codec&) = delete;
  ~Codec();

  int k() const { return k_; }
  int m() const { return m_; }
  int n() const { return k_ + m_; }

  // Bytes per shard for `len` bytes of data: ceil(len / k), at least 1.
  static size_t ShardSize(size_t len, int k);

  // REQUIRES: shards.size() == n(); every shard has shard_size bytes; shards
  // 0..k-1 hold data (the caller pads the last with zeros). Fills k..n-1.
  Status Encode(size_t shard_size, std::span<uint8_t* const> shards) const;

  // `present[i]` says whether shards[i] holds valid bytes. Rebuilds every
  // missing shard in place (data and parity). NotEnough (InvalidArgument)
  // when fewer than k are present. REQUIRES: every shards[i] points at
  // shard_size writable bytes, present or not.
  Status Reconstruct(size_t shard_size, std::span<uint8_t* const> shards,
                     std::span<const bool> present) const;

 private:
  Codec(int k, int m);
  int k_;
  int m_;
  std::vector<uint8_t> matrix_;       // n x k Cauchy encode matrix
  std::vector<uint8_t> encode_tbls_;  // ec_init_tables of the parity rows
};

}  // namespace shardfs
