// Segment encryption over OpenSSL 3 EVP. See crypto.h for the construction.
//
// Every OpenSSL call is checked for == 1 (anything else is failure, as the
// EVP docs allow 0 and negative values), and the thread's error queue is
// drained into the Status so the next caller does not inherit stale errors.
// Fetched algorithm objects (EVP_CIPHER, EVP_KDF) are cached in statics:
// they are immutable and shareable between threads once fetched, and
// fetching per call costs a lock and a lookup. Contexts are per call.
#include "lib/crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <algorithm>
#include <memory>
#include <string>

namespace shardfs {
namespace {

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
struct KdfCtxFree {
  void operator()(EVP_KDF_CTX* c) const { EVP_KDF_CTX_free(c); }
};
using CipherCtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;
using KdfCtxPtr = std::unique_ptr<EVP_KDF_CTX, KdfCtxFree>;

constexpr std::string_view kSegmentLabel = "shardfs segment v1";
// EVP_*Update take an int length.
constexpr size_t kMaxChunk = size_t{1} << 30;

// "<context>: <err>; <err>" from the thread's OpenSSL error queue, emptying it.
std::string DrainErrors(std::string_view context) {
  std::string msg(context);
  unsigned long e;
  bool first = true;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    msg += first ? ": " : "; ";
    msg += buf;
    first = false;
  }
  if (first) msg += ": (no OpenSSL error detail)";
  return msg;
}

Status OpenSslError(std::string_view context) { return Status::IOError(DrainErrors(context)); }

// Keys are wiped when they leave scope.
struct ScopedKey {
  Key key{};
  ~ScopedKey() { OPENSSL_cleanse(key.data(), key.size()); }
};

// Both fetched objects live for the whole process on purpose: freeing them
// from a static destructor could run after OpenSSL's own atexit cleanup.
const EVP_CIPHER* Aes256Gcm() {
  static EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return cipher;
}

EVP_KDF* Hkdf() {
  static EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  return kdf;
}

Status SegmentKey(const Key& master, const StripeId& stripe, ScopedKey* out) {
  ASSIGN_OR_RETURN(out->key, DeriveKey(master, stripe.bytes, kSegmentLabel));
  return Status::OK();
}

// Runs `update` (EVP_EncryptUpdate or EVP_DecryptUpdate) over `in` in chunks
// that fit its int length, writing to `out` (same length; GCM is a stream
// mode, so output length equals input length).
template <typename UpdateFn>
bool UpdateChunked(EVP_CIPHER_CTX* ctx, UpdateFn update, const uint8_t* in, size_t len,
                   uint8_t* out) {
  for (size_t off = 0; off < len; off += kMaxChunk) {
    int n = static_cast<int>(std::min(kMaxChunk, len - off));
    int outl = 0;
    if (update(ctx, out + off, &outl, in + off, n) != 1 || outl != n) return false;
  }
  return true;
}

}  // namespace

Result<Key> DeriveKey(const Key& master, std::span<const uint8_t> salt, std::string_view label) {
  EVP_KDF* kdf = Hkdf();
  if (kdf == nullptr) return OpenSslError("EVP_KDF_fetch(HKDF)");
  KdfCtxPtr ctx(EVP_KDF_CTX_new(kdf));
  if (!ctx) return OpenSslError("EVP_KDF_CTX_new");
  char digest[] = "SHA256";
  static uint8_t empty = 0;
  // OSSL_PARAM wants non-const pointers but only reads these.
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, const_cast<uint8_t*>(master.data()),
                                        master.size()),
      // An empty span or view may carry a null pointer, which OpenSSL
      // rejects even with size 0; an empty salt means HashLen zeros either
      // way (RFC 5869 §2.2).
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                        salt.empty() ? &empty : const_cast<uint8_t*>(salt.data()),
                                        salt.size()),
      OSSL_PARAM_construct_octet_string(
          OSSL_KDF_PARAM_INFO,
          label.empty() ? static_cast<void*>(&empty) : const_cast<char*>(label.data()),
          label.size()),
      OSSL_PARAM_construct_end(),
  };
  Key out{};
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) {
    return OpenSslError("HKDF-SHA256 derive");
  }
  return out;
}

