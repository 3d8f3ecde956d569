// Tests for netnode/server (with request_handler): a Server started
// in-process on tcp://127.0.0.1:0 and spoken to with a cppzmq DEALER.
#include "netnode/server.h"

#include <doctest/doctest.h>

#include <zmq.hpp>

#include "lib/checksum.h"
#include "lib/coding.h"
#include "lib/wire_messages.h"
#include "tests/netnode/temp_dir.h"
#include "tests/netnode/test_util.h"

namespace shardfs {
namespace {

using testing::TestLocator;
using testing::TestPayload;
using testing::TestStripe;

const std::string kOwner = "server-test-owner-xxxxxxxxxxxxxxxxxxxxxx";

struct Node {
  testing::TempDir dir;
  std::unique_ptr<ShardStore> store;
  std::unique_ptr<Server> server;

  explicit Node(uint64_t capacity = 0, size_t max_inflight = 64) {
    StoreOptions so;
    so.data_dir = dir.Sub("data");
    so.capacity_bytes = capacity;
    auto s = ShardStore::Open(std::move(so));
    REQUIRE(s.ok());
    store = std::move(*s);
    NodeSelf info;
    info.id = 0x0102030405060708ull;
    info.zone = "zone-a";
    info.public_key = std::string(40, 'k');
    ServerOptions opts;
    opts.listen = "tcp://127.0.0.1:0";
    opts.max_inflight_per_peer = max_inflight;
    server = std::make_unique<Server>(store.get(), info, opts);
    REQUIRE(server->Start().ok());
  }
  ~Node() { server->Stop(); }
};

struct Client {
  zmq::context_t ctx;
  zmq::socket_t sock{ctx, zmq::socket_type::dealer};
  uint64_t next_id = 1;

  explicit Client(const std::string& endpoint) {
    sock.set(zmq::sockopt::linger, 0);
    sock.set(zmq::sockopt::rcvtimeo, 10000);
    sock.connect(endpoint);
  }

