// Passphrases and the protected key line. See passphrase.h.
//
// Every buffer that held a passphrase, the key-encryption key or the master
// key is wiped with OPENSSL_cleanse before it is freed or returned from.
#include "lib/passphrase.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace shardfs {
namespace {

constexpr size_t kSaltSize = 16;
constexpr size_t kSealedSize = kKeySize + kTagSize;
constexpr uint64_t kMaxScryptMemory = uint64_t{1} << 30;

std::string g_passphrase_file;  // SetPassphraseFile; set before threads

// Wipes a string that held a secret (capacity included).
void WipeString(std::string* s) {
  if (!s->empty()) OPENSSL_cleanse(s->data(), s->size());
  s->clear();
}

struct WipeOnExit {
  void* p;
  size_t n;
  ~WipeOnExit() { OPENSSL_cleanse(p, n); }
};

std::string Hex(const uint8_t* p, size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kDigits[p[i] >> 4]);
    out.push_back(kDigits[p[i] & 15]);
  }
  return out;
}

// Lowercase hex of exactly out.size() bytes.
bool FromHex(std::string_view s, std::span<uint8_t> out) {
  if (s.size() != 2 * out.size()) return false;
  auto v = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = v(s[2 * i]), lo = v(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

bool ParseInt(std::string_view s, int* out) {
  if (s.empty() || s.size() > 4) return false;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && ptr == s.data() + s.size();
}

Result<Key> Scrypt(std::string_view passphrase, std::span<const uint8_t> salt,
                   const ScryptParams& params) {
  RETURN_IF_ERROR(ValidateScryptParams(params));
  const uint64_t n = uint64_t{1} << params.log2_n;
  // OpenSSL refuses to use more than maxmem (default 32 MiB); allow what
  // the parameters need plus slack for its bookkeeping.
  const uint64_t maxmem = 128 * static_cast<uint64_t>(params.r) * (n + params.p + 2) + (1 << 20);
  Key kek{};
  if (EVP_PBE_scrypt(passphrase.data(), passphrase.size(), salt.data(), salt.size(), n,
                     static_cast<uint64_t>(params.r), static_cast<uint64_t>(params.p), maxmem,
                     kek.data(), kek.size()) != 1) {
    return Status::IOError("scrypt failed (out of memory?)", ENOMEM);
  }
  return kek;
}

// The fields of a protected line, split on single spaces.
struct Parsed {
  ScryptParams params;
  std::array<uint8_t, kSaltSize> salt{};
  std::array<uint8_t, kNonceSize> nonce{};
  std::array<uint8_t, kSealedSize> sealed{};
  std::string_view aad;  // the text before the sealed field's space
};

Result<Parsed> Parse(std::string_view line) {
  auto malformed = [](std::string_view why) {
    return Status::Corruption("protected key line is malformed (" + std::string(why) + ")");
  };
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  if (!line.starts_with(kProtectedKeyPrefix)) return malformed("bad header");
  std::vector<std::string_view> f;
  size_t start = 0;
  while (f.size() < 9) {
    size_t sp = line.find(' ', start);
    f.push_back(line.substr(start, sp == std::string_view::npos ? sp : sp - start));
    if (sp == std::string_view::npos) break;
    start = sp + 1;
  }
  if (f.size() != 8) return malformed("expected 8 fields");
  if (f[1] != "scrypt") return malformed("unknown KDF '" + std::string(f[1].substr(0, 16)) + "'");
  Parsed p;
  if (!ParseInt(f[2], &p.params.log2_n) || !ParseInt(f[3], &p.params.r) ||
      !ParseInt(f[4], &p.params.p)) {
    return malformed("bad KDF parameters");
  }
  if (!FromHex(f[5], p.salt)) return malformed("bad salt");
  if (!FromHex(f[6], p.nonce)) return malformed("bad nonce");
  if (!FromHex(f[7], p.sealed)) return malformed("bad sealed key");
  p.aad = line.substr(0, static_cast<size_t>(f[7].data() - line.data()) - 1);
  return p;
}

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};

// AES-256-GCM of exactly one key; `encrypt` picks the direction. For
// decryption `tag` is input; for encryption, output.
bool Gcm(bool encrypt, const Key& kek, std::span<const uint8_t> nonce, std::string_view aad,
         const uint8_t* in, uint8_t* out, uint8_t* tag) {
  std::unique_ptr<EVP_CIPHER_CTX, CtxFree> ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return false;
  int len = 0;
  const EVP_CIPHER* c = EVP_aes_256_gcm();
  if (EVP_CipherInit_ex(ctx.get(), c, nullptr, nullptr, nullptr, encrypt ? 1 : 0) != 1) return false;
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce.size()),
                          nullptr) != 1) {
    return false;
  }
  if (EVP_CipherInit_ex(ctx.get(), nullptr, nullptr, kek.data(), nonce.data(), -1) != 1) return false;
  if (EVP_CipherUpdate(ctx.get(), nullptr, &len, reinterpret_cast<const uint8_t*>(aad.data()),
                       static_cast<int>(aad.size())) != 1) {
    return false;
  }
  if (EVP_CipherUpdate(ctx.get(), out, &len, in, static_cast<int>(kKeySize)) != 1) return false;
  if (!encrypt &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagSize), tag) != 1) {
    return false;
  }
  if (EVP_CipherFinal_ex(ctx.get(), out + len, &len) != 1) return false;
  if (encrypt &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagSize), tag) != 1) {
    return false;
  }
  return true;
}

