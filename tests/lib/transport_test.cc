// Tests for lib/transport: an in-test ROUTER server on tcp://127.0.0.1:*
// answers GET_SHARD requests with GetShardReply{shard_size = request's
// offset} (echoing any payload), so every reply says which request it
// answers. Modes make it silent or slow for chosen requests.
#include "lib/transport.h"

#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <thread>

namespace shardfs {
namespace {

using namespace std::chrono_literals;

class TestServer {
 public:
  enum class Mode {
    kEcho,      // answer everything, in reverse order of each burst
    kSilent,    // answer nothing
    kDelayOdd,  // odd offsets answered after `delay`, the rest at once
  };

  explicit TestServer(Mode mode, std::chrono::milliseconds delay = 0ms)
      : mode_(mode), delay_(delay), socket_(ctx_, zmq::socket_type::router) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::sndhwm, 0);  // a ROUTER drops replies past its HWM
    socket_.bind("tcp://127.0.0.1:*");
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
    thread_ = std::thread([this] { Run(); });
  }
  ~TestServer() {
    stop_ = true;
    thread_.join();
  }
  const std::string& endpoint() const { return endpoint_; }
  int received() const { return received_; }
  void set_mode(Mode m) { mode_ = m; }

 private:
  struct Held {
    Clock::time_point due;
    std::vector<zmq::message_t> reply;
  };

  void Run() {
    std::vector<Held> held;
    while (!stop_) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, 10ms);
      std::vector<std::vector<zmq::message_t>> burst;
      for (;;) {
        std::vector<zmq::message_t> parts;
        zmq::message_t m;
        if (!socket_.recv(m, zmq::recv_flags::dontwait)) break;
        bool more = m.more();
        parts.push_back(std::move(m));
        while (more) {
          zmq::message_t p;
          (void)socket_.recv(p);
          more = p.more();
          parts.push_back(std::move(p));
        }
        ++received_;
        burst.push_back(std::move(parts));
      }
      // Reverse order: replies must be matched by id, not by position.
      for (auto it = burst.rbegin(); it != burst.rend(); ++it) {
        auto& parts = *it;
        if (mode_ == Mode::kSilent || parts.size() < 2) continue;
        auto frame = wire::DecodeFrame(std::span<const uint8_t>(
            static_cast<const uint8_t*>(parts[1].data()), parts[1].size()));
        if (!frame.ok()) continue;
        wire::GetShardRequest req;
        if (!wire::DecodeBody(frame->body, &req).ok()) continue;
        wire::GetShardReply rep;
        rep.shard_size = req.offset;
        std::string head = wire::EncodeMessage(frame->header.request_id, rep);
        std::vector<zmq::message_t> reply;
        reply.emplace_back(parts[0].data(), parts[0].size());
        reply.emplace_back(head.data(), head.size());
        if (parts.size() > 2) reply.push_back(std::move(parts[2]));
        Clock::time_point due = Clock::now();
        if (mode_ == Mode::kDelayOdd && req.offset % 2 == 1) due += delay_;
        held.push_back({due, std::move(reply)});
      }
      const auto now = Clock::now();
      for (auto it = held.begin(); it != held.end();) {
        if (it->due > now) {
          ++it;
          continue;
        }
        for (size_t i = 0; i < it->reply.size(); ++i) {
          auto flags = i + 1 < it->reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none;
          (void)socket_.send(it->reply[i], flags);
        }
        it = held.erase(it);
      }
    }
  }

  std::atomic<Mode> mode_;
  const std::chrono::milliseconds delay_;
  zmq::context_t ctx_;
  zmq::socket_t socket_;  // used only by the server thread after construction
  std::string endpoint_;
  std::atomic<bool> stop_{false};
  std::atomic<int> received_{0};
  std::thread thread_;
};

wire::GetShardRequest Req(uint64_t offset) {
  wire::GetShardRequest r;
  r.offset = offset;
  return r;
}

// shard_size echoed by the server, or a status.
Result<uint64_t> Echoed(Result<RpcReply> r) {
  if (!r.ok()) return r.status();
  wire::GetShardReply rep;
  Status st = ParseReply(*r, &rep);
  if (!st.ok()) return st;
  return rep.shard_size;
}

}  // namespace

