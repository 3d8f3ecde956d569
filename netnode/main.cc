// shardfs-node: the storage daemon (shardfs-node(8)).
//
// Startup order: flags and config (exit 2 when wrong), logging, signals
// blocked in every thread, data dir + lock, identity, shard store
// (reconciles), server bind, endpoint and pid files, then wait for
// SIGTERM/SIGINT. Shutdown runs the same steps backwards. It stays in the
// foreground: a service manager or `shardctl cluster start` supervises it.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "lib/log.h"
#include "netnode/daemon_files.h"
#include "netnode/identity.h"
#include "netnode/layout.h"
#include "netnode/node_config.h"
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
  RETURN_IF_ERROR(FinishNodeConfig(&cfg));
  return cfg;
}

int Run(const NodeConfig& cfg) {
  // Blocked before any thread exists, so every thread inherits the mask and
  // only sigwait() below sees SIGTERM/SIGINT.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
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

  StoreOptions so;
  so.data_dir = layout.root();
  so.capacity_bytes = cfg.capacity_bytes;
  auto store = ShardStore::Open(std::move(so));
  if (!store.ok()) {
    LOG_ERROR("cannot open the shard store in {}: {}", layout.root(), store.status().ToString());
    return kExitFailure;
  }

  NodeInfo info;
  info.id = identity->id;
  info.zone = cfg.zone;
  info.public_key = identity->public_key;
  ServerOptions opts;
  opts.listen = cfg.listen;
  opts.advertise = cfg.advertise;
  opts.workers = static_cast<size_t>(cfg.workers);
  Server server(store->get(), info, opts);
  st = server.Start();
  if (!st.ok()) {
    LOG_ERROR("{}", st.message());
    return kExitFailure;
  }

  int code = kExitOk;
  st = WriteFileAtomic(layout.EndpointFile(), server.bound_endpoint() + "\n");
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
    if (!cfg.peers.empty()) {
      LOG_INFO("{} bootstrap peers configured (membership is not implemented yet)",
               cfg.peers.size());
    }
    int sig = 0;
    sigwait(&sigs, &sig);
    LOG_INFO("{} received: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  }

  server.Stop();
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
