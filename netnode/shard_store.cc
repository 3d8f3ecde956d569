// Shard files on local disk. See shard_store.h; STORAGE.md §4 is the write
// procedure, §5 the startup reconciliation (reconcile.cc).
#include "netnode/shard_store.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "lib/checksum.h"
#include "lib/log.h"
#include "lib/wire_format.h"
#include "netnode/reconcile.h"
#include "netnode/shard_file.h"

namespace shardfs {
namespace {

uint64_t WallClockMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

std::span<const uint8_t> AsBytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// wire_messages.cc maps Corruption+EBADMSG to CHECKSUM_MISMATCH.
Status ChecksumMismatch(std::string msg) {
  return Status(Code::kCorruption, std::move(msg), EBADMSG);
}

}  // namespace

void ShardBytes::FreeDeleter::operator()(uint8_t* p) const { std::free(p); }

ShardStore::ShardStore(StoreOptions options, std::unique_ptr<Catalog> catalog)
    : options_(std::move(options)),
      layout_(options_.data_dir),
      disk_(options_.disk),
      commit_catalog_(std::move(catalog)) {}

Result<std::unique_ptr<ShardStore>> ShardStore::Open(StoreOptions options) {
  if (options.disk == nullptr) options.disk = PosixDisk();
  if (!options.clock_ms) options.clock_ms = WallClockMs;
  if (options.max_batch == 0) options.max_batch = 1;
  Disk* disk = options.disk;
  DataLayout layout(options.data_dir);

  // STORAGE.md §1: the directories exist before anything else, including
  // all 256 shard subdirectories, so a PUT never creates a directory.
  for (const std::string& dir :
       {layout.root(), layout.ShardsDir(), layout.TmpDir(), layout.QuarantineDir()}) {
    RETURN_IF_ERROR(disk->CreateDir(dir));
  }
  for (int i = 0; i < 256; ++i) {
    StripeId s;
    s.bytes[0] = static_cast<uint8_t>(i);
    RETURN_IF_ERROR(disk->CreateDir(layout.ShardDir(s)));
  }
  RETURN_IF_ERROR(disk->SyncFileSystem(layout.root()));

  ASSIGN_OR_RETURN(auto catalog, Catalog::Open(layout.CatalogFile()));
  ASSIGN_OR_RETURN(ReconcileStats rs, Reconcile(layout, disk, catalog.get(), options.clock_ms()));
  if (rs.tmp_removed || rs.rows_dropped || rs.files_reindexed || rs.files_quarantined) {
    LOG_INFO(
        "startup: removed {} temp files, dropped {} rows, re-indexed {} files, "
        "quarantined {} files",
        rs.tmp_removed, rs.rows_dropped, rs.files_reindexed, rs.files_quarantined);
  }
  ASSIGN_OR_RETURN(Catalog::Totals totals, catalog->GetTotals());
  ASSIGN_OR_RETURN(DiskSpace space, disk->Space(layout.root()));

  std::unique_ptr<ShardStore> store(new ShardStore(std::move(options), std::move(catalog)));
  store->capacity_bytes_ =
      store->options_.capacity_bytes ? store->options_.capacity_bytes : space.total_bytes;
  store->used_bytes_ = totals.bytes;
  store->shard_count_ = totals.count;
  store->disk_available_ = space.available_bytes;
  if (totals.bytes > store->capacity_bytes_) {
    LOG_WARN("{} bytes stored exceed the capacity of {} bytes: new shards are refused",
             totals.bytes, store->capacity_bytes_);
  }
  store->committer_ = std::thread([s = store.get()] { s->CommitLoop(); });
  return store;
}

ShardStore::~ShardStore() { Shutdown(); }

Result<std::unique_ptr<Catalog>> ShardStore::OpenCatalog() const {
  return Catalog::Open(layout_.CatalogFile());
}

StoreUsage ShardStore::Usage() const {
  StoreUsage u;
  u.capacity_bytes = capacity_bytes_;
  u.used_bytes = used_bytes_.load(std::memory_order_relaxed);
  u.shard_count = shard_count_.load(std::memory_order_relaxed);
  uint64_t quota_left = u.capacity_bytes > u.used_bytes ? u.capacity_bytes - u.used_bytes : 0;
  u.free_bytes = std::min(quota_left, disk_available_.load(std::memory_order_relaxed));
  return u;
}

void ShardStore::ReleaseClaim(const ShardKey& key) {
  std::lock_guard<std::mutex> lock(mu_);
  claims_.erase(key);
}

bool ShardStore::TryClaimForRepair(const ShardKey& key) {
  std::lock_guard<std::mutex> lock(mu_);
  return claims_.emplace(key, KeyClaim{}).second;
}

void ShardStore::Put(Catalog* catalog, const PutArgs& args, PutDone done) {
  const ShardKey& key = args.key;
  const uint64_t size = args.payload.size();
  if (key.index >= shardfile::kMaxIndex || size > wire::kMaxShardSize) {
    done(Status::InvalidArgument("shard " + key.ToString() + ": index or size out of range"));
    return;
  }
  // 1. Claim the key, or join / refuse a PUT already in progress on it.
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      done(Status::Aborted("node is shutting down"));
      return;
    }
    auto it = claims_.find(key);
    if (it != claims_.end()) {
      KeyClaim& c = it->second;
      if (c.is_put && c.crc32c == args.crc32c && c.size == size) {
        c.joined.push_back(std::move(done));  // answered when the first one is durable
        return;
      }
      if (c.is_put) {
        done(Status::Exists("shard " + key.ToString() + " is being stored with other content"));
      } else {
        done(Status::Busy("shard " + key.ToString() + " is being deleted"));
      }
      return;
    }
    claims_.emplace(key, KeyClaim{true, args.crc32c, size, {}});
  }
  // Every early end below goes through `finish`: it drops the claim and
  // answers the PUTs that joined it with the same result (dropping them
  // would leave their callers waiting forever).
  auto finish = [&](const Status& st, uint64_t unreserve_bytes) {
    std::vector<PutDone> joined;
    {
      std::lock_guard<std::mutex> lock(mu_);
      reserved_bytes_ -= unreserve_bytes;
      auto it = claims_.find(key);
      if (it != claims_.end()) {
        joined = std::move(it->second.joined);
        claims_.erase(it);
      }
    }
    done(st);
    for (PutDone& j : joined) j(st);
  };

  // 2. An existing shard: the same content is an idempotent success, other
  // content is refused. A corrupt copy with the same content is rewritten.
  auto existing = catalog->Get(key);
  if (!existing.ok()) {
    finish(existing.status().With("looking up shard " + key.ToString()), 0);
    return;
  }
  uint64_t replaced = 0;
  bool heals = false;
  if (existing->has_value()) {
    const ShardRecord& r = **existing;
    // SECURITY.md §3: nobody but the owner touches a shard, not even with
    // the same bytes (which would also let them swap its locator).
    if (r.owner != args.owner) {
      finish(Status::PermissionDenied("shard " + key.ToString() + " belongs to another key"), 0);
      return;
    }
    bool same = r.crc32c == args.crc32c && r.size == size;
    if (same && r.state == ShardState::kOk && LocatorNewer(args.locator, r.locator)) {
      // PROTOCOL.md §4.2: keep the newer locator (a repair re-sending a
      // shard, or a write that replaced a node).
      bool changed = false;
      Status st = catalog->AdoptLocator(args.locator, &changed);
      if (!st.ok()) {
        finish(st.With("shard " + key.ToString()), 0);
        return;
      }
    }
    if (!same || r.state == ShardState::kOk) {
      finish(same ? Status::OK()
                  : Status::Exists("shard " + key.ToString() + " exists with other content"),
             0);
      return;
    }
    heals = true;
    replaced = r.size;
  }

  // 3. Quota, before a byte is written. Reserved bytes belong to PUTs that
  // are written but not yet committed.
  {
    std::unique_lock<std::mutex> lock(mu_);
    uint64_t used = used_bytes_.load() + reserved_bytes_;
    if (used + size - replaced > capacity_bytes_) {
      lock.unlock();
      finish(Status::NoSpace("shard " + key.ToString() + " (" + std::to_string(size) +
                             " bytes) would exceed the capacity of " +
                             std::to_string(capacity_bytes_) + " bytes (" +
                             std::to_string(used) + " used)"),
             0);
      return;
    }
    reserved_bytes_ += size;
  }

  // 4. The payload must be what the client hashed.
  uint32_t crc = Crc32c(args.payload);
  if (crc != args.crc32c) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "crc32c %08x, declared %08x", crc, args.crc32c);
    finish(ChecksumMismatch("shard " + key.ToString() + ": payload " + buf), size);
    return;
  }

  // 5. Temp file: header + meta + payload, not yet synced.
  Pending p;
  p.record.key = key;
  p.record.size = size;
  p.record.crc32c = crc;
  if (key.index < args.locator.shards.size()) {
    p.record.sha256 = args.locator.shards[key.index].sha256;
  }
  p.record.owner = args.owner;
  p.record.locator = args.locator;
  p.record.created_ms = NowMs();
  p.record.last_verified_ms = p.record.created_ms;
  p.heals = heals;
  p.replaced_size = replaced;
  p.tmp_path = layout_.TmpPath(key, tmp_seq_.fetch_add(1));

  ShardFileInfo info{key.stripe,          key.index,  size,        crc,
                     p.record.created_ms, args.owner, args.locator};
  Status st;
  {
    auto file = disk_->NewWritableFile(p.tmp_path);
    if (!file.ok()) {
      st = file.status();
    } else {
      p.file = std::move(*file);
      st = p.file->Append(AsBytes(EncodeShardPrefix(info)));
      if (st.ok()) st = p.file->Append(args.payload);
    }
  }
  if (!st.ok()) {
    p.file.reset();
    (void)disk_->Remove(p.tmp_path);  // may not exist; nothing else to do
    finish(st.IsNoSpace() ? Status::NoSpace("disk full storing shard " + key.ToString() + ": " +
                                            st.message())
                          : st.With("storing shard " + key.ToString()),
           size);
    return;
  }

  // 6. Hand over to the committer; it calls `done` once durable.
  p.done = std::move(done);
  std::unique_lock<std::mutex> lock(mu_);
  if (committer_done_) {
    // Shutdown raced past us: nothing will commit this, so undo it here.
    lock.unlock();
    p.file.reset();
    (void)disk_->Remove(p.tmp_path);
    done = std::move(p.done);
    finish(Status::Aborted("node is shutting down"), size);
    return;
  }
  queue_.push_back(std::move(p));
  lock.unlock();
  cv_.notify_one();
}

