// The node's socket loop and worker pool. See server.h.
#include "netnode/server.h"

#include <chrono>

#include "lib/log.h"
#include "lib/wire_format.h"

namespace shardfs {

// Replies from workers and the committer to the I/O thread. Each calling
// thread gets its own PUSH socket on first use (a ZeroMQ socket belongs to
// one thread); the pipe keeps them all and closes them in Stop(), after
// every thread that used one has been joined.
class Server::ReplyPipe {
 public:
  ReplyPipe(zmq::context_t& ctx, std::string address)
      : ctx_(ctx), address_(std::move(address)), id_(next_id_.fetch_add(1)) {}
  ~ReplyPipe() { CloseAll(); }

  // Sends [peer][cap key][header][payload?]. Blocks only if the I/O thread
  // is far behind (the pipe's high-water mark), which is the back-pressure
  // we want.
  void Send(const std::string& peer, const std::string& cap_key, Reply reply) {
    zmq::socket_t* s = ForThisThread();
    if (s == nullptr) return;
    try {
      s->send(zmq::buffer(peer), zmq::send_flags::sndmore);
      s->send(zmq::buffer(cap_key), zmq::send_flags::sndmore);
      s->send(zmq::buffer(reply.header),
              reply.payload ? zmq::send_flags::sndmore : zmq::send_flags::none);
      if (reply.payload) s->send(*reply.payload, zmq::send_flags::none);
    } catch (const zmq::error_t& e) {
      // Only at context shutdown; the reply is lost with the connection.
      LOG_WARN("reply pipe: {}", e.what());
    }
  }

  void CloseAll() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& s : sockets_) s->close();
    sockets_.clear();
  }

 private:
  zmq::socket_t* ForThisThread() {
    // (pipe id, socket) for every pipe this thread has used; ids are never
    // reused, so an entry of a dead pipe is never matched again.
    thread_local std::vector<std::pair<uint64_t, zmq::socket_t*>> mine;
    for (auto& [id, s] : mine) {
      if (id == id_) return s;
    }
    try {
      auto s = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::push);
      s->set(zmq::sockopt::linger, 0);
      s->connect(address_);
      zmq::socket_t* raw = s.get();
      std::lock_guard<std::mutex> lock(mu_);
      sockets_.push_back(std::move(s));
      mine.emplace_back(id_, raw);
      return raw;
    } catch (const zmq::error_t& e) {
      LOG_ERROR("cannot open reply pipe: {}", e.what());
      return nullptr;
    }
  }

  static inline std::atomic<uint64_t> next_id_{1};
  zmq::context_t& ctx_;
  const std::string address_;
  const uint64_t id_;
  std::mutex mu_;
  std::vector<std::unique_ptr<zmq::socket_t>> sockets_;  // guarded by mu_
};

Server::Server(ShardStore* store, NodeSelf info, ServerOptions options, NodeHooks hooks)
    : store_(store), info_(std::move(info)), hooks_(std::move(hooks)), options_(std::move(options)) {}

Server::~Server() { Stop(); }

