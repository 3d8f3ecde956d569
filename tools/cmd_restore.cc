// `shardctl restore --key KEYFILE --bootstrap ENDPOINT --state DIR`
// (man/shardctl.8.rst, fs/SNAPSHOTS.md §6): rebuilds a drive's state dir on
// a new machine from the key and one node, with progress on stderr.
// `--list` only shows the snapshots found.
//
// Exit status: 0 restored (lost files, if any, are listed), 1 failed.
//
// Thread-safety: runs on the main thread.
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <memory>
#include <string>

#include "fs/snapshot_format.h"
#include "fs/snapshot_restore.h"
#include "lib/key_file.h"
#include "tools/commands.h"

namespace shardfs::shardctl {
namespace {

struct RestoreArgs {
  std::string key_file;
  std::string bootstrap;
  std::string state_dir;
  uint64_t seq = 0;
  bool list = false;
  bool force = false;
};

int Fail(const Status& st) {
  std::fprintf(stderr, "shardctl restore: %s\n", st.ToString().c_str());
  return 1;
}

int RunList(const Key& master, const RestoreArgs& a) {
  auto keys = fs::VolumeKeys::Derive(master);
  if (!keys.ok()) return Fail(keys.status());
  std::vector<std::string> endpoints;
  std::unique_ptr<fs::RecordStore> store;
  auto scan = fs::FindSnapshots(*keys, a.bootstrap, &endpoints, &store);
  if (!scan.ok()) return Fail(scan.status());
  std::printf("%-6s %-19s %-10s %12s %12s  %s\n", "SEQ", "TAKEN", "FILES", "BYTES", "STORED",
              "HOST:STATE DIR");
  for (const fs::HeadEntry& e : scan->heads) {
    const fs::SnapshotHead& h = e.head;
    std::printf("%-6llu %-19s %-10llu %12llu %12llu  %s:%s  object %s\n",
                static_cast<unsigned long long>(h.seq), fs::FormatLocalTime(h.created_unix_ms).c_str(),
                static_cast<unsigned long long>(h.files),
                static_cast<unsigned long long>(h.file_bytes),
                static_cast<unsigned long long>(h.blob_size), h.host.c_str(), h.state_dir.c_str(),
                h.object.Hex().c_str());
  }
  for (const std::string& p : scan->problems) std::printf("unreadable head %s\n", p.c_str());
  return 0;
}

int RunRestore(const GlobalOptions& global, const RestoreArgs& a) {
  (void)global;
  auto master = LoadKeyFile(a.key_file);
  if (!master.ok()) return Fail(master.status().With("key file " + a.key_file));
  if (a.list) return RunList(*master, a);
  if (a.state_dir.empty()) return Fail(Status::InvalidArgument("--state DIR is required"));

  const bool tty = ::isatty(2);
  bool transient_shown = false;
  fs::ProgressFn progress = [&](const std::string& line, bool transient) {
    if (transient && !tty) return;  // percentages only on a terminal
    if (transient) {
      std::fprintf(stderr, "\r%s\033[K", line.c_str());
      transient_shown = true;
    } else {
      std::fprintf(stderr, "%s%s\n", transient_shown ? "\n" : "", line.c_str());
      transient_shown = false;
    }
  };
  fs::RestoreRequest req;
  req.master = *master;
  req.key_file = a.key_file;
  req.bootstrap = a.bootstrap;
  req.state_dir = a.state_dir;
  req.seq = a.seq;
  req.force = a.force;
  auto report = fs::Restore(req, progress);
  if (transient_shown) std::fputc('\n', stderr);
  if (!report.ok()) return Fail(report.status());

  const fs::SnapshotHead& h = report->head;
  for (const std::string& w : report->warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
  std::printf("restored snapshot %llu, taken %s on host %s: %llu files, %llu directories, "
              "%llu bytes\n",
              static_cast<unsigned long long>(h.seq), fs::FormatLocalTime(h.created_unix_ms).c_str(),
              h.host.c_str(), static_cast<unsigned long long>(report->files),
              static_cast<unsigned long long>(report->dirs),
              static_cast<unsigned long long>(report->bytes));
  if (h.seq != report->newest_seen) {
    std::printf("WARNING: this is not the newest snapshot (%llu): changes after snapshot %llu "
                "are lost\n",
                static_cast<unsigned long long>(report->newest_seen),
                static_cast<unsigned long long>(h.seq));
  }
  if (report->lost.empty()) {
    std::printf("no file known to the snapshot was lost\n");
  } else {
    std::printf("%zu file(s) not restored intact:\n", report->lost.size());
    for (const fs::LostFile& l : report->lost) {
      std::printf("  lost: %s: %s\n", l.path.c_str(), l.what.c_str());
    }
  }
  if (report->unreferenced_stripes > 0) {
    std::printf("%llu stripe(s) on the nodes are not in this snapshot: data written after it "
                "(those files' names cannot be known) or garbage; 'shardctl --config %s "
                "--state %s fsck --collect' reclaims the space\n",
                static_cast<unsigned long long>(report->unreferenced_stripes),
                report->config_path.c_str(), a.state_dir.c_str());
  }
  if (!report->lease_holder.empty()) {
    std::printf("note: the volume's network lease is still held by %s; if that machine is "
                "gone, the first mount needs -o break_lease\n",
                report->lease_holder.c_str());
  }
  std::printf("state dir %s is ready; mount with:\n  shardfs --config %s --state %s MOUNTPOINT\n",
              a.state_dir.c_str(), report->config_path.c_str(), a.state_dir.c_str());
  return 0;
}

}  // namespace

void RegisterRestoreCommand(CLI::App& app, GlobalOptions& global) {
  auto args = std::make_shared<RestoreArgs>();
  CLI::App* sub = app.add_subcommand(
      "restore", "rebuild a drive's local state from its metadata snapshots in the network");
  sub->add_option("--key", args->key_file, "the volume's key file")->required();
  sub->add_option("--bootstrap", args->bootstrap, "endpoint of any node of the volume")
      ->required();
  sub->add_option("--state", args->state_dir, "state dir to create (must not hold a meta.db)");
  sub->add_option("--seq", args->seq, "restore this snapshot instead of the newest usable one");
  sub->add_flag("--list", args->list, "only list the snapshots found");
  sub->add_flag("--force", args->force, "replace an existing STATE/meta.db");
  SetAction(sub, [&global, args] { return RunRestore(global, *args); });
}

}  // namespace shardfs::shardctl
