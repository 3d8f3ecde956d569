// shardfs-node: the storage daemon (shardfs-node(8)).
//
// Startup order: flags and config (exit 2 when wrong), logging, signals
// blocked in every thread, data dir + lock, identity, shard store
// (reconciles), server bind, membership, repairer, scrubber, endpoint and
// pid files, then wait for SIGTERM/SIGINT (stop) or SIGUSR1 (graceful
// exit: hand every shard off, then stop). Shutdown runs the same steps
// backwards. It stays in the foreground: a service manager or `shardctl
// cluster start` supervises it.
//
// `shardfs-node exit` asks the node running on a data dir for a graceful
// exit (SIGUSR1 to the pid in DATA_DIR/lock) and waits until it is gone.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <optional>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <tuple>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "lib/curve_keys.h"
#include "lib/log.h"
#include "lib/transport.h"
#include "netnode/daemon_files.h"
#include "netnode/identity.h"
#include "netnode/layout.h"
#include "netnode/membership.h"
#include "netnode/node_config.h"
#include "netnode/repairer.h"
#include "netnode/scrubber.h"
#include "netnode/server.h"
#include "netnode/shard_store.h"

namespace shardfs {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;  // could not start or run
constexpr int kExitUsage = 2;    // bad flags or config

struct Flags {
  std::string config;
  std::string data_dir, listen, advertise, zone, capacity, log_level, pid_file;
  std::vector<std::string> peers;
  int workers = 0;
  bool foreground = false;
  int heartbeat_ms = 0, repair_threshold = 0;
  double down_after = 0, audit_interval = 0, scrub_interval = 0;
  std::string repair_bandwidth, scrub_rate;
  std::string join;
  int max_requests_per_peer = 0;
  bool insecure_no_curve = false;
  CLI::App* exit_cmd = nullptr;
  int exit_timeout = 600;
};

// Parses flags into `flags`; returns an exit code when the program should
// stop here (help, version, error), else -1.
int ParseFlags(int argc, char** argv, Flags* flags, CLI::App* app) {
  app->set_version_flag("--version", "shardfs-node 0.1.0");
  app->add_option("-c,--config", flags->config,
                  "Read settings from this TOML file ([node] section)")
      ->type_name("FILE");
  app->add_option("-d,--data-dir", flags->data_dir, "Directory for shards, catalog and identity")
      ->type_name("DIR");
  app->add_option("-l,--listen", flags->listen,
                  "ZeroMQ endpoint to bind (default tcp://127.0.0.1:0; port 0 or * picks one)")
      ->type_name("ENDPOINT");
  app->add_option("--advertise", flags->advertise,
                  "Endpoint given to clients and peers (default: the bound one)")
      ->type_name("ENDPOINT");
  app->add_option("-z,--zone", flags->zone, "Failure-zone label (default \"default\")")
      ->type_name("NAME");
  app->add_option("--capacity", flags->capacity,
                  "Quota on stored shard bytes, e.g. 500G (default: file system size)")
      ->type_name("SIZE");
  app->add_option("-p,--peer", flags->peers, "Bootstrap peer endpoint (repeatable)")
      ->type_name("ENDPOINT")
      ->allow_extra_args(false);
  app->add_option("-w,--workers", flags->workers, "Disk worker threads, 1..64 (default 2)")
      ->type_name("N");
  app->add_option("--log-level", flags->log_level, "debug, info, warning or error (default info)")
      ->type_name("LEVEL");
  app->add_option("--pid-file", flags->pid_file, "Write the process id to this file")
      ->type_name("FILE");
  app->add_flag("-f,--foreground", flags->foreground,
                "Stay in the foreground (the default; accepted for scripts)");
  app->add_option("--heartbeat-ms", flags->heartbeat_ms,
                  "Milliseconds between heartbeats to each peer (default 1000)")
      ->type_name("MS");
  app->add_option("--down-after", flags->down_after,
                  "Seconds a peer may be silent before its shards are rebuilt elsewhere "
                  "(default 1800)")
      ->type_name("SECONDS");
  app->add_option("--repair-threshold", flags->repair_threshold,
                  "Repair a stripe with fewer healthy shards than this, k..n (default 0: n)")
      ->type_name("N");
  app->add_option("--repair-bandwidth", flags->repair_bandwidth,
                  "Shard bytes per second repair may move, e.g. 8M; 0 unlimited (default 8M)")
      ->type_name("SIZE");
  app->add_option("--audit-interval", flags->audit_interval,
                  "Seconds between audit passes; the holders of a healthy stripe take turns (default 60)")
      ->type_name("SECONDS");
  app->add_option("--scrub-rate", flags->scrub_rate,
                  "Bytes per second the scrubber re-reads, e.g. 4M; 0 turns it off (default 4M)")
      ->type_name("SIZE");
  app->add_option("--scrub-interval", flags->scrub_interval,
                  "Seconds before a shard is verified again (default 604800)")
      ->type_name("SECONDS");
  app->add_option("--join", flags->join,
                  "Join the network of this token (from 'shardctl invite'); kept in "
                  "DATA_DIR/network. Without it a new data dir founds a new network")
      ->type_name("TOKEN");
  app->add_option("--max-requests-per-peer", flags->max_requests_per_peer,
                  "Requests one peer key may have in flight before BUSY (default 64)")
      ->type_name("N");
  app->add_flag("--insecure-no-curve", flags->insecure_no_curve,
                "Benchmark only: plain ZeroMQ without CURVE or ZAP; needs a loopback listen "
                "endpoint");
  flags->exit_cmd = app->add_subcommand(
      "exit", "Ask the node running on --data-dir to hand off its shards and stop; wait for it");
  flags->exit_cmd->fallthrough();
  flags->exit_cmd
      ->add_option("--timeout", flags->exit_timeout, "Seconds to wait for the node (default 600)")
      ->type_name("SECONDS");
  try {
    app->parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app->exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  return -1;
}

// File first, flags over it.
Result<NodeConfig> BuildConfig(const Flags& f, const CLI::App& app) {
  NodeConfig cfg;
  if (!f.config.empty()) RETURN_IF_ERROR(LoadNodeConfigFile(f.config, &cfg));
  if (app.count("--data-dir")) cfg.data_dir = f.data_dir;
  if (app.count("--listen")) cfg.listen = f.listen;
  if (app.count("--advertise")) cfg.advertise = f.advertise;
  if (app.count("--zone")) cfg.zone = f.zone;
  if (app.count("--capacity")) {
    auto v = ParseByteSize(f.capacity);
    if (!v.ok()) return v.status().With("--capacity");
    cfg.capacity_bytes = *v;
  }
  if (app.count("--peer")) cfg.peers = f.peers;
  if (app.count("--workers")) cfg.workers = f.workers;
  if (app.count("--log-level")) cfg.log_level = f.log_level;
  cfg.pid_file = f.pid_file;
  if (app.count("--heartbeat-ms")) cfg.heartbeat_ms = f.heartbeat_ms;
  if (app.count("--down-after")) cfg.down_after_s = f.down_after;
  if (app.count("--repair-threshold")) cfg.repair_threshold = f.repair_threshold;
  if (app.count("--audit-interval")) cfg.audit_interval_s = f.audit_interval;
  if (app.count("--scrub-interval")) cfg.scrub_interval_s = f.scrub_interval;
  if (app.count("--join")) cfg.join = f.join;
  if (app.count("--max-requests-per-peer")) cfg.max_requests_per_peer = f.max_requests_per_peer;
  if (f.insecure_no_curve) cfg.insecure_no_curve = true;
  for (auto [flag, text, out] : {std::tuple{"--repair-bandwidth", &f.repair_bandwidth,
                                            &cfg.repair_bandwidth},
                                 std::tuple{"--scrub-rate", &f.scrub_rate, &cfg.scrub_rate}}) {
    if (!app.count(flag)) continue;
    auto v = ParseByteSize(*text);
    if (!v.ok()) return v.status().With(flag);
    *out = *v;
  }
  RETURN_IF_ERROR(FinishNodeConfig(&cfg));
  return cfg;
}

uint64_t WallMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// `shardfs-node exit`: SIGUSR1 to the node holding DATA_DIR/lock, then wait.
int RunExit(const NodeConfig& cfg, int timeout_s) {
  DataLayout layout(cfg.data_dir);
  std::ifstream in(layout.LockFile());
  long pid = 0;
  if (!(in >> pid) || pid <= 1) {
    std::fprintf(stderr, "shardfs-node exit: no node pid in %s\n", layout.LockFile().c_str());
    return kExitFailure;
  }
  // The lock file keeps the pid of a node that has stopped: check it runs.
  auto lock = DataDirLock::Acquire(layout.LockFile());
  if (lock.ok()) {
    std::fprintf(stderr, "shardfs-node exit: no node is running on %s\n", cfg.data_dir.c_str());
    return kExitFailure;
  }
  if (::kill(static_cast<pid_t>(pid), SIGUSR1) != 0) {
    std::fprintf(stderr, "shardfs-node exit: signalling pid %ld: %s\n", pid, std::strerror(errno));
    return kExitFailure;
  }
  std::printf("asked node pid %ld to hand off its shards and stop\n", pid);
  std::fflush(stdout);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    if (DataDirLock::Acquire(layout.LockFile()).ok()) {
      std::printf("node stopped\n");
      return kExitOk;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  std::fprintf(stderr, "shardfs-node exit: node pid %ld still running after %d s\n", pid,
               timeout_s);
  return kExitFailure;
}

// SECURITY.md §2: the network this data dir belongs to, from
// DATA_DIR/network; a --join token is stored there on first start, and a
// data dir with neither founds a new network. nullopt with
// --insecure-no-curve. A token for another network than the stored one is
// refused: a node belongs to one network for its life.
Result<std::optional<JoinToken>> SetUpNetwork(const NodeConfig& cfg, const std::string& root) {
  if (cfg.insecure_no_curve) return std::optional<JoinToken>();
  RETURN_IF_ERROR(CheckCurveAvailable());
  const std::string path = root + "/network";
  auto stored = LoadNetworkFile(path);
  if (!stored.ok() && !stored.status().IsNotFound()) return stored.status();
  if (!cfg.join.empty()) {
    ASSIGN_OR_RETURN(JoinToken token, ParseJoinToken(cfg.join));
    if (stored.ok()) {
      if (stored->secret != token.secret) {
        return Status::InvalidArgument(
            root + " already belongs to network " + NetworkId(stored->secret) +
            "; refusing to join network " + NetworkId(token.secret) + " (use a new data dir)");
      }
      if (stored->endpoint.empty() && !token.endpoint.empty()) {
        RETURN_IF_ERROR(WriteNetworkFile(path, token));
      }
      return std::optional<JoinToken>(token);
    }
    RETURN_IF_ERROR(WriteNetworkFile(path, token));
    LOG_INFO("joined network {} through {}", NetworkId(token.secret),
             token.endpoint.empty() ? "(no bootstrap endpoint)" : token.endpoint);
    return std::optional<JoinToken>(token);
  }
  if (stored.ok()) return std::optional<JoinToken>(*stored);
  JoinToken fresh;
  ASSIGN_OR_RETURN(fresh.secret, NewNetworkSecret());
  RETURN_IF_ERROR(WriteNetworkFile(path, fresh));
  LOG_INFO("founded network {} (secret in {})", NetworkId(fresh.secret), path);
  return std::optional<JoinToken>(fresh);
}

int Run(const NodeConfig& cfg) {
  // Blocked before any thread exists, so every thread inherits the mask and
  // only sigwait() below sees SIGTERM/SIGINT.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  DataLayout layout(cfg.data_dir);
  Status st = MakeDirs(layout.root());
  if (!st.ok()) {
    LOG_ERROR("cannot create data dir: {}", st.ToString());
    return kExitFailure;
  }
  auto lock = DataDirLock::Acquire(layout.LockFile());
  if (!lock.ok()) {
    LOG_ERROR("{}", lock.status().message());
    return kExitFailure;
  }
  // A stale endpoint file would point a waiting script at a dead port.
  unlink(layout.EndpointFile().c_str());

  auto identity = LoadOrCreateNodeIdentity(layout.IdentityFile());
  if (!identity.ok()) {
    LOG_ERROR("identity: {}", identity.status().ToString());
    return kExitFailure;
  }

  auto network = SetUpNetwork(cfg, layout.root());
  if (!network.ok()) {
    LOG_ERROR("network: {}", network.status().ToString());
    return kExitFailure;
  }
  std::vector<std::string> bootstrap = cfg.peers;
  if (network->has_value() && !(*network)->endpoint.empty() &&
      std::find(bootstrap.begin(), bootstrap.end(), (*network)->endpoint) == bootstrap.end()) {
    bootstrap.push_back((*network)->endpoint);
  }

  StoreOptions so;
  so.data_dir = layout.root();
  so.capacity_bytes = cfg.capacity_bytes;
  auto store = ShardStore::Open(std::move(so));
  if (!store.ok()) {
    LOG_ERROR("cannot open the shard store in {}: {}", layout.root(), store.status().ToString());
    return kExitFailure;
  }

  NodeSelf info;
  info.id = identity->id;
  info.zone = cfg.zone;
  info.public_key = identity->public_key;
  ServerOptions opts;
  opts.listen = cfg.listen;
  opts.advertise = cfg.advertise;
  opts.workers = static_cast<size_t>(cfg.workers);
  opts.max_inflight_per_peer = static_cast<size_t>(cfg.max_requests_per_peer);
  RpcOptions rpc_opts;
  if (network->has_value()) {
    auto server_keys = ServerKeysFor((*network)->secret);
    auto client_keys = ClientKeysFor(
        (*network)->secret, CurveKeypair{identity->public_key, identity->secret_key});
    if (!server_keys.ok() || !client_keys.ok()) {
      LOG_ERROR("CURVE keys: {}",
                (server_keys.ok() ? client_keys.status() : server_keys.status()).ToString());
      return kExitFailure;
    }
    opts.curve = *server_keys;
    rpc_opts.curve = *client_keys;
  }

  // The hooks reach membership and repair, which need the bound endpoint
  // and so start after the server; until then they are null.
  std::atomic<Membership*> membership_ptr{nullptr};
  std::atomic<Repairer*> repairer_ptr{nullptr};
  NodeHooks hooks;
  hooks.is_node = [&membership_ptr](NodeId id) {
    Membership* m = membership_ptr.load();
    return m != nullptr && m->StateOf(id).has_value();
  };
  hooks.peers = [&membership_ptr](const wire::PeersRequest& req) {
    Membership* m = membership_ptr.load();
    return m ? m->OnPeers(req) : wire::PeersReply{};
  };
  hooks.stats = [&repairer_ptr] {
    Repairer* r = repairer_ptr.load();
    return r ? r->Stats() : wire::NodeStats{};
  };
  Server server(store->get(), info, opts, hooks);
  st = server.Start();
  if (!st.ok()) {
    LOG_ERROR("{}", st.message());
    return kExitFailure;
  }

  // Node-to-node sockets (membership, audit, repair) all go through this
  // client: CURVE with the node's identity keypair (SECURITY.md §2).
  auto rpc = network->has_value() ? RpcClient::Create(rpc_opts) : RpcClient::CreatePlain();
  if (!rpc.ok()) {
    LOG_ERROR("{}", rpc.status().ToString());
    server.Stop();
    return kExitFailure;
  }
  MembershipOptions mo;
  mo.self_id = info.id;
  mo.self_endpoint = server.advertised_endpoint();
  mo.zone = cfg.zone;
  mo.incarnation = WallMs();
  mo.bootstrap = bootstrap;
  mo.heartbeat = std::chrono::milliseconds(cfg.heartbeat_ms);
  mo.suspect_after = std::chrono::milliseconds(cfg.heartbeat_ms * 7 / 2);
  mo.down_after = std::chrono::milliseconds(static_cast<int64_t>(cfg.down_after_s * 1000));
  mo.peers_file = layout.PeersFile();
  ShardStore* store_raw = store->get();
  mo.self_usage = [store_raw] {
    StoreUsage u = store_raw->Usage();
    wire::PeerEntry e;
    e.capacity_bytes = u.capacity_bytes;
    e.used_bytes = u.used_bytes;
    e.free_bytes = u.free_bytes;
    e.shard_count = u.shard_count;
    return e;
  };
  Membership membership(rpc->get(), mo);

  RepairOptions ro;
  ro.self = info.id;
  ro.threshold = cfg.repair_threshold;
  ro.bandwidth = cfg.repair_bandwidth;
  ro.audit_interval =
      std::chrono::milliseconds(static_cast<int64_t>(cfg.audit_interval_s * 1000));
  Repairer repairer(store_raw, &membership, rpc->get(), ro);
  membership.SetOnChange([&repairer] { repairer.RequestPass(); });

  ScrubOptions so2;
  so2.rate = cfg.scrub_rate;
  so2.interval = std::chrono::milliseconds(static_cast<int64_t>(cfg.scrub_interval_s * 1000));
  so2.on_checked = [&repairer] { repairer.CountScrubbed(); };
  so2.on_corrupt = [&repairer] {
    repairer.CountCorrupt();
    repairer.RequestPass();
  };
  Scrubber scrubber(store_raw, so2);

  membership_ptr = &membership;
  membership.Start();
  st = repairer.Start();
  repairer_ptr = &repairer;
  if (st.ok()) st = scrubber.Start();

  int code = kExitOk;
  if (st.ok()) st = WriteFileAtomic(layout.EndpointFile(), server.bound_endpoint() + "\n");
  if (st.ok() && !cfg.pid_file.empty()) {
    st = WriteFileAtomic(cfg.pid_file, std::to_string(getpid()) + "\n");
  }
  if (!st.ok()) {
    LOG_ERROR("{}", st.ToString());
    code = kExitFailure;
  } else {
    StoreUsage u = (*store)->Usage();
    LOG_INFO("node {} zone \"{}\" listening on {} (advertised {}), {} shards, {} of {} bytes used",
             NodeIdHex(info.id), cfg.zone, server.bound_endpoint(), server.advertised_endpoint(),
             u.shard_count, u.used_bytes, u.capacity_bytes);
    if (network->has_value()) {
      LOG_INFO("network {}: CURVE on every socket; invite others with 'shardctl invite --dir {}'",
               NetworkId((*network)->secret), layout.root());
    } else {
      LOG_WARN("--insecure-no-curve: plain ZeroMQ, no authentication (benchmark only)");
    }
    LOG_INFO("{} bootstrap peers; heartbeat {} ms, down after {} s, repair bandwidth {} B/s",
             bootstrap.size(), cfg.heartbeat_ms, cfg.down_after_s, cfg.repair_bandwidth);
    int sig = 0;
    sigwait(&sigs, &sig);
    if (sig == SIGUSR1) {
      LOG_INFO("SIGUSR1 received: handing off every shard before stopping");
      scrubber.Stop();
      size_t left = repairer.HandOff();
      membership.SetLeaving();
      membership.AnnounceNow(std::chrono::seconds(3));
      if (left == 0) {
        LOG_INFO("graceful exit: every shard handed off");
      } else {
        LOG_WARN("graceful exit: {} shards could not be handed off; peers will rebuild them",
                 left);
      }
    } else {
      LOG_INFO("{} received: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    }
  }

  scrubber.Stop();
  repairer.Stop();
  server.Stop();  // no hook runs after this
  membership_ptr = nullptr;
  repairer_ptr = nullptr;
  membership.Stop();
  (*rpc)->Shutdown();
  store->reset();
  unlink(layout.EndpointFile().c_str());
  if (!cfg.pid_file.empty()) unlink(cfg.pid_file.c_str());
  if (code == kExitOk) LOG_INFO("stopped");
  return code;
}

}  // namespace
}  // namespace shardfs

int main(int argc, char** argv) {
  using namespace shardfs;
  CLI::App app{
      "shardfs-node: stores shards of shardfs volumes on local disk and serves them "
      "over ZeroMQ.",
      "shardfs-node"};
  Flags flags;
  int early = ParseFlags(argc, argv, &flags, &app);
  if (early >= 0) return early;

  auto cfg = BuildConfig(flags, app);
  if (!cfg.ok()) {
    std::fprintf(stderr, "shardfs-node: %s\n", cfg.status().message().c_str());
    return kExitUsage;
  }
  if (flags.exit_cmd->parsed()) return RunExit(*cfg, flags.exit_timeout);
  LogLevel level = LogLevel::kInfo;
  (void)ParseLogLevel(cfg->log_level, &level);  // validated by FinishNodeConfig
  InitLogging("shardfs-node", level);
  try {
    return Run(*cfg);
  } catch (const std::exception& e) {
    // Nothing should get here; if something does, say what before dying.
    LOG_ERROR("fatal: {}", e.what());
    return kExitFailure;
  }
}
