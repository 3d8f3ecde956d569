// Snapshot and network lease mount options. See snapshot_options.h.
#include "fs/snapshot_options.h"

#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

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

// Our options out of one comma list; the rest is returned in order.
Status SplitList(const std::string& list, std::string* rest) {
  std::stringstream ss(list);
  std::string o;
  rest->clear();
  while (std::getline(ss, o, ',')) {
    const auto eq = o.find('=');
    const std::string key = o.substr(0, eq);
    const std::string val = eq == o.npos ? "" : o.substr(eq + 1);
    Status st = ApplySnapshotOption(key, val, &Options());
    if (st.IsNotFound()) {
      if (!rest->empty()) rest->push_back(',');
      *rest += o;
    } else if (!st.ok()) {
      return st;
    }
  }
  return Status::OK();
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

Status ExtractSnapshotOptions(int* argc, char*** argv) {
  static std::vector<std::string> storage;
  static std::vector<char*> out;
  storage.clear();
  for (int i = 0; i < *argc; ++i) {
    std::string a = (*argv)[i];
    if (i > 0 && a == "-o" && i + 1 < *argc) {
      std::string rest;
      RETURN_IF_ERROR(SplitList((*argv)[i + 1], &rest));
      ++i;
      if (rest.empty()) continue;  // drop "-o" with it
      storage.push_back("-o");
      storage.push_back(rest);
    } else if (i > 0 && a.size() > 2 && a.rfind("-o", 0) == 0) {
      std::string rest;
      RETURN_IF_ERROR(SplitList(a.substr(2), &rest));
      if (!rest.empty()) storage.push_back("-o" + rest);
    } else {
      storage.push_back(a);
    }
  }
  out.clear();
  for (std::string& s : storage) out.push_back(s.data());
  out.push_back(nullptr);
  *argc = static_cast<int>(storage.size());
  *argv = out.data();
  return Status::OK();
}

const SnapshotOptions& MountSnapshotOptions() { return Options(); }

}  // namespace shardfs::fs
