// Objects: whole files stored as segments plus a manifest (object_manifest.h),
// for `shardctl put/get` and benchmarks. The drive (fs/) keeps its own
// segment maps in SQLite and does not use this.
//
// Object id: the 32 hex digits of the manifest segment's stripe id. It is
// self-contained: `get` finds the manifest's shards by asking the nodes
// (stripe_lookup.h), so no client-side state is needed, and the id stays
// valid when repair moves shards.
//
// Both directions stream: put reads one segment at a time and keeps at
// most the client's in-flight limit of segments in memory; get prefetches a
// bounded window of segments and writes them in order. Only the locator
// list (about 300 bytes per 4 MiB segment) is held for the whole file.
//
// Thread-safety: the functions may be called from any thread, not from a
// transport callback.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/cluster_client.h"
#include "lib/ids.h"
#include "lib/status.h"

namespace shardfs {

struct ObjectStats {
  uint64_t bytes = 0;     // file bytes
  uint64_t segments = 0;  // data segments
};

// Stores everything readable from `fd` (until EOF). Returns the object id.
// On failure, the segments already stored are deleted (best effort).
Result<std::string> PutObject(ClusterClient& client, int fd, ObjectStats* stats = nullptr);

// Called after each segment is written: bytes written so far, object size.
using ObjectProgress = std::function<void(uint64_t done, uint64_t total)>;

// Writes the object's bytes to `out_fd` from its current offset.
// InvalidArgument for a malformed id, NotFound for an unknown object,
// AuthFailed for a wrong key or tampered data, Unavailable when too few
// shards can be fetched. `prefetch`: segments fetched ahead (>= 1).
// `progress`, if set, runs on the calling thread.
Status GetObject(ClusterClient& client, std::string_view id, int out_fd, int prefetch = 4,
                 ObjectStats* stats = nullptr, const ObjectProgress& progress = {});

// Deletes the object's segments and manifest (NotFound counts as gone).
Status DeleteObject(ClusterClient& client, std::string_view id);

// Every stripe the object uses: its root manifest, inner manifests and data
// segments (for fsck: which shards on the nodes are referenced).
Result<std::vector<Locator>> ObjectStripes(ClusterClient& client, std::string_view id);

// The manifest stripe id in an object id, or InvalidArgument.
Result<StripeId> ParseObjectId(std::string_view id);

}  // namespace shardfs
