// Node configuration. See node_config.h; documented in shardfs.conf(5).
#include "netnode/node_config.h"

#include <toml++/toml.h>

#include <filesystem>
#include <set>

#include "lib/curve_keys.h"
#include "lib/log.h"
#include "lib/wire_format.h"

namespace shardfs {
namespace {

Status Bad(const std::string& path, std::string_view key, const std::string& why) {
  return Status::InvalidArgument(path + ": [node] " + std::string(key) + ": " + why);
}

bool ValidEndpoint(std::string_view e) {
  for (std::string_view scheme : {"tcp://", "ipc://", "inproc://"}) {
    if (e.size() > scheme.size() && e.substr(0, scheme.size()) == scheme) return true;
  }
  return false;
}

}  // namespace

Result<uint64_t> ParseByteSize(std::string_view text) {
  std::string_view s = text;
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  auto lower = [](char c) { return static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c); };
  if (s.size() >= 2 && lower(s[s.size() - 2]) == 'i' && lower(s.back()) == 'b') {
    s.remove_suffix(2);
  } else if (!s.empty() && lower(s.back()) == 'b') {
    s.remove_suffix(1);
  }
  int shift = 0;
  if (!s.empty()) {
    switch (lower(s.back())) {
      case 'k':
        shift = 10;
        break;
      case 'm':
        shift = 20;
        break;
      case 'g':
        shift = 30;
        break;
      case 't':
        shift = 40;
        break;
      default:
        break;
    }
    if (shift) s.remove_suffix(1);
  }
  if (s.empty() || s.size() > 20) {
    return Status::InvalidArgument("bad size \"" + std::string(text) + "\"");
  }
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') {
      return Status::InvalidArgument("bad size \"" + std::string(text) +
                                     "\" (expected a number with an optional K, M, G or T)");
    }
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10)
      return Status::InvalidArgument("size too large: " + std::string(text));
    v = v * 10 + d;
  }
  if (shift && v > (UINT64_MAX >> shift)) {
    return Status::InvalidArgument("size too large: " + std::string(text));
  }
  return v << shift;
}

Status LoadNodeConfigFile(const std::string& path, NodeConfig* cfg) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    return Status::InvalidArgument(path + ":" + std::to_string(where.line) + ":" +
                                   std::to_string(where.column) + ": " +
                                   std::string(e.description()));
  } catch (const std::exception& e) {
    return Status::InvalidArgument(path + ": " + e.what());
  }
  for (auto& [key, value] : root) {
    if (key.str() != "node") {
      return Status::InvalidArgument(path + ": unknown section or key \"" + std::string(key.str()) +
                                     "\" (a node reads only [node])");
    }
  }
  const toml::table* node = root["node"].as_table();
  if (node == nullptr) {
    return Status::InvalidArgument(path + ": no [node] section");
  }
  static const std::set<std::string, std::less<>> kKeys = {
      "data_dir",         "listen",           "advertise",      "zone",
      "capacity",         "peers",            "workers",        "log_level",
      "heartbeat_ms",     "down_after",       "repair_threshold", "repair_bandwidth",
      "audit_interval",   "scrub_rate",       "scrub_interval", "join",
      "max_requests_per_peer", "insecure_no_curve"};
  for (auto& [key, value] : *node) {
    if (!kKeys.count(key.str())) return Bad(path, key.str(), "unknown key");
  }

  auto get_string = [&](std::string_view key, std::string* out) -> Status {
    const toml::node* n = node->get(key);
    if (n == nullptr) return Status::OK();
    auto v = n->value<std::string>();
    if (!v || !n->is_string()) return Bad(path, key, "expected a string");
    *out = *v;
    return Status::OK();
  };
  RETURN_IF_ERROR(get_string("data_dir", &cfg->data_dir));
  if (!cfg->data_dir.empty() && cfg->data_dir[0] != '/') {
    // Relative to the file, so a config moves with its data.
    cfg->data_dir =
        (std::filesystem::absolute(path).parent_path() / cfg->data_dir).lexically_normal();
  }
  RETURN_IF_ERROR(get_string("listen", &cfg->listen));
  RETURN_IF_ERROR(get_string("advertise", &cfg->advertise));
  RETURN_IF_ERROR(get_string("zone", &cfg->zone));
  RETURN_IF_ERROR(get_string("log_level", &cfg->log_level));
  RETURN_IF_ERROR(get_string("join", &cfg->join));
  if (const toml::node* n = node->get("insecure_no_curve")) {
    if (!n->is_boolean()) return Bad(path, "insecure_no_curve", "expected true or false");
    cfg->insecure_no_curve = n->as_boolean()->get();
  }

  if (const toml::node* n = node->get("capacity")) {
    if (auto i = n->value_exact<int64_t>()) {
      if (*i < 0) return Bad(path, "capacity", "must not be negative");
      cfg->capacity_bytes = static_cast<uint64_t>(*i);
    } else if (auto s = n->value_exact<std::string>()) {
      auto v = ParseByteSize(*s);
      if (!v.ok()) return Bad(path, "capacity", v.status().message());
      cfg->capacity_bytes = *v;
    } else {
      return Bad(path, "capacity", "expected bytes as an integer or a string like \"100G\"");
    }
  }
  // Sizes: an integer or a string with a K/M/G/T suffix.
  auto get_size = [&](std::string_view key, uint64_t* out) -> Status {
    const toml::node* n = node->get(key);
    if (n == nullptr) return Status::OK();
    if (auto i = n->value_exact<int64_t>()) {
      if (*i < 0) return Bad(path, key, "must not be negative");
      *out = static_cast<uint64_t>(*i);
    } else if (auto str = n->value_exact<std::string>()) {
      auto v = ParseByteSize(*str);
      if (!v.ok()) return Bad(path, key, v.status().message());
      *out = *v;
    } else {
      return Bad(path, key, "expected bytes as an integer or a string like \"8M\"");
    }
    return Status::OK();
  };
  auto get_seconds = [&](std::string_view key, double* out) -> Status {
    const toml::node* n = node->get(key);
    if (n == nullptr) return Status::OK();
    auto v = n->value<double>();
    if (!v || !(n->is_integer() || n->is_floating_point())) {
      return Bad(path, key, "expected a number of seconds");
    }
    *out = *v;
    return Status::OK();
  };
  auto get_int = [&](std::string_view key, int* out) -> Status {
    const toml::node* n = node->get(key);
    if (n == nullptr) return Status::OK();
    auto i = n->value_exact<int64_t>();
    if (!i || *i < 0 || *i > 1 << 30) return Bad(path, key, "expected a non-negative integer");
    *out = static_cast<int>(*i);
    return Status::OK();
  };
  RETURN_IF_ERROR(get_int("heartbeat_ms", &cfg->heartbeat_ms));
  RETURN_IF_ERROR(get_seconds("down_after", &cfg->down_after_s));
  RETURN_IF_ERROR(get_int("repair_threshold", &cfg->repair_threshold));
  RETURN_IF_ERROR(get_size("repair_bandwidth", &cfg->repair_bandwidth));
  RETURN_IF_ERROR(get_seconds("audit_interval", &cfg->audit_interval_s));
  RETURN_IF_ERROR(get_size("scrub_rate", &cfg->scrub_rate));
  RETURN_IF_ERROR(get_seconds("scrub_interval", &cfg->scrub_interval_s));
  RETURN_IF_ERROR(get_int("max_requests_per_peer", &cfg->max_requests_per_peer));

  if (const toml::node* n = node->get("workers")) {
    auto i = n->value_exact<int64_t>();
    if (!i) return Bad(path, "workers", "expected an integer");
    if (*i < 1 || *i > 64) return Bad(path, "workers", "must be 1..64");
    cfg->workers = static_cast<int>(*i);
  }
  if (const toml::node* n = node->get("peers")) {
    const toml::array* arr = n->as_array();
    if (arr == nullptr) return Bad(path, "peers", "expected an array of endpoint strings");
    cfg->peers.clear();
    for (const toml::node& e : *arr) {
      auto s = e.value_exact<std::string>();
      if (!s) return Bad(path, "peers", "expected an array of endpoint strings");
      cfg->peers.push_back(*s);
    }
  }
  return Status::OK();
}

