// The mount lease. See lease.h.
#include "fs/lease.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

namespace shardfs::fs {
namespace {

// mountinfo escapes blanks and backslashes as \ooo (proc(5)).
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '3' &&
        s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
      out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 +
                                      (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Where the volume is mounted (fsname "shardfs:<id>", fs/main.cc), "" if
// nowhere in this mount namespace.
std::string MountPointOf(const std::string& volume_id) {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // id parent major:minor root mount_point options [optional...] - fstype source ...
    std::istringstream ls(line);
    std::string id, parent, devno, root, mp, opts, f, fstype, source;
    if (!(ls >> id >> parent >> devno >> root >> mp >> opts)) continue;
    while (ls >> f && f != "-") {
    }
    if (!(ls >> fstype >> source)) continue;
    if (Unescape(source) == "shardfs:" + volume_id) return Unescape(mp);
  }
  return "";
}

// The abstract address "\0shardfs-volume-<id>" (unix(7)); its length
// counts exactly the name's bytes, no trailing NUL.
socklen_t VolumeAddress(const std::string& volume_id, sockaddr_un* addr) {
  std::memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  const std::string name = "shardfs-volume-" + volume_id;
  const size_t len = std::min(name.size(), sizeof(addr->sun_path) - 1);
  std::memcpy(addr->sun_path + 1, name.data(), len);
  return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + len);
}

// The pid listening on the volume's address; 0 if nobody (it just went),
// -1 if somebody whose pid we cannot learn.
pid_t VolumeHolder(const sockaddr_un& addr, socklen_t len) {
  // Non-blocking: a connect to a full backlog fails with EAGAIN instead of
  // waiting (the holder never accepts).
  int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s < 0) return -1;
  pid_t pid = 0;
  if (::connect(s, reinterpret_cast<const sockaddr*>(&addr), len) != 0) {
    if (errno != ECONNREFUSED && errno != ENOENT) pid = -1;
  } else {
    pid = -1;
    struct ucred cred {};
    socklen_t cl = sizeof(cred);
    if (::getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0) pid = cred.pid;
  }
  ::close(s);
  return pid;
}

// Listens on the volume's address: the socket, or Busy naming the holder.
Result<int> LockVolume(const std::string& volume_id) {
  sockaddr_un addr;
  const socklen_t len = VolumeAddress(volume_id, &addr);
  // Twice: a holder that exits between our bind and connect frees the name.
  for (int attempt = 0; attempt < 2; ++attempt) {
    int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return Status::FromErrno(errno, "socket for the volume lock");
    if (::bind(s, reinterpret_cast<const sockaddr*>(&addr), len) == 0) {
      // Never accepted: a refused mount connects only to read SO_PEERCRED.
      // Unaccepted connections stay queued, hence the long backlog.
      if (::listen(s, SOMAXCONN) == 0) return s;
      const int err = errno;
      ::close(s);
      return Status::FromErrno(err, "listen on the volume lock");
    }
    const int err = errno;
    ::close(s);
    if (err != EADDRINUSE) return Status::FromErrno(err, "bind the volume lock");
    const pid_t holder = VolumeHolder(addr, len);
    if (holder == 0) continue;
    const std::string mp = MountPointOf(volume_id);
    return Status::Busy("volume " + volume_id + " is already mounted" +
                        (holder > 0 ? " by pid " + std::to_string(holder) : std::string()) +
                        (mp.empty() ? "" : " on " + mp) +
                        " with another state dir; two mounts would keep two diverging copies "
                        "of its metadata: unmount it first");
  }
  return Status::Busy("volume " + volume_id + " is being mounted by another process");
}

}  // namespace

Result<std::unique_ptr<Lease>> Lease::Acquire(const std::string& path,
                                              const std::string& volume_id) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno(errno, "open lease " + path);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    char buf[32] = {};
    ssize_t n = ::pread(fd, buf, sizeof(buf) - 1, 0);
    ::close(fd);
    if (err == EWOULDBLOCK) {
      std::string pid = n > 0 ? std::string(buf, strnlen(buf, n)) : "?";
      while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
      return Status::Busy("volume " + volume_id + " is already mounted by pid " + pid +
                          " (lease " + path + "); unmount it first");
    }
    return Status::FromErrno(err, "flock " + path);
  }
  auto sock = LockVolume(volume_id);
  if (!sock.ok()) {
    ::close(fd);
    return sock.status();
  }
  std::unique_ptr<Lease> lease(new Lease(fd, *sock));
  lease->RecordPid();
  return lease;
}

void Lease::RecordPid() {
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) == 0) (void)!::pwrite(fd_, pid.data(), pid.size(), 0);
}

Lease::~Lease() {
  if (sock_ >= 0) ::close(sock_);
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace shardfs::fs
