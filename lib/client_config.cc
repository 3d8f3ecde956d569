// Client configuration file: parse, validate, write. See client_config.h;
// the keys are documented in shardfs.conf(5).
//
// Every error names the file and the key ("client.conf: volume.k: must be
// between 1 and 64"), because the user fixes it by editing that line.
// Unknown tables and keys are refused: a typo must not silently fall back to
// a default.
//
// Thread-safety: pure functions over the file system.
#include "lib/client_config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string_view>

#include "lib/client_identity.h"
#include "lib/wire_format.h"

namespace shardfs {
namespace {

constexpr int64_t kMinSegmentSize = 64 * 1024;
constexpr int64_t kMaxSegmentSize = 16 * 1024 * 1024;
constexpr int64_t kMinTimeoutMs = 100;
constexpr int64_t kMaxTimeoutMs = 600000;

class ConfigParser {
 public:
  explicit ConfigParser(const std::string& path) : path_(path) {
    dir_ = std::filesystem::path(path).parent_path();
  }

  Status Error(std::string_view key, std::string_view what) const {
    return Status::InvalidArgument(path_ + ": " + std::string(key) + ": " + std::string(what));
  }

  // Resolves a path relative to the config file's directory.
  std::string Resolve(const std::string& p) const {
    std::filesystem::path fp(p);
    if (fp.is_absolute() || dir_.empty()) return fp.lexically_normal().string();
    return (dir_ / fp).lexically_normal().string();
  }

  Status GetString(const toml::table& t, std::string_view table, std::string_view key,
                   bool required, std::string* out) const {
    const toml::node* n = t.get(key);
    const std::string full = std::string(table) + "." + std::string(key);
    if (n == nullptr) return required ? Error(full, "missing (required)") : Status::OK();
    auto v = n->value<std::string>();
    if (!v) return Error(full, "must be a string");
    if (v->empty()) return Error(full, "must not be empty");
    *out = Resolve(*v);
    return Status::OK();
  }