// Reads one line from `fd` with the terminal's echo off.
Result<std::string> ReadTtyLine(int fd, std::string_view prompt) {
  (void)!::write(fd, prompt.data(), prompt.size());
  termios old{};
  const bool is_tty = ::tcgetattr(fd, &old) == 0;
  if (is_tty) {
    termios quiet = old;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    quiet.c_lflag |= ECHONL;
    ::tcsetattr(fd, TCSAFLUSH, &quiet);
  }
  std::string line;
  char c;
  Status st = Status::OK();
  while (true) {
    ssize_t r = ::read(fd, &c, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      st = Status::FromErrno(errno, "read passphrase from the terminal");
      break;
    }
    if (r == 0 || c == '\n') break;
    if (line.size() < 4096) line.push_back(c);
  }
  OPENSSL_cleanse(&c, 1);
  if (is_tty) ::tcsetattr(fd, TCSAFLUSH, &old);
  if (!st.ok()) {
    WipeString(&line);
    return st;
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

}  // namespace

Status ValidateScryptParams(const ScryptParams& params) {
  if (params.log2_n < 10 || params.log2_n > 22 || params.r < 1 || params.r > 32 ||
      params.p < 1 || params.p > 16 ||
      128 * static_cast<uint64_t>(params.r) * (uint64_t{1} << params.log2_n) > kMaxScryptMemory) {
    return Status::InvalidArgument("scrypt parameters out of bounds (log2 N " +
                                   std::to_string(params.log2_n) + ", r " +
                                   std::to_string(params.r) + ", p " + std::to_string(params.p) +
                                   ")");
  }
  return Status::OK();
}

Result<std::string> SealKeyWithPassphrase(const Key& key, std::string_view passphrase,
                                          const ScryptParams& params) {
  if (passphrase.empty()) return Status::InvalidArgument("empty passphrase");
  std::array<uint8_t, kSaltSize> salt{};
  std::array<uint8_t, kNonceSize> nonce{};
  RETURN_IF_ERROR(RandomBytes(salt));
  RETURN_IF_ERROR(RandomBytes(nonce));
  ASSIGN_OR_RETURN(Key kek, Scrypt(passphrase, salt, params));
  WipeOnExit wipe_kek{kek.data(), kek.size()};
  std::string aad = std::string(kProtectedKeyPrefix) + "scrypt " + std::to_string(params.log2_n) +
                    " " + std::to_string(params.r) + " " + std::to_string(params.p) + " " +
                    Hex(salt.data(), salt.size()) + " " + Hex(nonce.data(), nonce.size());
  std::array<uint8_t, kSealedSize> sealed{};
  if (!Gcm(true, kek, nonce, aad, key.data(), sealed.data(), sealed.data() + kKeySize)) {
    return Status::IOError("AES-256-GCM failed sealing the key");
  }
  return aad + " " + Hex(sealed.data(), sealed.size()) + "\n";
}

Result<ScryptParams> ProtectedKeyParams(std::string_view line) {
  ASSIGN_OR_RETURN(Parsed p, Parse(line));
  return p.params;
}

Result<Key> OpenKeyWithPassphrase(std::string_view line, std::string_view passphrase) {
  ASSIGN_OR_RETURN(Parsed p, Parse(line));
  ASSIGN_OR_RETURN(Key kek, Scrypt(passphrase, p.salt, p.params));
  WipeOnExit wipe_kek{kek.data(), kek.size()};
  Key key{};
  if (!Gcm(false, kek, p.nonce, p.aad, p.sealed.data(), key.data(), p.sealed.data() + kKeySize)) {
    OPENSSL_cleanse(key.data(), key.size());
    return Status::AuthFailed("wrong passphrase (or the key file was altered)");
  }
  return key;
}

void SetPassphraseFile(std::string path) { g_passphrase_file = std::move(path); }

Result<std::string> ReadPassphraseFile(const std::string& path) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound("passphrase file " + path + " does not exist");
    return Status::FromErrno(errno, "open passphrase file " + path);
  }
  std::string text;
  char buf[256];
  WipeOnExit wipe_buf{buf, sizeof(buf)};
  while (text.size() < 8192) {
    ssize_t r = ::read(fd, buf, sizeof(buf));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int err = errno;
      ::close(fd);
      WipeString(&text);
      return Status::FromErrno(err, "read passphrase file " + path);
    }
    if (r == 0) break;
    text.append(buf, static_cast<size_t>(r));
  }
  ::close(fd);
  size_t nl = text.find('\n');
  std::string line = text.substr(0, nl);
  WipeString(&text);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.empty()) return Status::InvalidArgument("passphrase file " + path + " is empty");
  return line;
}

