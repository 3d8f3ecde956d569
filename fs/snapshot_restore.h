// Restore: rebuild a state dir from the key and one node endpoint
// (`shardctl restore`, fs/SNAPSHOTS.md §6). Also the node inventory that
// restore and fsck use to tell which shards exist.
//
//   1. List the volume's records on the bootstrap node; read the heads. The
//      newest head names every node of the volume: list those too.
//   2. Newest head first: fetch the blob (data path), check its size and
//      SHA-256, open it (GCM), check the database (integrity_check,
//      application_id, volume id). A bad one is skipped with a warning and
//      the previous one is tried.
//   3. Repair what the snapshot could not hold: segments that were staged
//      but not uploaded lose their staged version (back to the previous
//      uploaded one, or a hole), the upload queue is emptied, and segments
//      whose shards are no longer on the nodes are listed. Every such file
//      is reported by path.
//   4. Write STATE: meta.db, client.conf (nodes, k, m, segment size; key
//      file = the one given), client.id (the mount's keypair from the head,
//      so its shards stay deletable), snapshot.state (restored, clean).
//
// Thread-safety: blocking functions for one thread.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "fs/meta_snapshot.h"
#include "fs/snapshot_records.h"
#include "lib/crypto.h"

namespace shardfs::fs {

struct Inventory {
  // stripe -> shard index -> nodes holding it
  std::map<StripeId, std::map<ShardIndex, std::vector<NodeId>>> stripes;
  size_t shards = 0;
  std::vector<NodeInfo> listed;          // nodes whose full list we have
  std::vector<std::string> unreachable;  // "endpoint: why"
};
// Full LIST_SHARDS of every node the store knows (down ones are reported).
Inventory TakeInventory(RecordStore& store);
// Distinct shard indexes of the locator's stripe found on the nodes.
int LiveShards(const Inventory& inv, const Locator& loc);

struct RestoreRequest {
  Key master{};
  std::string key_file;   // written into client.conf (made absolute)
  std::string bootstrap;  // one node endpoint
  std::string state_dir;
  uint64_t seq = 0;       // 0: the newest usable
  bool force = false;     // overwrite an existing STATE/meta.db
};

struct LostFile {
  std::string path;
  std::string what;
};

struct RestoreReport {
  SnapshotHead head;      // the snapshot restored
  uint64_t newest_seen = 0;
  std::vector<std::string> warnings;  // skipped snapshots, unreachable nodes
  std::vector<LostFile> lost;
  uint64_t files = 0, dirs = 0, bytes = 0;
  uint64_t unreferenced_stripes = 0;  // on the nodes, not in the snapshot
  std::string config_path;
  // The volume's network lease is still held (not released) by this mount:
  // the restored drive will need -o break_lease if that machine is gone.
  std::string lease_holder;
};

// Called with a line of progress ("fetching snapshot 3: 40%").
using ProgressFn = std::function<void(const std::string& line, bool transient)>;

// The heads reachable from `bootstrap` (then from every node they name).
// NotFound explains a wrong key when the node holds other volumes' records.
Result<HeadScan> FindSnapshots(const VolumeKeys& keys, const std::string& bootstrap,
                               std::vector<std::string>* endpoints_out,
                               std::unique_ptr<RecordStore>* store_out);

Result<RestoreReport> Restore(const RestoreRequest& req, const ProgressFn& progress);

// "/dir/name" of an inode of an open meta.db ("?/ino N" when detached).
std::string InodePath(sqlite3* db, int64_t ino);

}  // namespace shardfs::fs