TEST_SUITE("transport") {
  TEST_CASE("many requests in flight are matched by id") {
    TestServer server(TestServer::Mode::kEcho);
    auto rpc = RpcClient::Create();
    REQUIRE(rpc.ok());
    constexpr int kCount = 2000;
    std::mutex mu;
    std::condition_variable cv;
    int done = 0, matched = 0;
    for (int i = 0; i < kCount; ++i) {
      (*rpc)->Send(server.endpoint(), Req(i), Payload{}, Clock::now() + 10s,
                   [&, i](Result<RpcReply> r) {
                     auto v = Echoed(std::move(r));
                     std::lock_guard<std::mutex> lock(mu);
                     matched += v.ok() && *v == static_cast<uint64_t>(i);
                     ++done;
                     cv.notify_all();
                   });
    }
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done == kCount; });
    CHECK(matched == kCount);
    CHECK((*rpc)->stats().replies == kCount);
  }

  TEST_CASE("timeout when the server does not answer") {
    TestServer server(TestServer::Mode::kSilent);
    auto rpc = RpcClient::Create();
    REQUIRE(rpc.ok());
    const auto start = Clock::now();
    auto r = (*rpc)->Call(server.endpoint(), Req(1), Clock::now() + 200ms);
    const auto took = Clock::now() - start;
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().IsTimedOut());
    CHECK(r.status().message().find(server.endpoint()) != std::string::npos);
    CHECK(took >= 190ms);
    CHECK(took < 2s);
  }

  TEST_CASE("a silent peer's socket is reset, later requests get through") {
    TestServer server(TestServer::Mode::kSilent);
    auto rpc = RpcClient::Create();
    REQUIRE(rpc.ok());
    auto r = (*rpc)->Call(server.endpoint(), Req(1), Clock::now() + 200ms);
    CHECK(r.status().IsTimedOut());
    CHECK((*rpc)->stats().resets == 1);
    server.set_mode(TestServer::Mode::kEcho);
    auto again = Echoed((*rpc)->Call(server.endpoint(), Req(7), Clock::now() + 5s));
    REQUIRE(again.ok());
    CHECK(*again == 7);
  }

  TEST_CASE("a late reply is ignored") {
    TestServer server(TestServer::Mode::kDelayOdd, 300ms);
    auto rpc = RpcClient::Create();
    REQUIRE(rpc.ok());
    std::atomic<int> calls{0};
    Status late_status;
    std::mutex mu;
    // Odd: answered after 300 ms, expires at 100 ms. Even: answered at once,
    // so the connection is alive and is not reset.
    (*rpc)->Send(server.endpoint(), Req(1), Payload{}, Clock::now() + 100ms,
                 [&](Result<RpcReply> r) {
                   std::lock_guard<std::mutex> lock(mu);
                   late_status = r.status();
                   ++calls;
                 });
    auto even = Echoed((*rpc)->Call(server.endpoint(), Req(2), Clock::now() + 5s));
    CHECK(even.ok());
    std::this_thread::sleep_for(500ms);
    CHECK(calls == 1);  // exactly once, with the timeout
    {
      std::lock_guard<std::mutex> lock(mu);
      CHECK(late_status.IsTimedOut());
    }
    CHECK((*rpc)->stats().late_replies == 1);
    CHECK((*rpc)->stats().resets == 0);
    auto after = Echoed((*rpc)->Call(server.endpoint(), Req(4), Clock::now() + 5s));
    REQUIRE(after.ok());
    CHECK(*after == 4);
  }

  TEST_CASE("payload round trip, zero copy reference released") {
    TestServer server(TestServer::Mode::kEcho);
    auto rpc = RpcClient::Create();
    REQUIRE(rpc.ok());
    auto buf = std::make_shared<std::vector<uint8_t>>(1 << 20);
    for (size_t i = 0; i < buf->size(); ++i) (*buf)[i] = static_cast<uint8_t>(i * 31 + 7);
    std::weak_ptr<std::vector<uint8_t>> weak = buf;
    Payload p{buf, buf->data() + 100, buf->size() - 100};
    std::vector<uint8_t> expect(buf->begin() + 100, buf->end());
    buf.reset();
    auto r = (*rpc)->Call(server.endpoint(), Req(3), Clock::now() + 5s, std::move(p));
    REQUIRE(r.ok());
    REQUIRE(r->has_payload);
    CHECK(r->payload.size() == expect.size());
    CHECK(std::memcmp(r->payload.data(), expect.data(), expect.size()) == 0);
    // ZeroMQ frees the frame (and our reference) once it is on the wire.
    const auto until = Clock::now() + 2s;
    while (!weak.expired() && Clock::now() < until) std::this_thread::sleep_for(5ms);
    CHECK(weak.expired());
  }

  TEST_CASE("shutdown aborts pending requests; later submissions fail at once") {
    TestServer server(TestServer::Mode::kSilent);
    auto rpc = RpcClient::Create();
    REQUIRE(rpc.ok());
    std::atomic<int> aborted{0};
    for (int i = 0; i < 10; ++i) {
      (*rpc)->Send(server.endpoint(), Req(i), Payload{}, Clock::now() + 60s,
                   [&](Result<RpcReply> r) { aborted += r.status().code() == Code::kAborted; });
    }
    const auto start = Clock::now();
    (*rpc)->Shutdown();
    CHECK(Clock::now() - start < 2s);
    CHECK(aborted == 10);
    auto r = (*rpc)->Call(server.endpoint(), Req(1), Clock::now() + 60s);
    CHECK(r.status().code() == Code::kAborted);
  }

  TEST_CASE("an unreachable endpoint times out in time") {
    auto rpc = RpcClient::Create();
    REQUIRE(rpc.ok());
    // Port 1 on loopback: connection refused, retried until the deadline.
    const auto start = Clock::now();
    auto r = (*rpc)->Call("tcp://127.0.0.1:1", Req(1), Clock::now() + 300ms);
    CHECK(r.status().IsTimedOut());
    CHECK(Clock::now() - start < 2s);
    auto bad = (*rpc)->Call("nonsense://x", Req(1), Clock::now() + 300ms);
    CHECK(bad.status().IsUnavailable());
  }
}

}  // namespace shardfs