Status FinishNodeConfig(NodeConfig* cfg) {
  auto bad = [](const std::string& what) { return Status::InvalidArgument(what); };
  if (cfg->data_dir.empty()) return bad("no data dir: set --data-dir or [node] data_dir");
  std::error_code ec;
  auto abs = std::filesystem::absolute(cfg->data_dir, ec);
  if (ec) return bad("data dir " + cfg->data_dir + ": " + ec.message());
  cfg->data_dir = abs.lexically_normal().string();
  if (!ValidEndpoint(cfg->listen)) {
    return bad("listen endpoint \"" + cfg->listen + "\" is not tcp://HOST:PORT or ipc://PATH");
  }
  if (!cfg->advertise.empty() && !ValidEndpoint(cfg->advertise)) {
    return bad("advertise endpoint \"" + cfg->advertise + "\" is not tcp://HOST:PORT");
  }
  for (const std::string& p : cfg->peers) {
    if (!ValidEndpoint(p)) return bad("peer \"" + p + "\" is not tcp://HOST:PORT");
  }
  if (cfg->zone.empty() || cfg->zone.size() > wire::kMaxStringField) {
    return bad("zone must be 1.." + std::to_string(wire::kMaxStringField) + " characters");
  }
  if (cfg->workers < 1 || cfg->workers > 64) return bad("workers must be 1..64");
  if (cfg->max_requests_per_peer < 1 || cfg->max_requests_per_peer > 100000) {
    return bad("max-requests-per-peer must be 1..100000");
  }
  if (!cfg->join.empty()) {
    auto t = ParseJoinToken(cfg->join);
    if (!t.ok()) return bad("--join: " + t.status().message());
  }
  if (cfg->insecure_no_curve && cfg->listen.rfind("tcp://127.0.0.1:", 0) != 0) {
    return bad("--insecure-no-curve is a benchmark knob: it needs a tcp://127.0.0.1:PORT listen "
               "endpoint");
  }
  if (cfg->heartbeat_ms < 10 || cfg->heartbeat_ms > 600000) {
    return bad("heartbeat must be 10..600000 ms");
  }
  // Suspect comes after 3.5 heartbeats; down must come after suspect.
  if (!(cfg->down_after_s * 1000 >= 4 * cfg->heartbeat_ms) || cfg->down_after_s > 1e8) {
    return bad("down-after must be at least 4 heartbeats");
  }
  if (cfg->repair_threshold < 0 || cfg->repair_threshold > 64) {
    return bad("repair threshold must be 0..64 (0: n)");
  }
  if (!(cfg->audit_interval_s >= 0.1) || cfg->audit_interval_s > 1e7) {
    return bad("audit interval must be 0.1 s or more");
  }
  if (!(cfg->scrub_interval_s >= 0) || cfg->scrub_interval_s > 1e9) {
    return bad("scrub interval must be 0 s or more");
  }
  LogLevel level;
  if (!ParseLogLevel(cfg->log_level, &level)) {
    return bad("log level \"" + cfg->log_level + "\" is not debug, info, warning or error");
  }
  return Status::OK();
}

}  // namespace shardfs
