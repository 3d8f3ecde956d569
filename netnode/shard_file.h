// Encoder and decoder for shard files (STORAGE.md §3). Pure functions over
// bytes: the store does the I/O. Decoders take untrusted bytes from disk and
// return Corruption, never assert.
//
// A shard file is self-describing: header + meta (owner, locator) + payload.
// That is what lets the node rebuild its catalog from the files alone
// (STORAGE.md §5).
//
// Thread-safety: pure functions over value types.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "lib/ids.h"
#include "lib/locator.h"
#include "lib/status.h"
#include "netnode/shard_file_format.h"

namespace shardfs {

// Everything a shard file says about its payload.
struct ShardFileInfo {
  StripeId stripe;
  ShardIndex index = 0;
  uint64_t payload_size = 0;
  uint32_t payload_crc32c = 0;
  uint64_t created_ms = 0;
  std::string owner;  // the PUT's owner key (Z85)
  Locator locator;    // the stripe's locator as of the PUT
};

// The decoded fixed header (STORAGE.md §3.1).
struct ShardFileHeader {
  StripeId stripe;
  ShardIndex index = 0;
  uint32_t meta_size = 0;
  uint32_t meta_crc32c = 0;
  uint64_t payload_size = 0;
  uint32_t payload_crc32c = 0;
  uint64_t created_ms = 0;

  // Where the payload starts in the file.
  uint64_t payload_offset() const { return shardfile::kHeaderSize + meta_size; }
  uint64_t file_size() const { return payload_offset() + payload_size; }
};

// The bytes that precede the payload: header + meta block.
std::string EncodeShardPrefix(const ShardFileInfo& info);

// Checks magic, version, reserved bytes, header CRC and the size limits.
// REQUIRES nothing of `bytes`: short input is Corruption.
Result<ShardFileHeader> DecodeShardHeader(std::span<const uint8_t> bytes);

// Decodes the meta block of `header` into `info` (which also gets the
// header's fields). Checks the meta CRC and that the locator is for the
// header's stripe.
Status DecodeShardMeta(const ShardFileHeader& header, std::span<const uint8_t> meta,
                       ShardFileInfo* info);

}  // namespace shardfs
