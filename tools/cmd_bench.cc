// `shardctl bench`: throughput and CPU cost of each data-path stage on a
// local cluster it starts itself, beside local-disk references measured in
// the same run (issue 2 §6; man/shardctl.8.rst, "bench"). Prints figures,
// never pass or fail: the goal lines are for the reader.
//
// Order: put and cold get on a cluster without CURVE (the reference for
// CURVE's cost; skipped with --no-curve-reference); then on the real
// cluster: encrypt, encode (CPU only); local write + fsync, cold local read
// (the references); put, cold get. Caches are dropped before every cold
// read, so get is compared with a read that also comes from the disk.
//
// Ctrl-C (or SIGTERM) stops the running stage; the cluster is stopped and the
// temp dir removed as usual. A second Ctrl-C kills shardctl at once (then
// run `shardctl cluster stop --dir` on the printed dir).
//
// Thread-safety: runs on the main thread; the cluster is started before any
// other thread exists (StartLocalCluster forks).
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "lib/cluster_client.h"
#include "lib/key_file.h"
#include "tools/bench_drive.h"
#include "tools/bench_meter.h"
#include "tools/bench_stages.h"
#include "tools/commands.h"
#include "tools/local_cluster.h"

namespace shardfs::shardctl {
namespace {

std::atomic<bool> g_stop{false};

void OnSignal(int sig) {
  g_stop.store(true);
  ::signal(sig, SIG_DFL);  // the second one kills
}

struct BenchOptions {
  std::string size = "1G";
  std::string dir;  // parent of the temp dir; "" = $TMPDIR or /var/tmp
  int nodes = 6;
  int k = 4;
  int m = 2;
  std::string node_binary;
  int readers = 4;
  bool keep = false;
  std::string suite = "data";  // data | drive | all
  bool drive = false;          // --drive: same as --suite drive
  int files = 10000;
  std::string rsync_source = "/usr/include";
  std::string shardfs_binary;
  bool no_curve_reference = false;  // skip the put/get run without CURVE
};

// "1G" -> 2^30. Suffixes K, M, G, T (powers of 1024), optional "iB"/"B".
bool ParseBytes(const std::string& text, uint64_t* out) {
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (end == text.c_str() || errno != 0) return false;
  std::string suffix(end);
  uint64_t mult = 1;
  if (!suffix.empty()) {
    switch (suffix[0]) {
      case 'K':
      case 'k':
        mult = 1ull << 10;
        break;
      case 'M':
      case 'm':
        mult = 1ull << 20;
        break;
      case 'G':
      case 'g':
        mult = 1ull << 30;
        break;
      case 'T':
      case 't':
        mult = 1ull << 40;
        break;
      default:
        return false;
    }
    std::string rest = suffix.substr(1);
    if (!rest.empty() && rest != "B" && rest != "iB") return false;
  }
  if (v > UINT64_MAX / mult) return false;
  *out = v * mult;
  return true;
}

void PrintRow(const StageResult& r, bool with_nodes) {
  char nodes[32] = "-";
  if (with_nodes) std::snprintf(nodes, sizeof(nodes), "%.2f", r.nodes_core_s_per_gb());
  std::printf("%-26s %9.1f %12.2f %12s %9.2f%s%s\n", r.name.c_str(), r.mb_per_s(),
              r.client_core_s_per_gb(), nodes, r.seconds(), r.note.empty() ? "" : "  ",
              r.note.c_str());
}

void PrintRatio(const char* what, const StageResult& a, const StageResult& b) {
  if (a.failed || b.failed || b.mb_per_s() <= 0) {
    std::printf("%-28s  n/a (a stage failed)   (goal >= 50%%)\n", what);
    return;
  }
  std::printf("%-28s %5.0f%%   (goal >= 50%%)\n", what, 100.0 * a.mb_per_s() / b.mb_per_s());
}

LocalClusterOptions BenchClusterOptions(const BenchOptions& opts, const std::string& dir) {
  LocalClusterOptions copts;
  copts.dir = dir;
  copts.nodes = opts.nodes;
  copts.k = opts.k;
  copts.m = opts.m;
  copts.node_binary = opts.node_binary;
  copts.node_log_level = "warning";
  return copts;
}

// Put of `data`, then cold get (node caches dropped) through one client of
// `cluster`, whose transport is stopped before returning (before the nodes).
struct PutGet {
  StageResult put;
  StageResult get;
};

Result<PutGet> PutThenColdGet(const BenchStream& data, const ClientConfig& cfg, const Key& key,
                              const LocalCluster& cluster, int readers, const CpuMeter& meter) {
  ASSIGN_OR_RETURN(std::unique_ptr<ClusterClient> client, ClusterClient::Connect(cfg, key));
  PutGet r;
  std::vector<Locator> locators;
  r.put = BenchPut(data, *client, meter, g_stop, &locators);
  std::vector<std::string> node_dirs;
  for (const LocalNode& n : cluster.nodes) node_dirs.push_back(n.dir);
  DropCaches(node_dirs);
  r.get = BenchGet(data, *client, locators, readers, meter, g_stop);
  return r;
}

// Put and cold get of the same stream size on a second cluster without
// CURVE: the reference for what transport security costs (SECURITY.md §6).
// Run to completion, cluster stopped and removed, before the main cluster
// starts, so neither run shares the CPU with the other's idle nodes.
struct PlainReference {
  StageResult put;
  StageResult get;
  std::string error;  // "" = both stages ran
};

PlainReference RunPlainReference(const BenchOptions& opts, const std::string& dir,
                                 uint64_t size) {
  PlainReference ref;
  ref.put.name = "put, no CURVE";
  ref.get.name = "get, no CURVE";
  LocalClusterOptions copts = BenchClusterOptions(opts, dir + "/cluster-plain");
  copts.insecure_no_curve = true;
  Result<LocalCluster> cluster = StartLocalCluster(copts);
  if (!cluster.ok()) {
    ref.error = "starting the plain cluster: " + cluster.status().ToString();
    return ref;
  }
  std::vector<pid_t> pids;
  for (const LocalNode& n : cluster->nodes) pids.push_back(n.pid);
  CpuMeter meter(pids);
  [&] {
    Result<ClientConfig> cfg = LoadClientConfig(cluster->config_path);
    Result<Key> key = cfg.ok() ? LoadKeyFile(cfg->key_file) : Result<Key>(cfg.status());
    if (!key.ok()) {
      ref.error = key.status().ToString();
      return;
    }
    Result<BenchStream> data = BenchStream::Create(size, cfg->segment_size);
    if (!data.ok()) {
      ref.error = data.status().ToString();
      return;
    }
    Result<PutGet> pg = PutThenColdGet(*data, *cfg, *key, *cluster, opts.readers, meter);
    if (!pg.ok()) {
      ref.error = "connecting: " + pg.status().ToString();
      return;
    }
    ref.put = pg->put;
    ref.get = pg->get;
    ref.put.name = "put, no CURVE";
    ref.get.name = "get, no CURVE";
  }();
  Result<StopReport> stopped = StopLocalCluster(copts.dir, 10000);
  if (!stopped.ok() && ref.error.empty()) ref.error = stopped.status().ToString();
  std::error_code ec;
  std::filesystem::remove_all(copts.dir, ec);
  return ref;
}

// "CURVE cost on put:  -12%  (goal < 15%)": throughput lost to CURVE.
void PrintCurveCost(const char* what, const StageResult& curve, const StageResult& plain) {
  if (curve.failed || plain.failed || plain.mb_per_s() <= 0) {
    std::printf("%-28s  n/a (a stage failed)   (goal < 15%%)\n", what);
    return;
  }
  const double cost = 100.0 * (1.0 - curve.mb_per_s() / plain.mb_per_s());
  std::printf("%-28s %5.0f%%   (goal < 15%%; CPU %+.2f core-s/GB client, %+.2f nodes)\n", what,
              cost, curve.client_core_s_per_gb() - plain.client_core_s_per_gb(),
              curve.nodes_core_s_per_gb() - plain.nodes_core_s_per_gb());
}

int RunBench(const BenchOptions& opts) {
  uint64_t size = 0;
  if (!ParseBytes(opts.size, &size)) {
    std::fprintf(stderr, "shardctl bench: bad --size '%s' (bytes, suffix K/M/G/T)\n",
                 opts.size.c_str());
    return 2;
  }
  std::string parent = opts.dir;
  if (parent.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    parent = tmp && *tmp ? tmp : "/var/tmp";
  }
  std::string templ = parent + "/shardctl-bench-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) {
    std::fprintf(stderr, "shardctl bench: cannot create a temp dir in %s: %s\n", parent.c_str(),
                 std::strerror(errno));
    return 1;
  }
  const std::string dir = templ;
  ::signal(SIGINT, OnSignal);
  ::signal(SIGTERM, OnSignal);

