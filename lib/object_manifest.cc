// Object manifest codec. See object_manifest.h for the format.
#include "lib/object_manifest.h"

#include "lib/coding.h"
#include "lib/crypto.h"

namespace shardfs {

size_t ManifestEntrySize(const Locator& loc) {
  std::string tmp;
  EncodeLocator(loc, &tmp);
  return 4 + tmp.size();
}

void EncodeManifest(const ObjectManifest& m, std::string* out) {
  PutU32(out, kManifestMagic);
  PutU8(out, kManifestVersion);
  PutU8(out, m.level);
  PutU64(out, m.file_size);
  PutU32(out, m.segment_size);
  PutU64(out, m.segment_count);
  PutU32(out, static_cast<uint32_t>(m.entries.size()));
  std::string loc;
  for (const Locator& l : m.entries) {
    loc.clear();
    EncodeLocator(l, &loc);
    PutLengthPrefixed(out, loc);
  }
}

Status DecodeManifest(std::span<const uint8_t> bytes, ObjectManifest* out) {
  Reader in(bytes);
  uint32_t magic = 0, count = 0;
  uint8_t version = 0;
  ObjectManifest m;
  if (!in.GetU32(&magic) || magic != kManifestMagic) {
    return Status::Corruption("not an object manifest (bad magic)");
  }
  if (!in.GetU8(&version) || version != kManifestVersion) {
    return Status::Corruption("object manifest version " + std::to_string(version) +
                              " is not supported");
  }
  if (!in.GetU8(&m.level) || !in.GetU64(&m.file_size) || !in.GetU32(&m.segment_size) ||
      !in.GetU64(&m.segment_count) || !in.GetU32(&count)) {
    return Status::Corruption("object manifest: truncated header");
  }
  if (m.level > kMaxManifestLevel) {
    return Status::Corruption("object manifest: level " + std::to_string(m.level) + " too deep");
  }
  if (m.segment_size == 0 && m.file_size != 0) {
    return Status::Corruption("object manifest: segment size 0");
  }
  // Every entry takes at least its 4-byte length: bounds the reservation.
  if (count > in.remaining() / 4) return Status::Corruption("object manifest: truncated entries");
  m.entries.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t len = 0;
    std::string_view body;
    if (!in.GetU32(&len) || !in.GetView(len, &body)) {
      return Status::Corruption("object manifest: entry " + std::to_string(i) + " truncated");
    }
    Reader entry(body);
    Locator loc;
    if (!DecodeLocator(&entry, &loc)) {
      return Status::Corruption("object manifest: entry " + std::to_string(i) +
                                " is not a valid locator");
    }
    m.entries.push_back(std::move(loc));
  }
  *out = std::move(m);
  return Status::OK();
}

Status CheckDataSegments(const ObjectManifest& root, const std::vector<Locator>& segments) {
  if (segments.size() != root.segment_count) {
    return Status::Corruption("object manifest lists " + std::to_string(segments.size()) +
                              " segments, header says " + std::to_string(root.segment_count));
  }
  uint64_t total = 0;
  for (size_t i = 0; i < segments.size(); ++i) {
    const uint32_t sealed = segments[i].sealed_size;
    if (sealed <= kSealOverhead) return Status::Corruption("object manifest: empty segment");
    const uint64_t plain = sealed - kSealOverhead;
    const bool last = i + 1 == segments.size();
    if (plain > root.segment_size || (!last && plain != root.segment_size)) {
      return Status::Corruption("object manifest: segment " + std::to_string(i) + " holds " +
                                std::to_string(plain) + " bytes, segment size is " +
                                std::to_string(root.segment_size));
    }
    total += plain;
  }
  if (total != root.file_size) {
    return Status::Corruption("object manifest: segments hold " + std::to_string(total) +
                              " bytes, header says " + std::to_string(root.file_size));
  }
  return Status::OK();
}

}  // namespace shardfs
