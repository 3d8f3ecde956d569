// The mount's SQLite schema: the application id and the ordered migrations.
// fs/METADATA.md §2 describes every table by migration number.
//
// Thread-safety: constants only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace shardfs::fs {

// "SHFS": the application_id of a mount's meta.db (sqlite_db.h refuses others).
inline constexpr uint32_t kMetaApplicationId = 0x53484653;

// migrations[i] brings user_version i to i + 1. Append only.
const std::vector<std::string>& MetaMigrations();

}  // namespace shardfs::fs