  const char* no_curve_env = std::getenv("SHARDFS_BENCH_NO_CURVE");
  const bool curve_off = no_curve_env != nullptr && std::string(no_curve_env) == "1";
  std::optional<PlainReference> plain;
  if (opts.suite != "drive" && !opts.no_curve_reference && !curve_off) {
    std::printf("shardctl bench: put and get without CURVE first (the reference for its cost)\n");
    std::fflush(stdout);
    plain = RunPlainReference(opts, dir, size);
    if (!plain->error.empty()) {
      std::fprintf(stderr, "shardctl bench: CURVE reference: %s\n", plain->error.c_str());
    }
  }

  LocalClusterOptions copts = BenchClusterOptions(opts, dir + "/cluster");
  int rc = 0;
  Result<LocalCluster> cluster = StartLocalCluster(copts);
  if (!cluster.ok()) {
    std::fprintf(stderr, "shardctl bench: starting the cluster: %s\n",
                 cluster.status().ToString().c_str());
    rc = 1;
  } else {
    std::vector<pid_t> pids;
    for (const LocalNode& n : cluster->nodes) pids.push_back(n.pid);
    CpuMeter meter(pids);
    rc = [&]() -> int {
      Result<ClientConfig> cfg = LoadClientConfig(cluster->config_path);
      Result<Key> key = cfg.ok() ? LoadKeyFile(cfg->key_file) : Result<Key>(cfg.status());
      Result<std::shared_ptr<const Codec>> codec = Codec::Create(opts.k, opts.m);
      if (!key.ok() || !codec.ok()) {
        std::fprintf(stderr, "shardctl bench: %s\n",
                     (!key.ok() ? key.status() : codec.status()).ToString().c_str());
        return 1;
      }
      Result<BenchStream> data = BenchStream::Create(size, cfg->segment_size);
      if (!data.ok()) {
        std::fprintf(stderr, "shardctl bench: %s\n", data.status().ToString().c_str());
        return 1;
      }
      std::printf("shardctl bench: %" PRIu64
                  " bytes (%.2f GB) in %zu segments of %zu bytes; "
                  "%d nodes, k=%d m=%d\n",
                  size, static_cast<double>(size) / 1e9, data->segments(), cfg->segment_size,
                  opts.nodes, opts.k, opts.m);
      std::printf("directory: %s (the local references use the same file system)\n\n", dir.c_str());
      std::fflush(stdout);
      const bool run_drive = opts.suite != "data";
      if (opts.suite == "drive") {
        DriveBenchOptions d;
        d.dir = dir;
        d.config_path = cluster->config_path;
        d.shardfs_binary = opts.shardfs_binary;
        d.size = size;
        d.files = opts.files;
        d.rsync_source = opts.rsync_source;
        return RunDriveBench(d, g_stop);
      }

      StageResult encrypt = BenchEncrypt(*data, *key, meter, g_stop);
      StageResult encode = BenchEncode(*data, **codec, meter, g_stop);
      std::string local = dir + "/local-copy";
      StageResult write = BenchLocalWrite(*data, local, meter, g_stop);
      std::string cache_note = DropCaches({local});
      StageResult read = BenchLocalRead(local, cfg->segment_size, meter, g_stop);
      ::unlink(local.c_str());

      Result<PutGet> pg = PutThenColdGet(*data, *cfg, *key, *cluster, opts.readers, meter);
      if (!pg.ok()) {
        std::fprintf(stderr, "shardctl bench: connecting: %s\n", pg.status().ToString().c_str());
        return 1;
      }
      const StageResult& put = pg->put;
      const StageResult& get = pg->get;

      std::printf("%-26s %9s %12s %12s %9s\n", "stage", "MB/s", "client", "nodes", "seconds");
      std::printf("%-26s %9s %12s %12s\n", "", "", "core-s/GB", "core-s/GB");
      PrintRow(encrypt, false);
      PrintRow(encode, false);
      PrintRow(put, true);
      PrintRow(get, true);
      if (plain && plain->error.empty()) {
        PrintRow(plain->put, true);
        PrintRow(plain->get, true);
      }
      PrintRow(write, false);
      PrintRow(read, false);
      std::printf("\n");
      PrintRatio("put / local write+fsync:", put, write);
      PrintRatio("get / cold local read:", get, read);
      if (plain && plain->error.empty()) {
        PrintCurveCost("CURVE cost on put:", put, plain->put);
        PrintCurveCost("CURVE cost on get:", get, plain->get);
      } else if (curve_off) {
        std::printf("CURVE off (SHARDFS_BENCH_NO_CURVE=1): never use this for data\n");
      }
      std::printf("cold reads: %s\n", cache_note.c_str());
      std::printf(
          "(MB = 10^6 bytes, GB = 10^9 bytes; core-s/GB = CPU seconds, user + system, "
          "per GB of plaintext)\n");
      if (run_drive && !g_stop.load()) {
        std::printf("\n");
        DriveBenchOptions d;
        d.dir = dir;
        d.config_path = cluster->config_path;
        d.shardfs_binary = opts.shardfs_binary;
        d.size = size;
        d.files = opts.files;
        d.rsync_source = opts.rsync_source;
        if (RunDriveBench(d, g_stop) != 0) return 1;
      }
      bool failed = encrypt.failed || encode.failed || put.failed || get.failed || write.failed ||
                    read.failed || (plain && (!plain->error.empty() || plain->put.failed ||
                                              plain->get.failed));
      return failed ? 1 : 0;
    }();
    Result<StopReport> stopped = StopLocalCluster(copts.dir, 10000);
    if (!stopped.ok()) {
      std::fprintf(stderr, "shardctl bench: stopping the cluster: %s\n",
                   stopped.status().ToString().c_str());
      rc = 1;
    }
  }
  if (g_stop.load()) {
    std::fprintf(stderr, "shardctl bench: interrupted\n");
    rc = 130;
  }
  // Kept for a look at the node logs when a stage failed, not after Ctrl-C.
  const bool keep = opts.keep || (rc != 0 && !g_stop.load());
  std::error_code ec;
  if (keep) {
    std::filesystem::remove(dir + "/local-copy", ec);
    std::fprintf(stderr, "shardctl bench: kept %s (node logs in cluster/node-*/log)\n",
                 dir.c_str());
  } else {
    std::filesystem::remove_all(dir, ec);
  }
  return rc;
}

}  // namespace