  Status GetInt(const toml::table& t, std::string_view table, std::string_view key, int64_t lo,
                int64_t hi, int64_t* out) const {
    const toml::node* n = t.get(key);
    if (n == nullptr) return Status::OK();  // keep the default
    const std::string full = std::string(table) + "." + std::string(key);
    if (!n->is_integer()) return Error(full, "must be an integer");
    int64_t v = n->as_integer()->get();
    if (v < lo || v > hi) {
      return Error(full, "must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                             " (got " + std::to_string(v) + ")");
    }
    *out = v;
    return Status::OK();
  }

  Status CheckKeys(const toml::table& t, std::string_view table,
                   std::initializer_list<std::string_view> known) const {
    for (const auto& [k, v] : t) {
      bool ok = false;
      for (std::string_view name : known) ok = ok || k.str() == name;
      if (!ok) return Error(std::string(table) + "." + std::string(k.str()), "unknown key");
    }
    return Status::OK();
  }

  Status Parse(const toml::table& root, ClientConfig* cfg) const {
    RETURN_IF_ERROR(CheckKeys(root, "(top level)", {"volume", "cluster"}));
    const toml::table* vol = root["volume"].as_table();
    const toml::table* cl = root["cluster"].as_table();
    if (vol == nullptr) return Error("volume", "missing [volume] table");
    if (cl == nullptr) return Error("cluster", "missing [cluster] table");
    RETURN_IF_ERROR(
        CheckKeys(*vol, "volume", {"key_file", "identity_file", "k", "m", "segment_size"}));
    RETURN_IF_ERROR(CheckKeys(*cl, "cluster",
                              {"nodes", "timeout_ms", "network_file", "insecure_no_curve"}));
    RETURN_IF_ERROR(GetString(*cl, "cluster", "network_file", false, &cfg->network_file));
    if (const toml::node* n = cl->get("insecure_no_curve")) {
      if (!n->is_boolean()) return Error("cluster.insecure_no_curve", "must be true or false");
      cfg->insecure_no_curve = n->as_boolean()->get();
    }

    RETURN_IF_ERROR(GetString(*vol, "volume", "key_file", true, &cfg->key_file));
    cfg->identity_file = Resolve("client.id");
    RETURN_IF_ERROR(GetString(*vol, "volume", "identity_file", false, &cfg->identity_file));
    int64_t k = cfg->k, m = cfg->m, seg = static_cast<int64_t>(cfg->segment_size);
    int64_t timeout = cfg->timeout_ms;
    RETURN_IF_ERROR(GetInt(*vol, "volume", "k", 1, wire::kMaxShards, &k));
    RETURN_IF_ERROR(GetInt(*vol, "volume", "m", 0, wire::kMaxShards - 1, &m));
    if (k + m > wire::kMaxShards) {
      return Error("volume.k + volume.m", "must be at most " + std::to_string(wire::kMaxShards) +
                                              " (got " + std::to_string(k + m) + ")");
    }
    RETURN_IF_ERROR(GetInt(*vol, "volume", "segment_size", kMinSegmentSize, kMaxSegmentSize, &seg));
    RETURN_IF_ERROR(GetInt(*cl, "cluster", "timeout_ms", kMinTimeoutMs, kMaxTimeoutMs, &timeout));
    cfg->k = static_cast<int>(k);
    cfg->m = static_cast<int>(m);
    cfg->segment_size = static_cast<size_t>(seg);
    cfg->timeout_ms = static_cast<int>(timeout);

    const toml::array* nodes = (*cl)["nodes"].as_array();
    if (cl->get("nodes") == nullptr) return Error("cluster.nodes", "missing (required)");
    if (nodes == nullptr) return Error("cluster.nodes", "must be an array of endpoint strings");
    cfg->nodes.clear();
    for (const toml::node& n : *nodes) {
      auto v = n.value<std::string>();
      if (!v || v->empty()) return Error("cluster.nodes", "every entry must be a non-empty string");
      if (v->find("://") == std::string::npos) {
        return Error("cluster.nodes", "'" + *v + "' is not a ZeroMQ endpoint (tcp://host:port)");
      }
      cfg->nodes.push_back(*v);
    }
    if (cfg->nodes.empty()) return Error("cluster.nodes", "needs at least one node endpoint");
    return Status::OK();
  }

 private:
  std::string path_;
  std::filesystem::path dir_;
};

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

}  // namespace

Result<ClientConfig> LoadClientConfig(const std::string& path) {
  ClientConfig cfg;
  cfg.path = path;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return Status::NotFound(path + ": config file not found");
  }
  try {
    toml::table root = toml::parse_file(path);
    RETURN_IF_ERROR(ConfigParser(path).Parse(root, &cfg));
    RETURN_IF_ERROR(LoadClientCurveKeys(&cfg));
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << path << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
        << e.description();
    return Status::InvalidArgument(msg.str());
  } catch (const std::bad_alloc&) {
    return Status::IOError(path + ": out of memory while parsing", ENOMEM);
  }
  return cfg;
}

Status LoadClientCurveKeys(ClientConfig* cfg) {
  const std::string where = cfg->path.empty() ? "client config" : cfg->path;
  if (cfg->network_file.empty()) {
    if (const char* env = std::getenv("SHARDFS_NETWORK_FILE"); env && *env) {
      cfg->network_file = env;
    }
  }
  if (cfg->insecure_no_curve) {
    cfg->curve = {};
    return Status::OK();
  }
  if (cfg->network_file.empty()) {
    return Status::InvalidArgument(
        where + ": cluster.network_file: missing: this client holds no network key, and nodes "
                "refuse it (get one with 'shardctl invite --dir NODE_DATA_DIR --output FILE')");
  }
  RETURN_IF_ERROR(CheckCurveAvailable());
  auto token = LoadNetworkFile(cfg->network_file);
  if (!token.ok()) return token.status().With(where + ": cluster.network_file");
  auto id = LoadOrCreateClientIdentity(cfg->identity_file);
  if (!id.ok()) return id.status().With(where + ": volume.identity_file");
  ASSIGN_OR_RETURN(cfg->curve,
                   ClientKeysFor(token->secret, CurveKeypair{id->public_key, id->secret_key}));
  SetDefaultCurveClientKeys(cfg->curve);
  SetDefaultNetworkFile(cfg->network_file);
  return Status::OK();
}

Status WriteClientConfig(const std::string& path, const ClientConfig& cfg) {
  std::string text;
  try {
    toml::array nodes;
    for (const std::string& n : cfg.nodes) nodes.push_back(n);
    toml::table cluster{{"nodes", nodes}, {"timeout_ms", cfg.timeout_ms}};
    std::string network = cfg.network_file.empty() ? DefaultNetworkFile() : cfg.network_file;
    if (!network.empty()) cluster.insert("network_file", network);
    if (cfg.insecure_no_curve) cluster.insert("insecure_no_curve", true);
    toml::table root{
        {"volume", toml::table{{"key_file", cfg.key_file},
                               {"identity_file", cfg.identity_file},
                               {"k", cfg.k},
                               {"m", cfg.m},
                               {"segment_size", static_cast<int64_t>(cfg.segment_size)}}},
        {"cluster", cluster},
    };
    std::ostringstream out;
    out << "# shardfs client configuration (shardfs.conf(5))\n" << root << "\n";
    text = out.str();
  } catch (const std::bad_alloc&) {
    return Status::IOError(path + ": out of memory", ENOMEM);
  }

  // Atomic replace: tmp, fsync, rename, fsync the directory.
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno(errno, "create " + tmp);
  Status st = WriteAll(fd, text, tmp);
  if (st.ok() && ::fchmod(fd, 0600) != 0) st = Status::FromErrno(errno, "chmod " + tmp);
  if (st.ok() && ::fsync(fd) != 0) st = Status::FromErrno(errno, "fsync " + tmp);
  if (::close(fd) != 0 && st.ok()) st = Status::FromErrno(errno, "close " + tmp);
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    st = Status::FromErrno(errno, "rename " + tmp + " to " + path);
  }
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);  // best effort: the file itself is already durable
    ::close(dfd);
  }
  return Status::OK();
}

}  // namespace shardfs
