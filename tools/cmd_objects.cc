// `shardctl put FILE` and `shardctl get ID OUT` (man/shardctl.8.rst):
// whole files stored as segments plus a manifest (lib/object_store.h).
//
// put prints the object id (32 hex digits, the manifest's stripe id) as its
// only output on stdout. get writes OUT.tmp and renames it to OUT once every
// byte is there, so OUT never holds a partial or unauthenticated file; OUT
// "-" writes to stdout. Both stream with bounded memory.
//
// Thread-safety: actions run on the main thread (the client has its own).
#include <fcntl.h>
#include <malloc.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "lib/client_config.h"
#include "lib/client_connect.h"
#include "lib/object_store.h"
#include "tools/commands.h"

namespace shardfs::shardctl {
namespace {

int Fail(const char* cmd, const Status& st) {
  std::fprintf(stderr, "shardctl %s: %s\n", cmd, st.ToString().c_str());
  return 1;
}

// Segment-sized buffers (the plaintext of every segment read, ZeroMQ's
// receive buffers) are above glibc's default mmap threshold, so each one
// would be a fresh mapping: a page fault per 4 KiB and the kernel zeroing
// it, which measured here cost more CPU than decrypting. Served from the
// heap and not trimmed, they are recycled instead. A short-lived command
// can afford the larger resident set.
void TuneMallocForSegments() {
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
}

int RunPut(const GlobalOptions& global, const std::string& file) {
  TuneMallocForSegments();
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Fail("put", Status::FromErrno(errno, "open " + file));
  auto client = ConnectWithConfigFile(global.config_path);
  if (!client.ok()) {
    ::close(fd);
    return Fail("put", client.status());
  }
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  ObjectStats stats;
  auto id = PutObject(**client, fd, &stats);
  ::close(fd);
  if (!id.ok()) return Fail("put", id.status().With(file));
  std::printf("%s\n", id->c_str());
  return std::fflush(stdout) == 0 ? 0 : 1;
}

int RunGet(const GlobalOptions& global, const std::string& id, const std::string& out) {
  // Config errors first (they explain everything else), then a malformed
  // id, both before anything touches the network or the output.
  if (global.config_path.empty()) {
    return Fail("get", Status::InvalidArgument("no client config given (use --config FILE)"));
  }
  auto cfg = LoadClientConfig(global.config_path);
  if (!cfg.ok()) return Fail("get", cfg.status());
  auto parsed = ParseObjectId(id);
  if (!parsed.ok()) return Fail("get", parsed.status());
  TuneMallocForSegments();
  auto client = ConnectWithConfigFile(global.config_path);
  if (!client.ok()) return Fail("get", client.status());

  if (out == "-") {
    Status st = GetObject(**client, id, STDOUT_FILENO);
    return st.ok() ? 0 : Fail("get", st);
  }
  const std::string tmp = out + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) return Fail("get", Status::FromErrno(errno, "create " + tmp));
  Status st = GetObject(**client, id, fd);
  // No fsync: like cp, get leaves durability to the page cache; the rename
  // only guarantees that OUT is never seen half-written.
  if (::close(fd) != 0 && st.ok()) st = Status::FromErrno(errno, "close " + tmp);
  if (st.ok() && ::rename(tmp.c_str(), out.c_str()) != 0) {
    st = Status::FromErrno(errno, "rename " + tmp + " to " + out);
  }
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return Fail("get", st);
  }
  return 0;
}

}  // namespace

void RegisterObjectCommands(CLI::App& app, GlobalOptions& global) {
  auto file = std::make_shared<std::string>();
  CLI::App* put = app.add_subcommand("put", "store FILE in the cluster; prints its object id");
  put->add_option("FILE", *file, "file to store")->required();
  SetAction(put, [&global, file] { return RunPut(global, *file); });

  auto id = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  CLI::App* get = app.add_subcommand("get", "fetch object ID into OUT (- for stdout)");
  get->add_option("ID", *id, "object id printed by put")->required();
  get->add_option("OUT", *out, "output file, written as OUT.tmp then renamed")->required();
  SetAction(get, [&global, id, out] { return RunGet(global, *id, *out); });
}

}  // namespace shardfs::shardctl