Status Server::Start() {
  if (!options_.curve.empty()) {
    RETURN_IF_ERROR(CheckCurveAvailable());
    // The handler must be bound before the first handshake can happen.
    zap_ = std::make_unique<ZapHandler>(ctx_, ZapPolicy{options_.curve.domain, {}});
    Status st = zap_->Start();
    if (!st.ok()) {
      zap_.reset();
      return st;
    }
  }
  try {
    router_ = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::router);
    if (!options_.curve.empty()) {
      router_->set(zmq::sockopt::curve_server, true);
      router_->set(zmq::sockopt::curve_secretkey, options_.curve.secret_key);
      router_->set(zmq::sockopt::zap_domain, options_.curve.domain);
    }
    // STYLE.md §4: linger on every socket; the size cap on server sockets.
    router_->set(zmq::sockopt::linger, options_.close_linger_ms);
    router_->set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(wire::kMaxFrameSize));
    // Off (the default, set for the record): a reply to a peer that has gone
    // is dropped instead of failing the send.
    router_->set(zmq::sockopt::router_mandatory, false);
    std::string listen = options_.listen;
    // ZeroMQ's wildcard port is "*"; accept the usual ":0" too.
    if (listen.size() > 2 && listen.compare(listen.size() - 2, 2, ":0") == 0) {
      listen.replace(listen.size() - 1, 1, "*");
    }
    router_->bind(listen);
    bound_endpoint_ = router_->get(zmq::sockopt::last_endpoint);

    pull_ = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::pull);
    pull_->set(zmq::sockopt::linger, 0);
    std::string pipe_address = "inproc://shardfs-replies";
    pull_->bind(pipe_address);
    pipe_ = std::make_unique<ReplyPipe>(ctx_, pipe_address);
  } catch (const zmq::error_t& e) {
    router_.reset();
    pull_.reset();
    if (zap_) zap_->Stop();
    zap_.reset();
    return Status::Unavailable("cannot listen on " + options_.listen + ": " + e.what());
  }
  info_.endpoint = options_.advertise.empty() ? bound_endpoint_ : options_.advertise;
  handler_ = std::make_unique<RequestHandler>(store_, info_, hooks_);
  started_ = true;
  io_thread_ = std::thread([this] { IoLoop(router_.get(), pull_.get()); });
  for (size_t i = 0; i < std::max<size_t>(options_.workers, 1); ++i) {
    workers_.emplace_back([this, i] { WorkerLoop(i); });
  }
  return Status::OK();
}

void Server::Stop() {
  if (!started_) return;
  started_ = false;
  // 1. No new requests from the network.
  stopping_ = true;
  // 2. Workers answer what is still queued with BUSY and exit.
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
  workers_.clear();
  // 3. Queued PUTs become durable and are acknowledged into the pipe.
  store_->Shutdown();
  // 4. The I/O thread forwards the last replies and closes its sockets.
  replies_done_ = true;
  io_thread_.join();
  pipe_->CloseAll();
  pipe_.reset();
  if (zap_) zap_->Stop();
  zap_.reset();
  ctx_.close();
}

void Server::SendToPeer(zmq::socket_t& router, const std::string& peer, Reply reply) {
  try {
    // A peer whose queue is full or who is gone loses the reply (it will
    // time out and retry); the I/O thread must never block here.
    auto r = router.send(zmq::buffer(peer), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    if (!r) return;
    router.send(zmq::buffer(reply.header),
                reply.payload ? zmq::send_flags::sndmore : zmq::send_flags::none);
    if (reply.payload) router.send(*reply.payload, zmq::send_flags::none);
  } catch (const zmq::error_t& e) {
    LOG_WARN("reply to a peer lost: {}", e.what());
  }
}

void Server::OnRequest(zmq::socket_t& router, std::string peer, Request req) {
  Reply reply;
  switch (handler_->Triage(req, &reply)) {
    case RequestHandler::Route::kDrop:
      LOG_DEBUG("dropped an undecodable message of {} bytes", req.header.size());
      return;
    case RequestHandler::Route::kReplyNow:
      SendToPeer(router, peer, std::move(reply));
      return;
    case RequestHandler::Route::kWorker:
      break;
  }
  std::string cap_key = req.peer_key.empty() ? "r:" + peer : "k:" + req.peer_key;
  size_t& inflight = inflight_[cap_key];
  if (inflight >= options_.max_inflight_per_peer) {
    auto busy = RequestHandler::ErrorReply(
        req.header, wire::WireCode::kBusy,
        "busy: more than " + std::to_string(options_.max_inflight_per_peer) +
            " requests in flight from this peer; retry later");
    if (inflight == 0) inflight_.erase(cap_key);
    if (busy) SendToPeer(router, peer, std::move(*busy));
    return;
  }
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (queue_.size() >= options_.max_queue) {
      lock.unlock();
      if (inflight == 0) inflight_.erase(cap_key);
      auto busy = RequestHandler::ErrorReply(req.header, wire::WireCode::kBusy, "node is busy");
      if (busy) SendToPeer(router, peer, std::move(*busy));
      return;
    }
    ++inflight;
    queue_.push_back(Work{std::move(peer), std::move(cap_key), std::move(req)});
  }
  cv_.notify_one();
}