void RegisterBenchCommand(CLI::App& app, GlobalOptions& global) {
  (void)global;
  auto opts = std::make_shared<BenchOptions>();
  CLI::App* bench = app.add_subcommand(
      "bench", "measure encrypt, encode, put and get against local-disk references");
  bench->add_option("--size", opts->size, "bytes in the stream (suffix K, M, G, T)")
      ->capture_default_str();
  bench->add_option("--dir", opts->dir,
                    "where to create the temp dir (default $TMPDIR or /var/tmp)");
  bench->add_option("--nodes", opts->nodes, "nodes in the local cluster")->capture_default_str();
  bench->add_option("--k", opts->k, "data shards per segment")->capture_default_str();
  bench->add_option("--m", opts->m, "parity shards per segment")->capture_default_str();
  bench->add_option("--node-binary", opts->node_binary, "shardfs-node executable to run");
  bench->add_option("--readers", opts->readers, "threads calling ReadSegment in the get stage")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  bench->add_flag("--keep", opts->keep, "keep the temp dir (cluster data and logs)");
  bench->add_option("--suite", opts->suite,
                    "data: the data-path stages; drive: the mounted drive (fio, small files, "
                    "rsync) beside a local dir and a libfuse passthrough mount; all: both")
      ->capture_default_str()
      ->check(CLI::IsMember({"data", "drive", "all"}));
  bench->add_flag("--drive", opts->drive, "same as --suite drive");
  bench->add_flag("--no-curve-reference", opts->no_curve_reference,
                  "data: skip the put and get on a second cluster without CURVE (the "
                  "reference for CURVE's cost)");
  bench->add_option("--files", opts->files, "drive: small files created, stat'ed, deleted")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  bench->add_option("--rsync-source", opts->rsync_source, "drive: tree copied with rsync -a")
      ->capture_default_str();
  bench->add_option("--shardfs-binary", opts->shardfs_binary, "drive: shardfs executable to run");
  SetAction(bench, [opts] {
    if (opts->drive) opts->suite = "drive";
    return RunBench(*opts);
  });
}

}  // namespace shardfs::shardctl
