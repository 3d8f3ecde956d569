// Server: the node's ZeroMQ side. One I/O thread owns the ROUTER socket;
// worker threads do the disk work; replies come back to the I/O thread over
// an inproc PUSH/PULL pipe, since only it may touch the ROUTER
// (STYLE.md §5, ARCHITECTURE.md "Threading").
//
//   client DEALER --[header][payload?]--> ROUTER (I/O thread)
//     PING, malformed input      -> answered on the I/O thread
//     everything else            -> bounded queue -> worker (own Catalog)
//     PUT_SHARD                  -> worker writes temp file -> committer
//   worker / committer --PUSH [identity][header][payload?]--> PULL (I/O thread) -> ROUTER
//
// Limits: a full queue or a peer with too many requests in flight gets BUSY
// at once. Every queued request produces exactly one reply, which is what
// keeps the per-peer counts exact. A peer is its CURVE public key when the
// socket is secured (so many connections of one key share one cap), else
// its ROUTER identity.
//
// Security (SECURITY.md §2): with `curve` set the ROUTER is a CURVE server
// with the network server key, and a ZAP handler in the server's context
// admits peers; each request carries its sender's authenticated key
// (Request::peer_key) to the handler.
//
// Thread-safety: Start() and Stop() from one controlling thread; the rest
// is internal.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>
#include <zmq.hpp>

#include "lib/curve_keys.h"
#include "lib/curve_zap.h"
#include "lib/status.h"
#include "netnode/request_handler.h"
#include "netnode/shard_store.h"

namespace shardfs {

struct ServerOptions {
  std::string listen = "tcp://127.0.0.1:0";  // port 0 or *: the OS picks
  std::string advertise;                     // "" : the bound endpoint
  size_t workers = 2;
  size_t max_queue = 256;             // queued requests before BUSY
  size_t max_inflight_per_peer = 64;  // per ROUTER identity, before BUSY
  int close_linger_ms = 250;          // time to flush last replies on Stop
  CurveServerKeys curve;              // empty: plain socket (unit tests, bench knob)
};

class Server {
 public:
  // REQUIRES: `store` outlives the server. `info.endpoint` is filled in by
  // Start() from the advertised (or bound) endpoint.
  Server(ShardStore* store, NodeSelf info, ServerOptions options, NodeHooks hooks = {});
  ~Server();  // Stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts the threads. Unavailable when the endpoint cannot be
  // bound (in use, bad address).
  Status Start();
  // The endpoint actually bound (ZMQ_LAST_ENDPOINT), e.g. tcp://127.0.0.1:41234.
  const std::string& bound_endpoint() const { return bound_endpoint_; }
  const std::string& advertised_endpoint() const { return info_.endpoint; }

  // Stops accepting requests, answers queued ones with BUSY, lets running
  // ones and the store's pending commits finish (ShardStore::Shutdown),
  // flushes their replies, closes every socket and joins every thread.
  // Idempotent.
  void Stop();

 private:
  struct Work {
    std::string peer;     // ROUTER identity
    std::string cap_key;  // what the per-peer cap counts by
    Request request;
  };
  class ReplyPipe;

  void IoLoop(zmq::socket_t* router, zmq::socket_t* pull);
  void WorkerLoop(size_t index);
  void OnRequest(zmq::socket_t& router, std::string peer, Request req);
  void SendToPeer(zmq::socket_t& router, const std::string& peer, Reply reply);

  // Fixed after Start().
  ShardStore* const store_;
  NodeSelf info_;
  NodeHooks hooks_;
  const ServerOptions options_;
  std::string bound_endpoint_;
  std::unique_ptr<RequestHandler> handler_;
  zmq::context_t ctx_;  // declared before every socket that uses it
  std::unique_ptr<ZapHandler> zap_;  // binds in ctx_; stopped before ctx_ closes
  std::unique_ptr<zmq::socket_t> router_;
  std::unique_ptr<zmq::socket_t> pull_;
  std::unique_ptr<ReplyPipe> pipe_;
  std::thread io_thread_;
  std::vector<std::thread> workers_;
  bool started_ = false;

  // Requests in flight per cap key; touched by the I/O thread only.
  std::unordered_map<std::string, size_t> inflight_;

  std::atomic<bool> stopping_{false};      // I/O thread: stop reading the ROUTER
  std::atomic<bool> replies_done_{false};  // I/O thread: last replies are in the pipe

  // Work queue. mu_ is a leaf lock.
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Work> queue_;  // guarded by mu_
  bool closed_ = false;     // guarded by mu_
};

}  // namespace shardfs
