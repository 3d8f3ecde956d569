// libFuzzer target for the wire codec (lib/wire_messages.h, lib/locator.h).
//
// Feeds untrusted bytes to every decoder and checks two properties:
//   1. no decoder crashes, reads out of bounds or allocates wildly
//      (ASan/UBSan do the checking);
//   2. whatever decodes re-encodes to bytes that decode to the same value
//      (abort on mismatch), so encoder and decoder agree on PROTOCOL.md.
// The input is tried as a whole header frame (DecodeFrame, then the body
// decoder its command and direction select), as a bare body of every
// message type, and as a bare locator (§4.9).
//
// Built by tests/fuzz/meson.build; tests/fuzz/run.sh runs it. The same
// entry point is linked into a plain corpus replay binary for non-clang
// builds (replay_main.cc).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>

#include "lib/locator.h"
#include "lib/wire_messages.h"

namespace shardfs::wire {
namespace {

// Whether the last input decoded in full as a frame plus body, or as a
// locator with nothing left over. Only replay_main.cc looks at it.
bool g_decoded = false;

#define FUZZ_CHECK(cond)                                                                      \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "wire_decode_fuzz: %s:%d: check failed: %s\n", __FILE__, __LINE__, \
                   #cond);                                                                    \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)

// Re-encodes a decoded body as a whole message and decodes it again.
template <typename T>
void CheckRoundTrip(uint64_t request_id, const T& msg) {
  const std::string again = EncodeMessage(request_id, msg);
  Result<DecodedFrame> f = DecodeFrame(again);
  FUZZ_CHECK(f.ok());
  FUZZ_CHECK(f->header.command == T::kCommand);
  FUZZ_CHECK(f->header.reply == T::kIsReply);
  FUZZ_CHECK(f->header.request_id == request_id);
  T back;
  FUZZ_CHECK(DecodeBody(f->body, &back).ok());
  FUZZ_CHECK(back == msg);
}

// Decodes `body` as T; if that works, the round trip must too.
template <typename T>
void TryBody(uint64_t request_id, std::string_view body) {
  T msg;
  if (DecodeBody(body, &msg).ok()) CheckRoundTrip(request_id, msg);
}

template <typename T>
void TryFrameBody(uint64_t request_id, std::string_view body) {
  T msg;
  if (!DecodeBody(body, &msg).ok()) return;
  g_decoded = true;
  CheckRoundTrip(request_id, msg);
}

void TryError(const FrameHeader& h, std::string_view body) {
  ErrorBody err;
  if (!DecodeBody(body, &err).ok()) return;
  g_decoded = true;
  const std::string again = EncodeError(h.command, h.request_id, h.status, err.message);
  Result<DecodedFrame> f = DecodeFrame(again);
  FUZZ_CHECK(f.ok());
  FUZZ_CHECK(f->header.command == h.command);
  FUZZ_CHECK(f->header.reply);
  FUZZ_CHECK(f->header.request_id == h.request_id);
  FUZZ_CHECK(f->header.status == h.status);
  ErrorBody back;
  FUZZ_CHECK(DecodeBody(f->body, &back).ok());
  FUZZ_CHECK(back == err);
}

// PROTOCOL.md §4: the body type follows from command and direction; a reply
// with a status other than OK carries an error body (§4.7).
void TryFrame(std::span<const uint8_t> input) {
  Result<DecodedFrame> f = DecodeFrame(input);
  if (!f.ok()) return;
  const FrameHeader& h = f->header;
  const uint64_t id = h.request_id;
  const std::string_view body = f->body;
  if (h.reply && h.status != WireCode::kOk) return TryError(h, body);
  switch (h.command) {
    case Command::kPing:
      return h.reply ? TryFrameBody<PingReply>(id, body) : TryFrameBody<PingRequest>(id, body);
    case Command::kPutShard:
      return h.reply ? TryFrameBody<PutShardReply>(id, body)
                     : TryFrameBody<PutShardRequest>(id, body);
    case Command::kGetShard:
      return h.reply ? TryFrameBody<GetShardReply>(id, body)
                     : TryFrameBody<GetShardRequest>(id, body);
    case Command::kDeleteShard:
      return h.reply ? TryFrameBody<DeleteShardReply>(id, body)
                     : TryFrameBody<DeleteShardRequest>(id, body);
    case Command::kStatShard:
      return h.reply ? TryFrameBody<StatShardReply>(id, body)
                     : TryFrameBody<StatShardRequest>(id, body);
    case Command::kListShards:
      return h.reply ? TryFrameBody<ListShardsReply>(id, body)
                     : TryFrameBody<ListShardsRequest>(id, body);
    case Command::kPeers:
      return h.reply ? TryFrameBody<PeersReply>(id, body) : TryFrameBody<PeersRequest>(id, body);
    case Command::kSyncLocator:
      return h.reply ? TryFrameBody<SyncLocatorReply>(id, body)
                     : TryFrameBody<SyncLocatorRequest>(id, body);
    case Command::kNodeStats:
      return h.reply ? TryFrameBody<NodeStats>(id, body)
                     : TryFrameBody<NodeStatsRequest>(id, body);
    case Command::kListHoldings:
      return h.reply ? TryFrameBody<ListHoldingsReply>(id, body)
                     : TryFrameBody<ListHoldingsRequest>(id, body);
  }
  FUZZ_CHECK(false && "DecodeFrame let an unknown command through");
}

// The whole input as a bare body of each type: reaches the field decoders
// without the fuzzer having to build a valid header first.
void TryBareBodies(std::string_view raw) {
  TryBody<PingReply>(1, raw);
  TryBody<PutShardRequest>(2, raw);
  TryBody<GetShardRequest>(3, raw);
  TryBody<GetShardReply>(4, raw);
  TryBody<DeleteShardRequest>(5, raw);
  TryBody<StatShardRequest>(6, raw);
  TryBody<StatShardReply>(7, raw);
  TryBody<ListShardsRequest>(8, raw);
  TryBody<ListShardsReply>(9, raw);
  TryBody<PeersRequest>(10, raw);
  TryBody<PeersReply>(11, raw);
  TryBody<SyncLocatorRequest>(12, raw);
  TryBody<SyncLocatorReply>(13, raw);
  TryBody<NodeStats>(14, raw);
  TryBody<ListHoldingsReply>(15, raw);
  ErrorBody err;
  (void)DecodeBody(raw, &err);
}

// §4.9: the locator encoding stores every field verbatim, so re-encoding
// must give back exactly the bytes the decoder consumed.
void TryLocator(const uint8_t* data, size_t size) {
  Reader in(data, size);
  Locator loc;
  if (!DecodeLocator(&in, &loc)) return;
  const size_t used = size - in.remaining();
  if (used == size) g_decoded = true;
  std::string again;
  EncodeLocator(loc, &again);
  FUZZ_CHECK(again.size() == used);
  FUZZ_CHECK(std::string_view(reinterpret_cast<const char*>(data), used) == again);
  Reader in2(again);
  Locator back;
  FUZZ_CHECK(DecodeLocator(&in2, &back));
  FUZZ_CHECK(in2.remaining() == 0);
  FUZZ_CHECK(back == loc);
}

}  // namespace

}  // namespace shardfs::wire

namespace shardfs::fuzz {
// For replay_main.cc: seed_* files must decode in full.
bool InputAccepted() { return wire::g_decoded; }
}  // namespace shardfs::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace shardfs::wire;
  g_decoded = false;
  TryFrame(std::span<const uint8_t>(data, size));
  TryBareBodies(std::string_view(reinterpret_cast<const char*>(data), size));
  TryLocator(data, size);
  return 0;
}