Result<std::string> GetPassphrase(std::string_view what) {
  if (!g_passphrase_file.empty()) return ReadPassphraseFile(g_passphrase_file);
  if (const char* f = std::getenv("SHARDFS_PASSPHRASE_FILE"); f && *f) {
    return ReadPassphraseFile(f);
  }
  if (const char* p = std::getenv("SHARDFS_PASSPHRASE"); p && *p) return std::string(p);
  auto pass = PromptPassphrase("Enter " + std::string(what) + ": ", false);
  if (!pass.ok() && pass.status().code() == Code::kUnavailable) {
    return Status::Unavailable(std::string(what) +
                               " is needed but there is no terminal to ask on; use "
                               "--passphrase-file, SHARDFS_PASSPHRASE_FILE or SHARDFS_PASSPHRASE");
  }
  return pass;
}

Result<std::string> PromptPassphrase(std::string_view prompt, bool confirm) {
  int fd;
  do {
    fd = ::open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return Status::Unavailable("no terminal to ask for a passphrase on");
  auto first = ReadTtyLine(fd, prompt);
  if (first.ok() && confirm) {
    auto second = ReadTtyLine(fd, "Repeat it: ");
    if (!second.ok()) {
      first = second.status();
    } else if (*second != *first) {
      WipeString(&*second);
      WipeString(&*first);
      first = Status::InvalidArgument("the two passphrases differ");
    } else {
      WipeString(&*second);
    }
  }
  ::close(fd);
  if (first.ok() && first->empty()) return Status::InvalidArgument("empty passphrase");
  return first;
}

}  // namespace shardfs
