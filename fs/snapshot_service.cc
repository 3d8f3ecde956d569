// The mount's snapshot and lease thread. See snapshot_service.h.
#include "fs/snapshot_service.h"

#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <ctime>

#include "fs/snapshot_format.h"
#include "lib/client_identity.h"
#include "lib/log.h"

namespace shardfs::fs {
namespace {

std::string HostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "unknown-host";
  return buf;
}

std::string AbsPath(const std::string& p) {
  char buf[PATH_MAX];
  if (::realpath(p.c_str(), buf) != nullptr) return buf;
  return p;
}

}  // namespace

Result<std::unique_ptr<SnapshotService>> SnapshotService::Start(const MountOptions& mount,
                                                                const ClientConfig& cfg,
                                                                const Key& master,
                                                                const std::string& state_dir,
                                                                const std::string& volume_id) {
  std::unique_ptr<SnapshotService> s(new SnapshotService());
  s->opts_ = MountSnapshotOptions();
  s->state_dir_ = AbsPath(state_dir);
  if (mount.read_only || (!s->opts_.enabled && !s->opts_.lease)) {
    LOG_INFO("metadata snapshots and network lease off ({})",
             mount.read_only ? "read-only mount" : "-o snapshot=off,lease=off");
    return s;
  }
  s->active_ = true;
  ASSIGN_OR_RETURN(s->keys_, VolumeKeys::Derive(master));

  // This state dir's identity and what it last saw.
  bool fresh = false;
  auto state = ReadSnapshotState(s->state_dir_);
  if (state.ok()) {
    s->state_ = *state;
  } else if (state.status().IsNotFound()) {
    fresh = true;
    s->state_.state_id = RandomStateId();
  } else {
    return state.status();
  }

  ASSIGN_OR_RETURN(s->store_,
                   RecordStore::Connect(s->keys_, cfg.nodes,
                                        std::chrono::milliseconds(cfg.timeout_ms)));
  const std::string host = HostName();
  if (s->opts_.lease) {
    LeaseHolder me;
    me.mount_id = RandomStateId();
    me.state_id = s->state_.state_id;
    me.host = host;
    me.pid = static_cast<uint32_t>(::getpid());
    me.state_dir = s->state_dir_;
    me.mountpoint = AbsPath(mount.mountpoint);
    LeaseOptions lo;
    lo.ttl = std::chrono::seconds(s->opts_.lease_ttl_s);
    lo.break_lease = s->opts_.break_lease;
    auto lease = NetworkLease::Acquire(s->store_.get(), me, lo);
    if (!lease.ok()) return lease.status().With("volume " + volume_id);
    s->lease_ = std::move(lease).value();
  }

  // Lineage: the newest snapshot must be ours, or one we descend from.
  HeadScan scan = ScanHeads(*s->store_);
  for (const std::string& p : scan.problems) LOG_WARN("snapshot head {}", p);
  const SnapshotHead* newest = scan.heads.empty() ? nullptr : &scan.heads.front().head;
  if (newest && newest->seq > s->state_.last_seq && newest->state_id != s->state_.state_id &&
      !s->opts_.ignore_snapshots) {
    std::string where = "snapshot " + std::to_string(newest->seq) + ", taken " +
                        FormatLocalTime(newest->created_unix_ms) + " on host " + newest->host +
                        " from state dir " + newest->state_dir;
    std::string msg =
        fresh ? "the network holds metadata snapshots of this volume (newest: " + where +
                    ") but state dir " + s->state_dir_ +
                    " was not restored from them: mounting it would start a second, diverging "
                    "copy of the volume. Restore it first with 'shardctl restore --key KEYFILE "
                    "--bootstrap NODE --state " + s->state_dir_ + "'"
              : "state dir " + s->state_dir_ + " is stale: the volume moved on without it (" +
                    where + ", after this state dir's snapshot " +
                    std::to_string(s->state_.last_seq) +
                    "). Restore the newest snapshot with 'shardctl restore' into a new state dir";
    msg += ", or mount with -o ignore_snapshots to use this state dir anyway (its next snapshot "
           "then supersedes the network's)";
    if (s->lease_) (void)s->lease_->Release();
    return Status(Code::kBusy, "volume " + volume_id + ": " + msg, EBUSY);
  }
  s->next_seq_ = std::max<uint64_t>(newest ? newest->seq : 0, s->state_.last_seq) + 1;
  // Nothing to snapshot only if the last mount ended with a snapshot that
  // is still the newest one.
  s->dirty_ = !(s->state_.clean && newest && newest->seq == s->state_.last_seq);
  s->state_.clean = false;  // a crash from here on leaves changes unsnapshotted
  RETURN_IF_ERROR(WriteSnapshotState(s->state_dir_, s->state_));

  s->params_.keys = &s->keys_;
  s->params_.cfg = cfg;
  s->params_.state_dir = s->state_dir_;
  s->params_.state_id = s->state_.state_id;
  s->params_.host = host;
  s->params_.keep = s->opts_.keep;

  const std::string db_path = s->state_dir_ + "/meta.db";
  if (sqlite3_open_v2(db_path.c_str(), &s->db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    return Status::IOError("open " + db_path + " read-only: " + sqlite3_errmsg(s->db_));
  }
  sqlite3_busy_timeout(s->db_, 5000);
  ASSIGN_OR_RETURN(s->last_dv_, s->DataVersion());
  const auto now = Clock::now();
  s->last_change_ = now;
  s->last_snapshot_ = now;
  s->retry_at_ = now;
  if (s->opts_.enabled) {
    LOG_INFO("metadata snapshots: next {}, after {} s quiet, at least every {} s, keeping {}",
             s->next_seq_, s->opts_.quiet_s, s->opts_.interval_s, s->opts_.keep);
  }
  s->thread_ = std::thread([p = s.get()] { p->Loop(); });
  return s;
}

SnapshotService::~SnapshotService() {
  StopThread();
  if (db_) sqlite3_close_v2(db_);
}

void SnapshotService::StopThread() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Result<int64_t> SnapshotService::DataVersion() {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, "PRAGMA data_version", -1, &st, nullptr) != SQLITE_OK) {
    return Status::IOError(std::string("data_version: ") + sqlite3_errmsg(db_));
  }
  int64_t v = -1;
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  return v;
}

