// CRC32C over ISA-L and SHA-256 over OpenSSL. See checksum.h.
//
// ISA-L's crc32_iscsi(buf, len, init) neither inverts its input nor its
// output: the standard CRC32C is ~crc32_iscsi(buf, len, ~0). Passing ~seed as
// init makes `seed` a finished CRC of the bytes before, so calls chain.
#include "lib/checksum.h"

#include <isa-l/crc.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace shardfs {
namespace {

// crc32_iscsi takes an int length.
constexpr size_t kMaxChunk = size_t{1} << 30;

// Fetched once: EVP_Digest with an implicit EVP_sha256() would look the
// implementation up again on every call, which shows on small buffers.
// EVP_MD objects are safe to share between threads once fetched.
const EVP_MD* Sha256Md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

[[noreturn]] void DieOpenSsl(const char* what) {
  // The signature has no error channel and a wrong digest would be silently
  // trusted downstream; OpenSSL failing here means the library is broken.
  std::fprintf(stderr, "shardfs: OpenSSL %s failed\n", what);
  std::abort();
}

}  // namespace

uint32_t Crc32c(std::span<const uint8_t> data, uint32_t seed) {
  uint32_t crc = ~seed;
  const uint8_t* p = data.data();
  size_t left = data.size();
  while (left > 0) {
    size_t len = std::min(left, kMaxChunk);
    // ISA-L does not write through the pointer; the API lacks const.
    crc = crc32_iscsi(const_cast<uint8_t*>(p), static_cast<int>(len), crc);
    p += len;
    left -= len;
  }
  return ~crc;
}

Sha256Digest Sha256(std::span<const uint8_t> data) {
  Sha256Digest out{};
  const EVP_MD* md = Sha256Md();
  if (md == nullptr) DieOpenSsl("EVP_MD_fetch(SHA256)");
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, md, nullptr) != 1 ||
      len != out.size()) {
    DieOpenSsl("EVP_Digest(SHA256)");
  }
  return out;
}

}  // namespace shardfs
