// Reed-Solomon over ISA-L. See erasure.h.
//
// The encode matrix is ISA-L's systematic Cauchy matrix (n x k): the top k x k
// is the identity and every k x k submatrix of it is invertible, which is what
// lets any k shards rebuild the rest. gf_gen_cauchy1_matrix is defined for
// n <= 255, far above wire::kMaxShards.
//
// ISA-L's ec_encode_data trusts every length and pointer and reports nothing,
// so all checks happen here before the call. Its `len` is an int: buffers
// above INT_MAX are coded in chunks (the code works byte column by column, so
// chunking changes nothing in the result).
#include "lib/erasure.h"

#include <isa-l/erasure_code.h>

#include <algorithm>
#include <string>

#include "lib/wire_format.h"

namespace shardfs {
namespace {

constexpr size_t kMaxChunk = size_t{1} << 30;  // below INT_MAX

Status CheckShards(int n, size_t shard_size, std::span<uint8_t* const> shards) {
  if (shards.size() != static_cast<size_t>(n)) {
    return Status::InvalidArgument("erasure: got " + std::to_string(shards.size()) +
                                   " shards, codec has n=" + std::to_string(n));
  }
  if (shard_size == 0) return Status::InvalidArgument("erasure: shard size is 0");
  for (size_t i = 0; i < shards.size(); ++i) {
    if (shards[i] == nullptr) {
      return Status::InvalidArgument("erasure: shard " + std::to_string(i) + " is null");
    }
  }
  return Status::OK();
}

// Runs ec_encode_data over [0, shard_size) in chunks that fit its int length.
// `srcs` and `dsts` are copied so the chunk offsets can be applied.
void EncodeChunked(size_t shard_size, int nsrc, int ndst, uint8_t* tables,
                   const std::vector<uint8_t*>& srcs, const std::vector<uint8_t*>& dsts) {
  std::vector<uint8_t*> s(srcs), d(dsts);
  for (size_t off = 0; off < shard_size; off += kMaxChunk) {
    size_t len = std::min(kMaxChunk, shard_size - off);
    for (int i = 0; i < nsrc; ++i) s[i] = srcs[i] + off;
    for (int i = 0; i < ndst; ++i) d[i] = dsts[i] + off;
    ec_encode_data(static_cast<int>(len), nsrc, ndst, tables, s.data(), d.data());
  }
}

}  // namespace

Codec::Codec(int k, int m) : k_(k), m_(m) {}
Codec::~Codec() = default;

Result<std::shared_ptr<const Codec>> Codec::Create(int k, int m) {
  if (k < 1 || m < 0 || k > wire::kMaxShards || m > wire::kMaxShards || k + m > wire::kMaxShards) {
    return Status::InvalidArgument(
        "erasure: invalid k=" + std::to_string(k) + " m=" + std::to_string(m) +
        " (need k >= 1, m >= 0, k+m <= " + std::to_string(wire::kMaxShards) + ")");
  }
  // Constructor is private, so no make_shared.
  std::shared_ptr<Codec> codec(new Codec(k, m));
  const int n = k + m;
  codec->matrix_.resize(static_cast<size_t>(n) * k);
  gf_gen_cauchy1_matrix(codec->matrix_.data(), n, k);
  if (m > 0) {
    codec->encode_tbls_.resize(static_cast<size_t>(32) * k * m);
    ec_init_tables(k, m, codec->matrix_.data() + static_cast<size_t>(k) * k,
                   codec->encode_tbls_.data());
  }
  return std::shared_ptr<const Codec>(std::move(codec));
}

size_t Codec::ShardSize(size_t len, int k) {
  const size_t kk = k < 1 ? 1 : static_cast<size_t>(k);
  return std::max<size_t>(1, len / kk + (len % kk != 0 ? 1 : 0));
}

Status Codec::Encode(size_t shard_size, std::span<uint8_t* const> shards) const {
  RETURN_IF_ERROR(CheckShards(n(), shard_size, shards));
  if (m_ == 0) return Status::OK();
  std::vector<uint8_t*> data(shards.begin(), shards.begin() + k_);
  std::vector<uint8_t*> parity(shards.begin() + k_, shards.end());
  // ISA-L takes a non-const table pointer but only reads it.
  EncodeChunked(shard_size, k_, m_, const_cast<uint8_t*>(encode_tbls_.data()), data, parity);
  return Status::OK();
}

Status Codec::Reconstruct(size_t shard_size, std::span<uint8_t* const> shards,
                          std::span<const bool> present) const {
  RETURN_IF_ERROR(CheckShards(n(), shard_size, shards));
  if (present.size() != static_cast<size_t>(n())) {
    return Status::InvalidArgument("erasure: present has " + std::to_string(present.size()) +
                                   " entries, codec has n=" + std::to_string(n()));
  }
  std::vector<int> survivors;  // the first k present shards, in index order
  std::vector<int> missing;
  for (int i = 0; i < n(); ++i) {
    if (!present[i]) {
      missing.push_back(i);
    } else if (static_cast<int>(survivors.size()) < k_) {
      survivors.push_back(i);
    }
  }
  if (missing.empty()) return Status::OK();
  if (static_cast<int>(survivors.size()) < k_) {
    return Status::InvalidArgument("erasure: not enough shards to rebuild: " +
                                   std::to_string(n() - static_cast<int>(missing.size())) +
                                   " present, need " + std::to_string(k_));
  }

  // Rows of the encode matrix for the survivors: survivors = sub * data, so
  // data = inv * survivors.
  const size_t kk = static_cast<size_t>(k_);
  std::vector<uint8_t> sub(kk * kk), inv(kk * kk);
  for (size_t r = 0; r < kk; ++r) {
    std::copy_n(matrix_.data() + static_cast<size_t>(survivors[r]) * kk, kk, sub.data() + r * kk);
  }
  if (gf_invert_matrix(sub.data(), inv.data(), k_) != 0) {
    // Cannot happen for a Cauchy matrix; kept as a check on our own invariant.
    return Status::Corruption("erasure: decode submatrix is singular");
  }

  // One decode row per missing shard, expressed over the survivors. A data
  // row is the matching row of inv; a parity row p gives p * inv.
  std::vector<uint8_t> decode(missing.size() * kk);
  for (size_t r = 0; r < missing.size(); ++r) {
    uint8_t* row = decode.data() + r * kk;
    const int idx = missing[r];
    if (idx < k_) {
      std::copy_n(inv.data() + static_cast<size_t>(idx) * kk, kk, row);
      continue;
    }
    const uint8_t* p = matrix_.data() + static_cast<size_t>(idx) * kk;
    for (size_t j = 0; j < kk; ++j) {
      uint8_t acc = 0;
      for (size_t i = 0; i < kk; ++i) acc ^= gf_mul(p[i], inv[i * kk + j]);
      row[j] = acc;
    }
  }

  const int rows = static_cast<int>(missing.size());
  std::vector<uint8_t> tables(32 * kk * missing.size());
  ec_init_tables(k_, rows, decode.data(), tables.data());
  std::vector<uint8_t*> srcs(kk), dsts(missing.size());
  for (size_t i = 0; i < kk; ++i) srcs[i] = shards[survivors[i]];
  for (size_t i = 0; i < missing.size(); ++i) dsts[i] = shards[missing[i]];
  EncodeChunked(shard_size, k_, rows, tables.data(), srcs, dsts);
  return Status::OK();
}

}  // namespace shardfs
