// POSIX implementation of Disk. See disk.h.
#include "netnode/disk.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace shardfs {
namespace {

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixWritableFile() override { close(fd_); }

  Status Append(std::span<const uint8_t> data) override {
    const uint8_t* p = data.data();
    size_t left = data.size();
    while (left > 0) {
      ssize_t n = write(fd_, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno(errno, "writing " + path_);
      }
      p += n;
      left -= static_cast<size_t>(n);
    }
    return Status::OK();
  }

  Status Sync() override {
    while (fdatasync(fd_) != 0) {
      if (errno != EINTR) return Status::FromErrno(errno, "fdatasync " + path_);
    }
    return Status::OK();
  }

 private:
  int fd_;
  std::string path_;
};

class PosixRandomAccessFile final : public RandomAccessFile {
 public:
  PosixRandomAccessFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixRandomAccessFile() override { close(fd_); }

  Status ReadExact(uint64_t offset, size_t n, uint8_t* buf) override {
    size_t done = 0;
    while (done < n) {
      ssize_t r = pread(fd_, buf + done, n - done, static_cast<off_t>(offset + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        return Status::FromErrno(errno, "reading " + path_);
      }
      if (r == 0) {
        return Status::Corruption(path_ + ": file ends at " + std::to_string(offset + done) +
                                  ", expected " + std::to_string(offset + n) + " bytes");
      }
      done += static_cast<size_t>(r);
    }
    return Status::OK();
  }

  Result<uint64_t> Size() override {
    struct stat st;
    if (fstat(fd_, &st) != 0) return Status::FromErrno(errno, "stat " + path_);
    return static_cast<uint64_t>(st.st_size);
  }

 private:
  int fd_;
  std::string path_;
};

int OpenRetry(const char* path, int flags, mode_t mode = 0) {
  int fd;
  do {
    fd = open(path, flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

class PosixDiskImpl final : public Disk {
 public:
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    int fd = OpenRetry(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) return Status::FromErrno(errno, "creating " + path);
    return std::unique_ptr<WritableFile>(new PosixWritableFile(fd, path));
  }

  Result<std::unique_ptr<RandomAccessFile>> OpenForRead(const std::string& path) override {
    int fd = OpenRetry(path.c_str(), O_RDONLY);
    if (fd < 0) return Status::FromErrno(errno, "opening " + path);
    return std::unique_ptr<RandomAccessFile>(new PosixRandomAccessFile(fd, path));
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (rename(from.c_str(), to.c_str()) != 0) {
      return Status::FromErrno(errno, "renaming " + from + " to " + to);
    }
    return Status::OK();
  }

  Status Remove(const std::string& path) override {
    if (unlink(path.c_str()) != 0) return Status::FromErrno(errno, "removing " + path);
    return Status::OK();
  }

  Status CreateDir(const std::string& path) override {
    if (mkdir(path.c_str(), 0700) != 0) {
      if (errno == EEXIST) {
        struct stat st;
        if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return Status::OK();
        return Status::Exists(path + " exists and is not a directory");
      }
      return Status::FromErrno(errno, "creating directory " + path);
    }
    return Status::OK();
  }

  Status SyncDir(const std::string& path) override {
    int fd = OpenRetry(path.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd < 0) return Status::FromErrno(errno, "opening directory " + path);
    Status st;
    while (fsync(fd) != 0) {
      if (errno != EINTR) {
        st = Status::FromErrno(errno, "fsync directory " + path);
        break;
      }
    }
    close(fd);
    return st;
  }

  Status SyncFileSystem(const std::string& path) override {
    int fd = OpenRetry(path.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd < 0) return Status::FromErrno(errno, "opening directory " + path);
    Status st;
    // syncfs reports writeback errors since Linux 5.8; on older kernels a
    // failed writeback would go unnoticed here (STORAGE.md §4).
    if (syncfs(fd) != 0) st = Status::FromErrno(errno, "syncfs " + path);
    close(fd);
    return st;
  }

  Result<std::vector<std::string>> ListDir(const std::string& path) override {
    DIR* d = opendir(path.c_str());
    if (d == nullptr) return Status::FromErrno(errno, "listing " + path);
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* e = readdir(d)) {
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      names.emplace_back(e->d_name);
    }
    int err = errno;
    closedir(d);
    if (err != 0) return Status::FromErrno(err, "listing " + path);
    return names;
  }

  Result<DiskSpace> Space(const std::string& path) override {
    struct statvfs vfs;
    if (statvfs(path.c_str(), &vfs) != 0) return Status::FromErrno(errno, "statvfs " + path);
    DiskSpace s;
    s.total_bytes = static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize;
    s.available_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    return s;
  }
};

}  // namespace

Disk* PosixDisk() {
  static PosixDiskImpl* disk = new PosixDiskImpl();  // never destroyed: used until exit
  return disk;
}

}  // namespace shardfs
