// libFuzzer target for the node's request handler (netnode/request_handler.h)
// against a real ShardStore in a temporary data dir.
//
// One input is a short session: a sequence of requests, each
//   u8 flags (bit 0: a payload frame follows the header, bit 1: one extra
//      frame, which must be refused), u16 header length, u32 payload length
//      (little endian), header bytes, payload bytes.
// A session lets the fuzzer reach PUT -> GET -> STAT -> DELETE on one key
// (the seeds in corpus/node/ do exactly that, gen_node_seeds.py writes them).
// Every request goes through Triage() and, when routed to a worker,
// Execute(), as netnode/server.cc does, and the reply must arrive.
//
// Checked besides the sanitizers:
//   * every request that gets a reply gets a decodable header frame back;
//   * nothing is ever created outside the data dir: the data dir's parent
//     holds only "data", and the data dir only the names STORAGE.md §1
//     lists, shard files included (shards/<2 hex>/<32 hex>.<index>, checked
//     with DataLayout::ParseShardFileName). This is the "shard ids cannot
//     leave the data dir" property of issue 5, tested on hostile input.
//
// The store lives for the whole process (opening one per input would
// dominate the run time), in /dev/shm when it exists; a small quota keeps
// it from filling memory or the disk.
// Thread-safety: libFuzzer calls the entry point from one thread.
#include <dirent.h>
#include <ctype.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <system_error>

#include <spdlog/spdlog.h>

#include "lib/log.h"
#include "lib/wire_messages.h"
#include "netnode/catalog.h"
#include "netnode/layout.h"
#include "netnode/request_handler.h"
#include "netnode/shard_store.h"

namespace shardfs {
namespace {

#define NODE_FUZZ_CHECK(cond)                                                                 \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "node_request_fuzz: %s:%d: check failed: %s\n", __FILE__, __LINE__, \
                   #cond);                                                                    \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)

constexpr size_t kMaxRequestsPerInput = 16;

struct Env {
  std::string root;  // mkdtemp; holds only data/
  std::string data;
  std::unique_ptr<ShardStore> store;
  std::unique_ptr<Catalog> catalog;
  std::unique_ptr<RequestHandler> handler;
  uint64_t inputs = 0;

