// Tests for the client data path (ClusterClient, segment writer/reader,
// node table, stripe lookup, object store) against in-process FakeNodes
// (fake_node.h). Integration tests against real shardfs-node processes are
// in tests/integration.
#include "lib/cluster_client.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <random>
#include <set>

#include "lib/checksum.h"
#include "lib/client_identity.h"
#include "lib/object_store.h"
#include "lib/stripe_lookup.h"
#include "tests/lib/fake_node.h"

namespace shardfs {
namespace {

using namespace std::chrono_literals;
using testing::FakeNode;

struct Cluster {
  std::vector<std::unique_ptr<FakeNode>> nodes;
  std::filesystem::path dir;
  ClientConfig cfg;
  Key key{};

  explicit Cluster(int count, int zones = 0, int k = 4, int m = 2, int timeout_ms = 1000) {
    char tmpl[] = "/tmp/shardfs-client-test-XXXXXX";
    dir = ::mkdtemp(tmpl);
    for (int i = 0; i < count; ++i) {
      std::string zone = "zone-" + std::to_string(zones ? i % zones : i);
      nodes.push_back(std::make_unique<FakeNode>(0x1000 + i, zone));
      cfg.nodes.push_back(nodes.back()->endpoint());
    }
    cfg.k = k;
    cfg.m = m;
    cfg.segment_size = 256 * 1024;
    cfg.timeout_ms = timeout_ms;
    cfg.identity_file = (dir / "client.id").string();
    for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i * 7 + 1);
  }
  ~Cluster() { std::filesystem::remove_all(dir); }

  std::unique_ptr<ClusterClient> Connect(const Key* other_key = nullptr) {
    auto c = ClusterClient::Connect(cfg, other_key ? *other_key : key);
    REQUIRE(c.ok());
    return std::move(c).value();
  }
  FakeNode* ByNode(NodeId id) {
    for (auto& n : nodes) {
      if (n->id() == id) return n.get();
    }
    return nullptr;
  }
};

std::vector<uint8_t> RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

std::set<NodeId> NodesOf(const Locator& loc) {
  std::set<NodeId> s;
  for (const ShardLocation& sh : loc.shards) s.insert(sh.node);
  return s;
}

}  // namespace

