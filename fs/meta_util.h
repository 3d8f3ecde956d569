// Small helpers shared by the meta_*.cc files (not part of MetaStore's API).
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lib/sqlite_db.h"
#include "lib/status.h"

namespace shardfs::fs {

inline std::span<const uint8_t> AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

inline std::string BlobToString(const std::vector<uint8_t>& b) {
  return std::string(b.begin(), b.end());
}

// Runs a cached statement that returns no rows, with binds already applied
// by `bind`. Resets it afterwards so it holds no read lock.
template <typename BindFn>
Status RunCached(Db* db, const std::string& sql, BindFn bind) {
  auto st = db->Cached(sql);
  if (!st.ok()) return st.status();
  Stmt* s = *st;
  bind(*s);
  Status r = s->Run();
  s->Reset();
  return r;
}

}  // namespace shardfs::fs
