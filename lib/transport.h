// RpcClient: the client end of the wire protocol (PROTOCOL.md §2, §3).
//
// One I/O thread owns one DEALER socket per node endpoint (created on first
// use) and multiplexes any number of requests on it, matched to replies by
// request id. Callers submit from any thread; each request carries its own
// deadline and a callback that runs exactly once, on the I/O thread: with
// the reply, with TimedOut naming the endpoint, or with Aborted at shutdown.
// Replies that arrive after their request expired are dropped.
//
// Zero copy: a request's payload frame is sent straight from the caller's
// buffer; the transport keeps a reference to `Payload::owner` until ZeroMQ
// has put the bytes on the wire. A reply's payload frame is handed over as
// the zmq::message_t ZeroMQ received it into.
//
// A node that stops answering (a request expires and nothing at all came
// back from that endpoint since the request was sent) gets its socket
// closed and recreated on next use: its queued frames, and the buffers they
// pin, are released at once instead of waiting for a peer that may never
// read them (SIGSTOP, a dead link).
//
// Security: every socket is a CURVE client when keys are configured (see
// RpcOptions::curve); a node that refuses the handshake never answers, so
// its requests time out with a message that names the likely cause.
//
// Thread-safety: every public method may be called from any thread.
// Callbacks run on the I/O thread and must not block; they may submit new
// requests. Call() must not be used from a callback.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "lib/curve_keys.h"
#include "lib/status.h"
#include "lib/wire_messages.h"

namespace shardfs {

using Clock = std::chrono::steady_clock;

// A payload frame to send without copying. `owner` keeps `data` alive and
// unchanged until ZeroMQ releases the frame (possibly after the callback).
struct Payload {
  std::shared_ptr<const void> owner;
  const uint8_t* data = nullptr;
  size_t size = 0;
  bool empty() const { return data == nullptr; }
};

struct RpcReply {
  zmq::message_t header;   // header frame (wire::DecodeFrame it)
  zmq::message_t payload;  // second frame, if has_payload
  bool has_payload = false;

  std::span<const uint8_t> payload_bytes() const {
    return {static_cast<const uint8_t*>(payload.data()), payload.size()};
  }
};

using RpcCallback = std::function<void(Result<RpcReply>)>;

struct RpcOptions {
  int io_threads = 1;    // ZeroMQ background threads
  int send_hwm = 10000;  // messages queued per socket before EAGAIN
  int receive_hwm = 10000;
  int reconnect_ivl_ms = 100;
  // CURVE keys for every socket (SECURITY.md §2). Empty: the process
  // default (DefaultCurveClientKeys(), set by LoadClientConfig); empty too:
  // plain sockets, which a shardfs node refuses (only unit tests and the
  // loopback-only bench knob use them).
  CurveClientKeys curve;
};

struct RpcStats {
  uint64_t sent = 0;
  uint64_t replies = 0;
  uint64_t timeouts = 0;
  uint64_t late_replies = 0;  // reply for an unknown or expired id
  uint64_t resets = 0;        // sockets closed because the peer stalled
};

class RpcClient {
 public:
  static Result<std::unique_ptr<RpcClient>> Create(const RpcOptions& options = {});
  // Plain sockets even when a process default exists: the bench-only
  // insecure_no_curve knob (SECURITY.md §6).
  static Result<std::unique_ptr<RpcClient>> CreatePlain(const RpcOptions& options = {});
  ~RpcClient();  // Shutdown()
  RpcClient(const RpcClient&) = delete;
  RpcClient& operator=(const RpcClient&) = delete;

  // Encodes `msg` with a fresh request id and submits it. `done` runs once.
  template <typename Msg>
  void Send(const std::string& endpoint, const Msg& msg, Payload payload,
            Clock::time_point deadline, RpcCallback done) {
    const uint64_t id = NextRequestId();
    SubmitEncoded(endpoint, id, wire::EncodeMessage(id, msg), std::move(payload), deadline,
                  std::move(done), SenderFor(msg));
  }

  // Blocks until the reply, the deadline or shutdown.
  // REQUIRES: not called on the I/O thread (from a callback).
  template <typename Msg>
  Result<RpcReply> Call(const std::string& endpoint, const Msg& msg, Clock::time_point deadline,
                        Payload payload = {}) {
    const uint64_t id = NextRequestId();
    return CallEncoded(endpoint, id, wire::EncodeMessage(id, msg), std::move(payload), deadline,
                       SenderFor(msg));
  }

  // `header` must carry `request_id` (wire::EncodeMessage(request_id, ...)).
  // `sender`: public key of a keypair this process holds
  // (FindCurveIdentity) to authenticate as; "" or unknown: the default.
  void SubmitEncoded(const std::string& endpoint, uint64_t request_id, std::string header,
                     Payload payload, Clock::time_point deadline, RpcCallback done,
                     std::string sender = {});
  Result<RpcReply> CallEncoded(const std::string& endpoint, uint64_t request_id, std::string header,
                               Payload payload, Clock::time_point deadline,
                               std::string sender = {});

  // SECURITY.md §3: a request that names an owner (PUT_SHARD, DELETE_SHARD)
  // goes out authenticated as that owner when this process holds its
  // keypair, since the node accepts it only from that key.
  template <typename Msg>
  std::string SenderFor(const Msg& msg) const {
    if constexpr (requires { msg.owner; }) {
      if (!options_.curve.empty() && msg.owner != options_.curve.public_key) return msg.owner;
    }
    return {};
  }

  uint64_t NextRequestId() { return next_id_.fetch_add(1, std::memory_order_relaxed); }

  // Fails every pending request with Aborted, joins the I/O thread, closes
  // the sockets. Later submissions fail at once with Aborted. Idempotent.
  void Shutdown();

  bool OnIoThread() const { return std::this_thread::get_id() == io_thread_id_; }
  RpcStats stats() const;

 private:
  struct Submission;
  struct Connection;
  struct Pending;
  class Loop;

  RpcClient(const RpcOptions& options, bool plain);
  static Result<std::unique_ptr<RpcClient>> CreateImpl(const RpcOptions& options, bool plain);
  void Wake();

  // Fixed after construction.
  RpcOptions options_;  // fixed after construction
  zmq::context_t context_;  // before every socket (destroyed last)
  int wake_fd_ = -1;        // eventfd: submissions pending or shutdown
  std::atomic<uint64_t> next_id_{1};

  std::mutex mu_;
  // Guarded by mu_.
  std::vector<Submission> queue_;
  bool stopping_ = false;  // Shutdown() called
  bool closed_ = false;    // I/O thread no longer takes submissions

  std::unique_ptr<Loop> loop_;  // state owned by the I/O thread
  std::thread thread_;
  std::thread::id io_thread_id_;
};

// Turns a reply into a body: checks that it answers `Msg::kCommand`, maps a
// non-OK status to a Status (with the node's message), decodes the body.
template <typename Msg>
Status ParseReply(const RpcReply& reply, Msg* out) {
  auto frame = wire::DecodeFrame(std::span<const uint8_t>(
      static_cast<const uint8_t*>(reply.header.data()), reply.header.size()));
  if (!frame.ok()) return frame.status();
  if (!frame->header.reply || frame->header.command != Msg::kCommand) {
    return Status::Corruption("reply does not match the request's command");
  }
  if (frame->header.status != wire::WireCode::kOk) {
    wire::ErrorBody err;
    if (!wire::DecodeBody(frame->body, &err).ok()) err.message = "(no message)";
    return wire::StatusFromWire(frame->header.status, err.message);
  }
  return wire::DecodeBody(frame->body, out);
}

}  // namespace shardfs
