// Key files: the volume master key on the user's disk.
//
// Format: one line "shardfs-key-v1 <64 hex digits>\n". Created with mode
// 0600 (O_EXCL, never overwriting); refused when group or others can read it
// or when it is malformed.
//
// Thread-safety: pure functions over the file system.
#pragma once

#include <string>

#include "lib/crypto.h"
#include "lib/status.h"

namespace shardfs {

// Creates `path` with a fresh random key. Exists if the file is there.
Result<Key> CreateKeyFile(const std::string& path);
// PermissionDenied if mode & 077, Corruption if malformed, NotFound if absent.
Result<Key> LoadKeyFile(const std::string& path);

}  // namespace shardfs
