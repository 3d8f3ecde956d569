// Audit turns: which holder audits a stripe that looks healthy.
//
// An audit costs a SYNC_LOCATOR round trip to every other holder (~2 ms of
// CPU spread over the nodes). When every holder audited every stripe each
// interval, a stripe of n shards cost n audits per interval: 6,600 a minute
// for 1,106 stripes on six nodes, a fifth of a core, growing with the data.
// One audit by any holder already brings all of them to the newest locator
// and finds a missing or corrupt shard, so for a stripe whose holders all
// look reachable the holders take turns: in round r (the wall clock divided
// into audit intervals) the node at shard index (h(stripe) + r) mod n
// audits. Each stripe gets about one audit per interval, and every holder
// audits each of its stripes at least once in n rounds (so a holder whose
// row was lost, or whose locator is stale, is caught within a few rounds).
// Clocks that disagree only shift turns; a round may then see two audits
// or none.
//
// The repairer audits every stripe, turn or not, on a pass a peer's state
// change or the scrubber started, and when the stripe looks unhealthy or we
// hold a copy its locator gives to someone else (repairer.h).
#pragma once

#include <chrono>
#include <cstdint>

#include "lib/ids.h"
#include "lib/locator.h"

namespace shardfs {

// The audit round `wall_ms` falls in (interval > 0).
uint64_t AuditRound(uint64_t wall_ms, std::chrono::milliseconds interval);

// True when `self` is the node at the shard index whose turn it is in
// `round` for `loc`'s stripe.
bool IsOurAuditTurn(const Locator& loc, NodeId self, uint64_t round);

}  // namespace shardfs
