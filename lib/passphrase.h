// Passphrases: where one comes from, and sealing the volume master key with
// one (the protected key file format, key_file.h).
//
// Sealing: kek = scrypt(passphrase, salt 16 random bytes, N = 2^log2_n, r, p)
// (OpenSSL EVP_PBE_scrypt, 32 bytes), then AES-256-GCM(kek, nonce 12 random
// bytes) over the 32-byte key, with the line's text before the sealed field
// as AAD so the KDF parameters cannot be altered without failing the tag.
// The line (one line of text, like the plain format):
//
//   shardfs-key-v2 scrypt <log2_n> <r> <p> <salt 32 hex> <nonce 24 hex> <sealed 96 hex>
//
// Default cost: N = 2^17, r = 8, p = 1, i.e. 128 MiB of memory and about
// 0.3-0.5 s of one core on a 2020s x86 (measured: see key_file_test). This is
// the figure scrypt's author and OWASP recommend for interactive logins; a
// guess costs an attacker the same 128 MiB, which is what makes GPU and
// ASIC guessing expensive. Unlocking happens once per mount.
//
// Where a passphrase comes from (GetPassphrase), first match wins:
//   1. the file set with SetPassphraseFile (shardctl --passphrase-file, or a
//      program's own option);
//   2. the file named by $SHARDFS_PASSPHRASE_FILE;
//   3. $SHARDFS_PASSPHRASE itself (scripts and tests; visible to the same
//      user in /proc, so prefer a file);
//   4. a prompt on the controlling terminal (/dev/tty), echo off.
// A passphrase file holds the passphrase on its first line; the trailing
// newline is not part of it.
//
// Thread-safety: SetPassphraseFile is for main() before threads start;
// everything else is a pure function (the prompt uses the process's tty).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "lib/crypto.h"
#include "lib/status.h"

namespace shardfs {

struct ScryptParams {
  int log2_n = 17;
  int r = 8;
  int p = 1;
};
// Bounds accepted from a key file, so a hostile file cannot make us
// allocate gigabytes or spin for hours: log2_n in [10, 22], r in [1, 32],
// p in [1, 16], memory 128 * r * N at most 1 GiB.
Status ValidateScryptParams(const ScryptParams& params);

inline constexpr std::string_view kProtectedKeyPrefix = "shardfs-key-v2 ";

// The protected key line (with its newline). Errors only from OpenSSL or
// bad params.
Result<std::string> SealKeyWithPassphrase(const Key& key, std::string_view passphrase,
                                          const ScryptParams& params = {});
// Opens a line made by SealKeyWithPassphrase (trailing newline optional).
// AuthFailed on a wrong passphrase or an altered line; Corruption when it is
// malformed; InvalidArgument for parameters out of bounds.
Result<Key> OpenKeyWithPassphrase(std::string_view line, std::string_view passphrase);
// The KDF parameters recorded in a protected line (Corruption if malformed).
Result<ScryptParams> ProtectedKeyParams(std::string_view line);

// Process-wide passphrase file ("" to clear). Call before threads start.
void SetPassphraseFile(std::string path);
// The first line of `path`. NotFound, IOError; InvalidArgument when empty.
Result<std::string> ReadPassphraseFile(const std::string& path);
// From the sources above, in order. `what` names the thing in the prompt
// ("passphrase for key file /x/volume.key"). Unavailable when no source is
// set and there is no terminal, saying how to provide one.
Result<std::string> GetPassphrase(std::string_view what);
// Always prompts on the terminal (twice when `confirm`: new passphrases),
// ignoring files and the environment. InvalidArgument if the two differ or
// the passphrase is empty.
Result<std::string> PromptPassphrase(std::string_view prompt, bool confirm);

}  // namespace shardfs
