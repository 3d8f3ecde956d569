// Startup reconciliation of the catalog with the shard files
// (STORAGE.md §5). The files are the truth, the catalog an index:
//   - tmp/ is emptied (a temp file was never acknowledged);
//   - a row whose file is missing is dropped;
//   - a file without a row is re-indexed from its header and meta block
//     after its payload CRC checks out; a file that fails any check, or
//     whose name is not a shard name, is moved to quarantine/ (never
//     deleted: the operator decides).
//
// Thread-safety: REQUIRES exclusive use of the data dir (the node holds
// DATA_DIR/lock) and runs before any other thread touches the store.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "lib/status.h"
#include "netnode/catalog.h"
#include "netnode/disk.h"
#include "netnode/layout.h"
#include "netnode/shard_file.h"

namespace shardfs {

struct ReconcileStats {
  size_t tmp_removed = 0;
  size_t rows_dropped = 0;
  size_t files_reindexed = 0;
  size_t files_quarantined = 0;
};

Result<ReconcileStats> Reconcile(const DataLayout& layout, Disk* disk, Catalog* catalog,
                                 uint64_t now_ms);

// Reads and checks a shard file's header and meta block; with
// `verify_payload` also reads the payload and checks its CRC32C.
Result<ShardFileInfo> ReadShardFileInfo(Disk* disk, const std::string& path, bool verify_payload);

// The catalog row for a shard file.
ShardRecord RecordFromFileInfo(const ShardFileInfo& info, uint64_t now_ms);

}  // namespace shardfs