Result<ShardBytes> ShardStore::Get(Catalog* catalog, const ShardKey& key, uint64_t offset,
                                   uint64_t length) {
  ASSIGN_OR_RETURN(auto rec, catalog->Get(key));
  if (!rec) return Status::NotFound("no shard " + key.ToString());
  if (rec->state == ShardState::kCorrupt) {
    return Status::Corruption("shard " + key.ToString() + " is marked corrupt");
  }
  // Bounds first, against the catalog's size, so a bad range reads nothing.
  if (offset > rec->size || length > rec->size - offset) {
    return Status::InvalidArgument("range " + std::to_string(offset) + "+" +
                                   std::to_string(length) + " is outside shard " + key.ToString() +
                                   " of " + std::to_string(rec->size) + " bytes");
  }
  if (length == 0) length = rec->size - offset;

  const std::string path = layout_.ShardPath(key);
  Status bad;  // set when the file fails a check
  ShardBytes out;
  {
    auto file = disk_->OpenForRead(path);
    if (!file.ok()) {
      if (file.status().IsNotFound()) {
        // Lost under us (or deleted concurrently); startup reconciliation
        // drops the row. Either way there is nothing to serve.
        LOG_WARN("shard {} is indexed but its file is missing", key.ToString());
        return Status::NotFound("shard file " + key.ToString() + " is missing");
      }
      return file.status();
    }
    uint8_t head[shardfile::kHeaderSize];
    Status st = (*file)->ReadExact(0, sizeof(head), head);
    Result<ShardFileHeader> h = st.ok() ? DecodeShardHeader({head, sizeof(head)}) : st;
    if (!h.ok()) {
      bad = h.status();
    } else if (!(h->stripe == key.stripe) || h->index != key.index ||
               h->payload_size != rec->size || h->payload_crc32c != rec->crc32c) {
      bad = Status::Corruption("header does not match the catalog");
    } else {
      // The whole payload is read and checked even for a range: CRC32C
      // covers the payload as a unit, and a shard is at most 64 MiB.
      size_t n = static_cast<size_t>(h->payload_size);
      out.buffer.reset(static_cast<uint8_t*>(std::malloc(n ? n : 1)));
      if (!out.buffer)
        return Status::IOError("out of memory reading shard " + key.ToString(), ENOMEM);
      st = (*file)->ReadExact(h->payload_offset(), n, out.buffer.get());
      if (!st.ok()) {
        if (!st.IsCorruption()) return st.With("shard " + key.ToString());  // EIO etc.
        bad = st;                                                           // truncated file
      } else if (Crc32c(out.buffer.get(), n) != h->payload_crc32c) {
        bad = Status::Corruption("payload checksum mismatch");
      }
    }
  }
  if (!bad.ok()) {
    LOG_ERROR("shard {} is corrupt ({}): marked corrupt, not served", key.ToString(),
              bad.message());
    if (TryClaimForRepair(key)) {
      Status mark = catalog->SetState(key, ShardState::kCorrupt);
      if (!mark.ok())
        LOG_ERROR("cannot mark shard {} corrupt: {}", key.ToString(), mark.ToString());
      ReleaseClaim(key);
    }
    return Status::Corruption("shard " + key.ToString() + " is corrupt: " + bad.message());
  }
  out.offset = static_cast<size_t>(offset);
  out.length = static_cast<size_t>(length);
  out.shard_size = rec->size;
  out.crc32c = (offset == 0 && length == rec->size) ? rec->crc32c : Crc32c(out.data(), out.length);
  return out;
}

