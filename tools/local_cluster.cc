// Local cluster processes: start, stop, status. See local_cluster.h.
#include "tools/local_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "lib/atomic_file.h"
#include "lib/client_config.h"
#include "lib/curve_keys.h"
#include "lib/key_file.h"
#include "lib/log.h"

namespace shardfs::shardctl {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kPollMs = 20;
constexpr int kLogTailLines = 20;

std::string NodeDir(const std::string& dir, int i) { return dir + "/node-" + std::to_string(i); }

std::string Absolute(const std::string& dir) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(dir, ec), ec);
  return ec ? fs::absolute(dir).lexically_normal().string() : p.string();
}

std::optional<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

pid_t ReadPid(const std::string& path) {
  auto text = ReadSmallFile(path);
  if (!text) return 0;
  char* end = nullptr;
  long v = std::strtol(text->c_str(), &end, 10);
  if (end == text->c_str() || v <= 1 || v > 1 << 30) return 0;
  return static_cast<pid_t>(v);
}

// True if `pid` is a live (not zombie) process whose command line names
// `node_dir`: guards against signalling a recycled pid.
bool IsNodeProcess(pid_t pid, const std::string& node_dir) {
  if (pid <= 1) return false;
  int status = 0;
  ::waitpid(pid, &status, WNOHANG);  // reaps it if it is our exited child
  auto stat = ReadSmallFile("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return false;
  size_t paren = stat->rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat->size()) return false;
  char state = (*stat)[paren + 2];
  if (state == 'Z' || state == 'X') return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::string arg;
  while (std::getline(in, arg, '\0')) {
    if (arg == node_dir || arg == "--data-dir=" + node_dir) return true;
  }
  return false;
}

// "tcp://127.0.0.1:40001" -> 40001; nullopt for anything else.
std::optional<int> LoopbackPort(const std::string& endpoint) {
  const std::string prefix = "tcp://127.0.0.1:";
  if (endpoint.rfind(prefix, 0) != 0) return std::nullopt;
  std::string port = endpoint.substr(prefix.size());
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  int p = std::stoi(port);
  if (p <= 0 || p > 65535) return std::nullopt;
  return p;
}

bool AcceptsTcp(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return ok;
}

bool IsExecutable(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

// Forks and execs one detached node. The child reports an exec failure's
// errno through a close-on-exec pipe, so "binary not runnable" is an error
// here rather than a silent early exit.
Result<pid_t> SpawnNode(const std::string& binary, const std::vector<std::string>& args,
                        const std::string& log_path) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (devnull < 0) return Status::FromErrno(errno, "open /dev/null");
  int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) {
    Status st = Status::FromErrno(errno, "open " + log_path);
    ::close(devnull);
    return st;
  }
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) {
    Status st = Status::FromErrno(errno, "pipe");
    ::close(devnull);
    ::close(log);
    return st;
  }
  pid_t pid = ::fork();
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    ::setsid();
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGQUIT}) ::signal(sig, SIG_DFL);
    ::dup2(devnull, 0);
    ::dup2(log, 1);
    ::dup2(log, 2);
    ::execv(binary.c_str(), argv.data());
    int err = errno;
    ssize_t ignored = ::write(pipefd[1], &err, sizeof(err));
    (void)ignored;
    ::_exit(127);
  }
  int fork_errno = errno;
  ::close(devnull);
  ::close(log);
  ::close(pipefd[1]);
  if (pid < 0) {
    ::close(pipefd[0]);
    return Status::FromErrno(fork_errno, "fork");
  }
  int child_err = 0;
  ssize_t n;
  do {
    n = ::read(pipefd[0], &child_err, sizeof(child_err));
  } while (n < 0 && errno == EINTR);
  ::close(pipefd[0]);
  if (n == static_cast<ssize_t>(sizeof(child_err))) {
    ::waitpid(pid, nullptr, 0);
    return Status::FromErrno(child_err, "exec " + binary);
  }
  return pid;
}

// True while `pid` runs. Our own children are checked with waitpid (which
// also reaps them, whatever they exec'd); others by IsNodeProcess.
bool StillRunning(pid_t pid, const std::string& node_dir, bool own_child) {
  if (!own_child) return IsNodeProcess(pid, node_dir);
  int status = 0;
  pid_t r = ::waitpid(pid, &status, WNOHANG);
  return r == 0;
}

