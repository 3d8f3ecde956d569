// Checksums: CRC32C (ISA-L, for every pass) and SHA-256 (OpenSSL, once per
// byte on write). ARCHITECTURE.md "Integrity" says which is used where.
//
// Thread-safety: pure functions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace shardfs {

using Sha256Digest = std::array<uint8_t, 32>;

// CRC32C (Castagnoli, iSCSI polynomial), standard init/final xor, so
// Crc32c("123456789") == 0xE3069283. `seed` chains calls:
// Crc32c(b, Crc32c(a)) == Crc32c(a‖b).
uint32_t Crc32c(std::span<const uint8_t> data, uint32_t seed = 0);
inline uint32_t Crc32c(const void* p, size_t n, uint32_t seed = 0) {
  return Crc32c(std::span<const uint8_t>(static_cast<const uint8_t*>(p), n), seed);
}

Sha256Digest Sha256(std::span<const uint8_t> data);

}  // namespace shardfs
