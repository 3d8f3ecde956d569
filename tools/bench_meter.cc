// CPU, wall-clock and page-cache helpers for bench. See bench_meter.h.
#include "tools/bench_meter.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace shardfs::shardctl {
namespace {

double TimevalSeconds(const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; }

// utime + stime of `pid` in seconds, 0 if it is gone. /proc/PID/stat fields
// 14 and 15 (proc(5)), counted after the command name's closing parenthesis
// because the name itself may contain spaces.
double ProcessCpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t paren = text.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream fields(text.substr(paren + 1));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  // After ')': field 3 (state) is the first; utime is field 14, stime 15.
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  static const long ticks = ::sysconf(_SC_CLK_TCK);
  return static_cast<double>(utime + stime) / static_cast<double>(ticks > 0 ? ticks : 100);
}

void FadviseDontNeed(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::fdatasync(fd);  // dirty pages cannot be dropped
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

}  // namespace

CpuSample CpuMeter::Sample() const {
  CpuSample s;
  s.wall_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
  rusage ru{};
  if (::getrusage(RUSAGE_SELF, &ru) == 0) {
    s.self_cpu_s = TimevalSeconds(ru.ru_utime) + TimevalSeconds(ru.ru_stime);
  }
  for (pid_t pid : node_pids_) s.nodes_cpu_s += ProcessCpuSeconds(pid);
  return s;
}

double StageResult::mb_per_s() const {
  double s = seconds();
  return s > 0 ? bytes / 1e6 / s : 0;
}

double StageResult::client_core_s_per_gb() const {
  return bytes > 0 ? (end.self_cpu_s - begin.self_cpu_s) / (bytes / 1e9) : 0;
}

double StageResult::nodes_core_s_per_gb() const {
  return bytes > 0 ? (end.nodes_cpu_s - begin.nodes_cpu_s) / (bytes / 1e9) : 0;
}

std::string DropCaches(const std::vector<std::string>& paths) {
  namespace fs = std::filesystem;
  for (const std::string& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      for (auto it = fs::recursive_directory_iterator(p, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_regular_file(ec)) FadviseDontNeed(it->path().string());
      }
    } else {
      FadviseDontNeed(p);
    }
  }
  ::sync();
  int fd = ::open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    return std::string("fadvise(DONTNEED) only: cannot open /proc/sys/vm/drop_caches (") +
           std::strerror(errno) + "; run as root for a fully cold cache)";
  }
  bool ok = ::write(fd, "3\n", 2) == 2;
  int err = errno;
  ::close(fd);
  if (!ok) {
    return std::string("fadvise(DONTNEED) only: writing drop_caches failed (") +
           std::strerror(err) + ")";
  }
  return "caches dropped (drop_caches=3)";
}

}  // namespace shardfs::shardctl