  void SendRaw(const std::vector<std::string>& frames) {
    for (size_t i = 0; i < frames.size(); ++i) {
      sock.send(zmq::buffer(frames[i]),
                i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }

  // Receives one reply: header frame decoded, payload (if any) returned.
  struct Got {
    wire::DecodedFrame frame;
    std::string header;  // keeps frame.body valid
    std::optional<std::string> payload;
  };
  std::optional<Got> Recv() {
    zmq::message_t h;
    if (!sock.recv(h)) return std::nullopt;
    Got g;
    g.header = h.to_string();
    if (h.more()) {
      zmq::message_t p;
      (void)sock.recv(p);
      g.payload = p.to_string();
    }
    auto f = wire::DecodeFrame(g.header);
    if (f.ok()) {
      g.frame = *f;
    } else {
      // An error reply to an unknown command names that command, which our
      // own decoder refuses; the fixed header is still readable.
      REQUIRE(g.header.size() >= wire::kHeaderSize);
      g.frame.header.reply = true;
      g.frame.header.request_id =
          DecodeU64At(reinterpret_cast<const uint8_t*>(g.header.data()) + 8);
      g.frame.header.status = static_cast<wire::WireCode>(g.header[16]);
    }
    return g;
  }

  template <typename Msg>
  std::optional<Got> Call(const Msg& m, std::optional<std::string> payload = std::nullopt) {
    uint64_t id = next_id++;
    std::string h = wire::EncodeMessage(id, m);
    if (payload) {
      SendRaw({h, *payload});
    } else {
      SendRaw({h});
    }
    auto g = Recv();
    if (g) CHECK(g->frame.header.request_id == id);
    return g;
  }
};

std::string Str(const std::vector<uint8_t>& v) { return std::string(v.begin(), v.end()); }

wire::PutShardRequest PutReq(const ShardKey& key, const std::vector<uint8_t>& payload) {
  wire::PutShardRequest r;
  r.stripe = key.stripe;
  r.index = key.index;
  r.crc32c = Crc32c(payload);
  r.owner = kOwner;
  r.locator = TestLocator(key.stripe, payload);
  return r;
}

TEST_SUITE("server") {
  TEST_CASE("ping answers with the node's identity and usage") {
    Node node(1 << 20);
    CHECK(node.server->bound_endpoint().rfind("tcp://127.0.0.1:", 0) == 0);
    CHECK(node.server->bound_endpoint() != "tcp://127.0.0.1:0");
    Client c(node.server->bound_endpoint());
    auto got = c.Call(wire::PingRequest{});
    REQUIRE(got);
    CHECK(got->frame.header.reply);
    CHECK(got->frame.header.status == wire::WireCode::kOk);
    wire::PingReply p;
    REQUIRE(wire::DecodeBody(got->frame.body, &p).ok());
    CHECK(p.node_id == 0x0102030405060708ull);
    CHECK(p.zone == "zone-a");
    CHECK(p.capacity_bytes == (1 << 20));
    CHECK(p.used_bytes == 0);
    CHECK(p.endpoint == node.server->bound_endpoint());
  }

  TEST_CASE("put, get, stat, list and delete over the socket") {
    Node node;
    Client c(node.server->bound_endpoint());
    ShardKey key{TestStripe(0x31), 1};
    auto payload = TestPayload(200000);

    auto put = c.Call(PutReq(key, payload), Str(payload));
    REQUIRE(put);
    CHECK(put->frame.header.status == wire::WireCode::kOk);

    wire::GetShardRequest g;
    g.stripe = key.stripe;
    g.index = key.index;
    auto got = c.Call(g);
    REQUIRE(got);
    REQUIRE(got->frame.header.status == wire::WireCode::kOk);
    wire::GetShardReply gr;
    REQUIRE(wire::DecodeBody(got->frame.body, &gr).ok());
    CHECK(gr.shard_size == payload.size());
    CHECK(gr.crc32c == Crc32c(payload));
    REQUIRE(got->payload);
    CHECK(*got->payload == Str(payload));

    g.offset = 100;
    g.length = 50;
    got = c.Call(g);
    REQUIRE(got);
    REQUIRE(got->payload);
    CHECK(*got->payload == Str(payload).substr(100, 50));
    g.offset = payload.size() + 1;
    got = c.Call(g);
    REQUIRE(got);
    CHECK(got->frame.header.status == wire::WireCode::kBadRequest);

    wire::StatShardRequest s{key.stripe, key.index};
    auto st = c.Call(s);
    REQUIRE(st);
    wire::StatShardReply sr;
    REQUIRE(wire::DecodeBody(st->frame.body, &sr).ok());
    CHECK(sr.size == payload.size());
    CHECK(sr.owner == kOwner);
    CHECK(sr.locator.version == 3);

    wire::ListShardsRequest l;
    l.limit = 10;
    auto ls = c.Call(l);
    REQUIRE(ls);
    wire::ListShardsReply lr;
    REQUIRE(wire::DecodeBody(ls->frame.body, &lr).ok());
    REQUIRE(lr.entries.size() == 1);
    CHECK(lr.entries[0].stripe == key.stripe);
    CHECK_FALSE(lr.more);

    wire::DeleteShardRequest d{key.stripe, key.index, "not-the-owner"};
    auto del = c.Call(d);
    REQUIRE(del);
    CHECK(del->frame.header.status == wire::WireCode::kDenied);
    d.owner = kOwner;
    del = c.Call(d);
    REQUIRE(del);
    CHECK(del->frame.header.status == wire::WireCode::kOk);
    got = c.Call(wire::GetShardRequest{key.stripe, key.index, 0, 0});
    REQUIRE(got);
    CHECK(got->frame.header.status == wire::WireCode::kNotFound);
  }

  TEST_CASE("bad payloads get the right error codes") {
    Node node(1000);
    Client c(node.server->bound_endpoint());
    ShardKey key{TestStripe(0x32), 0};
    auto payload = TestPayload(500);
    auto req = PutReq(key, payload);
    req.crc32c ^= 1;
    auto r = c.Call(req, Str(payload));
    REQUIRE(r);
    CHECK(r->frame.header.status == wire::WireCode::kChecksumMismatch);
    auto big = TestPayload(1001);
    r = c.Call(PutReq(key, big), Str(big));
    REQUIRE(r);
    CHECK(r->frame.header.status == wire::WireCode::kNoSpace);
    r = c.Call(PutReq(key, payload));  // no payload frame
    REQUIRE(r);
    CHECK(r->frame.header.status == wire::WireCode::kBadRequest);
    r = c.Call(wire::PingRequest{}, std::string("unexpected"));
    REQUIRE(r);
    CHECK(r->frame.header.status == wire::WireCode::kBadRequest);
  }

  TEST_CASE("garbage frames are answered or dropped and the node keeps serving") {
    Node node;
    Client c(node.server->bound_endpoint());
    std::string ping = wire::EncodeMessage(77, wire::PingRequest{});

    // Unaddressable: dropped without a reply.
    c.SendRaw({"hello"});
    c.SendRaw({std::string(1000, '\xff')});
    c.SendRaw({""});
    // Truncated versions of a valid header: each gets BAD_REQUEST once the
    // fixed header (magic, command, request id) is there, else nothing.
    for (size_t n = 0; n < ping.size(); ++n) c.SendRaw({ping.substr(0, n)});
    // Unknown command and unsupported version, addressable.
    std::string unknown = ping;
    unknown[6] = 0x7f;
    c.SendRaw({unknown});
    std::string future = ping;
    future[4] = 9;
    future[5] = 9;
    c.SendRaw({future});
    // Too many frames.
    c.SendRaw({ping, "a", "b"});
    // A reply sent to the node is ignored.
    c.SendRaw({wire::EncodeMessage(5, wire::PingReply{})});

    std::vector<wire::WireCode> codes;
    c.sock.set(zmq::sockopt::rcvtimeo, 1000);
    while (auto g = c.Recv()) codes.push_back(g->frame.header.status);
    size_t addressable = ping.size() - wire::kHeaderSize;  // truncations >= header size
    CHECK(codes.size() == addressable + 3);
    CHECK(std::count(codes.begin(), codes.end(), wire::WireCode::kUnknownCommand) == 1);
    CHECK(std::count(codes.begin(), codes.end(), wire::WireCode::kUnsupportedVersion) == 1);
    CHECK(std::count(codes.begin(), codes.end(), wire::WireCode::kBadRequest) ==
          static_cast<long>(addressable + 1));

    // And a valid ping still works, from this client and a fresh one.
    c.sock.set(zmq::sockopt::rcvtimeo, 10000);
    auto ok = c.Call(wire::PingRequest{});
    REQUIRE(ok);
    CHECK(ok->frame.header.status == wire::WireCode::kOk);
    Client c2(node.server->bound_endpoint());
    REQUIRE(c2.Call(wire::PingRequest{}));
  }

  TEST_CASE("many requests in flight from one peer: all answered, excess is BUSY") {
    Node node(0, /*max_inflight=*/4);
    Client c(node.server->bound_endpoint());
    auto payload = TestPayload(1000);
    constexpr int kN = 40;
    for (int i = 0; i < kN; ++i) {
      ShardKey key{TestStripe(0x40, static_cast<uint8_t>(i)), 0};
      c.SendRaw({wire::EncodeMessage(1000 + i, PutReq(key, payload)), Str(payload)});
    }
    int ok = 0, busy = 0;
    for (int i = 0; i < kN; ++i) {
      auto g = c.Recv();
      REQUIRE(g);
      if (g->frame.header.status == wire::WireCode::kOk) ++ok;
      if (g->frame.header.status == wire::WireCode::kBusy) ++busy;
    }
    CHECK(ok + busy == kN);
    CHECK(ok >= 4);
    // Counts settle: a new request after the burst is served.
    auto p = c.Call(wire::PingRequest{});
    REQUIRE(p);
    auto again = c.Call(PutReq({TestStripe(0x41), 0}, payload), Str(payload));
    REQUIRE(again);
    CHECK(again->frame.header.status == wire::WireCode::kOk);
  }

  TEST_CASE("stop with puts in flight leaves no temp files") {
    auto node = std::make_unique<Node>();
    Client c(node->server->bound_endpoint());
    auto payload = TestPayload(100000);
    for (int i = 0; i < 20; ++i) {
      ShardKey key{TestStripe(0x50, static_cast<uint8_t>(i)), 0};
      c.SendRaw({wire::EncodeMessage(i + 1, PutReq(key, payload)), Str(payload)});
    }
    std::string tmp = node->store->layout().TmpDir();
    node->server->Stop();
    size_t n = 0;
    for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(tmp)) ++n;
    CHECK(n == 0);
  }

}  // TEST_SUITE

}  // namespace
}  // namespace shardfs
