// Staging files (METADATA.md §3). See staging.h.
#include "fs/staging.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>

namespace shardfs::fs {
namespace {

// Closes on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

Status OpenFd(const std::string& path, int flags, Fd* out) {
  do {
    out->fd = ::open(path.c_str(), flags | O_CLOEXEC, 0600);
  } while (out->fd < 0 && errno == EINTR);
  if (out->fd < 0) return Status::FromErrno(errno, "open " + path);
  return Status::OK();
}

bool ParseId(const char* name, uint64_t* id) {
  if (std::strlen(name) != 16) return false;
  char* end = nullptr;
  *id = std::strtoull(name, &end, 16);
  return end && *end == '\0';
}

}  // namespace

Result<std::unique_ptr<Staging>> Staging::Open(const std::string& dir,
                                               std::shared_ptr<const DiskReserve> reserve) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::FromErrno(errno, "mkdir " + dir);
  }
  std::unique_ptr<Staging> s(new Staging(dir, std::move(reserve)));
  ASSIGN_OR_RETURN(auto ids, s->List());
  for (uint64_t id : ids) s->ReserveAbove(id);
  return s;
}

void Staging::ReserveAbove(uint64_t id) {
  uint64_t cur = next_id_.load();
  while (cur <= id && !next_id_.compare_exchange_weak(cur, id + 1)) {
  }
}

std::string Staging::PathOf(uint64_t id) const {
  char name[32];
  std::snprintf(name, sizeof(name), "/%016" PRIx64, id);
  return dir_ + name;
}

Status Staging::Create(uint64_t id) {
  Fd f;
  return OpenFd(PathOf(id), O_WRONLY | O_CREAT | O_EXCL, &f);
}

Status Staging::Write(uint64_t id, uint64_t off, std::span<const uint8_t> data) {
  Fd f;
  const std::string path = PathOf(id);
  RETURN_IF_ERROR(OpenFd(path, O_WRONLY, &f));
  if (reserve_) RETURN_IF_ERROR(reserve_->Claim(f.fd, data.size(), path));
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(f.fd, data.data() + done, data.size() - done, off + done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "write " + path);
    }
    done += n;
  }
  return Status::OK();
}

Result<size_t> Staging::Read(uint64_t id, uint64_t off, std::span<uint8_t> out) {
  Fd f;
  const std::string path = PathOf(id);
  RETURN_IF_ERROR(OpenFd(path, O_RDONLY, &f));
  size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::pread(f.fd, out.data() + done, out.size() - done, off + done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "read " + path);
    }
    if (n == 0) break;
    done += n;
  }
  return done;
}

Result<std::vector<uint8_t>> Staging::ReadAll(uint64_t id, uint64_t len) {
  std::vector<uint8_t> buf(len);
  ASSIGN_OR_RETURN(size_t n, Read(id, 0, buf));
  // A staging file shorter than len ends in a hole: zeros (METADATA.md §3).
  std::fill(buf.begin() + n, buf.end(), 0);
  return buf;
}

Status Staging::Truncate(uint64_t id, uint64_t len) {
  const std::string path = PathOf(id);
  if (::truncate(path.c_str(), static_cast<off_t>(len)) != 0) {
    return Status::FromErrno(errno, "truncate " + path);
  }
  return Status::OK();
}

Status Staging::Sync(uint64_t id) {
  Fd f;
  const std::string path = PathOf(id);
  RETURN_IF_ERROR(OpenFd(path, O_RDONLY, &f));
  if (::fdatasync(f.fd) != 0) return Status::FromErrno(errno, "fdatasync " + path);
  return Status::OK();
}

void Staging::Remove(uint64_t id) { ::unlink(PathOf(id).c_str()); }

Result<std::vector<uint64_t>> Staging::List() {
  DIR* d = ::opendir(dir_.c_str());
  if (!d) return Status::FromErrno(errno, "opendir " + dir_);
  std::vector<uint64_t> ids;
  while (struct dirent* e = ::readdir(d)) {
    uint64_t id;
    if (ParseId(e->d_name, &id)) ids.push_back(id);
  }
  ::closedir(d);
  return ids;
}

}  // namespace shardfs::fs