Result<int64_t> SnapshotService::PendingUploads() {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db_, "SELECT count(*) FROM upload_queue", -1, &st, nullptr) !=
      SQLITE_OK) {
    return Status::IOError(std::string("upload_queue: ") + sqlite3_errmsg(db_));
  }
  int64_t v = -1;
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW) return Status::IOError(std::string("upload_queue: ") + sqlite3_errmsg(db_));
  return v;
}

void SnapshotService::Loop() {
  Clock::time_point next_renew =
      Clock::now() + (lease_ ? lease_->renew_interval() : std::chrono::seconds(0));
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stop_; });
      if (stop_) return;
    }
    const auto now = Clock::now();
    if (auto dv = DataVersion(); dv.ok() && *dv != last_dv_) {
      last_dv_ = *dv;
      dirty_ = true;
      last_change_ = now;
    }
    if (lease_ && now >= next_renew) {
      store_->Refresh();
      Status st = lease_->Renew();
      if (st.code() == Code::kAborted) {
        LOG_ERROR("{}; this mount stops writing and unmounts now", st.message());
        lost_ = true;
        ::kill(::getpid(), SIGTERM);  // ends the FUSE loop like a Ctrl-C
        return;
      }
      if (!st.ok()) LOG_WARN("network lease renewal: {}", st.ToString());
      next_renew = now + (st.ok() ? lease_->renew_interval() : std::chrono::seconds(5));
    }
    if (!opts_.enabled || conflict_ || !dirty_ || now < retry_at_) continue;
    const bool overdue = now - last_snapshot_ >= std::chrono::seconds(opts_.interval_s);
    bool quiet = now - last_change_ >= std::chrono::seconds(opts_.quiet_s);
    if (quiet && !overdue) {
      auto pending = PendingUploads();
      quiet = pending.ok() && *pending == 0;
    }
    if (quiet || overdue) SnapshotNow(overdue ? "interval" : "quiet");
  }
}

bool SnapshotService::SnapshotNow(const char* why) {
  const auto t0 = Clock::now();
  auto dv = DataVersion();
  if (dv.ok()) last_dv_ = *dv;
  auto identity = LoadOrCreateClientIdentity(params_.cfg.identity_file);
  if (identity.ok()) params_.client_identity = *identity;
  store_->Refresh();
  auto client = ConnectSnapshotClient(params_);
  Result<SnapshotHead> head = client.ok() ? TakeSnapshot(params_, *store_, **client, next_seq_)
                                          : Result<SnapshotHead>(client.status());
  if (!head.ok()) {
    if (head.status().code() == Code::kExists) {
      LOG_ERROR("metadata snapshot {}: {}; no more snapshots from this mount", next_seq_,
                head.status().ToString());
      conflict_ = true;
    } else {
      LOG_WARN("metadata snapshot {} ({}) failed: {}; retrying in {} s", next_seq_, why,
               head.status().ToString(), backoff_.count());
      retry_at_ = Clock::now() + backoff_;
      backoff_ = std::min(backoff_ * 2, std::chrono::seconds(300));
    }
    return false;
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  LOG_INFO("metadata snapshot {} ({}): {} files, database {} bytes -> {} bytes stored in {:.2f} s{}",
           head->seq, why, head->files, head->db_size, head->blob_size, secs,
           head->pending_segments ? " (" + std::to_string(head->pending_segments) +
                                        " segments not yet uploaded)"
                                  : std::string());
  state_.last_seq = head->seq;
  Status st = WriteSnapshotState(state_dir_, state_);
  if (!st.ok()) LOG_WARN("recording snapshot {}: {}", head->seq, st.ToString());
  next_seq_ = head->seq + 1;
  dirty_ = false;
  last_snapshot_ = Clock::now();
  backoff_ = std::chrono::seconds(30);
  st = PruneSnapshots(*store_, **client, opts_.keep);
  if (!st.ok()) LOG_WARN("pruning old snapshots: {}", st.ToString());
  return true;
}

void SnapshotService::Finish() {
  if (finished_ || !active_) return;
  finished_ = true;
  StopThread();
  if (lost_) return;  // another mount owns the volume now: touch nothing
  bool clean = false;
  if (opts_.enabled && !conflict_) {
    if (auto dv = DataVersion(); dv.ok() && *dv != last_dv_) dirty_ = true;
    if (dirty_) {
      // Pending uploads are not in the network yet: a snapshot taken now
      // would restore those files as lost. Give them a moment.
      const auto until = Clock::now() + std::chrono::seconds(opts_.drain_s);
      for (;;) {
        auto pending = PendingUploads();
        if (!pending.ok() || *pending == 0 || Clock::now() >= until) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
      clean = SnapshotNow("unmount");
    } else {
      clean = true;
    }
  }
  state_.clean = clean;
  Status st = WriteSnapshotState(state_dir_, state_);
  if (!st.ok()) LOG_WARN("{}", st.ToString());
  if (lease_) {
    st = lease_->Release();
    if (!st.ok()) LOG_WARN("network lease release: {}", st.ToString());
  }
}

}  // namespace shardfs::fs
