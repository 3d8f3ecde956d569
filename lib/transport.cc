// RpcClient implementation. See transport.h for the contract.
//
// The I/O thread sleeps in zmq::poll on one eventfd (new submissions,
// shutdown) plus every DEALER socket, with the poll timeout set by the
// nearest request deadline. All state below "Loop" is touched only by that
// thread, so it needs no lock; callers only share `queue_` under mu_.
#include "lib/transport.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <deque>
#include <future>
#include <queue>
#include <unordered_map>

#include "lib/log.h"

namespace shardfs {

struct RpcClient::Submission {
  std::string endpoint;
  std::string sender;  // "" : the default keys
  uint64_t id;
  std::string header;
  Payload payload;
  Clock::time_point deadline;
  RpcCallback done;
};

struct RpcClient::Connection {
  struct Outgoing {
    uint64_t id;
    std::string header;
    Payload payload;
  };
  std::string endpoint;
  std::string sender;                     // CURVE identity to use; "" : default
  std::unique_ptr<zmq::socket_t> socket;  // null after a reset, until next use
  std::deque<Outgoing> outq;              // accepted but not yet handed to ZeroMQ
  Clock::time_point last_recv;            // last message of any kind from the peer
};

struct RpcClient::Pending {
  size_t conn;
  Clock::time_point deadline;
  Clock::time_point sent = Clock::time_point::max();  // max while queued
  RpcCallback done;
};

class RpcClient::Loop {
 public:
  explicit Loop(RpcClient* owner) : rpc_(owner) {}

  void Run();
  RpcStats Stats() const {
    return RpcStats{sent_.load(), replies_.load(), timeouts_.load(), late_.load(), resets_.load()};
  }

 private:
  using Deadline = std::pair<Clock::time_point, uint64_t>;

  void TakeSubmissions(bool final);
  size_t ConnectionFor(const std::string& endpoint, const std::string& sender);
  bool EnsureSocket(Connection& c);
  void Flush(size_t ci);
  void Receive(size_t ci);
  void Expire(Clock::time_point now);
  void Reset(size_t ci, const Status& why);
  void Finish(Pending p, Result<RpcReply> r);
  static void Invoke(RpcCallback& done, Result<RpcReply> r);
  int PollTimeoutMs() const;

  RpcClient* rpc_;
  std::vector<Connection> conns_;
  std::unordered_map<std::string, size_t> by_endpoint_;
  std::unordered_map<uint64_t, Pending> pending_;
  std::priority_queue<Deadline, std::vector<Deadline>, std::greater<>> deadlines_;
  // Counters: written by the I/O thread, read by stats() from anywhere.
  std::atomic<uint64_t> sent_{0}, replies_{0}, timeouts_{0}, late_{0}, resets_{0};
};

Result<std::unique_ptr<RpcClient>> RpcClient::CreatePlain(const RpcOptions& options) {
  RpcOptions o = options;
  o.curve = {};
  return CreateImpl(o, /*plain=*/true);
}

Result<std::unique_ptr<RpcClient>> RpcClient::Create(const RpcOptions& options) {
  return CreateImpl(options, /*plain=*/false);
}

Result<std::unique_ptr<RpcClient>> RpcClient::CreateImpl(const RpcOptions& options, bool plain) {
  std::unique_ptr<RpcClient> rpc;
  try {
    rpc.reset(new RpcClient(options, plain));
  } catch (const zmq::error_t& e) {
    return Status::Unavailable(std::string("zmq context: ") + e.what());
  }
  rpc->wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (rpc->wake_fd_ < 0) return Status::FromErrno(errno, "eventfd");
  rpc->loop_ = std::make_unique<Loop>(rpc.get());
  std::promise<void> started;
  auto started_f = started.get_future();
  RpcClient* self = rpc.get();
  rpc->thread_ = std::thread([self, &started] {
    self->io_thread_id_ = std::this_thread::get_id();
    started.set_value();
    self->loop_->Run();
  });
  started_f.wait();
  return rpc;
}

RpcClient::RpcClient(const RpcOptions& options, bool plain) : options_(options) {
  if (options_.curve.empty() && !plain) options_.curve = DefaultCurveClientKeys();
  context_.set(zmq::ctxopt::io_threads, options.io_threads);
  context_.set(zmq::ctxopt::blocky, 0);
}

RpcClient::~RpcClient() {
  Shutdown();
  loop_.reset();  // no sockets left open: the context terminates at once
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void RpcClient::Wake() {
  uint64_t one = 1;
  while (::write(wake_fd_, &one, sizeof(one)) < 0 && errno == EINTR) {
  }
}

void RpcClient::SubmitEncoded(const std::string& endpoint, uint64_t request_id, std::string header,
                              Payload payload, Clock::time_point deadline, RpcCallback done,
                              std::string sender) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!closed_ && !stopping_) {
      wake = queue_.empty();  // the I/O thread drains everything per wake-up
      queue_.push_back(Submission{endpoint, std::move(sender), request_id, std::move(header),
                                  std::move(payload), deadline, std::move(done)});
      done = nullptr;
    }
  }
  if (done) {
    done(Status::Aborted("transport shut down; request to " + endpoint + " not sent"));
    return;
  }
  if (wake) Wake();
}