// Nodes run in their own session (SpawnNode), so the process group reaches
// anything they started too; a node started some other way gets the signal
// itself.
void SignalNode(pid_t pid, int sig) {
  if (::kill(-pid, sig) != 0) ::kill(pid, sig);
}

// SIGTERM, then SIGKILL after `timeout_ms`. Returns how many needed SIGKILL.
int TerminatePids(const std::vector<std::pair<pid_t, std::string>>& procs, int timeout_ms,
                  bool own_children) {
  for (const auto& [pid, dir] : procs) {
    SignalNode(pid, SIGTERM);
    SignalNode(pid, SIGCONT);  // a stopped node handles SIGTERM only once resumed
  }
  std::vector<bool> running(procs.size(), true);
  auto any_alive = [&] {
    bool any = false;
    for (size_t i = 0; i < procs.size(); ++i) {
      if (running[i]) running[i] = StillRunning(procs[i].first, procs[i].second, own_children);
      any = any || running[i];
    }
    return any;
  };
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (any_alive() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
  }
  int killed = 0;
  for (size_t i = 0; i < procs.size(); ++i) {
    if (running[i]) {
      SignalNode(procs[i].first, SIGKILL);
      ++killed;
    }
  }
  deadline = Clock::now() + std::chrono::seconds(5);
  while (killed > 0 && any_alive() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
  }
  return killed;
}

std::string FailWithLog(const std::string& what, const std::string& node_dir) {
  std::string msg = what + "\n--- last lines of " + node_dir + "/log ---\n";
  std::string tail = TailFile(node_dir + "/log", kLogTailLines);
  msg += tail.empty() ? "(empty)\n" : tail;
  return msg;
}

}  // namespace

std::string TailFile(const std::string& path, int max_lines) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  std::streamoff start = std::max<std::streamoff>(0, size - 64 * 1024);
  in.seekg(start);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t pos = text.size();
  if (pos > 0 && text[pos - 1] == '\n') --pos;
  for (int lines = 0; pos > 0; --pos) {
    if (text[pos - 1] == '\n' && ++lines == max_lines) break;
  }
  std::string tail = text.substr(pos);
  if (!tail.empty() && tail.back() != '\n') tail += '\n';
  return tail;
}

Result<std::string> FindNodeBinary(const std::string& flag) {
  std::vector<std::string> tried;
  auto consider = [&](const std::string& path) {
    tried.push_back(path);
    return IsExecutable(path);
  };
  if (!flag.empty()) {
    if (consider(flag)) return Absolute(flag);
    return Status::NotFound("--node-binary " + flag + " is not an executable file");
  }
  if (const char* env = std::getenv("SHARDFS_NODE"); env && *env) {
    if (consider(env)) return Absolute(env);
    return Status::NotFound(std::string("$SHARDFS_NODE=") + env + " is not an executable file");
  }
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    fs::path dir = self.parent_path();
    if (consider((dir / "shardfs-node").string())) return (dir / "shardfs-node").string();
    fs::path tree = (dir / ".." / "netnode" / "shardfs-node").lexically_normal();
    if (consider(tree.string())) return tree.string();
  }
  if (const char* path = std::getenv("PATH")) {
    std::stringstream ss(path);
    std::string part;
    while (std::getline(ss, part, ':')) {
      if (part.empty()) continue;
      std::string candidate = part + "/shardfs-node";
      if (IsExecutable(candidate)) return candidate;
    }
    tried.push_back("$PATH");
  }
  std::string msg = "shardfs-node not found (use --node-binary or $SHARDFS_NODE); tried:";
  for (const std::string& t : tried) msg += " " + t;
  return Status::NotFound(msg);
}

std::vector<LocalNode> LocalClusterStatus(const std::string& dir_in) {
  std::string dir = Absolute(dir_in);
  std::vector<LocalNode> nodes;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("node-", 0) != 0 || !entry.is_directory()) continue;
    std::string num = name.substr(5);
    if (num.empty() || num.size() > 6 ||
        !std::all_of(num.begin(), num.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    LocalNode node;
    node.index = std::stoi(num);
    node.dir = NodeDir(dir, node.index);
    node.pid = ReadPid(node.dir + "/pid");
    node.endpoint = ReadSmallFile(node.dir + "/endpoint").value_or("");
    node.alive = IsNodeProcess(node.pid, node.dir);
    nodes.push_back(std::move(node));
  }
  std::sort(nodes.begin(), nodes.end(),
            [](const LocalNode& a, const LocalNode& b) { return a.index < b.index; });
  return nodes;
}

