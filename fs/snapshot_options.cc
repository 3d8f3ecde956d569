// Snapshot and network lease mount options. See snapshot_options.h.
#include "fs/snapshot_options.h"

#include <cstdlib>
#include <string>

namespace shardfs::fs {
namespace {

SnapshotOptions& Options() {
  static SnapshotOptions opts;
  return opts;
}

bool ParseSeconds(const std::string& s, int lo, int hi, int* out) {
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || v < lo || v > hi) return false;
  *out = static_cast<int>(v);
  return true;
}

}  // namespace

Status ApplySnapshotOption(const std::string& key, const std::string& val,
                           SnapshotOptions* opts) {
  auto bad = [&] { return Status::InvalidArgument("bad mount option '" + key + "=" + val + "'"); };
  if (key == "snapshot") {
    if (val == "off") opts->enabled = false;
    else if (val == "on") opts->enabled = true;
    else return bad();
  } else if (key == "snapshot_quiet") {
    if (!ParseSeconds(val, 1, 86400, &opts->quiet_s)) return bad();
  } else if (key == "snapshot_interval") {
    if (!ParseSeconds(val, 1, 7 * 86400, &opts->interval_s)) return bad();
  } else if (key == "snapshot_keep") {
    if (!ParseSeconds(val, 1, 100, &opts->keep)) return bad();
  } else if (key == "snapshot_drain") {
    if (!ParseSeconds(val, 0, 3600, &opts->drain_s)) return bad();
  } else if (key == "lease") {
    if (val == "off") opts->lease = false;
    else if (val == "on") opts->lease = true;
    else return bad();
  } else if (key == "lease_ttl") {
    if (!ParseSeconds(val, 3, 86400, &opts->lease_ttl_s)) return bad();
  } else if (key == "break_lease" && val.empty()) {
    opts->break_lease = true;
  } else if (key == "ignore_snapshots" && val.empty()) {
    opts->ignore_snapshots = true;
  } else {
    return Status::NotFound(key);
  }
  return Status::OK();
}

void SetMountSnapshotOptions(const SnapshotOptions& opts) { Options() = opts; }

const SnapshotOptions& MountSnapshotOptions() { return Options(); }

}  // namespace shardfs::fs
