// Key files. See key_file.h for the format.
//
// Losing this file loses every byte of the volume, so creation is careful:
// O_EXCL (never overwrite an existing key), fchmod 0600 whatever the umask,
// fsync of the file and of its directory before reporting success, and the
// half-written file is removed if any step fails. Loading refuses a file that
// group or others can access, like ssh does with private keys.
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

Status WriteNewKeyFile(int fd, const std::string& path, const Key& key) {
  static const char kDigits[] = "0123456789abcdef";
  char buf[kFileSize];
  Wipe wipe{buf, sizeof(buf)};
  std::copy(kPrefix.begin(), kPrefix.end(), buf);
  char* hex = buf + kPrefix.size();
  for (size_t i = 0; i < kKeySize; ++i) {
    hex[2 * i] = kDigits[key[i] >> 4];
    hex[2 * i + 1] = kDigits[key[i] & 15];
  }
  buf[kFileSize - 1] = '\n';
  // open's mode is filtered by the umask; a permissive umask must not widen
  // it, and a strict one must not leave the owner unable to read the key.
  if (::fchmod(fd, 0600) != 0) return Status::FromErrno(errno, "chmod 600 " + path);
  RETURN_IF_ERROR(WriteAll(fd, buf, sizeof(buf), path));
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

Result<Key> LoadKeyFile(const std::string& path) {
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

  char buf[kFileSize + 1];
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

  auto malformed = [&path](std::string_view why) {
    return Status::Corruption("key file " + path + " is malformed (" + std::string(why) +
                              "); expected one line \"shardfs-key-v1 <64 hex digits>\"");
  };
  std::string_view text(buf, len);
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

}  // namespace shardfs
