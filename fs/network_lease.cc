// The network lease on volume records. See network_lease.h and
// SNAPSHOTS.md §5.
#include "fs/network_lease.h"

#include <ctime>

#include "lib/coding.h"
#include "lib/log.h"

namespace shardfs::fs {
namespace {

constexpr uint8_t kBodyVersion = 1;
constexpr size_t kMaxStr = 4096;

uint64_t NowUnixMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// Beat and release bodies: mount id and the holder's clock.
void EncodeStamp(const StateId& mount_id, uint64_t unix_ms, std::string* out) {
  PutU8(out, kBodyVersion);
  PutBytes(out, mount_id.data(), mount_id.size());
  PutU64(out, unix_ms);
}
bool DecodeStamp(std::string_view body, StateId* mount_id, uint64_t* unix_ms) {
  Reader in(body);
  uint8_t v = 0;
  return in.GetU8(&v) && v >= 1 && in.GetBytes(mount_id->data(), mount_id->size()) &&
         in.GetU64(unix_ms);
}

size_t Quorum(const RecordStore& store) { return store.NodeCount() / 2 + 1; }

// What the records say about the newest generation.
struct LeaseView {
  bool any = false;
  LeaseHolder holder;        // of the newest generation
  bool released = false;     // X(newest) exists
  uint64_t last_seen_ms = 0;  // newest beat, or the start
  std::vector<std::pair<StripeId, std::vector<NodeInfo>>> old;  // every lease record
};

LeaseView ReadView(RecordStore& store, const RecordStore::Listing& listing) {
  LeaseView v;
  struct Beat {
    uint64_t generation;
    uint64_t unix_ms;
  };
  std::vector<Beat> beats;
  std::vector<uint64_t> releases;
  for (const auto& [id, holders] : listing.holders) {
    const char kind = static_cast<char>(id.bytes[8]);
    if (kind != kLeaseRecord && kind != kBeatRecord && kind != kReleaseRecord) continue;
    v.old.emplace_back(id, holders);
    auto rec = store.Read(id, holders);
    if (!rec.ok()) {
      LOG_WARN("network lease: unreadable record {}: {}", id.Hex(), rec.status().ToString());
      continue;
    }
    if (kind == kLeaseRecord) {
      LeaseHolder h;
      if (!DecodeLeaseHolder(rec->body, &h).ok() || h.generation != rec->number) continue;
      if (!v.any || h.generation > v.holder.generation) {
        v.any = true;
        v.holder = h;
      }
    } else {
      StateId mount{};
      uint64_t ms = 0;
      if (!DecodeStamp(rec->body, &mount, &ms)) continue;
      if (kind == kBeatRecord) {
        beats.push_back({rec->number >> 32, ms});
      } else {
        releases.push_back(rec->number);
      }
    }
  }
  if (!v.any) return v;
  v.last_seen_ms = v.holder.started_unix_ms;
  for (const Beat& b : beats) {
    if (b.generation == v.holder.generation) v.last_seen_ms = std::max(v.last_seen_ms, b.unix_ms);
  }
  for (uint64_t g : releases) v.released = v.released || g == v.holder.generation;
  return v;
}

}  // namespace

void EncodeLeaseHolder(const LeaseHolder& h, std::string* out) {
  PutU8(out, kBodyVersion);
  PutU64(out, h.generation);
  PutBytes(out, h.mount_id.data(), h.mount_id.size());
  PutBytes(out, h.state_id.data(), h.state_id.size());
  PutLengthPrefixed(out, std::string_view(h.host).substr(0, kMaxStr));
  PutU32(out, h.pid);
  PutLengthPrefixed(out, std::string_view(h.state_dir).substr(0, kMaxStr));
  PutLengthPrefixed(out, std::string_view(h.mountpoint).substr(0, kMaxStr));
  PutU64(out, h.started_unix_ms);
}

Status DecodeLeaseHolder(std::string_view body, LeaseHolder* out) {
  Reader in(body);
  uint8_t v = 0;
  LeaseHolder h;
  if (!in.GetU8(&v) || v < 1 || !in.GetU64(&h.generation) ||
      !in.GetBytes(h.mount_id.data(), h.mount_id.size()) ||
      !in.GetBytes(h.state_id.data(), h.state_id.size()) ||
      !in.GetLengthPrefixed(&h.host, kMaxStr) || !in.GetU32(&h.pid) ||
      !in.GetLengthPrefixed(&h.state_dir, kMaxStr) ||
      !in.GetLengthPrefixed(&h.mountpoint, kMaxStr) || !in.GetU64(&h.started_unix_ms)) {
    return Status::Corruption("lease record: truncated");
  }
  *out = std::move(h);
  return Status::OK();
}

std::string DescribeHolder(const LeaseHolder& h) {
  return "host " + h.host + ", pid " + std::to_string(h.pid) + ", state dir " + h.state_dir +
         ", mounted on " + h.mountpoint + ", since " + FormatLocalTime(h.started_unix_ms);
}

std::optional<LeaseHolder> CurrentHolder(RecordStore* store) {
  LeaseView v = ReadView(*store, store->List());
  if (!v.any || v.released) return std::nullopt;
  return v.holder;
}

std::chrono::seconds NetworkLease::renew_interval() const {
  return std::max(std::chrono::seconds(1), opts_.ttl / 3);
}

Result<std::unique_ptr<NetworkLease>> NetworkLease::Acquire(RecordStore* store, LeaseHolder me,
                                                            const LeaseOptions& opts) {
  const size_t quorum = Quorum(*store);
  RecordStore::Listing listing = store->List();
  if (listing.nodes_answered < quorum) {
    std::string msg = "network lease: only " + std::to_string(listing.nodes_answered) + " of " +
                      std::to_string(store->NodeCount()) + " nodes answered, " +
                      std::to_string(quorum) +
                      " are needed to know whether another machine has this volume mounted";
    for (const std::string& e : listing.errors) msg += "; " + e;
    return Status::Unavailable(msg + ". Bring nodes back, or mount with -o lease=off (unsafe: "
                                     "nothing then stops a second mount from writing)");
  }
  LeaseView view = ReadView(*store, listing);
  const uint64_t now = NowUnixMs();
  if (view.any && !view.released) {
    const LeaseHolder& h = view.holder;
    const uint64_t age_s = now > view.last_seen_ms ? (now - view.last_seen_ms) / 1000 : 0;
    if (h.state_id == me.state_id) {
      // Same state dir: we hold its flock, so that holder is gone.
      LOG_INFO("network lease: taking over from an earlier mount of this state dir ({})",
               DescribeHolder(h));
    } else if (opts.break_lease) {
      LOG_WARN("network lease: breaking the lease of {} (last renewed {} s ago) on request", 
               DescribeHolder(h), age_s);
    } else {
      const bool stale = age_s > static_cast<uint64_t>(opts.ttl.count());
      std::string msg = "volume is already mounted elsewhere: " + DescribeHolder(h) +
                        "; its network lease was last renewed " + std::to_string(age_s) +
                        " s ago";
      if (stale) {
        msg += " (older than the " + std::to_string(opts.ttl.count()) +
               " s lease time: that mount probably crashed or lost its network without "
               "unmounting)";
      }
      msg += ". If that mount is really gone (machine lost, crashed, state dir deleted), take "
             "the lease on purpose by mounting with -o break_lease; a mount that is still "
             "running will then stop writing and unmount itself at its next renewal";
      return Status::Busy(msg);
    }
  }
  me.generation = view.any ? view.holder.generation + 1 : 1;
  me.started_unix_ms = now;
  std::string body;
  EncodeLeaseHolder(me, &body);
  ASSIGN_OR_RETURN(auto put, store->Put(kLeaseRecord, me.generation, body));
  if (put.exists > 0 || put.stored < static_cast<int>(quorum)) {
    auto id = store->keys().Id(kLeaseRecord, me.generation);
    if (id.ok() && put.exists == 0) {
      // Ours alone and too few: withdraw it so a retry can use the number.
      (void)store->Delete(*id, store->Nodes());
    }
    if (put.exists > 0) {
      return Status::Busy("another mount took the network lease of this volume at the same "
                          "moment (generation " + std::to_string(me.generation) + "); retry to "
                          "see where it is mounted");
    }
    return Status::Unavailable("network lease: only " + std::to_string(put.stored) + " of " +
                               std::to_string(put.asked) + " nodes stored the lease record (" +
                               put.first_error + "), " + std::to_string(quorum) + " needed");
  }
  // The older generations' records are history now.
  for (const auto& [id, holders] : view.old) (void)store->Delete(id, holders);
  LOG_INFO("network lease: generation {} taken ({} of {} nodes)", me.generation, put.stored,
           put.asked);
  return std::unique_ptr<NetworkLease>(new NetworkLease(store, std::move(me), opts));
}

Status NetworkLease::Renew() {
  RecordStore::Listing listing = store_->List();
  // Whoever breaks the lease takes the next generation after ours.
  for (uint64_t g = me_.generation + 1; g <= me_.generation + 4; ++g) {
    auto id = store_->keys().Id(kLeaseRecord, g);
    if (!id.ok()) return id.status();
    auto it = listing.holders.find(*id);
    if (it == listing.holders.end()) continue;
    std::string who = "another mount";
    auto rec = store_->Read(*id, it->second);
    LeaseHolder h;
    if (rec.ok() && DecodeLeaseHolder(rec->body, &h).ok()) who = DescribeHolder(h);
    return Status::Aborted("the network lease of this volume was taken by " + who +
                           " (generation " + std::to_string(g) + ")");
  }
  const uint32_t next = renewal_ + 1;
  std::string body;
  EncodeStamp(me_.mount_id, NowUnixMs(), &body);
  ASSIGN_OR_RETURN(auto put, store_->Put(kBeatRecord, me_.generation << 32 | next, body));
  if (put.stored == 0) {
    return Status::Unavailable("lease renewal stored nowhere: " + put.first_error);
  }
  if (renewal_ > 0) {
    auto old = store_->keys().Id(kBeatRecord, me_.generation << 32 | renewal_);
    if (old.ok()) {
      auto it = listing.holders.find(*old);
      if (it != listing.holders.end()) (void)store_->Delete(*old, it->second);
    }
  }
  renewal_ = next;
  return Status::OK();
}

Status NetworkLease::Release() {
  std::string body;
  EncodeStamp(me_.mount_id, NowUnixMs(), &body);
  ASSIGN_OR_RETURN(auto put, store_->Put(kReleaseRecord, me_.generation, body));
  if (put.stored == 0) return Status::Unavailable("lease release stored nowhere: " + put.first_error);
  if (renewal_ > 0) {
    auto old = store_->keys().Id(kBeatRecord, me_.generation << 32 | renewal_);
    if (old.ok()) (void)store_->Delete(*old, store_->Nodes());
  }
  LOG_INFO("network lease: generation {} released", me_.generation);
  return Status::OK();
}

}  // namespace shardfs::fs
