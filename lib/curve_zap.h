// ZAP (ZeroMQ RFC 27) handler for a node's CURVE server sockets
// (SECURITY.md §2, PROTOCOL.md §8).
//
// libzmq asks the handler bound on inproc://zeromq.zap.01 of the socket's
// context about every handshake that got past the CURVE crypto (so the peer
// already proved it knows the network server key, i.e. the network
// secret). The handler then admits only:
//   - mechanism CURVE (never NULL or PLAIN),
//   - the node's own ZAP domain ("shardfs/<network id>"),
//   - a 32-byte client public key that is not on the deny list,
// and answers with the peer's Z85 public key as the User-Id, which the
// server reads back from every message (zmq_msg_gets "User-Id") as the
// authenticated key of the request's sender.
//
// DecideZap is the pure policy (unit-tested); ZapHandler is the thread.
//
// Thread-safety: DecideZap is pure. ZapHandler: Start/Stop from one thread;
// Refused() from any.
#pragma once

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "lib/status.h"

namespace shardfs {

struct ZapRequest {
  std::string version;     // "1.0"
  std::string request_id;  // echoed back
  std::string domain;
  std::string address;     // peer IP, for the log
  std::string identity;
  std::string mechanism;   // "CURVE"
  std::vector<std::string> credentials;  // CURVE: one 32-byte public key
};

struct ZapPolicy {
  std::string domain;                  // required domain
  std::set<std::string> denied_keys;   // Z85 public keys refused
};

struct ZapDecision {
  std::string status_code;  // "200" admitted, "400" refused, "500" malformed
  std::string status_text;
  std::string user_id;      // Z85 public key when admitted
};

// Parses the frames of one ZAP request. InvalidArgument when malformed.
Result<ZapRequest> ParseZapRequest(const std::vector<std::string>& frames);
ZapDecision DecideZap(const ZapRequest& req, const ZapPolicy& policy);

class ZapHandler {
 public:
  // REQUIRES: `ctx` outlives the handler; Start() before any CURVE server
  // socket of `ctx` binds (libzmq refuses handshakes with no handler only
  // when ZMQ_ZAP_ENFORCE_DOMAIN is set; we set it).
  ZapHandler(zmq::context_t& ctx, ZapPolicy policy);
  ~ZapHandler();  // Stop()
  ZapHandler(const ZapHandler&) = delete;
  ZapHandler& operator=(const ZapHandler&) = delete;

  Status Start();
  void Stop();
  uint64_t admitted() const { return admitted_.load(); }
  uint64_t refused() const { return refused_.load(); }

 private:
  void Loop();

  zmq::context_t& ctx_;
  const ZapPolicy policy_;
  std::unique_ptr<zmq::socket_t> socket_;  // used by the thread only after Start
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> admitted_{0}, refused_{0};
};

}  // namespace shardfs
