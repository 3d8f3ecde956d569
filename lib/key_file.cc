// Key files. See key_file.h for the format.
//
// Losing this file loses every byte of the volume, so creation is careful:
// O_EXCL (never overwrite an existing key), fchmod 0600 whatever the umask,
// fsync of the file and of its directory before reporting success, and the
// half-written file is removed if any step fails. Loading refuses a file that
// group or others can access, like ssh does with private keys. Changing the
// format (protect, unprotect, new passphrase) writes a new file and renames
// it over the old one, so a crash leaves one of the two whole files.
#include "lib/key_file.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <string>
#include <string_view>

namespace shardfs {
namespace {

constexpr std::string_view kPrefix = "shardfs-key-v1 ";
// Prefix, 64 hex digits, newline. Anything longer is malformed; reading one
// byte more than this is enough to tell.
constexpr size_t kFileSize = kPrefix.size() + 2 * kKeySize + 1;
// The protected line is longer (about 200 bytes); anything past this is
// malformed in either format.
constexpr size_t kMaxFileSize = 512;

// Closes the fd on every path.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  // Closes now so the caller sees close's error (it can report a failed
  // write-back on some file systems).
  int Close() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

// Wipes a buffer that held key material.
struct Wipe {
  void* p;
  size_t n;
  ~Wipe() { OPENSSL_cleanse(p, n); }
};

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int OpenRetry(const char* path, int flags, mode_t mode = 0) {
  int fd;
  do {
    fd = ::open(path, flags, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

Status WriteAll(int fd, const char* p, size_t n, const std::string& path) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "write key file " + path);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::OK();
}

Status FsyncRetry(int fd, const std::string& what) {
  while (::fsync(fd) != 0) {
    if (errno != EINTR) return Status::FromErrno(errno, "fsync " + what);
  }
  return Status::OK();
}

// Makes the new directory entry durable too.
Status SyncParentDir(const std::string& path) {
  size_t slash = path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  Fd fd(OpenRetry(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) return Status::FromErrno(errno, "open directory " + dir);
  return FsyncRetry(fd.get(), "directory " + dir);
}

// "shardfs-key-v1 <hex>\n". The caller wipes it.
std::string PlainLine(const Key& key) {
  static const char kDigits[] = "0123456789abcdef";
  std::string line(kPrefix);
  line.reserve(kFileSize);
  for (size_t i = 0; i < kKeySize; ++i) {
    line.push_back(kDigits[key[i] >> 4]);
    line.push_back(kDigits[key[i] & 15]);
  }
  line.push_back('\n');
  return line;
}

Status WriteNewKeyFile(int fd, const std::string& path, const Key& key) {
  std::string line = PlainLine(key);
  Wipe wipe{line.data(), line.size()};
  const char* buf = line.data();
  // open's mode is filtered by the umask; a permissive umask must not widen
  // it, and a strict one must not leave the owner unable to read the key.
  if (::fchmod(fd, 0600) != 0) return Status::FromErrno(errno, "chmod 600 " + path);
  RETURN_IF_ERROR(WriteAll(fd, buf, line.size(), path));
  return FsyncRetry(fd, "key file " + path);
}

}  // namespace

Result<Key> CreateKeyFile(const std::string& path) {
  Key key{};
  RETURN_IF_ERROR(RandomBytes(key));
  Fd fd(OpenRetry(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (fd.get() < 0) {
    if (errno == EEXIST) {
      return Status::Exists("key file " + path + " already exists; refusing to overwrite it");
    }
    return Status::FromErrno(errno, "create key file " + path);
  }
  Status st = WriteNewKeyFile(fd.get(), path, key);
  if (st.ok() && fd.Close() != 0) st = Status::FromErrno(errno, "close key file " + path);
  if (st.ok()) st = SyncParentDir(path);
  if (!st.ok()) {
    // We created it, so it is ours to remove; a partial key file would
    // otherwise block the retry (O_EXCL) or, worse, be loaded later.
    ::unlink(path.c_str());
    OPENSSL_cleanse(key.data(), key.size());
    return st;
  }
  return key;
}

namespace {

// The file's text after the same checks LoadKeyFile documents (exists,
// regular, mode, at most kMaxFileSize bytes).
Status ReadKeyText(const std::string& path, std::string* text) {
  Fd fd(OpenRetry(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (fd.get() < 0) {
    if (errno == ENOENT) return Status::NotFound("key file " + path + " does not exist");
    return Status::FromErrno(errno, "open key file " + path);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "stat key file " + path);
  if (!S_ISREG(st.st_mode)) {
    return Status::Corruption("key file " + path + " is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::PermissionDenied("key file " + path + " has mode " + mode +
                                    ": group or others can access it; run: chmod 600 " + path);
  }
  char buf[kMaxFileSize + 1];
  Wipe wipe{buf, sizeof(buf)};
  size_t len = 0;
  while (len < sizeof(buf)) {
    ssize_t r = ::read(fd.get(), buf + len, sizeof(buf) - len);
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "read key file " + path);
    }
    if (r == 0) break;
    len += static_cast<size_t>(r);
  }
  text->assign(buf, len);
  return Status::OK();
}

// "shardfs-key-vN " with N other than 1 and 2: a newer format.
bool IsOtherVersion(std::string_view text) {
  constexpr std::string_view kAny = "shardfs-key-v";
  if (!text.starts_with(kAny)) return false;
  text.remove_prefix(kAny.size());
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  return digits > 0 && digits < text.size() && text[digits] == ' ' &&
         text.substr(0, digits) != "1" && text.substr(0, digits) != "2";
}

Result<Key> ParsePlain(const std::string& path, std::string_view text) {
  auto malformed = [&path](std::string_view why) {
    return Status::Corruption("key file " + path + " is malformed (" + std::string(why) +
                              "); expected one line \"shardfs-key-v1 <64 hex digits>\"");
  };
  // The trailing newline is optional: hand-edited files often lack it.
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  if (text.substr(0, kPrefix.size()) != kPrefix) return malformed("bad header");
  text.remove_prefix(kPrefix.size());
  if (text.size() != 2 * kKeySize) return malformed("wrong length");
  Key key{};
  for (size_t i = 0; i < kKeySize; ++i) {
    int hi = HexValue(text[2 * i]), lo = HexValue(text[2 * i + 1]);
    if (hi < 0 || lo < 0) {
      OPENSSL_cleanse(key.data(), key.size());
      return malformed("not hex");
    }
    key[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return key;
}

// `passphrase` is called only for a protected file.
template <typename GetPass>
Result<Key> LoadWith(const std::string& path, GetPass passphrase) {
  std::string text;
  struct WipeText {
    std::string* s;
    ~WipeText() { OPENSSL_cleanse(s->data(), s->size()); }
  } wipe{&text};
  RETURN_IF_ERROR(ReadKeyText(path, &text));
  if (std::string_view(text).starts_with(kProtectedKeyPrefix)) {
    // A malformed file is reported as such before anyone is asked for a
    // passphrase that could not help.
    RETURN_IF_ERROR(ProtectedKeyParams(text).status().With("key file " + path));
    ASSIGN_OR_RETURN(std::string pass, passphrase());
    auto key = OpenKeyWithPassphrase(text, pass);
    OPENSSL_cleanse(pass.data(), pass.size());
    if (!key.ok()) return key.status().With("key file " + path);
    return key;
  }
  if (IsOtherVersion(text)) {
    return Status::Corruption("key file " + path + " has an unsupported version (\"" +
                              text.substr(0, text.find(' ')) +
                              "\"): written by a newer shardfs?");
  }
  return ParsePlain(path, text);
}

}  // namespace

Result<Key> LoadKeyFile(const std::string& path) {
  return LoadWith(path, [&path] { return GetPassphrase("passphrase for key file " + path); });
}

Result<Key> LoadKeyFileWithPassphrase(const std::string& path, std::string_view passphrase) {
  return LoadWith(path, [passphrase]() -> Result<std::string> {
    if (passphrase.empty()) return Status::InvalidArgument("empty passphrase");
    return std::string(passphrase);
  });
}

Result<bool> KeyFileIsProtected(const std::string& path) {
  std::string text;
  RETURN_IF_ERROR(ReadKeyText(path, &text));
  const bool prot = std::string_view(text).starts_with(kProtectedKeyPrefix);
  if (prot) RETURN_IF_ERROR(ProtectedKeyParams(text).status().With("key file " + path));
  OPENSSL_cleanse(text.data(), text.size());
  return prot;
}

Status ReplaceKeyFile(const std::string& path, const Key& key, std::string_view passphrase,
                      const ScryptParams& params) {
  std::string text;
  if (passphrase.empty()) {
    text = PlainLine(key);
  } else {
    ASSIGN_OR_RETURN(text, SealKeyWithPassphrase(key, passphrase, params));
  }
  struct WipeText {
    std::string* s;
    ~WipeText() { OPENSSL_cleanse(s->data(), s->size()); }
  } wipe{&text};
  // The temp file sits next to the key so rename() is atomic; O_EXCL so two
  // concurrent changes cannot share it.
  const std::string tmp = path + ".new";
  Fd fd(OpenRetry(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (fd.get() < 0) {
    if (errno == EEXIST) {
      return Status::Exists(tmp + " exists: another key change is running, or one crashed "
                                  "(check that " + path + " is good, then remove " + tmp + ")");
    }
    return Status::FromErrno(errno, "create " + tmp);
  }
  Status st = Status::OK();
  if (::fchmod(fd.get(), 0600) != 0) st = Status::FromErrno(errno, "chmod 600 " + tmp);
  if (st.ok()) st = WriteAll(fd.get(), text.data(), text.size(), tmp);
  if (st.ok()) st = FsyncRetry(fd.get(), "key file " + tmp);
  if (st.ok() && fd.Close() != 0) st = Status::FromErrno(errno, "close " + tmp);
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    st = Status::FromErrno(errno, "rename " + tmp + " to " + path);
  }
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  return SyncParentDir(path);
}

}  // namespace shardfs
