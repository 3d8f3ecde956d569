// Locator encoding, PROTOCOL.md §4.9. See locator.h.
//
// The encoding is self-delimiting (the entry count is k + m, both in the
// fixed part), so it can sit inside a message body or a node's index row
// without a length prefix. It carries no version of its own: it changes only
// together with the body versions of the messages that embed it (§7).
//
// Thread-safety: pure functions.
#include "lib/locator.h"

#include <utility>

#include "lib/wire_format.h"

namespace shardfs {
namespace {

// PROTOCOL.md §4.9: stripe(16) version(4) k(1) m(1) shard_size(4)
// sealed_size(4), then per shard node(8) crc32c(4) sha256(32).
constexpr size_t kFixedSize = 16 + 4 + 1 + 1 + 4 + 4;
constexpr size_t kEntrySize = 8 + 4 + 32;

}  // namespace

void EncodeLocator(const Locator& loc, std::string* out) {
  out->reserve(out->size() + kFixedSize + kEntrySize * loc.shards.size());
  PutBytes(out, loc.stripe.bytes.data(), loc.stripe.bytes.size());
  PutU32(out, loc.version);
  PutU8(out, loc.k);
  PutU8(out, loc.m);
  PutU32(out, loc.shard_size);
  PutU32(out, loc.sealed_size);
  // The count on the wire is k + m; an inconsistent in-memory locator would
  // produce bytes that no decoder accepts, which is the honest outcome.
  for (const ShardLocation& s : loc.shards) {
    PutU64(out, s.node);
    PutU32(out, s.crc32c);
    PutBytes(out, s.sha256.data(), s.sha256.size());
  }
}

bool DecodeLocator(Reader* in, Locator* loc) {
  Locator tmp;
  if (!in->GetBytes(tmp.stripe.bytes.data(), tmp.stripe.bytes.size()) ||
      !in->GetU32(&tmp.version) || !in->GetU8(&tmp.k) || !in->GetU8(&tmp.m) ||
      !in->GetU32(&tmp.shard_size) || !in->GetU32(&tmp.sealed_size)) {
    return false;
  }
  // Validate before allocating: n is at most kMaxShards, so the vector
  // below is small whatever the input says.
  const int n = tmp.n();
  if (tmp.k < 1 || n > wire::kMaxShards) return false;
  if (tmp.shard_size > wire::kMaxShardSize) return false;
  if (uint64_t{tmp.sealed_size} > uint64_t{tmp.k} * tmp.shard_size) return false;
  if (in->remaining() < kEntrySize * static_cast<size_t>(n)) return false;
  tmp.shards.resize(n);
  for (ShardLocation& s : tmp.shards) {
    if (!in->GetU64(&s.node) || !in->GetU32(&s.crc32c) ||
        !in->GetBytes(s.sha256.data(), s.sha256.size())) {
      return false;  // unreachable after the remaining() check; kept for safety
    }
  }
  *loc = std::move(tmp);
  return true;
}

bool LocatorNewer(const Locator& a, const Locator& b) {
  if (a.version != b.version) return a.version > b.version;
  std::string ea, eb;
  EncodeLocator(a, &ea);
  EncodeLocator(b, &eb);
  return ea > eb;  // std::string compares as unsigned char (char_traits<char>::lt)
}

}  // namespace shardfs
