// Mount options of metadata snapshots and the network lease
// (fs/SNAPSHOTS.md §1, man/shardfs.1.rst):
//
//   snapshot=off              no snapshots (the lease stays unless lease=off)
//   snapshot_quiet=SECONDS    snapshot after this long without changes (30)
//   snapshot_interval=SECONDS at least this often while changes go on (600)
//   snapshot_keep=N           snapshots kept in the network (3)
//   snapshot_drain=SECONDS    at unmount, wait this long for pending uploads
//                             before the final snapshot (10)
//   lease=off                 no network lease (unsafe; for offline use)
//   lease_ttl=SECONDS         a holder silent this long looks stale (60)
//   break_lease               take the network lease whoever holds it
//   ignore_snapshots          mount although the network holds snapshots
//                             this state dir does not descend from
//
// fs/options.cc parses them with the other -o options (ApplySnapshotOption)
// into MountOptions::snapshot; main() publishes that copy once with
// SetMountSnapshotOptions for the snapshot service.
//
// Thread-safety: SetMountSnapshotOptions runs once in main() before any
// thread; MountSnapshotOptions() is read-only afterwards.
#pragma once

#include <string>

#include "lib/status.h"

namespace shardfs::fs {

struct SnapshotOptions {
  bool enabled = true;
  int quiet_s = 30;
  int interval_s = 600;
  int keep = 3;
  int drain_s = 10;
  bool lease = true;
  int lease_ttl_s = 60;
  bool break_lease = false;
  bool ignore_snapshots = false;
};

// Applies one option; NotFound when `key` is not one of ours,
// InvalidArgument for a bad value.
Status ApplySnapshotOption(const std::string& key, const std::string& value,
                           SnapshotOptions* opts);

// Publishes the options parsed for this mount (main(), before any thread).
void SetMountSnapshotOptions(const SnapshotOptions& opts);

// The options SetMountSnapshotOptions published (defaults if it never ran).
const SnapshotOptions& MountSnapshotOptions();

}  // namespace shardfs::fs
