// Atomic small-file replacement; see atomic_file.h.
#include "lib/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace shardfs {
namespace {

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "writing " + path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::OK();
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

Status WriteFileAtomic(const std::string& path, std::string_view content, int mode) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Status::FromErrno(errno, "creating " + tmp);
  Status st;
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) st = Status::FromErrno(errno, "chmod " + tmp);
  if (st.ok()) st = WriteAll(fd, content, tmp);
  if (st.ok() && ::fsync(fd) != 0) st = Status::FromErrno(errno, "fsync " + tmp);
  if (::close(fd) != 0 && st.ok()) st = Status::FromErrno(errno, "closing " + tmp);
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    st = Status::FromErrno(errno, "renaming " + tmp + " to " + path);
  }
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  const std::string dir = DirName(path);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return Status::FromErrno(errno, "opening directory " + dir);
  if (::fsync(dfd) != 0) st = Status::FromErrno(errno, "fsync directory " + dir);
  ::close(dfd);
  return st;
}

Result<std::string> ReadPrivateFile(const std::string& path, std::string_view what,
                                    size_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "open " + std::string(what) + " " + path);
  struct stat sb {};
  if (::fstat(fd, &sb) != 0) {
    Status st = Status::FromErrno(errno, "stat " + path);
    ::close(fd);
    return st;
  }
  if (sb.st_mode & 077) {
    ::close(fd);
    return Status::PermissionDenied(path + ": " + std::string(what) +
                                    " is accessible by group or others (chmod 600 it)");
  }
  std::string buf(max_bytes + 1, '\0');
  size_t got = 0;
  while (got < buf.size()) {
    ssize_t r = ::read(fd, buf.data() + got, buf.size() - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      Status st = Status::FromErrno(errno, "read " + path);
      ::close(fd);
      return st;
    }
    if (r == 0) break;
    got += static_cast<size_t>(r);
  }
  ::close(fd);
  buf.resize(got);
  return buf;
}

}  // namespace shardfs