Status ShardStore::Delete(Catalog* catalog, const ShardKey& key, std::string_view owner) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return Status::Aborted("node is shutting down");
    if (!claims_.emplace(key, KeyClaim{}).second) {
      return Status::Busy("shard " + key.ToString() + " is being written or deleted");
    }
  }
  // Every return below releases the claim.
  struct Release {
    ShardStore* s;
    const ShardKey& k;
    ~Release() { s->ReleaseClaim(k); }
  } release{this, key};

  ASSIGN_OR_RETURN(auto rec, catalog->Get(key));
  if (!rec) return Status::NotFound("no shard " + key.ToString());
  if (rec->owner != owner) {
    return Status::PermissionDenied("shard " + key.ToString() + " belongs to another key");
  }
  // STORAGE.md §4.3: file first, then the row. A crash in between leaves a
  // row without a file, which startup drops.
  const std::string path = layout_.ShardPath(key);
  Status st = disk_->Remove(path);
  if (!st.ok() && !st.IsNotFound()) return st.With("deleting shard " + key.ToString());
  RETURN_IF_ERROR(disk_->SyncDir(layout_.ShardDir(key.stripe)));
  RETURN_IF_ERROR(catalog->Remove(key));
  std::lock_guard<std::mutex> lock(mu_);
  used_bytes_ -= std::min(used_bytes_.load(), rec->size);
  if (shard_count_ > 0) --shard_count_;
  return Status::OK();
}

