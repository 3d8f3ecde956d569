// NetworkLease: at most one writing mount per volume across machines
// (fs/SNAPSHOTS.md §5). The local flock (fs/lease.h) guards one state dir;
// this lease lives on the nodes, as volume records (snapshot_records.h):
//
//   'L'(g)        lease generation g: who holds it (host, pid, state dir,
//                 mountpoint, a random mount id, the state dir's id)
//   'B'(g<<32|r)  renewal r of generation g, with the holder's clock
//   'X'(g)        generation g was released by a clean unmount
//
// Acquire: list the records; the newest generation g decides. Free when
// there is none, when X(g) exists, or when L(g) was taken by this same
// state dir (its holder is dead: we hold the state dir's flock). Otherwise
// refused, naming the holder and how to break the lease on purpose
// (-o break_lease). Taking it = creating L(g+1) on every node that answers.
// Records are create-once per node (PUT of other content is EXISTS), so of
// two mounts racing for g+1 at most one can store it on a majority; the
// loser sees EXISTS and is refused. A majority of the configured nodes
// must answer, or the lease cannot be decided and the mount is refused.
//
// Renew (every ttl/3): a newer L(g') means someone broke our lease: Renew
// returns Aborted and the mount must stop writing. Otherwise B(g, r+1) is
// stored and B(g, r) deleted. Nodes being down only makes renewal log.
//
// Known limit (SNAPSHOTS.md §8): per-node create-once is not a consensus
// protocol; a partition that lets two mounts each reach a different
// majority is impossible, but a node that loses its disk forgets records.
//
// Thread-safety: one thread at a time (the snapshot service's).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "fs/snapshot_format.h"
#include "fs/snapshot_records.h"
#include "lib/status.h"

namespace shardfs::fs {

struct LeaseHolder {
  uint64_t generation = 0;
  StateId mount_id{};  // random per mount
  StateId state_id{};  // the state dir (snapshot.state)
  std::string host;
  uint32_t pid = 0;
  std::string state_dir;
  std::string mountpoint;
  uint64_t started_unix_ms = 0;
};

struct LeaseOptions {
  std::chrono::seconds ttl{60};  // a holder silent this long looks stale
  bool break_lease = false;      // take it whoever holds it
};

class NetworkLease {
 public:
  // Busy naming the holder when the lease is held; Unavailable when too few
  // nodes answer to decide. `me.generation` is ignored.
  static Result<std::unique_ptr<NetworkLease>> Acquire(RecordStore* store, LeaseHolder me,
                                                       const LeaseOptions& opts);
  NetworkLease(const NetworkLease&) = delete;
  NetworkLease& operator=(const NetworkLease&) = delete;

  // Aborted("... lease was taken by ...") when a newer generation exists.
  Status Renew();
  // Marks the generation released (clean unmount). Best effort.
  Status Release();

  uint64_t generation() const { return me_.generation; }
  std::chrono::seconds renew_interval() const;

 private:
  NetworkLease(RecordStore* store, LeaseHolder me, LeaseOptions opts)
      : store_(store), me_(std::move(me)), opts_(opts) {}

  RecordStore* const store_;
  LeaseHolder me_;
  const LeaseOptions opts_;
  uint32_t renewal_ = 0;
};

// The holder of the newest lease generation if it was not released (for
// restore's advice), or nullopt.
std::optional<LeaseHolder> CurrentHolder(RecordStore* store);

void EncodeLeaseHolder(const LeaseHolder& h, std::string* out);
Status DecodeLeaseHolder(std::string_view body, LeaseHolder* out);
// "host H, pid P, state dir D, mounted on M, since T".
std::string DescribeHolder(const LeaseHolder& h);

}  // namespace shardfs::fs
