// Tests for the cluster messages of lib/wire_messages.h (PROTOCOL.md
// §4.10 PEERS, §4.11 SYNC_LOCATOR, §4.12 NODE_STATS, §4.13 LIST_HOLDINGS)
// and the locator order of §4.11: round trips, truncations, bounds.
#include <doctest/doctest.h>

#include <string>

#include "lib/coding.h"
#include "lib/wire_messages.h"

namespace shardfs::wire {
namespace {

Locator SampleLocator(uint32_t version, NodeId first_node) {
  Locator loc;
  for (int i = 0; i < 16; ++i) loc.stripe.bytes[i] = static_cast<uint8_t>(i * 3);
  loc.version = version;
  loc.k = 4;
  loc.m = 2;
  loc.shard_size = 1000;
  loc.sealed_size = 3900;
  for (int i = 0; i < 6; ++i) {
    ShardLocation s;
    s.node = first_node + static_cast<NodeId>(i);
    s.crc32c = 0x100u + i;
    s.sha256[0] = static_cast<uint8_t>(i);
    loc.shards.push_back(s);
  }
  return loc;
}

PeerEntry SamplePeer(NodeId id) {
  PeerEntry e;
  e.node_id = id;
  e.state = PeerState::kSuspect;
  e.incarnation = 1700000000000 + id;
  e.last_seen_ms_ago = 1234;
  e.endpoint = "tcp://127.0.0.1:" + std::to_string(40000 + id);
  e.zone = "house-" + std::to_string(id % 3);
  e.capacity_bytes = 1ull << 40;
  e.used_bytes = 5 * id;
  e.free_bytes = (1ull << 40) - 5 * id;
  e.shard_count = id;
  return e;
}

// Encodes through a whole frame, decodes it back, and checks that every
// truncation of the body fails.
template <typename T>
T RoundTrip(const T& msg) {
  const std::string frame = EncodeMessage(42, msg);
  auto d = DecodeFrame(frame);
  REQUIRE(d.ok());
  CHECK(d->header.command == T::kCommand);
  CHECK(d->header.reply == T::kIsReply);
  T got;
  REQUIRE(DecodeBody(d->body, &got).ok());
  for (size_t len = 0; len < d->body.size(); ++len) {
    CAPTURE(len);
    T partial;
    Status st = DecodeBody(d->body.substr(0, len), &partial);
    // A body whose fields are all fixed-size prefixes may decode a shorter
    // list only when its count says so: never here, counts come first.
    CHECK_FALSE(st.ok());
  }
  return got;
}

}  // namespace

TEST_SUITE("wire cluster") {
  TEST_CASE("PEERS round trips, self entry first") {
    PeersRequest req;
    req.from_node = true;
    req.peers = {SamplePeer(1), SamplePeer(2), SamplePeer(7)};
    req.peers[0].state = PeerState::kUp;
    CHECK(RoundTrip(req) == req);

    PeersReply reply;
    reply.peers = {SamplePeer(9), SamplePeer(3)};
    reply.peers[1].state = PeerState::kLeft;
    CHECK(RoundTrip(reply) == reply);

    SUBCASE("a client's request carries no entries") {
      PeersRequest empty;
      CHECK(RoundTrip(empty) == empty);
    }
  }

  TEST_CASE("PEERS decoding refuses what PROTOCOL.md §4.10 forbids") {
    std::string fields;
    EncodeBody(PeersReply{{SamplePeer(1)}}, &fields);
    PeersReply got;
    SUBCASE("an unknown state") {
      // count(4) size(2) node(8) state(1)
      std::string bad = fields;
      bad[4 + 2 + 8] = 9;
      CHECK_FALSE(DecodeBody(bad, &got).ok());
    }
    SUBCASE("a count the bytes cannot hold") {
      std::string bad = fields;
      bad[0] = 50;
      CHECK_FALSE(DecodeBody(bad, &got).ok());
    }
    SUBCASE("a reply without the answering node's entry") {
      std::string none;
      EncodeBody(PeersReply{}, &none);
      CHECK_FALSE(DecodeBody(none, &got).ok());
    }
    SUBCASE("fields appended to an entry are skipped") {
      // Grow the entry by 3 bytes: size field + 3, bytes appended.
      std::string grown = fields.substr(0, 4);
      uint16_t size = static_cast<uint8_t>(fields[4]) | (static_cast<uint8_t>(fields[5]) << 8);
      PutU16(&grown, static_cast<uint16_t>(size + 3));
      grown += fields.substr(6) + "xyz";
      REQUIRE(DecodeBody(grown, &got).ok());
      CHECK(got.peers[0] == SamplePeer(1));
    }
    SUBCASE("a string running past its entry") {
      std::string bad = fields.substr(0, 4);
      PutU16(&bad, 40);  // shorter than the fields that follow
      bad += fields.substr(6);
      CHECK_FALSE(DecodeBody(bad, &got).ok());
    }
  }

  TEST_CASE("SYNC_LOCATOR round trips with and without a locator") {
    SyncLocatorRequest offer;
    offer.locator = SampleLocator(3, 100);
    offer.stripe = offer.locator.stripe;
    offer.has_locator = true;
    CHECK(RoundTrip(offer) == offer);

    SyncLocatorRequest ask;
    ask.stripe = offer.stripe;
    CHECK(RoundTrip(ask) == ask);

    SyncLocatorReply reply;
    reply.has_locator = true;
    reply.locator = SampleLocator(4, 200);
    reply.held_ok = 0b100101;
    reply.held_corrupt = 0b000010;
    CHECK(RoundTrip(reply) == reply);

    SyncLocatorReply nothing;
    CHECK(RoundTrip(nothing) == nothing);

    SUBCASE("an offered locator of another stripe is refused") {
      SyncLocatorRequest bad = offer;
      bad.stripe.bytes[0] ^= 1;
      std::string fields;
      EncodeBody(bad, &fields);
      SyncLocatorRequest got;
      CHECK_FALSE(DecodeBody(fields, &got).ok());
    }
  }

  TEST_CASE("NODE_STATS and LIST_HOLDINGS round trip") {
    NodeStats st;
    st.repair_queued = 1;
    st.repair_active = 2;
    st.repaired_shards = 3;
    st.repaired_bytes = 4;
    st.repair_failures = 5;
    st.scrubbed_shards = 6;
    st.corrupt_found = 7;
    st.orphans_collected = 8;
    st.stripes_lost = 9;
    st.audits = 10;
    CHECK(RoundTrip(st) == st);
    CHECK(RoundTrip(NodeStatsRequest{}) == NodeStatsRequest{});

    ListHoldingsRequest req;
    req.has_cursor = true;
    req.after_index = 3;
    req.limit = 7;
    CHECK(RoundTrip(req) == req);

    ListHoldingsReply reply;
    reply.more = true;
    ListEntry e;
    e.stripe = SampleLocator(1, 1).stripe;
    e.index = 5;
    e.size = 1000;
    e.locator_version = 2;
    e.k = 4;
    e.m = 2;
    e.corrupt = true;
    e.named = true;
    reply.entries = {e, e};
    reply.entries[1].index = 6;
    reply.entries[1].corrupt = false;
    CHECK(RoundTrip(reply) == reply);

    SUBCASE("LIST_SHARDS neither sends nor reads the extra entry fields") {
      ListShardsReply plain;
      plain.entries = {e};
      std::string fields;
      EncodeBody(plain, &fields);
      ListShardsReply got;
      REQUIRE(DecodeBody(fields, &got).ok());
      CHECK(got.entries[0].k == 0);
      CHECK_FALSE(got.entries[0].named);
      CHECK(got.entries[0].locator_version == 2);
      // And a LIST_HOLDINGS decoder refuses its short entries.
      ListHoldingsReply h;
      CHECK_FALSE(DecodeBody(fields, &h).ok());
    }
  }

  TEST_CASE("locators supersede each other in one total order (§4.11)") {
    const Locator v1 = SampleLocator(1, 100);
    const Locator v2 = SampleLocator(2, 100);
    CHECK(LocatorNewer(v2, v1));
    CHECK_FALSE(LocatorNewer(v1, v2));
    CHECK_FALSE(LocatorNewer(v1, v1));
    // Two repairs that raced to the same version: exactly one wins, everywhere.
    Locator a = SampleLocator(2, 100), b = SampleLocator(2, 100);
    a.shards[3].node = 0x01;
    b.shards[3].node = 0xff;
    CHECK(LocatorNewer(a, b) != LocatorNewer(b, a));
    CHECK(LocatorNewer(b, a));  // 0xff > 0x01 in the first differing byte
  }

}  // TEST_SUITE

}  // namespace shardfs::wire