void ShardStore::RefreshDiskSpace() {
  auto space = disk_->Space(layout_.root());
  if (space.ok()) disk_available_ = space->available_bytes;
}

void ShardStore::CommitLoop() {
  while (true) {
    std::vector<Pending> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      // The timeout refreshes the free space PING reports while idle.
      cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) {
        if (stopping_) {
          committer_done_ = true;
          return;
        }
        lock.unlock();
        RefreshDiskSpace();
        continue;
      }
      size_t n = std::min(queue_.size(), options_.max_batch);
      batch.assign(std::make_move_iterator(queue_.begin()),
                   std::make_move_iterator(queue_.begin() + static_cast<long>(n)));
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<long>(n));
    }
    CommitBatch(batch);
    RefreshDiskSpace();
  }
}

// STORAGE.md §4.1. One round for the whole batch:
//   1. syncfs: every temp file's data and inode are on disk;
//   2. rename each into place;
//   3. syncfs: the renames are on disk;
//   4. one SQLite transaction for all rows;
//   5. acknowledge.
// When syncfs fails, or the batch is below syncfs_min_batch, each file is
// fdatasync'd and each directory fsync'd instead.
void ShardStore::CommitBatch(std::vector<Pending>& batch) {
  std::vector<Status> result(batch.size());
  const auto t0 = std::chrono::steady_clock::now();

  // A small batch costs as many journal commits either way; syncfs would
  // add the writeback of everyone else's dirty data (on a shared disk: the
  // drive's staging files and the other local nodes).
  const bool per_file = batch.size() < options_.syncfs_min_batch;
  Status synced = per_file ? Status::OK() : disk_->SyncFileSystem(layout_.TmpDir());
  if (!synced.ok()) {
    LOG_WARN("syncfs failed ({}), syncing {} files one by one", synced.ToString(), batch.size());
  }
  if (per_file || !synced.ok()) {
    for (size_t i = 0; i < batch.size(); ++i) result[i] = batch[i].file->Sync();
  }
  std::vector<std::string> dirs;
  for (size_t i = 0; i < batch.size(); ++i) {
    batch[i].file.reset();
    if (!result[i].ok()) continue;
    result[i] = disk_->Rename(batch[i].tmp_path, layout_.ShardPath(batch[i].record.key));
    if (result[i].ok()) dirs.push_back(layout_.ShardDir(batch[i].record.key.stripe));
  }
  if (!dirs.empty()) {
    if (per_file || !disk_->SyncFileSystem(layout_.ShardsDir()).ok()) {
      std::sort(dirs.begin(), dirs.end());
      dirs.erase(std::unique(dirs.begin(), dirs.end()), dirs.end());
      for (const std::string& d : dirs) {
        Status ds = disk_->SyncDir(d);
        if (ds.ok()) continue;
        // Which renames are durable is unknown: fail every shard in `d`.
        for (size_t i = 0; i < batch.size(); ++i) {
          if (result[i].ok() && layout_.ShardDir(batch[i].record.key.stripe) == d) result[i] = ds;
        }
      }
    }
  }
  std::vector<ShardRecord> rows;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (result[i].ok()) rows.push_back(batch[i].record);
  }
  Status indexed = commit_catalog_->PutBatch(rows);
  for (size_t i = 0; i < batch.size(); ++i) {
    Pending& p = batch[i];
    if (result[i].ok() && !indexed.ok()) {
      // Not acknowledged, so take the file back; if this removal is lost in
      // a crash, startup re-indexes a shard nobody references (harmless).
      (void)disk_->Remove(layout_.ShardPath(p.record.key));
      result[i] = indexed;
    }
    if (!result[i].ok()) {
      (void)disk_->Remove(p.tmp_path);
      LOG_ERROR("storing shard {} failed: {}", p.record.key.ToString(), result[i].ToString());
    }
  }

  LOG_DEBUG(
      "committed {} shards in {} us", batch.size(),
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
          .count());

  // Account and collect completions under the lock; call them without it.
  std::vector<std::pair<PutDone, Status>> calls;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < batch.size(); ++i) {
      Pending& p = batch[i];
      reserved_bytes_ -= p.record.size;
      if (result[i].ok()) {
        used_bytes_ += p.record.size - p.replaced_size;
        if (!p.heals) ++shard_count_;
      }
      Status st =
          result[i].ok() ? Status::OK() : result[i].With("shard " + p.record.key.ToString());
      auto it = claims_.find(p.record.key);
      if (it != claims_.end()) {
        for (PutDone& j : it->second.joined) calls.emplace_back(std::move(j), st);
        claims_.erase(it);
      }
      calls.emplace_back(std::move(p.done), st);
    }
  }
  for (auto& [fn, st] : calls) fn(st);
}

void ShardStore::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (committer_.joinable()) committer_.join();
}

}  // namespace shardfs