Result<RpcReply> RpcClient::CallEncoded(const std::string& endpoint, uint64_t request_id,
                                        std::string header, Payload payload,
                                        Clock::time_point deadline, std::string sender) {
  if (OnIoThread()) return Status::InvalidArgument("RpcClient::Call on the I/O thread");
  // shared_ptr: the I/O thread may still be inside set_value when get() returns.
  auto promise = std::make_shared<std::promise<Result<RpcReply>>>();
  auto future = promise->get_future();
  SubmitEncoded(endpoint, request_id, std::move(header), std::move(payload), deadline,
                [promise](Result<RpcReply> r) { promise->set_value(std::move(r)); },
                std::move(sender));
  return future.get();
}

void RpcClient::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  if (thread_.joinable()) {
    Wake();
    thread_.join();
  }
}

RpcStats RpcClient::stats() const { return loop_ ? loop_->Stats() : RpcStats{}; }

// ---- I/O thread ----

void RpcClient::Loop::Run() {
  std::vector<zmq::pollitem_t> items;
  std::vector<size_t> item_conn;
  for (;;) {
    items.clear();
    item_conn.clear();
    items.push_back({nullptr, rpc_->wake_fd_, ZMQ_POLLIN, 0});
    for (size_t i = 0; i < conns_.size(); ++i) {
      if (!conns_[i].socket) continue;
      short events = ZMQ_POLLIN;
      if (!conns_[i].outq.empty()) events |= ZMQ_POLLOUT;
      items.push_back({conns_[i].socket->handle(), 0, events, 0});
      item_conn.push_back(i);
    }
    try {
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(PollTimeoutMs()));
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) LOG_ERROR("transport: poll: {}", e.what());
      continue;
    }
    if (items[0].revents & ZMQ_POLLIN) {
      uint64_t v;
      while (::read(rpc_->wake_fd_, &v, sizeof(v)) < 0 && errno == EINTR) {
      }
      bool stopping;
      {
        std::lock_guard<std::mutex> lock(rpc_->mu_);
        stopping = rpc_->stopping_;
      }
      if (stopping) break;
      TakeSubmissions(false);
    }
    // Sockets created by TakeSubmissions are not in `items`; they were
    // flushed already and are polled from the next round.
    for (size_t j = 1; j < items.size(); ++j) {
      size_t ci = item_conn[j - 1];
      if (!conns_[ci].socket) continue;  // reset during this round
      if (items[j].revents & ZMQ_POLLIN) Receive(ci);
      if (conns_[ci].socket && (items[j].revents & ZMQ_POLLOUT)) Flush(ci);
    }
    Expire(Clock::now());
  }
  // Shutdown: nothing is sent any more; every caller hears back once.
  TakeSubmissions(true);
  std::vector<Pending> left;
  for (auto& [id, p] : pending_) left.push_back(std::move(p));
  pending_.clear();
  for (Pending& p : left) {
    std::string ep = conns_[p.conn].endpoint;
    Finish(std::move(p), Status::Aborted("transport shut down before " + ep + " replied"));
  }
  for (Connection& c : conns_) {
    c.outq.clear();
    c.socket.reset();  // linger 0: queued frames are dropped, payloads released
  }
}

int RpcClient::Loop::PollTimeoutMs() const {
  if (deadlines_.empty()) return -1;
  auto left = deadlines_.top().first - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  // Round up so the loop does not spin just before the deadline.
  return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(left).count());
}

void RpcClient::Loop::TakeSubmissions(bool final) {
  std::vector<Submission> batch;
  {
    std::lock_guard<std::mutex> lock(rpc_->mu_);
    batch.swap(rpc_->queue_);
    if (final) rpc_->closed_ = true;
  }
  std::vector<size_t> touched;
  for (Submission& s : batch) {
    if (final) {
      Invoke(s.done,
             Status::Aborted("transport shut down; request to " + s.endpoint + " not sent"));
      continue;
    }
    size_t ci = ConnectionFor(s.endpoint, s.sender);
    Connection& c = conns_[ci];
    if (!EnsureSocket(c)) {
      Invoke(s.done, Status::Unavailable("cannot connect to " + s.endpoint));
      continue;
    }
    pending_.emplace(s.id, Pending{ci, s.deadline, Clock::time_point::max(), std::move(s.done)});
    deadlines_.emplace(s.deadline, s.id);
    c.outq.push_back({s.id, std::move(s.header), std::move(s.payload)});
    if (touched.empty() || touched.back() != ci) touched.push_back(ci);
  }
  for (size_t ci : touched) {
    if (conns_[ci].socket) Flush(ci);
  }
}

