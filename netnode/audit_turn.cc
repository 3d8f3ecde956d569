// Audit turns. See audit_turn.h.
#include "netnode/audit_turn.h"

#include <algorithm>

namespace shardfs {

uint64_t AuditRound(uint64_t wall_ms, std::chrono::milliseconds interval) {
  const uint64_t ms = static_cast<uint64_t>(std::max<int64_t>(interval.count(), 1));
  return wall_ms / ms;
}

bool IsOurAuditTurn(const Locator& loc, NodeId self, uint64_t round) {
  const size_t n = static_cast<size_t>(std::max(loc.n(), 0));
  if (n == 0 || loc.shards.size() != n) return false;
  // Stripe ids are random: their first bytes spread the turns evenly.
  uint64_t h = 0;
  for (int i = 0; i < 8; ++i) h = (h << 8) | loc.stripe.bytes[i];
  // (h + round) mod n, without the sum overflowing.
  return loc.shards[(h % n + round % n) % n].node == self;
}

}  // namespace shardfs
