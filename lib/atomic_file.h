// Small files replaced atomically (STYLE.md §8): pid and endpoint files,
// peer tables, network and identity files, snapshot state; and secret
// files read back only while nobody else may read them.
//
// Thread-safety: safe from any thread for distinct paths.
#pragma once

#include <string>
#include <string_view>

#include "lib/status.h"

namespace shardfs {

// Replaces `path` with `content`: write a temp file beside it (unique per
// process), set `mode` whatever the umask (0600 for secrets), fsync, rename,
// fsync the directory. The temp file is removed on failure, so readers see
// the old content or the new, never a mix, and a crash leaves no secret in
// a file with a wider mode.
Status WriteFileAtomic(const std::string& path, std::string_view content, int mode = 0644);

// Reads at most `max_bytes` + 1 bytes of a secret file (so a caller sees an
// oversized file as such). PermissionDenied, naming `what` and "chmod 600",
// when group or others have any access to it.
Result<std::string> ReadPrivateFile(const std::string& path, std::string_view what,
                                    size_t max_bytes);

}  // namespace shardfs
