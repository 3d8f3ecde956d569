// Explicit little-endian byte encoding, used by every wire and disk format.
//
// Writers append to a std::string. Readers consume a Reader (a view plus a
// cursor) and return false on short input instead of reading past the end:
// every decoder of untrusted bytes is built from these, so bounds are
// checked in one place. Endianness is little-endian everywhere
// (PROTOCOL.md §2, STORAGE.md §2).
//
// Thread-safety: free functions are pure; a Reader is single-threaded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

namespace shardfs {

inline void PutU8(std::string* out, uint8_t v) { out->push_back(static_cast<char>(v)); }
inline void PutU16(std::string* out, uint16_t v) {
  for (int i = 0; i < 2; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
inline void PutU32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
inline void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>(v >> (8 * i)));
}
inline void PutBytes(std::string* out, const void* p, size_t n) {
  out->append(static_cast<const char*>(p), n);
}
// A u32 length followed by the bytes.
inline void PutLengthPrefixed(std::string* out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

inline void EncodeU32At(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint32_t DecodeU32At(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
inline void EncodeU64At(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint64_t DecodeU64At(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// A bounds-checked cursor over untrusted bytes. Every Get* returns false and
// leaves the output untouched when fewer bytes remain than it needs.
class Reader {
 public:
  Reader(const void* data, size_t size)
      : p_(static_cast<const uint8_t*>(data)), left_(size) {}
  explicit Reader(std::string_view s) : Reader(s.data(), s.size()) {}
  explicit Reader(std::span<const uint8_t> s) : Reader(s.data(), s.size()) {}

  size_t remaining() const { return left_; }
  const uint8_t* data() const { return p_; }

  bool GetU8(uint8_t* v) {
    if (left_ < 1) return false;
    *v = p_[0];
    Skip(1);
    return true;
  }
  bool GetU16(uint16_t* v) {
    if (left_ < 2) return false;
    *v = static_cast<uint16_t>(p_[0] | (p_[1] << 8));
    Skip(2);
    return true;
  }
  bool GetU32(uint32_t* v) {
    if (left_ < 4) return false;
    *v = DecodeU32At(p_);
    Skip(4);
    return true;
  }
  bool GetU64(uint64_t* v) {
    if (left_ < 8) return false;
    *v = DecodeU64At(p_);
    Skip(8);
    return true;
  }
  bool GetBytes(void* out, size_t n) {
    if (left_ < n) return false;
    if (n) std::memcpy(out, p_, n);
    Skip(n);
    return true;
  }
  // A u32 length then that many bytes; fails if the length exceeds `max_len`
  // or the input.
  bool GetLengthPrefixed(std::string* out, size_t max_len) {
    uint32_t n;
    if (left_ < 4) return false;
    n = DecodeU32At(p_);
    if (n > max_len || left_ - 4 < n) return false;
    out->assign(reinterpret_cast<const char*>(p_ + 4), n);
    Skip(4 + n);
    return true;
  }
  // A view of the next n bytes (valid while the underlying buffer lives).
  bool GetView(size_t n, std::string_view* out) {
    if (left_ < n) return false;
    *out = std::string_view(reinterpret_cast<const char*>(p_), n);
    Skip(n);
    return true;
  }
  bool Skip(size_t n) {
    if (left_ < n) return false;
    p_ += n;
    left_ -= n;
    return true;
  }

 private:
  const uint8_t* p_;
  size_t left_;
};

}  // namespace shardfs
