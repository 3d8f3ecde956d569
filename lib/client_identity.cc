// Client identity file. See client_identity.h for the format.
//
// Creation writes a uniquely named temp file (mode 0600, fsync) and then
// link(2)s it to the final name: link never overwrites, so a concurrent
// creator cannot replace a keypair that is already in use, and readers never
// see a half-written file.
#include "lib/atomic_file.h"
#include "lib/client_identity.h"

#include "lib/curve_keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <array>
#include <cerrno>
#include <filesystem>
#include <string_view>

namespace shardfs {
namespace {

constexpr std::string_view kPrefix = "shardfs-identity-v1 ";
constexpr size_t kZ85KeyLen = 40;
constexpr size_t kFileSize = kPrefix.size() + 2 * kZ85KeyLen + 2;  // space + newline

bool IsZ85(std::string_view s) {
  static constexpr std::string_view kAlphabet =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  if (s.size() != kZ85KeyLen) return false;
  for (char c : s) {
    if (kAlphabet.find(c) == std::string_view::npos) return false;
  }
  return true;
}

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t w = ::write(fd, data.data(), data.size());
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "write " + path);
    }
    data.remove_prefix(static_cast<size_t>(w));
  }
  return Status::OK();
}

Status CreateIdentityFile(const std::string& path) {
  std::array<char, 41> pub{}, sec{};
  if (zmq_curve_keypair(pub.data(), sec.data()) != 0) {
    return Status::Unavailable("zmq_curve_keypair: " + std::string(zmq_strerror(zmq_errno())) +
                               " (libzmq built without CURVE?)");
  }
  std::string text(kPrefix);
  text += pub.data();
  text += ' ';
  text += sec.data();
  text += '\n';

  std::string tmp = path + ".tmp.XXXXXX";
  int fd = ::mkstemp(tmp.data());
  if (fd < 0) return Status::FromErrno(errno, "create " + path + ".tmp");
  Status st = WriteAll(fd, text, tmp);
  if (st.ok() && ::fchmod(fd, 0600) != 0) st = Status::FromErrno(errno, "chmod " + tmp);
  if (st.ok() && ::fsync(fd) != 0) st = Status::FromErrno(errno, "fsync " + tmp);
  if (::close(fd) != 0 && st.ok()) st = Status::FromErrno(errno, "close " + tmp);
  if (st.ok() && ::link(tmp.c_str(), path.c_str()) != 0 && errno != EEXIST) {
    st = Status::FromErrno(errno, "link " + tmp + " to " + path);
  }
  ::unlink(tmp.c_str());
  if (!st.ok()) return st;
  std::string dir = std::filesystem::path(path).parent_path().string();
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);  // best effort: losing the link only means a new identity
    ::close(dfd);
  }
  return Status::OK();
}

}  // namespace

Result<ClientIdentity> LoadClientIdentity(const std::string& path) {
  ASSIGN_OR_RETURN(std::string buf, ReadPrivateFile(path, "identity file", kFileSize));
  const size_t got = buf.size();
  std::string_view s(buf);
  if (got != kFileSize || !s.starts_with(kPrefix) || s.back() != '\n' ||
      s[kPrefix.size() + kZ85KeyLen] != ' ') {
    return Status::Corruption(path + ": not a shardfs identity file");
  }
  ClientIdentity id;
  id.public_key = std::string(s.substr(kPrefix.size(), kZ85KeyLen));
  id.secret_key = std::string(s.substr(kPrefix.size() + kZ85KeyLen + 1, kZ85KeyLen));
  if (!IsZ85(id.public_key) || !IsZ85(id.secret_key)) {
    return Status::Corruption(path + ": identity file holds a malformed key");
  }
  RegisterCurveIdentity(CurveKeypair{id.public_key, id.secret_key});
  return id;
}

Result<ClientIdentity> LoadOrCreateClientIdentity(const std::string& path) {
  auto loaded = LoadClientIdentity(path);
  if (loaded.ok() || !loaded.status().IsNotFound()) return loaded;
  RETURN_IF_ERROR(CreateIdentityFile(path));
  return LoadClientIdentity(path);
}

}  // namespace shardfs
