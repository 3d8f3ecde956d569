// Key files: the volume master key on the user's disk.
//
// Two formats, told apart by the version in the first word:
//   plain      "shardfs-key-v1 <64 hex digits>\n"
//   protected  "shardfs-key-v2 scrypt <log2 N> <r> <p> <salt> <nonce> <sealed>\n"
//              (the key sealed under a passphrase: lib/passphrase.h)
// A later version is refused with "unsupported version", never misread.
// Created with mode 0600 (O_EXCL, never overwriting); refused when group or
// others can read it or when it is malformed. `shardctl key protect`,
// `unprotect` and `change-passphrase` switch formats (ReplaceKeyFile).
//
// Thread-safety: pure functions over the file system.
#pragma once

#include <string>
#include <string_view>

#include "lib/crypto.h"
#include "lib/passphrase.h"
#include "lib/status.h"

namespace shardfs {

// Creates `path` with a fresh random key. Exists if the file is there.
Result<Key> CreateKeyFile(const std::string& path);
// PermissionDenied if mode & 077, Corruption if malformed, NotFound if absent.
// A protected file is opened with GetPassphrase() (passphrase.h: file,
// environment or terminal): AuthFailed on a wrong passphrase, Unavailable
// when there is no passphrase source. Every caller so gets protected keys
// without a change, and fails before it touches the cluster or a mount.
Result<Key> LoadKeyFile(const std::string& path);
// Same with the passphrase given (ignored for a plain file).
Result<Key> LoadKeyFileWithPassphrase(const std::string& path, std::string_view passphrase);
// Whether `path` is in the protected format (same checks as LoadKeyFile on
// mode and header, no passphrase needed).
Result<bool> KeyFileIsProtected(const std::string& path);
// Atomically replaces the key file at `path` (temp file in the same
// directory, mode 0600, fsync, rename, fsync of the directory) with `key`,
// sealed under `passphrase` unless it is empty (then plain).
Status ReplaceKeyFile(const std::string& path, const Key& key, std::string_view passphrase,
                      const ScryptParams& params = {});

}  // namespace shardfs