size_t RpcClient::Loop::ConnectionFor(const std::string& endpoint, const std::string& sender) {
  // One socket per (endpoint, identity): a CURVE socket has one keypair.
  std::string key = sender.empty() ? endpoint : endpoint + '\n' + sender;
  auto it = by_endpoint_.find(key);
  if (it != by_endpoint_.end()) return it->second;
  conns_.push_back(Connection{endpoint, sender, nullptr, {}, Clock::now()});
  by_endpoint_.emplace(key, conns_.size() - 1);
  return conns_.size() - 1;
}

bool RpcClient::Loop::EnsureSocket(Connection& c) {
  if (c.socket) return true;
  try {
    auto s = std::make_unique<zmq::socket_t>(rpc_->context_, zmq::socket_type::dealer);
    s->set(zmq::sockopt::linger, 0);
    // Queue nothing for a peer that is not connected: the request stays in
    // outq and expires, instead of being delivered long after its deadline.
    s->set(zmq::sockopt::immediate, 1);
    s->set(zmq::sockopt::sndhwm, rpc_->options_.send_hwm);
    s->set(zmq::sockopt::rcvhwm, rpc_->options_.receive_hwm);
    s->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(wire::kMaxFrameSize));
    s->set(zmq::sockopt::reconnect_ivl, rpc_->options_.reconnect_ivl_ms);
    // A connect stuck in SYN-SENT (a peer behind a cut link) would otherwise
    // wait for the kernel's SYN back-off, up to minutes after the link is
    // back: give up after 1 s and let reconnect_ivl try afresh.
    s->set(zmq::sockopt::connect_timeout, 1000);
    CurveClientKeys curve = rpc_->options_.curve;
    if (!curve.empty() && !c.sender.empty()) {
      if (auto kp = FindCurveIdentity(c.sender)) {
        curve.public_key = kp->public_key;
        curve.secret_key = kp->secret_key;
      }
    }
    if (!curve.empty()) {
      s->set(zmq::sockopt::curve_serverkey, curve.server_key);
      s->set(zmq::sockopt::curve_publickey, curve.public_key);
      s->set(zmq::sockopt::curve_secretkey, curve.secret_key);
    }
    s->connect(c.endpoint);
    c.socket = std::move(s);
    c.last_recv = Clock::now();
    return true;
  } catch (const zmq::error_t& e) {
    LOG_WARN("transport: connect {}: {}", c.endpoint, e.what());
    return false;
  }
}

void RpcClient::Loop::Flush(size_t ci) {
  Connection& c = conns_[ci];
  while (!c.outq.empty()) {
    Connection::Outgoing& out = c.outq.front();
    auto pit = pending_.find(out.id);
    if (pit == pending_.end()) {  // expired while queued
      c.outq.pop_front();
      continue;
    }
    try {
      // Build both frames before sending either, so a failure cannot leave
      // half a message on the socket.
      zmq::message_t head(out.header.data(), out.header.size());
      zmq::message_t body;
      if (!out.payload.empty()) {
        // Zero copy: ZeroMQ calls the free function once the frame is gone,
        // which drops our reference to the caller's buffer.
        auto hold = std::make_unique<std::shared_ptr<const void>>(out.payload.owner);
        body.rebuild(
            const_cast<uint8_t*>(out.payload.data), out.payload.size,
            [](void*, void* hint) { delete static_cast<std::shared_ptr<const void>*>(hint); },
            hold.get());
        hold.release();  // owned by the message now
      }
      auto flags = out.payload.empty() ? zmq::send_flags::dontwait
                                       : zmq::send_flags::dontwait | zmq::send_flags::sndmore;
      if (!c.socket->send(head, flags)) return;  // EAGAIN: wait for POLLOUT (body frees itself)
      if (!out.payload.empty()) {
        // Later parts of a message whose first part was accepted are never
        // refused for lack of room (libzmq counts whole messages).
        (void)c.socket->send(body, zmq::send_flags::none);
      }
    } catch (const zmq::error_t& e) {
      Reset(ci, Status::Unavailable("send to " + c.endpoint + ": " + e.what()));
      return;
    } catch (const std::bad_alloc&) {
      Reset(ci, Status::Unavailable("send to " + c.endpoint + ": out of memory"));
      return;
    }
    pit->second.sent = Clock::now();
    sent_.fetch_add(1, std::memory_order_relaxed);
    c.outq.pop_front();
  }
}

