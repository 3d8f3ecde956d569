// Segment encryption: AES-256-GCM with a per-segment key from HKDF-SHA256.
//
//   segment key = HKDF-SHA256(ikm = volume master key, salt = stripe id,
//                             info = "shardfs segment v1")
//   sealed      = nonce(12, random) ‖ ciphertext ‖ tag(16)
//   AAD         = stripe id
// So a sealed segment is plaintext + kSealOverhead bytes. The stripe id is
// fresh for every write (copy-on-write), so a key encrypts one segment once.
// Binding the stripe id as AAD means shards moved under another id fail to
// open. Other uses of the master key (metadata snapshots, names) derive their
// own keys with DeriveKey and a distinct label.
//
// Thread-safety: pure functions; OpenSSL contexts are per call.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "lib/ids.h"
#include "lib/status.h"

namespace shardfs {

inline constexpr size_t kKeySize = 32;
inline constexpr size_t kNonceSize = 12;
inline constexpr size_t kTagSize = 16;
inline constexpr size_t kSealOverhead = kNonceSize + kTagSize;

using Key = std::array<uint8_t, kKeySize>;

// HKDF-SHA256(ikm = master, salt, info = label). Errors only if OpenSSL does.
Result<Key> DeriveKey(const Key& master, std::span<const uint8_t> salt,
                      std::string_view label);

// Encrypts `plaintext` into `out` (resized to plaintext.size() + kSealOverhead).
Status SealSegment(const Key& master, const StripeId& stripe,
                   std::span<const uint8_t> plaintext, std::vector<uint8_t>* out);
// Same, writing into caller memory: REQUIRES out.size() ==
// plaintext.size() + kSealOverhead. Lets the writer seal straight into the
// data-shard buffer (no copy).
Status SealSegmentInto(const Key& master, const StripeId& stripe,
                       std::span<const uint8_t> plaintext, std::span<uint8_t> out);

// Decrypts and authenticates. AuthFailed("... wrong key or tampered data")
// when the tag does not match (wrong key, any changed byte, wrong stripe id);
// Corruption when sealed is shorter than kSealOverhead.
Status OpenSegment(const Key& master, const StripeId& stripe,
                   std::span<const uint8_t> sealed, std::vector<uint8_t>* plaintext);

// Cryptographically random bytes (OpenSSL RAND_bytes).
Status RandomBytes(std::span<uint8_t> out);

}  // namespace shardfs
