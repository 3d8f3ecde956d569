// Shard file constants. The format is specified in netnode/STORAGE.md §3;
// this file only names its numbers (encoder and decoder: shard_file.h).
// A change here changes STORAGE.md, kShardFormatVersion and the tests
// together.
#pragma once

#include <cstddef>
#include <cstdint>

namespace shardfs::shardfile {

// STORAGE.md §3.1: every shard file starts with these 8 bytes.
inline constexpr char kMagic[8] = {'S', 'H', 'F', 'S', 'S', 'H', 'R', 'D'};
inline constexpr uint16_t kFormatVersion = 1;

// STORAGE.md §3.1: fixed header, little-endian.
inline constexpr size_t kHeaderSize = 64;
inline constexpr size_t kOffMagic = 0;         // 8 bytes
inline constexpr size_t kOffVersion = 8;       // u16
inline constexpr size_t kOffHeaderSize = 10;   // u16, = kHeaderSize
inline constexpr size_t kOffStripe = 12;       // 16 bytes
inline constexpr size_t kOffIndex = 28;        // u8
inline constexpr size_t kOffReserved = 29;     // 3 bytes, zero
inline constexpr size_t kOffMetaSize = 32;     // u32
inline constexpr size_t kOffMetaCrc = 36;      // u32, CRC32C of the meta block
inline constexpr size_t kOffPayloadSize = 40;  // u64
inline constexpr size_t kOffPayloadCrc = 48;   // u32, CRC32C of the payload
inline constexpr size_t kOffCreatedMs = 52;    // u64, unix ms
inline constexpr size_t kOffHeaderCrc = 60;    // u32, CRC32C of bytes [0, 60)

// STORAGE.md §3.2: the meta block (owner + locator) follows the header.
inline constexpr size_t kMaxMetaSize = 64 * 1024;

// Shard indexes are < this (wire::kMaxShards); names with larger ones are
// not ours.
inline constexpr unsigned kMaxIndex = 64;

}  // namespace shardfs::shardfile