  ~Env() {
    handler.reset();
    catalog.reset();
    store.reset();
    std::error_code ec;
    if (!root.empty()) std::filesystem::remove_all(root, ec);
  }
};

Env* g_env = nullptr;
bool g_all_ok = true;

void CleanUp() {
  delete g_env;
  g_env = nullptr;
}

Env* GetEnv() {
  if (g_env) return g_env;
  auto env = std::make_unique<Env>();
  // tmpfs when there is one: the store fsyncs every PUT (and SQLite every
  // commit), which on a disk would hold the fuzzer to a few runs a second.
  const char* base = getenv("TMPDIR");
  std::string dir = base && *base ? base : "/tmp";
  if (access("/dev/shm", W_OK) == 0) dir = "/dev/shm";
  std::string tmpl = dir + "/shardfs-node-fuzz-XXXXXX";
  NODE_FUZZ_CHECK(mkdtemp(tmpl.data()) != nullptr);
  env->root = tmpl;
  env->data = env->root + "/data";
  StoreOptions so;
  so.data_dir = env->data;
  so.capacity_bytes = 64ull << 20;
  so.clock_ms = [] { return uint64_t{1700000000000}; };
  auto store = ShardStore::Open(std::move(so));
  if (!store.ok()) std::fprintf(stderr, "node_request_fuzz: %s\n", store.status().ToString().c_str());
  NODE_FUZZ_CHECK(store.ok());
  env->store = std::move(*store);
  auto catalog = env->store->OpenCatalog();
  NODE_FUZZ_CHECK(catalog.ok());
  env->catalog = std::move(*catalog);
  NodeSelf self;
  self.id = 0x1122334455667788ull;
  self.zone = "fuzz";
  self.endpoint = "tcp://127.0.0.1:1";
  env->handler = std::make_unique<RequestHandler>(env->store.get(), self);
  g_env = env.release();
  std::atexit(CleanUp);
  return g_env;
}

std::set<std::string> ListDir(const std::string& dir) {
  std::set<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (!d) return names;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.insert(n);
  }
  closedir(d);
  return names;
}

bool IsTwoHex(const std::string& s) {
  return s.size() == 2 && std::isxdigit(static_cast<unsigned char>(s[0])) &&
         std::isxdigit(static_cast<unsigned char>(s[1])) && !std::isupper(s[0]) &&
         !std::isupper(s[1]);
}

// Nothing outside the data dir; nothing in it that STORAGE.md §1 does not
// name. Temp files are allowed in tmp/ only (a PUT may leave none behind
// once done, but that is the store's business, not a path escape).
void CheckTree(const Env& env, bool full) {
  NODE_FUZZ_CHECK(ListDir(env.root) == std::set<std::string>{"data"});
  if (!full) return;
  static const std::set<std::string> kTop = {"lock",  "identity",   "endpoint",   "node.db",
                                             "node.db-wal", "node.db-shm", "node.db-journal",
                                             "shards", "tmp", "quarantine", "peers"};
  for (const std::string& n : ListDir(env.data)) {
    if (!kTop.count(n)) std::fprintf(stderr, "node_request_fuzz: stray %s/%s\n", env.data.c_str(), n.c_str());
    NODE_FUZZ_CHECK(kTop.count(n));
  }
  const std::string shards = env.data + "/shards";
  for (const std::string& sub : ListDir(shards)) {
    NODE_FUZZ_CHECK(IsTwoHex(sub));
    for (const std::string& f : ListDir(shards + "/" + sub)) {
      auto key = DataLayout::ParseShardFileName(f);
      if (!key) std::fprintf(stderr, "node_request_fuzz: stray shard file %s/%s\n", sub.c_str(), f.c_str());
      NODE_FUZZ_CHECK(key.has_value());
      NODE_FUZZ_CHECK(key->stripe.Hex().substr(0, 2) == sub);
    }
  }
}

// Runs one request the way the server does and waits for its reply.
void RunOne(Env& env, Request req) {
  const bool request_decodes =
      wire::DecodeFrame(std::string_view(static_cast<const char*>(req.header.data()),
                                         req.header.size()))
          .ok();
  Reply now;
  RequestHandler::Route route = env.handler->Triage(req, &now);
  std::optional<Reply> reply;
  if (route == RequestHandler::Route::kDrop) return;
  if (route == RequestHandler::Route::kReplyNow) {
    reply = std::move(now);
  } else {
    struct Wait {
      std::mutex mu;
      std::condition_variable cv;
      std::optional<Reply> reply;
    };
    auto w = std::make_shared<Wait>();
    env.handler->Execute(env.catalog.get(), std::move(req), [w](Reply r) {
      std::lock_guard<std::mutex> lock(w->mu);
      w->reply = std::move(r);
      w->cv.notify_all();
    });
    std::unique_lock<std::mutex> lock(w->mu);
    // A PUT completes on the committer thread; a minute is "never".
    NODE_FUZZ_CHECK(w->cv.wait_for(lock, std::chrono::seconds(60), [&] { return w->reply.has_value(); }));
    reply = std::move(w->reply);
  }
  auto frame = wire::DecodeFrame(reply->header);
  if (!frame.ok()) {
    // Only an error reply to a request whose own header did not decode
    // (an unknown command byte is echoed so the sender can match it): it
    // must still carry a readable fixed part.
    if (request_decodes) {
      std::fprintf(stderr, "node_request_fuzz: reply does not decode: %s\n",
                   frame.status().ToString().c_str());
    }
    NODE_FUZZ_CHECK(!request_decodes);
    const std::string& h = reply->header;
    NODE_FUZZ_CHECK(h.size() >= wire::kHeaderSize);
    NODE_FUZZ_CHECK(std::memcmp(h.data(), wire::kMagic, sizeof(wire::kMagic)) == 0);
    NODE_FUZZ_CHECK((static_cast<uint8_t>(h[7]) & wire::kFlagReply) != 0);
    g_all_ok = false;
    return;
  }
  NODE_FUZZ_CHECK(frame->header.reply);
  if (frame->header.status != wire::WireCode::kOk) g_all_ok = false;
}

uint32_t Le(const uint8_t* p, int n) {
  uint32_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = v << 8 | p[i];
  return v;
}

}  // namespace
}  // namespace shardfs

namespace shardfs::fuzz {
// For replay_main.cc: every request of the last input got a reply with
// status OK (the seed_* files must: they are a valid session).
bool InputAccepted() { return g_all_ok; }
}  // namespace shardfs::fuzz

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // The store logs every refused request; at fuzzing speed that is noise.
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shardfs;
  static bool init = (LLVMFuzzerInitialize(nullptr, nullptr), true);
  (void)init;
  Env& env = *GetEnv();
  g_all_ok = true;
  size_t pos = 0;
  for (size_t n = 0; n < kMaxRequestsPerInput && size - pos >= 7; ++n) {
    const uint8_t flags = data[pos];
    size_t hlen = Le(data + pos + 1, 2);
    size_t plen = Le(data + pos + 3, 4);
    pos += 7;
    hlen = std::min(hlen, size - pos);
    Request req;
    req.header = zmq::message_t(data + pos, hlen);
    pos += hlen;
    if (flags & 1) {
      plen = std::min(plen, size - pos);
      req.payload.emplace(data + pos, plen);
      pos += plen;
    }
    if (flags & 2) req.extra_frames = 1;
    RunOne(env, std::move(req));
  }
  if (pos == 0) g_all_ok = false;  // no request at all
  CheckTree(env, ++env.inputs % 64 == 1);
  return 0;
}
