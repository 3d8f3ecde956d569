// Startup reconciliation. See reconcile.h and STORAGE.md §5.
#include "netnode/reconcile.h"

#include <cstdio>
#include <set>
#include <vector>

#include "lib/checksum.h"
#include "lib/log.h"

namespace shardfs {
namespace {

// Moves a file out of the way, under a name that cannot collide.
Status Quarantine(const DataLayout& layout, Disk* disk, const std::string& path,
                  const std::string& name, uint64_t now_ms, const std::string& why) {
  std::string dest = layout.QuarantineDir() + "/" + name + "." + std::to_string(now_ms);
  for (int i = 1;; ++i) {
    auto probe = disk->OpenForRead(dest);
    if (!probe.ok()) break;
    dest = layout.QuarantineDir() + "/" + name + "." + std::to_string(now_ms) + "-" +
           std::to_string(i);
  }
  LOG_WARN("moving {} to {}: {}", path, dest, why);
  return disk->Rename(path, dest);
}

}  // namespace

Result<ShardFileInfo> ReadShardFileInfo(Disk* disk, const std::string& path, bool verify_payload) {
  ASSIGN_OR_RETURN(auto file, disk->OpenForRead(path));
  ASSIGN_OR_RETURN(uint64_t file_size, file->Size());
  std::vector<uint8_t> head(shardfile::kHeaderSize);
  if (file_size < head.size()) return Status::Corruption(path + ": shorter than a shard header");
  RETURN_IF_ERROR(file->ReadExact(0, head.size(), head.data()));
  auto header = DecodeShardHeader(head);
  if (!header.ok()) return header.status().With(path);
  if (file_size != header->file_size()) {
    return Status::Corruption(path + ": file is " + std::to_string(file_size) +
                              " bytes, header says " + std::to_string(header->file_size()));
  }
  std::vector<uint8_t> meta(header->meta_size);
  RETURN_IF_ERROR(file->ReadExact(shardfile::kHeaderSize, meta.size(), meta.data()));
  ShardFileInfo info;
  RETURN_IF_ERROR(DecodeShardMeta(*header, meta, &info).With(path));
  if (verify_payload) {
    // In 1 MiB steps: a shard may be up to 64 MiB and this runs at startup.
    std::vector<uint8_t> buf(1 << 20);
    uint32_t crc = 0;
    for (uint64_t done = 0; done < header->payload_size;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), header->payload_size - done));
      RETURN_IF_ERROR(file->ReadExact(header->payload_offset() + done, n, buf.data()));
      crc = Crc32c(buf.data(), n, crc);
      done += n;
    }
    if (crc != header->payload_crc32c) {
      return Status::Corruption(path + ": payload checksum mismatch");
    }
  }
  return info;
}

ShardRecord RecordFromFileInfo(const ShardFileInfo& info, uint64_t now_ms) {
  ShardRecord r;
  r.key = ShardKey{info.stripe, info.index};
  r.size = info.payload_size;
  r.crc32c = info.payload_crc32c;
  if (info.index < info.locator.shards.size()) r.sha256 = info.locator.shards[info.index].sha256;
  r.owner = info.owner;
  r.locator = info.locator;
  r.created_ms = info.created_ms;
  r.last_verified_ms = now_ms;
  r.state = ShardState::kOk;
  return r;
}

Result<ReconcileStats> Reconcile(const DataLayout& layout, Disk* disk, Catalog* catalog,
                                 uint64_t now_ms) {
  ReconcileStats stats;

  // 1. Temp files were never acknowledged: drop them.
  ASSIGN_OR_RETURN(auto tmp_names, disk->ListDir(layout.TmpDir()));
  for (const std::string& name : tmp_names) {
    Status st = disk->Remove(layout.TmpDir() + "/" + name);
    if (!st.ok() && !st.IsNotFound()) return st;
    ++stats.tmp_removed;
  }

  // 2. Walk the files; re-index or quarantine the ones the catalog lacks.
  ASSIGN_OR_RETURN(auto rows, catalog->AllEntries());
  std::set<ShardKey> indexed;
  for (const CatalogEntry& e : rows) indexed.insert(e.key);
  std::set<ShardKey> seen;
  std::vector<ShardRecord> reindex;

  ASSIGN_OR_RETURN(auto subdirs, disk->ListDir(layout.ShardsDir()));
  for (const std::string& sub : subdirs) {
    std::string dir = layout.ShardsDir() + "/" + sub;
    auto names = disk->ListDir(dir);
    if (!names.ok()) {
      // A stray plain file in shards/ is not ours.
      RETURN_IF_ERROR(Quarantine(layout, disk, dir, sub, now_ms, "not a shard directory"));
      ++stats.files_quarantined;
      continue;
    }
    for (const std::string& name : *names) {
      std::string path = dir + "/" + name;
      auto key = DataLayout::ParseShardFileName(name);
      if (!key || layout.ShardPath(*key) != path) {
        RETURN_IF_ERROR(Quarantine(layout, disk, path, name, now_ms, "not a shard file name"));
        ++stats.files_quarantined;
        continue;
      }
      seen.insert(*key);
      if (indexed.count(*key)) continue;
      auto info = ReadShardFileInfo(disk, path, /*verify_payload=*/true);
      if (info.ok() && !(ShardKey{info->stripe, info->index} == *key)) {
        info = Status::Corruption("header names shard " +
                                  ShardKey{info->stripe, info->index}.ToString());
      }
      if (!info.ok()) {
        RETURN_IF_ERROR(Quarantine(layout, disk, path, name, now_ms, info.status().ToString()));
        seen.erase(*key);
        ++stats.files_quarantined;
        continue;
      }
      reindex.push_back(RecordFromFileInfo(*info, now_ms));
    }
  }
  if (!reindex.empty()) {
    LOG_WARN("re-indexing {} shard files that had no catalog row", reindex.size());
    RETURN_IF_ERROR(catalog->PutBatch(reindex));
    stats.files_reindexed = reindex.size();
  }

  // 3. Rows whose file is gone describe nothing.
  std::vector<ShardKey> dead;
  for (const ShardKey& k : indexed) {
    if (!seen.count(k)) dead.push_back(k);
  }
  if (!dead.empty()) {
    LOG_WARN("dropping {} catalog rows whose shard file is missing (first: {})", dead.size(),
             dead.front().ToString());
    RETURN_IF_ERROR(catalog->RemoveBatch(dead));
    stats.rows_dropped = dead.size();
  }
  if (stats.files_quarantined > 0 || stats.tmp_removed > 0) {
    RETURN_IF_ERROR(disk->SyncFileSystem(layout.root()));
  }
  return stats;
}

}  // namespace shardfs
