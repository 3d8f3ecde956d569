// Tests for the security layer (SECURITY.md): join tokens and network
// keys (lib/curve_keys), the ZAP policy (lib/curve_zap), and a CURVE
// Server spoken to through RpcClient: outsiders refused at the handshake,
// ownership enforced against the authenticated key, the per-peer cap.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <zmq.h>

#include <chrono>
#include <fstream>

#include "lib/checksum.h"
#include "lib/curve_keys.h"
#include "lib/curve_zap.h"
#include "lib/transport.h"
#include "netnode/server.h"
#include "tests/netnode/temp_dir.h"
#include "tests/netnode/test_util.h"

namespace shardfs {
namespace {

using testing::TestLocator;
using testing::TestPayload;
using testing::TestStripe;

NetworkSecret Secret(uint8_t fill) {
  NetworkSecret s;
  s.fill(fill);
  return s;
}

CurveKeypair NewKeypair() {
  char pub[41] = {}, sec[41] = {};
  REQUIRE(zmq_curve_keypair(pub, sec) == 0);
  return {pub, sec};
}

TEST_SUITE("curve_keys") {
  TEST_CASE("join token round trip") {
    JoinToken t;
    t.secret = Secret(7);
    t.endpoint = "tcp://10.0.0.2:7000";
    t.node_key = NewKeypair().public_key;
    std::string text = EncodeJoinToken(t);
    CHECK(text.rfind("shardfs1.", 0) == 0);
    CHECK(text.find_first_of(" \n'\"$") == std::string::npos);
    auto back = ParseJoinToken(text + "\n");
    REQUIRE(back.ok());
    CHECK(back->secret == t.secret);
    CHECK(back->endpoint == t.endpoint);
    CHECK(back->node_key == t.node_key);
  }

  TEST_CASE("join token without endpoint or key") {
    JoinToken t;
    t.secret = Secret(1);
    auto back = ParseJoinToken(EncodeJoinToken(t));
    REQUIRE(back.ok());
    CHECK(back->endpoint.empty());
    CHECK(back->node_key.empty());
  }

  TEST_CASE("malformed join tokens are refused with a reason") {
    JoinToken t;
    t.secret = Secret(9);
    t.endpoint = "tcp://127.0.0.1:1";
    std::string good = EncodeJoinToken(t);
    std::string typo = good;
    typo[20] = typo[20] == 'A' ? 'B' : 'A';
    for (const std::string& bad : {std::string(""), std::string("hello"), good.substr(0, 30),
                                   typo, good + "!", std::string("shardfs1.====")}) {
      CAPTURE(bad);
      auto r = ParseJoinToken(bad);
      CHECK(!r.ok());
      CHECK(r.status().code() == Code::kInvalidArgument);
    }
  }

  TEST_CASE("network keys are deterministic per secret") {
    auto a = NetworkServerKeypair(Secret(1));
    auto b = NetworkServerKeypair(Secret(1));
    auto c = NetworkServerKeypair(Secret(2));
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    REQUIRE(c.ok());
    CHECK(a->public_key == b->public_key);
    CHECK(a->secret_key == b->secret_key);
    CHECK(a->public_key != c->public_key);
    CHECK(NetworkId(Secret(1)) == NetworkId(Secret(1)));
    CHECK(NetworkId(Secret(1)) != NetworkId(Secret(2)));
    CHECK(NetworkId(Secret(1)).size() == 16);
  }

  TEST_CASE("network file must be private") {
    testing::TempDir dir;
    std::string path = dir.Sub("network");
    JoinToken t;
    t.secret = Secret(3);
    REQUIRE(WriteNetworkFile(path, t).ok());
    struct stat sb {};
    REQUIRE(::stat(path.c_str(), &sb) == 0);
    CHECK((sb.st_mode & 0777) == 0600);
    CHECK(LoadNetworkFile(path).ok());
    ::chmod(path.c_str(), 0640);
    auto r = LoadNetworkFile(path);
    CHECK(r.status().code() == Code::kPermissionDenied);
    CHECK(LoadNetworkFile(dir.Sub("absent")).status().IsNotFound());
  }
}

TEST_SUITE("curve_zap") {
  ZapRequest Req(const std::string& mechanism, const std::string& domain, size_t key_len = 32) {
    ZapRequest r;
    r.version = "1.0";
    r.request_id = "1";
    r.domain = domain;
    r.address = "127.0.0.1";
    r.mechanism = mechanism;
    r.credentials.push_back(std::string(key_len, 'x'));
    return r;
  }

  TEST_CASE("admits CURVE in the network's domain, with the key as user id") {
    ZapPolicy p{"shardfs/abc", {}};
    ZapDecision d = DecideZap(Req("CURVE", "shardfs/abc"), p);
    CHECK(d.status_code == "200");
    CHECK(d.user_id.size() == 40);
  }

  TEST_CASE("refuses other mechanisms, domains, malformed keys, denied keys") {
    ZapPolicy p{"shardfs/abc", {}};
    CHECK(DecideZap(Req("NULL", "shardfs/abc"), p).status_code == "400");
    CHECK(DecideZap(Req("PLAIN", "shardfs/abc"), p).status_code == "400");
    CHECK(DecideZap(Req("CURVE", "shardfs/other"), p).status_code == "400");
    CHECK(DecideZap(Req("CURVE", "shardfs/abc", 31), p).status_code == "400");
    ZapRequest v = Req("CURVE", "shardfs/abc");
    v.version = "2.0";
    CHECK(DecideZap(v, p).status_code == "500");
    std::string uid = DecideZap(Req("CURVE", "shardfs/abc"), p).user_id;
    ZapPolicy deny{"shardfs/abc", {uid}};
    CHECK(DecideZap(Req("CURVE", "shardfs/abc"), deny).status_code == "400");
  }

  TEST_CASE("parse needs the six fixed frames") {
    CHECK(!ParseZapRequest({"1.0", "1", "d"}).ok());
    auto r = ParseZapRequest({"1.0", "7", "d", "addr", "", "CURVE", "k"});
    REQUIRE(r.ok());
    CHECK(r->request_id == "7");
    CHECK(r->credentials.size() == 1);
  }
}

// A CURVE node on tcp://127.0.0.1 for network `secret`.
struct SecureNode {
  testing::TempDir dir;
  std::unique_ptr<ShardStore> store;
  std::unique_ptr<Server> server;

