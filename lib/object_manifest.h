// Object manifest: the record that turns a list of segments back into a
// file (shardctl put/get). It is stored as one more segment, encrypted and
// erasure-coded like the data, so nodes learn nothing from it.
//
// Encoding (little-endian, lib/coding.h):
//   u32  magic 0x424F4853 ("SHOB")
//   u8   version (1)
//   u8   level: 0 = entries are the data segments, in file order;
//              L > 0 = entries are manifests of level L-1 (a file too big
//              for one manifest segment gets a tree; about 14,000 entries
//              fit one 4 MiB segment at k+m = 6, so 55 GiB per leaf)
//   u64  file_size       whole object, bytes
//   u32  segment_size    plaintext bytes of every data segment but the last
//   u64  segment_count   data segments of the whole object
//   u32  entry_count
//   entry_count x { u32 length, length bytes: EncodeLocator (PROTOCOL.md §4.9) }
// Decoders skip bytes after a locator inside its length (fields appended
// later) and bytes after the last entry.
//
// Thread-safety: pure functions over value types.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "lib/locator.h"
#include "lib/status.h"

namespace shardfs {

inline constexpr uint32_t kManifestMagic = 0x424F4853;  // "SHOB" little-endian
inline constexpr uint8_t kManifestVersion = 1;
inline constexpr uint8_t kMaxManifestLevel = 4;
// Bytes before the first entry.
inline constexpr size_t kManifestHeaderSize = 4 + 1 + 1 + 8 + 4 + 8 + 4;

struct ObjectManifest {
  uint8_t level = 0;
  uint64_t file_size = 0;
  uint32_t segment_size = 0;
  uint64_t segment_count = 0;
  std::vector<Locator> entries;
  bool operator==(const ObjectManifest&) const = default;
};

void EncodeManifest(const ObjectManifest& m, std::string* out);
// Corruption on a bad magic, version, level or any short field.
Status DecodeManifest(std::span<const uint8_t> bytes, ObjectManifest* out);

// Bytes one entry adds to an encoded manifest.
size_t ManifestEntrySize(const Locator& loc);

// Checks a fully expanded level-0 list against its header: segment count,
// every segment's plaintext size (segment_size, the last 1..segment_size),
// their sum equal to file_size.
Status CheckDataSegments(const ObjectManifest& root, const std::vector<Locator>& segments);

}  // namespace shardfs
