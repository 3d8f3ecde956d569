// Shard file encoder/decoder. See shard_file.h; format in STORAGE.md §3.
#include "netnode/shard_file.h"

#include <cstring>

#include "lib/checksum.h"
#include "lib/coding.h"
#include "lib/wire_format.h"

namespace shardfs {

using namespace shardfile;  // NOLINT: format constants

std::string EncodeShardPrefix(const ShardFileInfo& info) {
  // STORAGE.md §3.2: u32 owner length, owner bytes, locator (PROTOCOL.md §4.9).
  std::string meta;
  PutLengthPrefixed(&meta, info.owner);
  EncodeLocator(info.locator, &meta);

  std::string out(kHeaderSize, '\0');
  auto* h = reinterpret_cast<uint8_t*>(out.data());
  std::memcpy(h + kOffMagic, kMagic, sizeof(kMagic));
  h[kOffVersion] = kFormatVersion & 0xff;
  h[kOffVersion + 1] = kFormatVersion >> 8;
  h[kOffHeaderSize] = kHeaderSize & 0xff;
  h[kOffHeaderSize + 1] = static_cast<uint8_t>(kHeaderSize >> 8);
  std::memcpy(h + kOffStripe, info.stripe.bytes.data(), info.stripe.bytes.size());
  h[kOffIndex] = info.index;
  EncodeU32At(h + kOffMetaSize, static_cast<uint32_t>(meta.size()));
  EncodeU32At(h + kOffMetaCrc, Crc32c(meta.data(), meta.size()));
  EncodeU64At(h + kOffPayloadSize, info.payload_size);
  EncodeU32At(h + kOffPayloadCrc, info.payload_crc32c);
  EncodeU64At(h + kOffCreatedMs, info.created_ms);
  EncodeU32At(h + kOffHeaderCrc, Crc32c(h, kOffHeaderCrc));
  out += meta;
  return out;
}

Result<ShardFileHeader> DecodeShardHeader(std::span<const uint8_t> bytes) {
  if (bytes.size() < kHeaderSize) {
    return Status::Corruption("shard file shorter than its header (" +
                              std::to_string(bytes.size()) + " bytes)");
  }
  const uint8_t* h = bytes.data();
  if (std::memcmp(h + kOffMagic, kMagic, sizeof(kMagic)) != 0) {
    return Status::Corruption("not a shard file (bad magic)");
  }
  // The CRC first: a torn or flipped header must not be interpreted.
  uint32_t want = DecodeU32At(h + kOffHeaderCrc);
  uint32_t got = Crc32c(h, kOffHeaderCrc);
  if (want != got) return Status::Corruption("shard file header checksum mismatch");
  uint16_t version = static_cast<uint16_t>(h[kOffVersion] | h[kOffVersion + 1] << 8);
  uint16_t header_size = static_cast<uint16_t>(h[kOffHeaderSize] | h[kOffHeaderSize + 1] << 8);
  if (version != kFormatVersion) {
    return Status::Corruption("unsupported shard file version " + std::to_string(version));
  }
  if (header_size != kHeaderSize) {
    return Status::Corruption("unexpected shard header size " + std::to_string(header_size));
  }
  if (h[kOffReserved] | h[kOffReserved + 1] | h[kOffReserved + 2]) {
    return Status::Corruption("nonzero reserved bytes in shard header");
  }
  ShardFileHeader out;
  std::memcpy(out.stripe.bytes.data(), h + kOffStripe, out.stripe.bytes.size());
  out.index = h[kOffIndex];
  out.meta_size = DecodeU32At(h + kOffMetaSize);
  out.meta_crc32c = DecodeU32At(h + kOffMetaCrc);
  out.payload_size = DecodeU64At(h + kOffPayloadSize);
  out.payload_crc32c = DecodeU32At(h + kOffPayloadCrc);
  out.created_ms = DecodeU64At(h + kOffCreatedMs);
  if (out.index >= kMaxIndex) return Status::Corruption("shard index out of range");
  if (out.meta_size > kMaxMetaSize) return Status::Corruption("shard meta block too large");
  if (out.payload_size > wire::kMaxShardSize) {
    return Status::Corruption("shard payload size " + std::to_string(out.payload_size) +
                              " over the limit");
  }
  return out;
}

Status DecodeShardMeta(const ShardFileHeader& header, std::span<const uint8_t> meta,
                       ShardFileInfo* info) {
  if (meta.size() != header.meta_size) return Status::Corruption("shard meta block truncated");
  if (Crc32c(meta) != header.meta_crc32c) {
    return Status::Corruption("shard meta block checksum mismatch");
  }
  Reader r(meta);
  ShardFileInfo out;
  if (!r.GetLengthPrefixed(&out.owner, wire::kMaxStringField)) {
    return Status::Corruption("shard meta block: bad owner field");
  }
  if (!DecodeLocator(&r, &out.locator)) {
    return Status::Corruption("shard meta block: bad locator");
  }
  if (!(out.locator.stripe == header.stripe)) {
    return Status::Corruption("shard meta block: locator is for another stripe");
  }
  // Trailing bytes are allowed: later versions may append fields.
  out.stripe = header.stripe;
  out.index = header.index;
  out.payload_size = header.payload_size;
  out.payload_crc32c = header.payload_crc32c;
  out.created_ms = header.created_ms;
  *info = std::move(out);
  return Status::OK();
}

}  // namespace shardfs