  explicit SecureNode(const NetworkSecret& secret, size_t max_inflight = 64, size_t workers = 2) {
    StoreOptions so;
    so.data_dir = dir.Sub("data");
    auto s = ShardStore::Open(std::move(so));
    REQUIRE(s.ok());
    store = std::move(*s);
    NodeSelf info;
    info.id = 0x0102030405060708ull;
    info.zone = "zone-a";
    info.public_key = NewKeypair().public_key;
    ServerOptions opts;
    opts.listen = "tcp://127.0.0.1:0";
    opts.max_inflight_per_peer = max_inflight;
    opts.workers = workers;
    auto keys = ServerKeysFor(secret);
    REQUIRE(keys.ok());
    opts.curve = *keys;
    server = std::make_unique<Server>(store.get(), info, opts);
    REQUIRE(server->Start().ok());
  }
  ~SecureNode() { server->Stop(); }
  const std::string& endpoint() const { return server->bound_endpoint(); }
};

std::unique_ptr<RpcClient> Member(const NetworkSecret& secret, const CurveKeypair& me) {
  RpcOptions o;
  auto keys = ClientKeysFor(secret, me);
  REQUIRE(keys.ok());
  o.curve = *keys;
  auto rpc = RpcClient::Create(o);
  REQUIRE(rpc.ok());
  return std::move(*rpc);
}

Clock::time_point Soon(int ms = 3000) { return Clock::now() + std::chrono::milliseconds(ms); }

Status Put(RpcClient& rpc, const std::string& ep, const std::string& owner, uint8_t seed,
           const StripeId& stripe) {
  auto payload = std::make_shared<std::vector<uint8_t>>(TestPayload(1000, seed));
  wire::PutShardRequest req;
  req.stripe = stripe;
  req.index = 0;
  req.crc32c = Crc32c(*payload);
  req.owner = owner;
  req.locator = TestLocator(stripe, *payload);
  auto r = rpc.Call(ep, req, Soon(), Payload{payload, payload->data(), payload->size()});
  if (!r.ok()) return r.status();
  wire::PutShardReply reply;
  return ParseReply(*r, &reply);
}

Status Delete(RpcClient& rpc, const std::string& ep, const std::string& owner,
              const StripeId& stripe) {
  wire::DeleteShardRequest req{stripe, 0, owner};
  auto r = rpc.Call(ep, req, Soon());
  if (!r.ok()) return r.status();
  wire::DeleteShardReply reply;
  return ParseReply(*r, &reply);
}

Status Ping(RpcClient& rpc, const std::string& ep, int ms = 3000) {
  auto r = rpc.Call(ep, wire::PingRequest{}, Soon(ms));
  if (!r.ok()) return r.status();
  wire::PingReply reply;
  return ParseReply(*r, &reply);
}

TEST_SUITE("curve_server") {
  TEST_CASE("a member is admitted") {
    SecureNode node(Secret(1));
    auto rpc = Member(Secret(1), NewKeypair());
    CHECK(Ping(*rpc, node.endpoint()).ok());
  }

  TEST_CASE("a plain client and a wrong network are refused at the handshake") {
    SecureNode node(Secret(1));
    auto plain = RpcClient::CreatePlain();
    REQUIRE(plain.ok());
    Status st = Ping(**plain, node.endpoint(), 600);
    CHECK(st.IsTimedOut());
    CHECK(st.message().find("network key") != std::string::npos);
    auto outsider = Member(Secret(2), NewKeypair());
    st = Ping(*outsider, node.endpoint(), 600);
    CHECK(st.IsTimedOut());
    CHECK(st.message().find("CURVE handshake") != std::string::npos);
    // Writes and deletes fare no better than reads.
    CHECK(!Put(*outsider, node.endpoint(), NewKeypair().public_key, 1, TestStripe(5)).ok());
    CHECK(!Delete(*outsider, node.endpoint(), NewKeypair().public_key, TestStripe(5)).ok());
  }

  TEST_CASE("only the storing key may delete or overwrite a shard") {
    SecureNode node(Secret(1));
    CurveKeypair alice = NewKeypair(), mallory = NewKeypair();
    auto a = Member(Secret(1), alice);
    auto m = Member(Secret(1), mallory);
    const StripeId stripe = TestStripe(11);
    REQUIRE(Put(*a, node.endpoint(), alice.public_key, 1, stripe).ok());
    // Mallory names herself: the recorded owner differs.
    Status st = Delete(*m, node.endpoint(), mallory.public_key, stripe);
    CHECK(st.code() == Code::kPermissionDenied);
    // Mallory names Alice: not her authenticated key.
    st = Delete(*m, node.endpoint(), alice.public_key, stripe);
    CHECK(st.code() == Code::kPermissionDenied);
    // Overwrite, as herself or in Alice's name, same or other bytes.
    CHECK(Put(*m, node.endpoint(), mallory.public_key, 2, stripe).code() ==
          Code::kPermissionDenied);
    CHECK(Put(*m, node.endpoint(), mallory.public_key, 1, stripe).code() ==
          Code::kPermissionDenied);
    CHECK(Put(*m, node.endpoint(), alice.public_key, 1, stripe).code() ==
          Code::kPermissionDenied);
    // Alice still can.
    CHECK(Delete(*a, node.endpoint(), alice.public_key, stripe).ok());
  }

  TEST_CASE("per-peer cap answers BUSY, counted per key across connections") {
    SecureNode node(Secret(1), /*max_inflight=*/1, /*workers=*/1);
    CurveKeypair me = NewKeypair();
    auto rpc = Member(Secret(1), me);
    REQUIRE(Ping(*rpc, node.endpoint()).ok());
    // Many GETs at once from one key: the single worker holds one, the cap
    // refuses the rest that arrive meanwhile.
    std::atomic<int> busy{0}, done{0};
    constexpr int kN = 64;
    for (int i = 0; i < kN; ++i) {
      wire::GetShardRequest g;
      g.stripe = TestStripe(static_cast<uint8_t>(i));
      g.index = 0;
      g.length = 0;
      rpc->Send(node.endpoint(), g, Payload{}, Soon(), [&](Result<RpcReply> r) {
        wire::GetShardReply reply;
        Status st = r.ok() ? ParseReply(*r, &reply) : r.status();
        if (st.code() == Code::kBusy) {
          if (st.message().find("in flight from this peer") != std::string::npos) ++busy;
        }
        ++done;
      });
    }
    for (int i = 0; i < 500 && done < kN; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    CHECK(done == kN);
    CHECK(busy > 0);
  }
}

}  // namespace
}  // namespace shardfs
