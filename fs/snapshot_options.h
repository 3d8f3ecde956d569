// Mount options of metadata snapshots and the network lease
// (fs/SNAPSHOTS.md §1, man/shardfs.1.rst):
//
//   snapshot=off              no snapshots (and no network lease)
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
// They are taken out of the -o lists before fs/options.cc parses the rest
// (a small hook in fs/main.cc) and kept in one process-wide value, until
// MountOptions carries them (a request to its owner, .helpers notes).
//
// Thread-safety: ExtractSnapshotOptions runs once in main() before any
// thread; MountSnapshotOptions() is read-only afterwards.
#pragma once

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

// Removes our options from every "-o LIST" / "-oLIST" in argv (argc and
// argv are replaced by a copy that lives for the process) and stores them.
Status ExtractSnapshotOptions(int* argc, char*** argv);

// The options ExtractSnapshotOptions found (defaults if it never ran).
const SnapshotOptions& MountSnapshotOptions();

}  // namespace shardfs::fs
