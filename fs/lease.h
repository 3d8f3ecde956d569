// Lease: one mount per volume on this machine (METADATA.md §1).
//
// Two locks, both released by the kernel when the process dies, so a
// kill -9 never leaves a stale lease:
// - an exclusive flock on STATE/lease (one mount per state dir; the file
//   holds the mount's pid for `shardctl` and for the refusal message);
// - a listening Unix socket at the abstract address "shardfs-volume-<id>"
//   (one mount per volume, whatever its state dir: two state dirs of one
//   volume are two copies of its metadata that would diverge silently).
//   A refused mount learns the holder's pid from SO_PEERCRED and its mount
//   point from /proc/self/mountinfo. Abstract addresses live in the network
//   namespace: mounts in other namespaces or on other machines are the
//   network lease's job (fs/network_lease.h).
//
// Thread-safety: not shared; the mount's main thread owns it.
#pragma once

#include <memory>
#include <string>

#include "lib/status.h"

namespace shardfs::fs {

class Lease {
 public:
  // Busy("volume ... is already mounted by pid N ...") if another process
  // holds either lock. Must run in the process that serves the mount (after
  // daemonizing): the socket's SO_PEERCRED names the process that listened.
  static Result<std::unique_ptr<Lease>> Acquire(const std::string& path,
                                                const std::string& volume_id);
  ~Lease();
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  // Writes this process's pid into the lease file.
  void RecordPid();

 private:
  Lease(int fd, int sock) : fd_(fd), sock_(sock) {}
  int fd_;    // STATE/lease, flocked
  int sock_;  // the volume's abstract socket, listening
};

}  // namespace shardfs::fs