Status SealSegmentInto(const Key& master, const StripeId& stripe,
                       std::span<const uint8_t> plaintext, std::span<uint8_t> out) {
  if (out.size() != plaintext.size() + kSealOverhead) {
    return Status::InvalidArgument("seal segment " + stripe.Hex() + ": output is " +
                                   std::to_string(out.size()) + " bytes, need " +
                                   std::to_string(plaintext.size() + kSealOverhead));
  }
  // In place is allowed: `plaintext` may sit exactly at out.data() +
  // kNonceSize (GCM encrypts in == out in place); other overlaps are refused
  // by OpenSSL and reported as an error.
  const EVP_CIPHER* cipher = Aes256Gcm();
  if (cipher == nullptr) return OpenSslError("EVP_CIPHER_fetch(AES-256-GCM)");
  ScopedKey key;
  RETURN_IF_ERROR(SegmentKey(master, stripe, &key));

  uint8_t* nonce = out.data();
  uint8_t* ct = out.data() + kNonceSize;
  uint8_t* tag = ct + plaintext.size();
  RETURN_IF_ERROR(RandomBytes(std::span<uint8_t>(nonce, kNonceSize)));

  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return OpenSslError("EVP_CIPHER_CTX_new");
  // The GCM default IV length is 12 bytes (kNonceSize), so no ctrl is needed.
  int outl = 0;
  uint8_t scratch[EVP_MAX_BLOCK_LENGTH];
  if (EVP_EncryptInit_ex2(ctx.get(), cipher, key.key.data(), nonce, nullptr) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &outl, stripe.bytes.data(),
                        static_cast<int>(stripe.bytes.size())) != 1 ||
      !UpdateChunked(ctx.get(), EVP_EncryptUpdate, plaintext.data(), plaintext.size(), ct) ||
      // GCM's final emits no bytes; `scratch` only satisfies the API.
      EVP_EncryptFinal_ex(ctx.get(), scratch, &outl) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kTagSize), tag) != 1) {
    return OpenSslError("seal segment " + stripe.Hex());
  }
  return Status::OK();
}

Status SealSegment(const Key& master, const StripeId& stripe, std::span<const uint8_t> plaintext,
                   std::vector<uint8_t>* out) {
  out->resize(plaintext.size() + kSealOverhead);
  Status st = SealSegmentInto(master, stripe, plaintext, *out);
  if (!st.ok()) out->clear();
  return st;
}

Status OpenSegment(const Key& master, const StripeId& stripe, std::span<const uint8_t> sealed,
                   std::vector<uint8_t>* plaintext) {
  plaintext->clear();
  if (sealed.size() < kSealOverhead) {
    return Status::Corruption("segment " + stripe.Hex() + ": sealed data is " +
                              std::to_string(sealed.size()) + " bytes, shorter than the " +
                              std::to_string(kSealOverhead) + "-byte nonce and tag");
  }
  const EVP_CIPHER* cipher = Aes256Gcm();
  if (cipher == nullptr) return OpenSslError("EVP_CIPHER_fetch(AES-256-GCM)");
  ScopedKey key;
  RETURN_IF_ERROR(SegmentKey(master, stripe, &key));

  const size_t ct_len = sealed.size() - kSealOverhead;
  const uint8_t* nonce = sealed.data();
  const uint8_t* ct = nonce + kNonceSize;
  const uint8_t* tag = ct + ct_len;
  plaintext->resize(ct_len);

  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return OpenSslError("EVP_CIPHER_CTX_new");
  int outl = 0;
  uint8_t scratch[EVP_MAX_BLOCK_LENGTH];
  if (EVP_DecryptInit_ex2(ctx.get(), cipher, key.key.data(), nonce, nullptr) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &outl, stripe.bytes.data(),
                        static_cast<int>(stripe.bytes.size())) != 1 ||
      !UpdateChunked(ctx.get(), EVP_DecryptUpdate, ct, ct_len, plaintext->data()) ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kTagSize),
                          const_cast<uint8_t*>(tag)) != 1) {
    plaintext->clear();
    return OpenSslError("open segment " + stripe.Hex());
  }
  if (EVP_DecryptFinal_ex(ctx.get(), scratch, &outl) != 1) {
    // Never hand out unauthenticated plaintext.
    OPENSSL_cleanse(plaintext->data(), plaintext->size());
    plaintext->clear();
    ERR_clear_error();
    return Status::AuthFailed("segment " + stripe.Hex() +
                              ": authentication failed: wrong key or tampered data");
  }
  return Status::OK();
}

Status RandomBytes(std::span<uint8_t> out) {
  for (size_t off = 0; off < out.size(); off += kMaxChunk) {
    int n = static_cast<int>(std::min(kMaxChunk, out.size() - off));
    if (RAND_bytes(out.data() + off, n) != 1) return OpenSslError("RAND_bytes");
  }
  return Status::OK();
}

}  // namespace shardfs
