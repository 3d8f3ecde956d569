// Stripe lookup: a stripe's current locator from its id alone, by asking
// the nodes (no client-side metadata needed). shardctl object ids use it:
// the id of an object is the stripe id of its manifest segment.
//
//   1. LIST_SHARDS with a stripe filter to every up node, in parallel:
//      which node holds which shard index (and at which locator version).
//   2. STAT_SHARD to a holder of the newest locator version: the locator
//      stored beside the shard (k, m, sizes, CRC32C and SHA-256 per shard).
//   3. The node of each index is taken from step 1 where a holder answered:
//      node-side locator copies can name a node that was replaced during
//      the write (segment_writer.h), the shard lists cannot.
//
// Nothing here is trusted for integrity: the segment's GCM tag (stripe id
// as AAD) authenticates whatever is read with the locator.
//
// Thread-safety: the functions may be called from any thread (not from a
// transport callback: they block).
#pragma once

#include <chrono>

#include "lib/cluster_client.h"
#include "lib/ids.h"
#include "lib/locator.h"
#include "lib/node_table.h"
#include "lib/transport.h"

namespace shardfs {

// The newest locator the holders named by `cached` know (SYNC_LOCATOR
// without an offer, PROTOCOL.md §4.11, to each of them in parallel):
// `cached` itself when no holder knows a newer one. For a client whose
// stored locator stopped working after a repair moved shards.
Result<Locator> AskHoldersForNewest(RpcClient& rpc, NodeTable& nodes, const Locator& cached,
                                   std::chrono::milliseconds timeout);

// NotFound when no reachable node holds a shard of the stripe.
Result<Locator> LookupStripe(RpcClient& rpc, NodeTable& nodes, const StripeId& stripe,
                             std::chrono::milliseconds timeout);

// Same, through a client made by ClusterClient::Connect.
// TODO(lead): worth a virtual on ClusterClient; kept here so as not to
// change the contract header.
Result<Locator> FindLocator(ClusterClient& client, const StripeId& stripe);

}  // namespace shardfs