TEST_SUITE("cluster_client") {
  TEST_CASE("segments of every size round-trip; shards on distinct nodes") {
    Cluster c(6);
    auto client = c.Connect();
    for (size_t size : {size_t{1}, size_t{1000}, c.cfg.segment_size - 1, c.cfg.segment_size}) {
      CAPTURE(size);
      auto data = RandomBytes(size, static_cast<uint32_t>(size));
      auto loc = client->WriteSegment(data);
      REQUIRE(loc.ok());
      CHECK(loc->n() == 6);
      CHECK(NodesOf(*loc).size() == 6);
      CHECK(loc->sealed_size == size + kSealOverhead);
      auto back = client->ReadSegment(*loc);
      REQUIRE(back.ok());
      CHECK(*back == data);
    }
    // The owner recorded on the node is this client's public key.
    auto ident = LoadClientIdentity(c.cfg.identity_file);
    REQUIRE(ident.ok());
    auto loc = client->WriteSegment(RandomBytes(10, 1));
    REQUIRE(loc.ok());
    CHECK(c.ByNode(loc->shards[0].node)->OwnerOf(loc->stripe, 0) == ident->public_key);
  }

  TEST_CASE("pipelined async writes all complete") {
    Cluster c(6);
    auto client = c.Connect();
    std::mutex mu;
    std::map<int, Locator> locs;
    std::vector<std::vector<uint8_t>> data;
    for (int i = 0; i < 30; ++i) data.push_back(RandomBytes(50000 + i, i));
    int failures = 0;
    for (int i = 0; i < 30; ++i) {
      client->WriteSegmentAsync(data[i], [&, i](Result<Locator> r) {
        std::lock_guard<std::mutex> lock(mu);
        if (r.ok()) {
          locs[i] = *r;
        } else {
          ++failures;
        }
      });
    }
    client.reset();  // waits for every write in flight
    CHECK(failures == 0);
    REQUIRE(locs.size() == 30);
    auto reader = c.Connect();
    for (int i = 0; i < 30; ++i) {
      auto back = reader->ReadSegment(locs[i]);
      REQUIRE(back.ok());
      CHECK(*back == data[i]);
    }
  }

  TEST_CASE("reads survive m silent nodes in bounded time") {
    Cluster c(6);
    auto client = c.Connect();
    auto data = RandomBytes(200000, 5);
    auto loc = client->WriteSegment(data);
    REQUIRE(loc.ok());
    // Stop the holders of data shards 0 and 1: parity must stand in.
    c.ByNode(loc->shards[0].node)->silent = true;
    c.ByNode(loc->shards[1].node)->silent = true;
    const auto start = Clock::now();
    auto back = client->ReadSegment(*loc);
    const auto took = Clock::now() - start;
    REQUIRE(back.ok());
    CHECK(*back == data);
    CHECK(took < 2 * std::chrono::milliseconds(c.cfg.timeout_ms));
    // Once their requests have timed out they are known down: the next read
    // does not wait for them at all.
    std::this_thread::sleep_for(std::chrono::milliseconds(c.cfg.timeout_ms));
    const auto start2 = Clock::now();
    auto again = client->ReadSegment(*loc);
    REQUIRE(again.ok());
    CHECK(Clock::now() - start2 < std::chrono::milliseconds(c.cfg.timeout_ms) / 2);
    // A third silent node: fewer than k shards, a clear error in bounded time.
    c.ByNode(loc->shards[2].node)->silent = true;
    auto fail = client->ReadSegment(*loc);
    CHECK(fail.status().IsUnavailable());
  }

  TEST_CASE("a silent node during writes is replaced") {
    SUBCASE("a spare node takes the shard") {
      Cluster c(7);
      auto client = c.Connect();
      c.nodes[3]->silent = true;
      for (int i = 0; i < 4; ++i) {
        const auto start = Clock::now();
        auto loc = client->WriteSegment(RandomBytes(1000, i));
        REQUIRE(loc.ok());
        CHECK(Clock::now() - start < 3 * std::chrono::milliseconds(c.cfg.timeout_ms));
        CHECK(NodesOf(*loc).size() == 6);
        CHECK(NodesOf(*loc).count(c.nodes[3]->id()) == 0);
        auto back = client->ReadSegment(*loc);
        CHECK(back.ok());
      }
    }
    SUBCASE("n nodes, one silent: shards double up, at most m per node") {
      Cluster c(6);
      auto client = c.Connect();
      c.nodes[0]->silent = true;
      auto data = RandomBytes(30000, 9);
      auto loc = client->WriteSegment(data);
      REQUIRE(loc.ok());
      CHECK(NodesOf(*loc).count(c.nodes[0]->id()) == 0);
      std::map<NodeId, int> per;
      for (auto& sh : loc->shards) ++per[sh.node];
      for (auto& [id, count] : per) CHECK(count <= 2);
      auto back = client->ReadSegment(*loc);
      REQUIRE(back.ok());
      CHECK(*back == data);
      // Still readable with the busiest node gone as well.
      NodeId busiest = 0;
      for (auto& [id, count] : per) {
        if (count == 2) busiest = id;
      }
      if (busiest) c.ByNode(busiest)->silent = true;
      auto degraded = client->ReadSegment(*loc);
      REQUIRE(degraded.ok());
      CHECK(*degraded == data);
    }
  }

  TEST_CASE("a full node is avoided") {
    Cluster c(7);
    c.nodes[2]->no_space = true;
    auto client = c.Connect();
    for (int i = 0; i < 5; ++i) {
      auto loc = client->WriteSegment(RandomBytes(5000, i));
      REQUIRE(loc.ok());
      CHECK(NodesOf(*loc).count(c.nodes[2]->id()) == 0);
    }
    CHECK(c.nodes[2]->shard_count() == 0);
  }

  TEST_CASE("too few nodes: a clear error, nothing left behind") {
    Cluster c(2);  // 4+2 needs at least 3 nodes at 2 shards each
    auto client = c.Connect();
    auto loc = client->WriteSegment(RandomBytes(100, 1));
    REQUIRE_FALSE(loc.ok());
    CHECK(loc.status().IsUnavailable());
    CHECK(loc.status().message().find("usable node") != std::string::npos);
  }

  TEST_CASE("flipped bytes are caught by CRC and repaired from parity") {
    Cluster c(6);
    auto client = c.Connect();
    auto data = RandomBytes(100000, 3);
    auto loc = client->WriteSegment(data);
    REQUIRE(loc.ok());
    c.ByNode(loc->shards[1].node)->flip_on_get = true;
    auto back = client->ReadSegment(*loc);
    REQUIRE(back.ok());
    CHECK(*back == data);
  }

  TEST_CASE("a forged shard with a matching CRC is outvoted by other subsets") {
    Cluster c(6);
    auto client = c.Connect();
    auto data = RandomBytes(100000, 4);
    auto loc = client->WriteSegment(data);
    REQUIRE(loc.ok());
    // The node returns other bytes for shard 2, and the locator's CRC says
    // they are fine: only the GCM tag can tell.
    std::vector<uint8_t> forged(loc->shard_size, 0x77);
    c.ByNode(loc->shards[2].node)->Forge(2, forged);
    Locator lying = *loc;
    lying.shards[2].crc32c = Crc32c(forged.data(), forged.size());
    auto back = client->ReadSegment(lying);
    REQUIRE(back.ok());
    CHECK(*back == data);
  }

  TEST_CASE("wrong key: AuthFailed, never bytes") {
    Cluster c(6);
    auto client = c.Connect();
    auto loc = client->WriteSegment(RandomBytes(1000, 1));
    REQUIRE(loc.ok());
    Key other = c.key;
    other[0] ^= 1;
    auto wrong = c.Connect(&other);
    auto back = wrong->ReadSegment(*loc);
    REQUIRE_FALSE(back.ok());
    CHECK(back.status().code() == Code::kAuthFailed);
  }

  TEST_CASE("delete removes every shard") {
    Cluster c(6);
    auto client = c.Connect();
    auto loc = client->WriteSegment(RandomBytes(1000, 1));
    REQUIRE(loc.ok());
    CHECK(client->DeleteSegment(*loc).ok());
    for (auto& n : c.nodes) CHECK(n->shard_count() == 0);
    CHECK(client->DeleteSegment(*loc).ok());  // already gone counts as gone
  }

  TEST_CASE("stripe lookup finds the locator from the id alone") {
    Cluster c(7);
    auto client = c.Connect();
    c.nodes[4]->silent = true;  // forces a replacement during the write
    auto loc = client->WriteSegment(RandomBytes(1000, 1));
    REQUIRE(loc.ok());
    c.nodes[4]->silent = false;
    auto found = FindLocator(*client, loc->stripe);
    REQUIRE(found.ok());
    CHECK(found->shards.size() == loc->shards.size());
    for (int i = 0; i < loc->n(); ++i) CHECK(found->shards[i].node == loc->shards[i].node);
    StripeId unknown = StripeId::Random();
    CHECK(FindLocator(*client, unknown).status().IsNotFound());
  }

  TEST_CASE("nodes lists every endpoint with its state") {
    Cluster c(3, 0, 1, 1);
    auto client = c.Connect();
    c.nodes[1]->silent = true;
    auto nodes = client->Nodes();
    REQUIRE(nodes.size() == 3);
    CHECK(nodes[0].up);
    CHECK_FALSE(nodes[1].up);
    CHECK(nodes[2].zone == "zone-2");
    CHECK(nodes[0].free_bytes > 0);
  }

  TEST_CASE("objects stream through put and get, manifests nest") {
    Cluster c(6);
    c.cfg.segment_size = 64 * 1024;  // small: a few hundred segments need a manifest tree
    auto client = c.Connect();
    for (size_t size : {size_t{0}, size_t{1}, size_t{64 * 1024}, size_t{64 * 1024 + 1},
                        size_t{300 * 64 * 1024 + 17}}) {
      CAPTURE(size);
      auto data = RandomBytes(size, static_cast<uint32_t>(size) + 1);
      auto in = c.dir / "in", out = c.dir / "out";
      {
        FILE* f = std::fopen(in.c_str(), "wb");
        REQUIRE(f != nullptr);
        if (size) std::fwrite(data.data(), 1, size, f);
        std::fclose(f);
      }
      int fd = ::open(in.c_str(), O_RDONLY);
      ObjectStats stats;
      auto id = PutObject(*client, fd, &stats);
      ::close(fd);
      REQUIRE(id.ok());
      CHECK(id->size() == 32);
      CHECK(stats.bytes == size);
      int ofd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      Status st = GetObject(*client, *id, ofd, 3);
      ::close(ofd);
      REQUIRE(st.ok());
      std::vector<uint8_t> back(std::filesystem::file_size(out));
      FILE* f = std::fopen(out.c_str(), "rb");
      if (!back.empty()) CHECK(std::fread(back.data(), 1, back.size(), f) == back.size());
      std::fclose(f);
      CHECK(back == data);
      CHECK(DeleteObject(*client, *id).ok());
    }
    for (auto& n : c.nodes) CHECK(n->shard_count() == 0);
    CHECK(GetObject(*client, "zz", 1).code() == Code::kInvalidArgument);
    CHECK(GetObject(*client, StripeId::Random().Hex(), 1).IsNotFound());
  }
}

}  // namespace shardfs