void RpcClient::Loop::Receive(size_t ci) {
  for (int budget = 0; budget < 256; ++budget) {  // let other sockets have a turn
    Connection& c = conns_[ci];
    zmq::message_t head;
    zmq::message_t body;
    bool has_body = false;
    bool extra = false;
    try {
      if (!c.socket->recv(head, zmq::recv_flags::dontwait)) return;
      if (head.size() == 0 && head.more()) {
        // Tolerate a REQ-style empty delimiter before the header frame.
        (void)c.socket->recv(head, zmq::recv_flags::none);
      }
      bool more = head.more();
      while (more) {  // the rest of a message is always there once its first part is
        zmq::message_t part;
        (void)c.socket->recv(part, zmq::recv_flags::none);
        more = part.more();
        if (has_body) {
          extra = true;
        } else {
          body = std::move(part);
          has_body = true;
        }
      }
    } catch (const zmq::error_t& e) {
      Reset(ci, Status::Unavailable("receive from " + c.endpoint + ": " + e.what()));
      return;
    }
    c.last_recv = Clock::now();
    auto frame = wire::DecodeFrame(
        std::span<const uint8_t>(static_cast<const uint8_t*>(head.data()), head.size()));
    if (!frame.ok() || !frame->header.reply || extra) {
      LOG_DEBUG("transport: dropping malformed reply from {}", c.endpoint);
      continue;
    }
    auto pit = pending_.find(frame->header.request_id);
    if (pit == pending_.end() || pit->second.conn != ci) {
      late_.fetch_add(1, std::memory_order_relaxed);  // expired, or an id this peer was never sent
      continue;
    }
    Pending p = std::move(pit->second);
    pending_.erase(pit);
    replies_.fetch_add(1, std::memory_order_relaxed);
    RpcReply reply;
    reply.header = std::move(head);
    reply.payload = std::move(body);
    reply.has_payload = has_body;
    Finish(std::move(p), std::move(reply));
  }
}

void RpcClient::Loop::Expire(Clock::time_point now) {
  while (!deadlines_.empty() && deadlines_.top().first <= now) {
    uint64_t id = deadlines_.top().second;
    deadlines_.pop();
    auto pit = pending_.find(id);
    if (pit == pending_.end()) continue;  // answered in time
    Pending p = std::move(pit->second);
    pending_.erase(pit);
    timeouts_.fetch_add(1, std::memory_order_relaxed);
    Connection& c = conns_[p.conn];
    const bool was_sent = p.sent != Clock::time_point::max();
    const bool stalled = was_sent && c.last_recv < p.sent && c.socket != nullptr;
    const size_t ci = p.conn;
    std::string what = c.endpoint + (was_sent ? ": no reply before the deadline"
                                              : ": not connected before the deadline");
    if (!was_sent) {
      what += rpc_->options_.curve.empty()
                  ? " (this client has no network key: a shardfs node refuses it)"
                  : " (node down, or it refused the CURVE handshake: wrong network key?)";
    }
    // Reset first: its counters are visible to whoever the callback wakes.
    if (stalled) Reset(ci, Status::TimedOut(conns_[ci].endpoint + ": node is not responding"));
    Finish(std::move(p), Status::TimedOut(what));
  }
}

void RpcClient::Loop::Reset(size_t ci, const Status& why) {
  Connection& c = conns_[ci];
  LOG_WARN("transport: resetting connection: {}", why.ToString());
  resets_.fetch_add(1, std::memory_order_relaxed);
  c.outq.clear();
  c.socket.reset();  // linger 0: queued frames go, their payload buffers are released
  std::vector<Pending> failed;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.conn == ci) {
      failed.push_back(std::move(it->second));
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  for (Pending& p : failed) Finish(std::move(p), why);
}

void RpcClient::Loop::Finish(Pending p, Result<RpcReply> r) { Invoke(p.done, std::move(r)); }

// Callbacks must not throw; if one does, the I/O thread survives it.
void RpcClient::Loop::Invoke(RpcCallback& done, Result<RpcReply> r) {
  try {
    done(std::move(r));
  } catch (const std::exception& e) {
    LOG_ERROR("transport: callback threw: {}", e.what());
  } catch (...) {
    LOG_ERROR("transport: callback threw");
  }
}

}  // namespace shardfs
