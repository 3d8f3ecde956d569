// Tests for lib/wire_messages.h against lib/PROTOCOL.md: round trips of
// every message, every truncation, version rules (§7), limits (§6) and the
// status code mapping (§5).
#include "lib/wire_messages.h"

#include <doctest/doctest.h>

#include <cerrno>
#include <initializer_list>
#include <string>
#include <utility>

namespace shardfs::wire {
namespace {

constexpr uint64_t kRequestId = 0x8877665544332211ULL;

StripeId MakeStripe(uint8_t seed) {
  StripeId id;
  for (int i = 0; i < 16; ++i) id.bytes[i] = static_cast<uint8_t>(seed + 7 * i);
  return id;
}

Locator MakeLocator(const StripeId& stripe) {
  Locator loc;
  loc.stripe = stripe;
  loc.version = 3;
  loc.k = 4;
  loc.m = 2;
  loc.shard_size = 1 << 20;
  loc.sealed_size = 4 * (1 << 20) - 100;
  for (int i = 0; i < 6; ++i) {
    ShardLocation s;
    s.node = 0x0101010101010101ULL * (i + 1);
    s.crc32c = 0xabcd0000u + i;
    s.sha256.fill(static_cast<uint8_t>(0x40 + i));
    loc.shards.push_back(s);
  }
  return loc;
}

PingReply MakePingReply() {
  PingReply m;
  m.node_id = 0xfeedfacecafebeefULL;
  m.zone = "house-2";
  m.capacity_bytes = 1ULL << 40;
  m.used_bytes = 123456789;
  m.free_bytes = (1ULL << 40) - 123456789;
  m.shard_count = 4242;
  m.public_key = std::string(40, 'Z');
  m.endpoint = "tcp://127.0.0.1:40001";
  return m;
}

PutShardRequest MakePut() {
  PutShardRequest m;
  m.stripe = MakeStripe(1);
  m.index = 5;
  m.crc32c = 0xdeadbeef;
  m.owner = std::string(40, 'o');
  m.locator = MakeLocator(m.stripe);
  return m;
}

GetShardRequest MakeGet() {
  GetShardRequest m;
  m.stripe = MakeStripe(2);
  m.index = 3;
  m.offset = 4096;
  m.length = 8192;
  return m;
}

GetShardReply MakeGetReply() { return GetShardReply{1 << 20, 0x12345678}; }

DeleteShardRequest MakeDelete() {
  DeleteShardRequest m;
  m.stripe = MakeStripe(3);
  m.index = 63;
  m.owner = "owner-key";
  return m;
}

StatShardRequest MakeStat() { return StatShardRequest{MakeStripe(4), 1}; }

StatShardReply MakeStatReply() {
  StatShardReply m;
  m.size = 1 << 20;
  m.crc32c = 0x0badf00d;
  m.owner = "owner-key";
  m.created_unix_ms = 1700000000123ULL;
  m.locator = MakeLocator(MakeStripe(4));
  return m;
}

ListShardsRequest MakeList() {
  ListShardsRequest m;
  m.has_stripe_filter = true;
  m.stripe_filter = MakeStripe(5);
  m.has_cursor = true;
  m.after_stripe = MakeStripe(6);
  m.after_index = 2;
  m.limit = kMaxListLimit;
  return m;
}

ListShardsReply MakeListReply() {
  ListShardsReply m;
  for (int i = 0; i < 3; ++i) {
    m.entries.push_back(ListEntry{MakeStripe(static_cast<uint8_t>(10 + i)),
                                  static_cast<ShardIndex>(i), 1000u + i, 7u + i});
  }
  m.more = true;
  return m;
}

template <typename T>
std::string Body(const T& msg) {
  std::string s;
  EncodeBody(msg, &s);
  return s;
}

// A copy of `s` with bytes replaced: {{offset, value}, ...}.
std::string Patched(const std::string& s,
                    std::initializer_list<std::pair<size_t, uint8_t>> patches) {
  std::string out = s;
  for (const auto& [at, v] : patches) out.at(at) = static_cast<char>(v);
  return out;
}

// Round trip, every truncation of the frame and of the body, and a newer
// body version with unknown trailing fields (§7).
template <typename T>
void CheckMessage(const T& msg) {
  const std::string frame = EncodeMessage(kRequestId, msg);
  Result<DecodedFrame> d = DecodeFrame(frame);
  REQUIRE(d.ok());
  CHECK(d->header.version == kProtocolVersion);
  CHECK(d->header.command == T::kCommand);
  CHECK(d->header.reply == T::kIsReply);
  CHECK(d->header.request_id == kRequestId);
  CHECK(d->header.status == WireCode::kOk);
  CHECK(d->body_version == 1);
  T got;
  REQUIRE(DecodeBody(d->body, &got).ok());
  CHECK(got == msg);

  for (size_t len = 0; len < frame.size(); ++len) {
    CAPTURE(len);
    CHECK_FALSE(DecodeFrame(std::string_view(frame).substr(0, len)).ok());
  }
  const std::string body = Body(msg);
  for (size_t len = 0; len < body.size(); ++len) {
    CAPTURE(len);
    T partial;
    Status st = DecodeBody(std::string_view(body).substr(0, len), &partial);
    CHECK(st.IsCorruption());
    CHECK(st.err() == EPROTO);
  }

  FrameHeader h;
  h.command = T::kCommand;
  h.reply = T::kIsReply;
  std::string newer;
  EncodeHeader(h, &newer);
  WrapBody(2, body + std::string("\x01\x02\x03\x04\x05", 5), &newer);
  Result<DecodedFrame> dn = DecodeFrame(newer);
  REQUIRE(dn.ok());
  CHECK(dn->body_version == 2);
  T from_newer;
  REQUIRE(DecodeBody(dn->body, &from_newer).ok());
  CHECK(from_newer == msg);
}

}  // namespace

TEST_SUITE("wire") {

TEST_CASE("every message round trips, and every truncation fails") {
  SUBCASE("PING request") { CheckMessage(PingRequest{}); }
  SUBCASE("PING reply") { CheckMessage(MakePingReply()); }
  SUBCASE("PUT_SHARD request") { CheckMessage(MakePut()); }
  SUBCASE("PUT_SHARD reply") { CheckMessage(PutShardReply{}); }
  SUBCASE("GET_SHARD request") { CheckMessage(MakeGet()); }
  SUBCASE("GET_SHARD reply") { CheckMessage(MakeGetReply()); }
  SUBCASE("DELETE_SHARD request") { CheckMessage(MakeDelete()); }
  SUBCASE("DELETE_SHARD reply") { CheckMessage(DeleteShardReply{}); }
  SUBCASE("STAT_SHARD request") { CheckMessage(MakeStat()); }
  SUBCASE("STAT_SHARD reply") { CheckMessage(MakeStatReply()); }
  SUBCASE("LIST_SHARDS request") { CheckMessage(MakeList()); }
  SUBCASE("LIST_SHARDS request, no filter") {
    ListShardsRequest m;
    m.limit = 1;
    CheckMessage(m);
  }
  SUBCASE("LIST_SHARDS reply") { CheckMessage(MakeListReply()); }
  SUBCASE("LIST_SHARDS reply, empty last page") { CheckMessage(ListShardsReply{}); }
}

TEST_CASE("header layout is the one in PROTOCOL.md §3") {
  const std::string f = EncodeMessage(kRequestId, MakeGetReply());
  auto u8 = [&](size_t i) { return static_cast<uint8_t>(f[i]); };
  CHECK(f.substr(0, 4) == "SHFS");
  CHECK(u8(4) == kProtocolVersion);
  CHECK(u8(5) == kMinCompatibleVersion);
  CHECK(u8(6) == static_cast<uint8_t>(Command::kGetShard));
  CHECK(u8(7) == kFlagReply);
  CHECK(DecodeU64At(reinterpret_cast<const uint8_t*>(f.data()) + 8) == kRequestId);
  CHECK(u8(16) == 0);
  CHECK(u8(17) == 0);
  CHECK(u8(18) == 0);
  CHECK(u8(19) == 0);
  CHECK(u8(20) == 1);  // body version
  CHECK(u8(21) == 1);  // body compat
  CHECK(DecodeU32At(reinterpret_cast<const uint8_t*>(f.data()) + 22) == 12);
  CHECK(f.size() == kHeaderSize + kBodyEnvelopeSize + 12);
}

TEST_CASE("error replies") {
  const std::string f = EncodeError(Command::kDeleteShard, 99, WireCode::kDenied, "not yours");
  Result<DecodedFrame> d = DecodeFrame(f);
  REQUIRE(d.ok());
  CHECK(d->header.command == Command::kDeleteShard);
  CHECK(d->header.reply);
  CHECK(d->header.request_id == 99);
  CHECK(d->header.status == WireCode::kDenied);
  ErrorBody body;
  REQUIRE(DecodeBody(d->body, &body).ok());
  CHECK(body == ErrorBody{"not yours"});
  for (size_t len = 0; len < f.size(); ++len) {
    CAPTURE(len);
    CHECK_FALSE(DecodeFrame(std::string_view(f).substr(0, len)).ok());
  }

  SUBCASE("a long message is cut to the string limit") {
    const std::string huge(kMaxStringField + 100, 'x');
    // Keep the frame alive: DecodedFrame::body points into it.
    const std::string frame = EncodeError(Command::kPing, 1, WireCode::kInternal, huge);
    Result<DecodedFrame> dl = DecodeFrame(frame);
    REQUIRE(dl.ok());
    ErrorBody eb;
    REQUIRE(DecodeBody(dl->body, &eb).ok());
    CHECK(eb.message == huge.substr(0, kMaxStringField));
  }
  SUBCASE("every truncation of the body fails") {
    const std::string eb = Body(ErrorBody{"short"});
    for (size_t len = 0; len < eb.size(); ++len) {
      CAPTURE(len);
      ErrorBody partial;
      CHECK(DecodeBody(std::string_view(eb).substr(0, len), &partial).IsCorruption());
    }
  }
}

TEST_CASE("malformed frames") {
  const std::string good = EncodeMessage(7, MakeGet());
  REQUIRE(DecodeFrame(good).ok());

  SUBCASE("bad magic") {
    Status st = DecodeFrame(Patched(good, {{0, 'X'}})).status();
    CHECK(st.IsCorruption());
    CHECK(st.message().find("magic") != std::string::npos);
    CHECK(WireCodeFromStatus(st) == WireCode::kBadRequest);
  }
  SUBCASE("trailing byte after the body") {
    CHECK(DecodeFrame(good + '\0').status().IsCorruption());
  }
  SUBCASE("body length beyond the frame") {
    std::string f = good;
    EncodeU32At(reinterpret_cast<uint8_t*>(f.data()) + 22, 0xffffffff);
    CHECK(DecodeFrame(f).status().IsCorruption());
  }
  SUBCASE("unknown command") {
    Status st = DecodeFrame(Patched(good, {{6, 0x7f}})).status();
    CHECK(st.code() == Code::kInvalidArgument);
    CHECK(st.message().find("unknown command 0x7f") != std::string::npos);
    CHECK(WireCodeFromStatus(st) == WireCode::kUnknownCommand);
    CHECK_FALSE(DecodeFrame(Patched(good, {{6, 0}})).ok());
  }
  SUBCASE("frame over kMaxHeaderFrameSize") {
    FrameHeader h;
    std::string f;
    EncodeHeader(h, &f);
    WrapBody(1, std::string(kMaxHeaderFrameSize, 'a'), &f);
    Status st = DecodeFrame(f).status();
    CHECK(st.code() == Code::kInvalidArgument);
    CHECK(WireCodeFromStatus(st) == WireCode::kTooLarge);
  }
  SUBCASE("version 0 and compat above version are nonsense") {
    CHECK(DecodeFrame(Patched(good, {{5, 0}})).status().IsCorruption());
    CHECK(DecodeFrame(Patched(good, {{4, 1}, {5, 2}})).status().IsCorruption());
    CHECK(DecodeFrame(Patched(good, {{21, 0}})).status().IsCorruption());
  }
  SUBCASE("unknown flag bits and reserved bytes are ignored") {
    const std::string frame = Patched(good, {{7, 0xfe}, {18, 0x55}});
    Result<DecodedFrame> d = DecodeFrame(frame);  // views into `frame`
    REQUIRE(d.ok());
    CHECK_FALSE(d->header.reply);
  }
}

TEST_CASE("versions (PROTOCOL.md §7)") {
  const std::string good = EncodeMessage(7, MakeStat());

  SUBCASE("a future version that cannot talk to us is rejected") {
    const uint8_t future = kProtocolVersion + 1;
    Status st = DecodeFrame(Patched(good, {{4, future}, {5, future}})).status();
    CHECK(st.code() == Code::kInvalidArgument);
    CHECK(st.message().find("unsupported protocol version") != std::string::npos);
    CHECK(WireCodeFromStatus(st) == WireCode::kUnsupportedVersion);
  }
  SUBCASE("a future version compatible with ours is accepted") {
    const std::string frame = Patched(good, {{4, kProtocolVersion + 3}});
    Result<DecodedFrame> d = DecodeFrame(frame);  // views into `frame`
    REQUIRE(d.ok());
    CHECK(d->header.version == kProtocolVersion + 3);
    StatShardRequest m;
    REQUIRE(DecodeBody(d->body, &m).ok());
    CHECK(m == MakeStat());
  }
  SUBCASE("a body whose compat version is newer than ours is rejected") {
    Status st = DecodeFrame(Patched(good, {{20, 2}, {21, 2}})).status();
    CHECK(st.code() == Code::kInvalidArgument);
    CHECK(WireCodeFromStatus(st) == WireCode::kUnsupportedVersion);
  }
  SUBCASE("list entries grown by a newer version are skipped field by field") {
    ListShardsReply want = MakeListReply();
    std::string body;
    PutU8(&body, 1);
    PutU32(&body, static_cast<uint32_t>(want.entries.size()));
    PutU16(&body, 29 + 3);
    for (const ListEntry& e : want.entries) {
      PutBytes(&body, e.stripe.bytes.data(), 16);
      PutU8(&body, e.index);
      PutU64(&body, e.size);
      PutU32(&body, e.locator_version);
      PutBytes(&body, "new", 3);
    }
    ListShardsReply got;
    REQUIRE(DecodeBody(body, &got).ok());
    CHECK(got == want);
  }
}

TEST_CASE("limits and field checks (PROTOCOL.md §6)") {
  SUBCASE("strings up to kMaxStringField, not beyond") {
    PingReply m = MakePingReply();
    m.zone = std::string(kMaxStringField, 'z');
    PingReply got;
    CHECK(DecodeBody(Body(m), &got).ok());
    CHECK(got == m);
    m.zone.push_back('z');
    Status st = DecodeBody(Body(m), &got);
    CHECK(st.IsCorruption());
    CHECK(st.message().find("zone") != std::string::npos);
    CHECK(got.zone.size() == kMaxStringField);  // untouched on failure
  }
  SUBCASE("a forged list count is rejected before any allocation") {
    // The count check against the bytes present comes before the vector
    // is sized; the "bytes left" message shows which check fired.
    for (uint32_t count : {kMaxListLimit, 4u}) {
      CAPTURE(count);
      std::string body;
      PutU8(&body, 0);
      PutU32(&body, count);
      PutU16(&body, 29);
      body += std::string(29 * 3, '\0');
      ListShardsReply got;
      Status st = DecodeBody(body, &got);
      CHECK(st.IsCorruption());
      CHECK(st.message().find("bytes left") != std::string::npos);
    }
    std::string body;
    PutU8(&body, 0);
    PutU32(&body, 0xffffffff);
    PutU16(&body, 0xffff);
    ListShardsReply got;
    Status st = DecodeBody(body, &got);
    CHECK(st.IsCorruption());
    CHECK(st.message().find("over the") != std::string::npos);
  }
  SUBCASE("list entry size smaller than the known fields") {
    std::string body;
    PutU8(&body, 0);
    PutU32(&body, 0);
    PutU16(&body, 28);
    ListShardsReply got;
    CHECK(DecodeBody(body, &got).IsCorruption());
  }
  SUBCASE("list limit is 1..kMaxListLimit") {
    ListShardsRequest m = MakeList();
    ListShardsRequest got;
    m.limit = 0;
    CHECK(DecodeBody(Body(m), &got).IsCorruption());
    m.limit = kMaxListLimit + 1;
    CHECK(DecodeBody(Body(m), &got).IsCorruption());
    m.limit = 1;
    CHECK(DecodeBody(Body(m), &got).ok());
  }
  SUBCASE("unknown list filter bits are refused") {
    std::string body = Body(MakeList());
    body[0] = 0x04;
    ListShardsRequest got;
    CHECK(DecodeBody(body, &got).IsCorruption());
  }
  SUBCASE("booleans are 0 or 1") {
    std::string body = Body(MakeListReply());
    body[0] = 2;
    ListShardsReply got;
    CHECK(DecodeBody(body, &got).IsCorruption());
  }
  SUBCASE("shard index below kMaxShards") {
    StatShardRequest m = MakeStat();
    m.index = kMaxShards;
    StatShardRequest got;
    CHECK(DecodeBody(Body(m), &got).IsCorruption());
  }
  SUBCASE("GET_SHARD range within kMaxShardSize") {
    GetShardRequest m = MakeGet();
    GetShardRequest got;
    m.offset = kMaxShardSize + 1;
    CHECK(DecodeBody(Body(m), &got).IsCorruption());
    m.offset = 0;
    m.length = ~0ULL;
    CHECK(DecodeBody(Body(m), &got).IsCorruption());
  }
  SUBCASE("PUT_SHARD must agree with its locator") {
    PutShardRequest got;
    PutShardRequest m = MakePut();
    m.index = 6;  // locator has k + m = 6 shards
    CHECK(DecodeBody(Body(m), &got).IsCorruption());
    m = MakePut();
    m.locator.stripe = MakeStripe(9);
    CHECK(DecodeBody(Body(m), &got).IsCorruption());
    m = MakePut();
    m.locator.k = 0;
    CHECK(DecodeBody(Body(m), &got).IsCorruption());
  }
}

TEST_CASE("status codes map both ways (PROTOCOL.md §5)") {
  for (int c = 1; c <= static_cast<int>(WireCode::kUnknownCommand); ++c) {
    const auto code = static_cast<WireCode>(c);
    CAPTURE(WireCodeName(code));
    CHECK(std::string(WireCodeName(code)) != "UNKNOWN");
    Status st = StatusFromWire(code, "from node");
    CHECK_FALSE(st.ok());
    CHECK(st.message() == "from node");
    CHECK(WireCodeFromStatus(st) == code);
  }
  CHECK(StatusFromWire(WireCode::kOk, "").ok());
  CHECK(WireCodeFromStatus(Status::OK()) == WireCode::kOk);
  CHECK(StatusFromWire(WireCode::kNotFound, "").IsNotFound());
  CHECK(StatusFromWire(WireCode::kNotFound, "").message() == "NOT_FOUND");
  CHECK(StatusFromWire(WireCode::kCorrupt, "x").IsCorruption());
  CHECK(StatusFromWire(WireCode::kChecksumMismatch, "x").IsCorruption());
  CHECK(StatusFromWire(WireCode::kNoSpace, "x").IsNoSpace());
  CHECK(StatusFromWire(WireCode::kDenied, "x").code() == Code::kPermissionDenied);
  CHECK(StatusFromWire(WireCode::kExists, "x").code() == Code::kExists);
  CHECK(StatusFromWire(WireCode::kBusy, "x").code() == Code::kBusy);
  CHECK(StatusFromWire(WireCode::kBadRequest, "x").code() == Code::kInvalidArgument);

  Status unknown = StatusFromWire(static_cast<WireCode>(200), "later");
  CHECK(unknown.code() == Code::kIOError);
  CHECK(unknown.message().find("200") != std::string::npos);
  CHECK(std::string(WireCodeName(static_cast<WireCode>(200))) == "UNKNOWN");

  CHECK(WireCodeFromStatus(Status::Unavailable("x")) == WireCode::kBusy);
  CHECK(WireCodeFromStatus(Status::AuthFailed("x")) == WireCode::kDenied);
  CHECK(WireCodeFromStatus(Status::IOError("x")) == WireCode::kInternal);
  CHECK(WireCodeFromStatus(Status::Corruption("shard rot")) == WireCode::kCorrupt);

  // A reply status this version does not know survives DecodeFrame.
  std::string f = EncodeError(Command::kPing, 1, WireCode::kBusy, "x");
  f[16] = static_cast<char>(200);
  Result<DecodedFrame> d = DecodeFrame(f);
  REQUIRE(d.ok());
  CHECK(static_cast<int>(d->header.status) == 200);
}

TEST_CASE("a failed decode leaves the message untouched") {
  const PingReply before = MakePingReply();
  PingReply m = before;
  std::string body = Body(MakePingReply());
  body.resize(body.size() - 1);
  CHECK_FALSE(DecodeBody(body, &m).ok());
  CHECK(m == before);
}

}  // TEST_SUITE

}  // namespace shardfs::wire