Result<StopReport> StopLocalCluster(const std::string& dir_in, int timeout_ms) {
  std::string dir = Absolute(dir_in);
  if (!fs::is_directory(dir)) return Status::NotFound(dir + ": no such directory");
  StopReport report;
  std::vector<std::pair<pid_t, std::string>> live;
  for (const LocalNode& node : LocalClusterStatus(dir)) {
    if (node.alive) {
      live.emplace_back(node.pid, node.dir);
    } else if (node.pid != 0) {
      ++report.not_running;
    }
  }
  report.killed = TerminatePids(live, timeout_ms, /*own_children=*/false);
  report.stopped = static_cast<int>(live.size()) - report.killed;
  for (const LocalNode& node : LocalClusterStatus(dir)) {
    if (node.alive) {
      return Status::Busy("node-" + std::to_string(node.index) + " (pid " +
                          std::to_string(node.pid) + ") survived SIGKILL");
    }
    ::unlink((node.dir + "/pid").c_str());
  }
  return report;
}

Result<LocalCluster> StartLocalCluster(const LocalClusterOptions& opts) {
  if (opts.nodes < 1) return Status::InvalidArgument("--nodes must be at least 1");
  if (opts.k < 1 || opts.m < 0 || opts.k + opts.m > 64) {
    return Status::InvalidArgument("need k >= 1, m >= 0, k + m <= 64");
  }
  if (opts.zones < 0) return Status::InvalidArgument("--zones must be >= 0");
  if (opts.dir.empty()) return Status::InvalidArgument("--dir is required");
  std::string dir = Absolute(opts.dir);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::IOError("create " + dir + ": " + ec.message(), ec.value());

  for (const LocalNode& node : LocalClusterStatus(dir)) {
    if (node.alive) {
      return Status::Exists("a cluster in " + dir + " is already running (node-" +
                            std::to_string(node.index) + " pid " + std::to_string(node.pid) +
                            "); run 'shardctl cluster stop --dir " + dir + "' first");
    }
  }
  ASSIGN_OR_RETURN(std::string binary, FindNodeBinary(opts.node_binary));
  if (opts.nodes < opts.k + opts.m) {
    LOG_WARN("{} nodes < k + m = {}: the shards of a segment cannot all go to distinct nodes",
             opts.nodes, opts.k + opts.m);
  }
  int zones = opts.zones == 0 ? opts.nodes : opts.zones;

  LocalCluster cluster;
  cluster.dir = dir;
  cluster.config_path = dir + "/client.conf";
  std::vector<std::pair<pid_t, std::string>> started;
  auto fail = [&](const Status& st) -> Status {
    TerminatePids(started, 2000, /*own_children=*/true);
    for (const auto& p : started) ::unlink((p.second + "/pid").c_str());
    return st;
  };

  // Waits until nodes [from, to) have written their endpoint and accept TCP.
  auto wait_ready = [&](size_t from, size_t to) -> Status {
    auto deadline = Clock::now() + std::chrono::milliseconds(opts.start_timeout_ms);
    for (size_t i = from; i < to; ++i) {
      LocalNode& node = cluster.nodes[i];
      for (;;) {
        int status = 0;
        if (::waitpid(node.pid, &status, WNOHANG) == node.pid) {
          std::string how = WIFEXITED(status)
                                ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                : "was killed by signal " + std::to_string(WTERMSIG(status));
          return Status::Unavailable(FailWithLog(
              "node-" + std::to_string(node.index) + " " + how + " during start-up", node.dir));
        }
        auto ep = ReadSmallFile(node.dir + "/endpoint");
        if (ep && !ep->empty()) {
          auto port = LoopbackPort(*ep);
          if (!port || AcceptsTcp(*port)) {
            node.endpoint = *ep;
            break;
          }
        }
        if (Clock::now() >= deadline) {
          std::string what = "node-" + std::to_string(node.index) + " did not write " + node.dir +
                             "/endpoint (or accept connections) within " +
                             std::to_string(opts.start_timeout_ms) + " ms";
          return Status::TimedOut(FailWithLog(what, node.dir));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(kPollMs));
      }
    }
    return Status::OK();
  };

  // SECURITY.md §2: one network per cluster dir, kept across restarts in
  // DIR/network.token (the client's network file); every node's data dir
  // gets a copy before its first start. insecure_no_curve (or
  // SHARDFS_BENCH_NO_CURVE=1) turns CURVE off on both sides (benchmark
  // comparisons only).
  const char* no_curve_env = std::getenv("SHARDFS_BENCH_NO_CURVE");
  const bool no_curve = opts.insecure_no_curve ||
                        (no_curve_env != nullptr && std::string(no_curve_env) == "1");
  const std::string network_file = dir + "/network.token";
  JoinToken network;
  if (!no_curve) {
    auto loaded = LoadNetworkFile(network_file);
    if (loaded.ok()) {
      network = *loaded;
    } else if (loaded.status().IsNotFound()) {
      Result<NetworkSecret> secret = NewNetworkSecret();
      if (!secret.ok()) return secret.status();
      network.secret = *secret;
      if (Status st = WriteNetworkFile(network_file, network); !st.ok()) return st;
    } else {
      return loaded.status();
    }
  }

  // Node 1 first, so the others can name it as their bootstrap peer.
  for (int i = 1; i <= opts.nodes; ++i) {
    LocalNode node;
    node.index = i;
    node.dir = NodeDir(dir, i);
    fs::create_directories(node.dir, ec);
    if (ec) return fail(Status::IOError("create " + node.dir + ": " + ec.message(), ec.value()));
    if (!no_curve) {
      auto stored = LoadNetworkFile(node.dir + "/network");
      if (!stored.ok() || stored->secret != network.secret) {
        if (Status st = WriteNetworkFile(node.dir + "/network", network); !st.ok()) {
          return fail(st);
        }
      }
    }
    ::unlink((node.dir + "/endpoint").c_str());
    ::unlink((node.dir + "/pid").c_str());
    // clang-format off
    std::vector<std::string> args = {
        "--data-dir", node.dir,
        "--listen", "tcp://127.0.0.1:0",
        "--zone", "zone-" + std::to_string((i - 1) % zones + 1),
        "--pid-file", node.dir + "/pid",
        "--log-level", opts.node_log_level,
    };
    // clang-format on
    if (!opts.capacity.empty()) args.insert(args.end(), {"--capacity", opts.capacity});
    if (opts.down_after_s > 0) {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%g", opts.down_after_s);
      args.insert(args.end(), {"--down-after", buf});
    }
    if (no_curve) args.push_back("--insecure-no-curve");
    args.insert(args.end(), opts.node_args.begin(), opts.node_args.end());
    if (i > 1) args.insert(args.end(), {"--peer", cluster.nodes[0].endpoint});
    Result<pid_t> pid = SpawnNode(binary, args, node.dir + "/log");
    if (!pid.ok()) return fail(pid.status().With("starting node-" + std::to_string(i)));
    node.pid = *pid;
    started.emplace_back(node.pid, node.dir);
    cluster.nodes.push_back(std::move(node));
    if (i == 1) {
      if (Status st = wait_ready(0, 1); !st.ok()) return fail(st);
    }
  }
  if (Status st = wait_ready(1, cluster.nodes.size()); !st.ok()) return fail(st);

  // A node that did not write its pid file still gets one: stop needs it.
  for (LocalNode& node : cluster.nodes) {
    node.alive = true;
    if (ReadPid(node.dir + "/pid") != node.pid) {
      if (Status st = WriteFileAtomic(node.dir + "/pid", std::to_string(node.pid) + "\n");
          !st.ok()) {
        return fail(st);
      }
    }
  }

  ClientConfig cfg;
  cfg.key_file = dir + "/volume.key";
  cfg.identity_file = dir + "/client.id";
  cfg.k = opts.k;
  cfg.m = opts.m;
  for (const LocalNode& node : cluster.nodes) cfg.nodes.push_back(node.endpoint);
  if (no_curve) {
    cfg.insecure_no_curve = true;
  } else {
    cfg.network_file = network_file;
  }
  if (fs::exists(cfg.key_file)) {
    Result<Key> key = LoadKeyFile(cfg.key_file);
    if (!key.ok()) return fail(key.status().With("existing key file"));
  } else {
    Result<Key> key = CreateKeyFile(cfg.key_file);
    if (!key.ok()) return fail(key.status().With("creating key file"));
  }
  if (Status st = WriteClientConfig(cluster.config_path, cfg); !st.ok()) return fail(st);
  return cluster;
}

}  // namespace shardfs::shardctl