void Server::IoLoop(zmq::socket_t* router, zmq::socket_t* pull) {
  // Bounded batches per wake-up so neither direction starves the other.
  constexpr int kBatch = 64;
  auto forward_replies = [&](bool block_first) {
    for (int i = 0; i < kBatch * 4; ++i) {
      zmq::message_t peer, cap, header, payload;
      auto flags = (i == 0 && block_first) ? zmq::recv_flags::none : zmq::recv_flags::dontwait;
      if (!pull->recv(peer, flags)) return false;
      Reply reply;
      (void)pull->recv(cap);
      (void)pull->recv(header);  // the rest of a multipart message is already here
      reply.header.assign(static_cast<const char*>(header.data()), header.size());
      if (header.more()) {
        reply.payload.emplace();
        (void)pull->recv(*reply.payload);
      }
      std::string id(static_cast<const char*>(peer.data()), peer.size());
      auto it = inflight_.find(std::string(static_cast<const char*>(cap.data()), cap.size()));
      if (it != inflight_.end() && --it->second == 0) inflight_.erase(it);
      // An empty header only settles the count (a request with no reply).
      if (!reply.header.empty()) SendToPeer(*router, id, std::move(reply));
    }
    return true;
  };

  try {
    while (!replies_done_) {
      zmq::pollitem_t items[] = {
          {pull->handle(), 0, ZMQ_POLLIN, 0},
          {router->handle(), 0, static_cast<short>(stopping_ ? 0 : ZMQ_POLLIN), 0},
      };
      // The timeout bounds how long Stop() waits for this loop to notice.
      zmq::poll(items, 2, std::chrono::milliseconds(100));
      if (items[0].revents & ZMQ_POLLIN) forward_replies(false);
      if (stopping_ || !(items[1].revents & ZMQ_POLLIN)) continue;
      for (int i = 0; i < kBatch; ++i) {
        zmq::message_t peer;
        if (!router->recv(peer, zmq::recv_flags::dontwait)) break;
        // A ROUTER message always has the identity then >= 1 frame; read
        // every frame so the next message starts clean, keeping at most two.
        Request req;
        bool more = peer.more();
        if (more) {
          (void)router->recv(req.header);
          more = req.header.more();
          // The ZAP handler's User-Id: the sender's authenticated CURVE key.
          if (!options_.curve.empty()) {
            const char* uid = zmq_msg_gets(req.header.handle(), "User-Id");
            if (uid != nullptr) req.peer_key = uid;
          }
        }
        if (more) {
          req.payload.emplace();
          (void)router->recv(*req.payload);
          more = req.payload->more();
        }
        while (more) {
          zmq::message_t extra;
          (void)router->recv(extra);
          ++req.extra_frames;
          more = extra.more();
        }
        OnRequest(*router, std::string(static_cast<const char*>(peer.data()), peer.size()),
                  std::move(req));
      }
    }
    // Stop(): every reply is in the pipe by now.
    while (forward_replies(false)) {
    }
  } catch (const zmq::error_t& e) {
    LOG_ERROR("I/O loop stopped: {}", e.what());
  }
  router->close();
  pull->close();
}

void Server::WorkerLoop(size_t index) {
  auto catalog = store_->OpenCatalog();
  if (!catalog.ok()) {
    LOG_ERROR("worker {}: {}", index, catalog.status().ToString());
  }
  while (true) {
    Work work;
    bool closing;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return closed_ || !queue_.empty(); });
      if (queue_.empty()) return;
      work = std::move(queue_.front());
      queue_.pop_front();
      closing = closed_;
    }
    std::string peer = work.peer;
    std::string cap_key = work.cap_key;
    if (closing || !catalog.ok()) {
      // Shutting down (or no database): answer, so the peer does not wait
      // for its timeout and the in-flight count stays exact.
      auto busy = RequestHandler::ErrorReply(
          work.request.header, wire::WireCode::kBusy,
          catalog.ok() ? "node is shutting down" : "node cannot open its catalog");
      pipe_->Send(peer, cap_key, busy ? std::move(*busy) : Reply{});
      continue;
    }
    handler_->Execute(catalog->get(), std::move(work.request),
                      [this, peer, cap_key](Reply r) { pipe_->Send(peer, cap_key, std::move(r)); });
  }
}

}  // namespace shardfs
