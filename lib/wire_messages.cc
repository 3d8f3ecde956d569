// Wire message codecs. The format is lib/PROTOCOL.md; section numbers below
// point into it. See wire_messages.h for the contract.
//
// Every decode failure is a Status with an errno that says what kind of
// failure it was, so a node can answer with the right §5 code through
// WireCodeFromStatus without parsing messages:
//   malformed bytes        Corruption       EPROTO           -> BAD_REQUEST
//   unsupported version    InvalidArgument  EPROTONOSUPPORT  -> UNSUPPORTED_VERSION
//   unknown command        InvalidArgument  EOPNOTSUPP       -> UNKNOWN_COMMAND
//   frame over the limit   InvalidArgument  EMSGSIZE         -> TOO_LARGE
//
// Thread-safety: pure functions.
#include "lib/wire_messages.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "lib/coding.h"

namespace shardfs::wire {
namespace {

// §3: byte offsets inside the fixed header.
constexpr size_t kOffVersion = 4;
constexpr size_t kOffCompat = 5;
constexpr size_t kOffCommand = 6;
constexpr size_t kOffFlags = 7;
constexpr size_t kOffRequestId = 8;
constexpr size_t kOffStatus = 16;

// §3.2: every body defined by protocol version 1 is at body version 1 and
// compatible back to 1. A body that appends fields bumps its version but
// keeps the compat version while old decoders can still read it (§7).
constexpr uint8_t kBodyVersion = 1;
constexpr uint8_t kBodyCompatVersion = 1;

// §4.6: ListShardsRequest filter flags.
constexpr uint8_t kListHasStripe = 0x01;
constexpr uint8_t kListHasCursor = 0x02;
constexpr uint8_t kListKnownFlags = kListHasStripe | kListHasCursor;

// §4.6: stripe(16) index(1) size(8) locator_version(4); entry version 2
// appends k(1) m(1) flags(1).
constexpr uint16_t kListEntrySizeV1 = 16 + 1 + 8 + 4;
constexpr uint16_t kListEntrySize = kListEntrySizeV1 + 3;
constexpr uint8_t kListEntryCorrupt = 0x01;
constexpr uint8_t kListEntryNamed = 0x02;

// §4.10: the fixed part of a peer entry: node(8) state(1) incarnation(8)
// last_seen(8) endpoint(4+) zone(4+) capacity used free shards (4 x 8).
constexpr size_t kPeerEntryMinSize = 8 + 1 + 8 + 8 + 4 + 4 + 4 * 8;
constexpr uint8_t kPeersFromNode = 0x01;
// §4.11 flags.
constexpr uint8_t kSyncHasLocator = 0x01;

Status Malformed(std::string msg) { return Status(Code::kCorruption, std::move(msg), EPROTO); }
Status Unsupported(std::string msg) {
  return Status(Code::kInvalidArgument, std::move(msg), EPROTONOSUPPORT);
}

const char* CommandName(Command c) {
  switch (c) {
    case Command::kPing: return "PING";
    case Command::kPutShard: return "PUT_SHARD";
    case Command::kGetShard: return "GET_SHARD";
    case Command::kDeleteShard: return "DELETE_SHARD";
    case Command::kStatShard: return "STAT_SHARD";
    case Command::kListShards: return "LIST_SHARDS";
    case Command::kPeers: return "PEERS";
    case Command::kSyncLocator: return "SYNC_LOCATOR";
    case Command::kNodeStats: return "NODE_STATS";
    case Command::kListHoldings: return "LIST_HOLDINGS";
  }
  return "?";
}

bool IsKnownCommand(uint8_t c) {
  return c >= static_cast<uint8_t>(Command::kPing) &&
         c <= static_cast<uint8_t>(Command::kListHoldings);
}

void PutStripe(std::string* out, const StripeId& id) {
  PutBytes(out, id.bytes.data(), id.bytes.size());
}
void PutBool(std::string* out, bool b) { PutU8(out, b ? 1 : 0); }

// Reads the fields of one body in order. The first failure is remembered
// with the field's name and every later read is a no-op, so decoders are
// straight-line code that ends with Finish().
class FieldReader {
 public:
  FieldReader(std::string_view body, const char* what) : in_(body), what_(what) {}

  void U8(uint8_t* v, const char* field) { Need(in_.GetU8(v), field); }
  void U16(uint16_t* v, const char* field) { Need(in_.GetU16(v), field); }
  void U32(uint32_t* v, const char* field) { Need(in_.GetU32(v), field); }
  void U64(uint64_t* v, const char* field) { Need(in_.GetU64(v), field); }
  void Stripe(StripeId* v, const char* field) {
    Need(in_.GetBytes(v->bytes.data(), v->bytes.size()), field);
  }
  // §2: booleans are one byte, 0 or 1.
  void Bool(bool* v, const char* field) {
    uint8_t b = 0;
    if (!Need(in_.GetU8(&b), field)) return;
    if (b > 1) return Fail(field, fmt::format("boolean byte {}", b));
    *v = b == 1;
  }
  // §2: shard indexes are below kMaxShards.
  void Index(ShardIndex* v, const char* field) {
    uint8_t i = 0;
    if (!Need(in_.GetU8(&i), field)) return;
    if (i >= kMaxShards) return Fail(field, fmt::format("shard index {}", i));
    *v = i;
  }
  // §2: u32 length, then at most kMaxStringField bytes.
  void String(std::string* v, const char* field) {
    uint32_t n = 0;
    if (!Need(in_.GetU32(&n), field)) return;
    if (n > kMaxStringField) {
      return Fail(field, fmt::format("string of {} bytes over the {} limit", n, kMaxStringField));
    }
    std::string_view s;
    if (Need(in_.GetView(n, &s), field)) v->assign(s);
  }
  // A size or offset inside a shard (§6).
  void ShardBytes(uint64_t* v, const char* field) {
    if (!Need(in_.GetU64(v), field)) return;
    if (*v > kMaxShardSize) return Fail(field, fmt::format("{} over the shard limit", *v));
  }
  void Loc(Locator* v, const char* field) {
    if (ok_ && !DecodeLocator(&in_, v)) Fail(field, "truncated or inconsistent");
  }
  void Skip(size_t n, const char* field) { Need(in_.Skip(n), field); }

  // For checks that span fields; no-op after an earlier failure.
  // The message is formatted only on failure: decoding stays cheap.
  template <typename... Args>
  void Check(bool cond, const char* field, fmt::format_string<Args...> problem, Args&&... args) {
    if (ok_ && !cond) Fail(field, fmt::format(problem, std::forward<Args>(args)...));
  }

  bool ok() const { return ok_; }
  size_t remaining() const { return in_.remaining(); }

  // Unknown trailing bytes are deliberately left unread (§7).
  Status Finish() const {
    if (ok_) return Status::OK();
    return Malformed(fmt::format("{}: {}: {}", what_, field_, problem_));
  }

 private:
  bool Need(bool got, const char* field) {
    if (!ok_) return false;
    if (!got) Fail(field, "truncated");
    return got;
  }
  void Fail(const char* field, std::string problem) {
    if (!ok_) return;
    ok_ = false;
    field_ = field;
    problem_ = std::move(problem);
  }

  Reader in_;
  const char* what_;
  bool ok_ = true;
  const char* field_ = "";
  std::string problem_;
};

// Decodes into a fresh value and assigns only on success, so a failed
// decode leaves *msg untouched.
template <typename T, typename Fn>
Status DecodeInto(std::string_view body, const char* what, T* msg, Fn fields) {
  FieldReader r(body, what);
  T tmp;
  fields(r, tmp);
  RETURN_IF_ERROR(r.Finish());
  *msg = std::move(tmp);
  return Status::OK();
}

}  // namespace

// ---- Header (§3) and body envelope (§3.2) ----

void EncodeHeader(const FrameHeader& h, std::string* out) {
  PutBytes(out, kMagic, sizeof(kMagic));
  PutU8(out, h.version);
  PutU8(out, kMinCompatibleVersion);
  PutU8(out, static_cast<uint8_t>(h.command));
  PutU8(out, h.reply ? kFlagReply : 0);
  PutU64(out, h.request_id);
  PutU8(out, static_cast<uint8_t>(h.status));
  PutU8(out, 0);  // reserved
  PutU8(out, 0);
  PutU8(out, 0);
}

void WrapBody(uint8_t body_version, std::string_view fields, std::string* out) {
  PutU8(out, body_version);
  PutU8(out, kBodyCompatVersion);
  PutLengthPrefixed(out, fields);
}

Result<DecodedFrame> DecodeFrame(std::span<const uint8_t> frame) {
  // §6: checked first, before anything else looks at the bytes.
  if (frame.size() > kMaxHeaderFrameSize) {
    return Status(Code::kInvalidArgument,
                  fmt::format("header frame of {} bytes over the {} limit", frame.size(),
                              kMaxHeaderFrameSize),
                  EMSGSIZE);
  }
  if (frame.size() < kHeaderSize + kBodyEnvelopeSize) {
    return Malformed(fmt::format("header frame of {} bytes is too short", frame.size()));
  }
  const uint8_t* p = frame.data();
  if (std::memcmp(p, kMagic, sizeof(kMagic)) != 0) {
    return Malformed("bad magic: not a shardfs frame");
  }
  const uint8_t version = p[kOffVersion];
  const uint8_t compat = p[kOffCompat];
  if (compat == 0 || compat > version) {
    return Malformed(fmt::format("inconsistent versions {} (compatible to {})", version, compat));
  }
  // §7: the peer says which versions can read it; we read it if ours is
  // among them and it is not older than the oldest we still speak.
  if (compat > kProtocolVersion || version < kMinCompatibleVersion) {
    return Unsupported(
        fmt::format("unsupported protocol version: peer speaks {} (compatible to {}), we speak {} "
                    "(compatible to {})",
                    version, compat, kProtocolVersion, kMinCompatibleVersion));
  }
  const uint8_t command = p[kOffCommand];
  if (!IsKnownCommand(command)) {
    return Status(Code::kInvalidArgument, fmt::format("unknown command 0x{:02x}", command),
                  EOPNOTSUPP);
  }

  DecodedFrame out;
  out.header.version = version;
  out.header.command = static_cast<Command>(command);
  // §3.1: unknown flag bits are ignored.
  out.header.reply = (p[kOffFlags] & kFlagReply) != 0;
  out.header.request_id = DecodeU64At(p + kOffRequestId);
  // §5: codes this version does not know are kept; StatusFromWire maps them.
  out.header.status = static_cast<WireCode>(p[kOffStatus]);
  // Reserved bytes 17..19 are ignored on receipt (§3).

  Reader env(p + kHeaderSize, frame.size() - kHeaderSize);
  uint8_t body_compat = 0;
  uint32_t body_len = 0;
  // Cannot fail: the size was checked above.
  (void)env.GetU8(&out.body_version);
  (void)env.GetU8(&body_compat);
  (void)env.GetU32(&body_len);
  if (body_compat == 0 || body_compat > out.body_version) {
    return Malformed(fmt::format("{}: inconsistent body versions {} (compatible to {})",
                                 CommandName(out.header.command), out.body_version, body_compat));
  }
  if (body_compat > kBodyVersion) {
    return Unsupported(fmt::format("{}: unsupported body version {} (compatible to {})",
                                   CommandName(out.header.command), out.body_version, body_compat));
  }
  if (body_len != env.remaining()) {
    return Malformed(fmt::format("{}: body length {} but {} bytes follow the envelope",
                                 CommandName(out.header.command), body_len, env.remaining()));
  }
  out.body = std::string_view(reinterpret_cast<const char*>(env.data()), body_len);
  return out;
}

// ---- Bodies (§4) ----

// §4.1 PING
void EncodeBody(const PingRequest&, std::string*) {}
Status DecodeBody(std::string_view body, PingRequest* msg) {
  return DecodeInto(body, "PING request", msg, [](FieldReader&, PingRequest&) {});
}

void EncodeBody(const PingReply& m, std::string* out) {
  PutU64(out, m.node_id);
  PutLengthPrefixed(out, m.zone);
  PutU64(out, m.capacity_bytes);
  PutU64(out, m.used_bytes);
  PutU64(out, m.free_bytes);
  PutU64(out, m.shard_count);
  PutLengthPrefixed(out, m.public_key);
  PutLengthPrefixed(out, m.endpoint);
}
Status DecodeBody(std::string_view body, PingReply* msg) {
  return DecodeInto(body, "PING reply", msg, [](FieldReader& r, PingReply& m) {
    r.U64(&m.node_id, "node_id");
    r.String(&m.zone, "zone");
    r.U64(&m.capacity_bytes, "capacity_bytes");
    r.U64(&m.used_bytes, "used_bytes");
    r.U64(&m.free_bytes, "free_bytes");
    r.U64(&m.shard_count, "shard_count");
    r.String(&m.public_key, "public_key");
    r.String(&m.endpoint, "endpoint");
  });
}

// §4.2 PUT_SHARD
void EncodeBody(const PutShardRequest& m, std::string* out) {
  PutStripe(out, m.stripe);
  PutU8(out, m.index);
  PutU32(out, m.crc32c);
  PutLengthPrefixed(out, m.owner);
  EncodeLocator(m.locator, out);
}
Status DecodeBody(std::string_view body, PutShardRequest* msg) {
  return DecodeInto(body, "PUT_SHARD request", msg, [](FieldReader& r, PutShardRequest& m) {
    r.Stripe(&m.stripe, "stripe");
    r.Index(&m.index, "index");
    r.U32(&m.crc32c, "crc32c");
    r.String(&m.owner, "owner");
    r.Loc(&m.locator, "locator");
    r.Check(m.locator.stripe == m.stripe, "locator", "stripe differs from the shard's");
    r.Check(m.index < m.locator.n(), "index", "{} outside the locator's {} shards", m.index,
            m.locator.n());
  });
}

void EncodeBody(const PutShardReply&, std::string*) {}
Status DecodeBody(std::string_view body, PutShardReply* msg) {
  return DecodeInto(body, "PUT_SHARD reply", msg, [](FieldReader&, PutShardReply&) {});
}

// §4.3 GET_SHARD
void EncodeBody(const GetShardRequest& m, std::string* out) {
  PutStripe(out, m.stripe);
  PutU8(out, m.index);
  PutU64(out, m.offset);
  PutU64(out, m.length);
}
Status DecodeBody(std::string_view body, GetShardRequest* msg) {
  return DecodeInto(body, "GET_SHARD request", msg, [](FieldReader& r, GetShardRequest& m) {
    r.Stripe(&m.stripe, "stripe");
    r.Index(&m.index, "index");
    r.ShardBytes(&m.offset, "offset");
    r.ShardBytes(&m.length, "length");
  });
}

void EncodeBody(const GetShardReply& m, std::string* out) {
  PutU64(out, m.shard_size);
  PutU32(out, m.crc32c);
}
Status DecodeBody(std::string_view body, GetShardReply* msg) {
  return DecodeInto(body, "GET_SHARD reply", msg, [](FieldReader& r, GetShardReply& m) {
    r.ShardBytes(&m.shard_size, "shard_size");
    r.U32(&m.crc32c, "crc32c");
  });
}

// §4.4 DELETE_SHARD
void EncodeBody(const DeleteShardRequest& m, std::string* out) {
  PutStripe(out, m.stripe);
  PutU8(out, m.index);
  PutLengthPrefixed(out, m.owner);
}
Status DecodeBody(std::string_view body, DeleteShardRequest* msg) {
  return DecodeInto(body, "DELETE_SHARD request", msg, [](FieldReader& r, DeleteShardRequest& m) {
    r.Stripe(&m.stripe, "stripe");
    r.Index(&m.index, "index");
    r.String(&m.owner, "owner");
  });
}

void EncodeBody(const DeleteShardReply&, std::string*) {}
Status DecodeBody(std::string_view body, DeleteShardReply* msg) {
  return DecodeInto(body, "DELETE_SHARD reply", msg, [](FieldReader&, DeleteShardReply&) {});
}

// §4.5 STAT_SHARD
void EncodeBody(const StatShardRequest& m, std::string* out) {
  PutStripe(out, m.stripe);
  PutU8(out, m.index);
}
Status DecodeBody(std::string_view body, StatShardRequest* msg) {
  return DecodeInto(body, "STAT_SHARD request", msg, [](FieldReader& r, StatShardRequest& m) {
    r.Stripe(&m.stripe, "stripe");
    r.Index(&m.index, "index");
  });
}

void EncodeBody(const StatShardReply& m, std::string* out) {
  PutU64(out, m.size);
  PutU32(out, m.crc32c);
  PutLengthPrefixed(out, m.owner);
  PutU64(out, m.created_unix_ms);
  EncodeLocator(m.locator, out);
}
Status DecodeBody(std::string_view body, StatShardReply* msg) {
  return DecodeInto(body, "STAT_SHARD reply", msg, [](FieldReader& r, StatShardReply& m) {
    r.ShardBytes(&m.size, "size");
    r.U32(&m.crc32c, "crc32c");
    r.String(&m.owner, "owner");
    r.U64(&m.created_unix_ms, "created_unix_ms");
    r.Loc(&m.locator, "locator");
  });
}

// §4.6 LIST_SHARDS
void EncodeBody(const ListShardsRequest& m, std::string* out) {
  PutU8(out, (m.has_stripe_filter ? kListHasStripe : 0) | (m.has_cursor ? kListHasCursor : 0));
  PutStripe(out, m.stripe_filter);
  PutStripe(out, m.after_stripe);
  PutU8(out, m.after_index);
  PutU32(out, m.limit);
}
Status DecodeBody(std::string_view body, ListShardsRequest* msg) {
  return DecodeInto(body, "LIST_SHARDS request", msg, [](FieldReader& r, ListShardsRequest& m) {
    uint8_t flags = 0;
    r.U8(&flags, "flags");
    // A filter this node does not understand would silently widen the
    // answer, so unknown bits are an error rather than ignored.
    r.Check((flags & ~kListKnownFlags) == 0, "flags", "unknown filter bits 0x{:02x}",
            flags & ~kListKnownFlags);
    m.has_stripe_filter = (flags & kListHasStripe) != 0;
    m.has_cursor = (flags & kListHasCursor) != 0;
    r.Stripe(&m.stripe_filter, "stripe_filter");
    r.Stripe(&m.after_stripe, "after_stripe");
    r.Index(&m.after_index, "after_index");
    r.U32(&m.limit, "limit");
    r.Check(m.limit >= 1 && m.limit <= kMaxListLimit, "limit", "{} outside 1..{}", m.limit,
            kMaxListLimit);
  });
}

namespace {

// §4.6 and §4.13: one listing; LIST_HOLDINGS entries carry three more bytes.
void EncodeListing(const ListShardsReply& m, bool holdings, std::string* out) {
  const uint16_t entry_size = holdings ? kListEntrySize : kListEntrySizeV1;
  PutBool(out, m.more);
  PutU32(out, static_cast<uint32_t>(m.entries.size()));
  PutU16(out, entry_size);
  out->reserve(out->size() + m.entries.size() * entry_size);
  for (const ListEntry& e : m.entries) {
    PutStripe(out, e.stripe);
    PutU8(out, e.index);
    PutU64(out, e.size);
    PutU32(out, e.locator_version);
    if (!holdings) continue;
    PutU8(out, e.k);
    PutU8(out, e.m);
    PutU8(out, (e.corrupt ? kListEntryCorrupt : 0) | (e.named ? kListEntryNamed : 0));
  }
}

void DecodeListing(FieldReader& r, bool holdings, ListShardsReply& m) {
  const uint16_t min_size = holdings ? kListEntrySize : kListEntrySizeV1;
  uint32_t count = 0;
  uint16_t entry_size = 0;
  r.Bool(&m.more, "more");
  r.U32(&count, "count");
  r.U16(&entry_size, "entry_size");
  r.Check(count <= kMaxListLimit, "count", "{} entries over the {} limit", count, kMaxListLimit);
  r.Check(entry_size >= min_size, "entry_size", "{} bytes, less than {}", entry_size, min_size);
  // Bound the allocation by the bytes actually present, so a forged count
  // costs nothing.
  r.Check(uint64_t{count} * entry_size <= r.remaining(), "entries",
          "{} entries of {} bytes but {} bytes left", count, entry_size, r.remaining());
  if (!r.ok()) return;
  m.entries.resize(count);
  for (ListEntry& e : m.entries) {
    r.Stripe(&e.stripe, "entry.stripe");
    r.Index(&e.index, "entry.index");
    r.ShardBytes(&e.size, "entry.size");
    r.U32(&e.locator_version, "entry.locator_version");
    if (holdings) {
      uint8_t flags = 0;
      r.U8(&e.k, "entry.k");
      r.U8(&e.m, "entry.m");
      r.U8(&flags, "entry.flags");
      e.corrupt = (flags & kListEntryCorrupt) != 0;
      e.named = (flags & kListEntryNamed) != 0;
    }
    r.Skip(entry_size - min_size, "entry");  // fields from newer versions (§7)
  }
}

}  // namespace

void EncodeBody(const ListShardsReply& m, std::string* out) { EncodeListing(m, false, out); }
Status DecodeBody(std::string_view body, ListShardsReply* msg) {
  return DecodeInto(body, "LIST_SHARDS reply", msg,
                    [](FieldReader& r, ListShardsReply& m) { DecodeListing(r, false, m); });
}

// §4.13 LIST_HOLDINGS: the request is LIST_SHARDS's.
void EncodeBody(const ListHoldingsRequest& m, std::string* out) {
  EncodeBody(static_cast<const ListShardsRequest&>(m), out);
}
Status DecodeBody(std::string_view body, ListHoldingsRequest* msg) {
  ListShardsRequest base;
  RETURN_IF_ERROR(DecodeBody(body, &base));
  static_cast<ListShardsRequest&>(*msg) = base;
  return Status::OK();
}
void EncodeBody(const ListHoldingsReply& m, std::string* out) { EncodeListing(m, true, out); }
Status DecodeBody(std::string_view body, ListHoldingsReply* msg) {
  return DecodeInto(body, "LIST_HOLDINGS reply", msg, [](FieldReader& r, ListHoldingsReply& m) {
    DecodeListing(r, true, m);
  });
}

// §4.12 NODE_STATS
void EncodeBody(const NodeStatsRequest&, std::string*) {}
Status DecodeBody(std::string_view body, NodeStatsRequest* msg) {
  return DecodeInto(body, "NODE_STATS request", msg, [](FieldReader&, NodeStatsRequest&) {});
}
void EncodeBody(const NodeStats& st, std::string* out) {
  for (uint64_t v : {st.repair_queued, st.repair_active, st.repaired_shards, st.repaired_bytes,
                     st.repair_failures, st.scrubbed_shards, st.corrupt_found,
                     st.orphans_collected, st.stripes_lost, st.audits}) {
    PutU64(out, v);
  }
}
Status DecodeBody(std::string_view body, NodeStats* msg) {
  return DecodeInto(body, "NODE_STATS reply", msg, [](FieldReader& r, NodeStats& st) {
    for (uint64_t* v : {&st.repair_queued, &st.repair_active, &st.repaired_shards,
                        &st.repaired_bytes, &st.repair_failures, &st.scrubbed_shards,
                        &st.corrupt_found, &st.orphans_collected, &st.stripes_lost, &st.audits}) {
      r.U64(v, "stats");
    }
  });
}

// §4.10 PEERS
namespace {

void EncodePeerEntry(const PeerEntry& e, std::string* out) {
  std::string f;
  PutU64(&f, e.node_id);
  PutU8(&f, static_cast<uint8_t>(e.state));
  PutU64(&f, e.incarnation);
  PutU64(&f, e.last_seen_ms_ago);
  PutLengthPrefixed(&f, e.endpoint);
  PutLengthPrefixed(&f, e.zone);
  PutU64(&f, e.capacity_bytes);
  PutU64(&f, e.used_bytes);
  PutU64(&f, e.free_bytes);
  PutU64(&f, e.shard_count);
  PutU16(out, static_cast<uint16_t>(f.size()));
  out->append(f);
}

// Entries up to the frame budget: a sender never exceeds
// kMaxHeaderFrameSize, it sends fewer peers instead (§4.10).
void EncodePeerList(const std::vector<PeerEntry>& peers, std::string* out) {
  constexpr size_t kBudget = kMaxHeaderFrameSize - 256;
  std::string entries;
  uint32_t count = 0;
  for (const PeerEntry& e : peers) {
    if (count == kMaxPeerEntries) break;
    std::string one;
    EncodePeerEntry(e, &one);
    if (out->size() + 4 + entries.size() + one.size() > kBudget) break;
    entries += one;
    ++count;
  }
  PutU32(out, count);
  out->append(entries);
}

void DecodePeerList(FieldReader& r, std::vector<PeerEntry>* peers) {
  uint32_t count = 0;
  r.U32(&count, "count");
  r.Check(count <= kMaxPeerEntries, "count", "{} peers over the {} limit", count,
          kMaxPeerEntries);
  r.Check(uint64_t{count} * (2 + kPeerEntryMinSize) <= r.remaining(), "peers",
          "{} peers cannot fit in {} bytes", count, r.remaining());
  if (!r.ok()) return;
  peers->resize(count);
  for (PeerEntry& e : *peers) {
    uint16_t size = 0;
    r.U16(&size, "peer.size");
    r.Check(size >= kPeerEntryMinSize && size <= r.remaining(), "peer.size",
            "entry of {} bytes ({} left)", size, r.remaining());
    if (!r.ok()) return;
    const size_t end_left = r.remaining() - size;
    uint8_t state = 0;
    r.U64(&e.node_id, "peer.node_id");
    r.U8(&state, "peer.state");
    r.Check(state <= static_cast<uint8_t>(PeerState::kLeft), "peer.state", "unknown state {}",
            state);
    e.state = static_cast<PeerState>(state);
    r.U64(&e.incarnation, "peer.incarnation");
    r.U64(&e.last_seen_ms_ago, "peer.last_seen_ms_ago");
    r.String(&e.endpoint, "peer.endpoint");
    r.String(&e.zone, "peer.zone");
    r.U64(&e.capacity_bytes, "peer.capacity_bytes");
    r.U64(&e.used_bytes, "peer.used_bytes");
    r.U64(&e.free_bytes, "peer.free_bytes");
    r.U64(&e.shard_count, "peer.shard_count");
    // The strings must stay inside the entry's own length.
    r.Check(r.remaining() >= end_left, "peer", "fields run past the entry's {} bytes", size);
    if (!r.ok()) return;
    r.Skip(r.remaining() - end_left, "peer");  // appended fields (§7)
  }
}

}  // namespace

const char* PeerStateName(PeerState s) {
  switch (s) {
    case PeerState::kUp: return "up";
    case PeerState::kSuspect: return "suspect";
    case PeerState::kDown: return "down";
    case PeerState::kLeft: return "left";
  }
  return "?";
}

void EncodeBody(const PeersRequest& m, std::string* out) {
  PutU8(out, m.from_node ? kPeersFromNode : 0);
  EncodePeerList(m.peers, out);
}
Status DecodeBody(std::string_view body, PeersRequest* msg) {
  return DecodeInto(body, "PEERS request", msg, [](FieldReader& r, PeersRequest& m) {
    uint8_t flags = 0;
    r.U8(&flags, "flags");
    m.from_node = (flags & kPeersFromNode) != 0;  // other bits: ignored (§4.10)
    DecodePeerList(r, &m.peers);
    r.Check(!m.from_node || !m.peers.empty(), "peers", "from a node but without its own entry");
  });
}

void EncodeBody(const PeersReply& m, std::string* out) { EncodePeerList(m.peers, out); }
Status DecodeBody(std::string_view body, PeersReply* msg) {
  return DecodeInto(body, "PEERS reply", msg, [](FieldReader& r, PeersReply& m) {
    DecodePeerList(r, &m.peers);
    r.Check(!m.peers.empty(), "peers", "no entry for the answering node");
  });
}

// §4.11 SYNC_LOCATOR
void EncodeBody(const SyncLocatorRequest& m, std::string* out) {
  PutStripe(out, m.stripe);
  PutU8(out, m.has_locator ? kSyncHasLocator : 0);
  if (m.has_locator) EncodeLocator(m.locator, out);
}
Status DecodeBody(std::string_view body, SyncLocatorRequest* msg) {
  return DecodeInto(body, "SYNC_LOCATOR request", msg,
                    [](FieldReader& r, SyncLocatorRequest& m) {
                      uint8_t flags = 0;
                      r.Stripe(&m.stripe, "stripe");
                      r.U8(&flags, "flags");
                      r.Check((flags & ~kSyncHasLocator) == 0, "flags", "unknown bits 0x{:02x}",
                              flags & ~kSyncHasLocator);
                      m.has_locator = (flags & kSyncHasLocator) != 0;
                      if (m.has_locator) {
                        r.Loc(&m.locator, "locator");
                        r.Check(m.locator.stripe == m.stripe, "locator",
                                "stripe differs from the request's");
                      }
                    });
}

void EncodeBody(const SyncLocatorReply& m, std::string* out) {
  PutU8(out, m.has_locator ? kSyncHasLocator : 0);
  if (m.has_locator) EncodeLocator(m.locator, out);
  PutU64(out, m.held_ok);
  PutU64(out, m.held_corrupt);
}
Status DecodeBody(std::string_view body, SyncLocatorReply* msg) {
  return DecodeInto(body, "SYNC_LOCATOR reply", msg, [](FieldReader& r, SyncLocatorReply& m) {
    uint8_t flags = 0;
    r.U8(&flags, "flags");
    r.Check((flags & ~kSyncHasLocator) == 0, "flags", "unknown bits 0x{:02x}",
            flags & ~kSyncHasLocator);
    m.has_locator = (flags & kSyncHasLocator) != 0;
    if (m.has_locator) r.Loc(&m.locator, "locator");
    r.U64(&m.held_ok, "held_ok");
    r.U64(&m.held_corrupt, "held_corrupt");
  });
}

// §4.7 error replies
void EncodeBody(const ErrorBody& m, std::string* out) { PutLengthPrefixed(out, m.message); }
Status DecodeBody(std::string_view body, ErrorBody* msg) {
  return DecodeInto(body, "error reply", msg,
                    [](FieldReader& r, ErrorBody& m) { r.String(&m.message, "message"); });
}

std::string EncodeError(Command command, uint64_t request_id, WireCode code,
                        std::string_view message) {
  FrameHeader h;
  h.command = command;
  h.reply = true;
  h.request_id = request_id;
  h.status = code;
  std::string out;
  EncodeHeader(h, &out);
  // Status messages are ours and unbounded; the wire limit is not.
  ErrorBody body{std::string(message.substr(0, kMaxStringField))};
  std::string fields;
  EncodeBody(body, &fields);
  WrapBody(kBodyVersion, fields, &out);
  return out;
}

// ---- Status codes (§5) ----

Status StatusFromWire(WireCode code, std::string_view message) {
  std::string msg(message.empty() ? std::string_view(WireCodeName(code)) : message);
  switch (code) {
    case WireCode::kOk: return Status::OK();
    case WireCode::kBadRequest: return Status::InvalidArgument(std::move(msg));
    case WireCode::kUnsupportedVersion:
      return Status(Code::kInvalidArgument, std::move(msg), EPROTONOSUPPORT);
    case WireCode::kNotFound: return Status::NotFound(std::move(msg));
    case WireCode::kCorrupt: return Status::Corruption(std::move(msg));
    // The payload was damaged on its way; EBADMSG keeps it apart from a
    // shard that rotted on the node's disk.
    case WireCode::kChecksumMismatch: return Status(Code::kCorruption, std::move(msg), EBADMSG);
    case WireCode::kNoSpace: return Status::NoSpace(std::move(msg));
    case WireCode::kExists: return Status::Exists(std::move(msg));
    case WireCode::kDenied: return Status::PermissionDenied(std::move(msg));
    case WireCode::kInternal: return Status::IOError(std::move(msg));
    case WireCode::kBusy: return Status::Busy(std::move(msg));
    case WireCode::kTooLarge: return Status(Code::kInvalidArgument, std::move(msg), EMSGSIZE);
    case WireCode::kUnknownCommand:
      return Status(Code::kInvalidArgument, std::move(msg), EOPNOTSUPP);
  }
  // §5: a code from a newer peer; treat it as a failure of that node.
  return Status::IOError(
      fmt::format("unknown wire status {}: {}", static_cast<int>(code), message));
}

WireCode WireCodeFromStatus(const Status& status) {
  switch (status.code()) {
    case Code::kOk: return WireCode::kOk;
    case Code::kNotFound: return WireCode::kNotFound;
    case Code::kCorruption:
      // EPROTO: a request we could not decode, not a rotten shard.
      if (status.err() == EPROTO) return WireCode::kBadRequest;
      if (status.err() == EBADMSG) return WireCode::kChecksumMismatch;
      return WireCode::kCorrupt;
    case Code::kInvalidArgument:
      if (status.err() == EPROTONOSUPPORT) return WireCode::kUnsupportedVersion;
      if (status.err() == EOPNOTSUPP) return WireCode::kUnknownCommand;
      if (status.err() == EMSGSIZE) return WireCode::kTooLarge;
      return WireCode::kBadRequest;
    case Code::kNoSpace: return WireCode::kNoSpace;
    case Code::kExists: return WireCode::kExists;
    case Code::kPermissionDenied:
    case Code::kAuthFailed: return WireCode::kDenied;
    // All say "not now, maybe elsewhere or later".
    case Code::kBusy:
    case Code::kUnavailable:
    case Code::kTimedOut:
    case Code::kAborted: return WireCode::kBusy;
    case Code::kIOError: return WireCode::kInternal;
  }
  return WireCode::kInternal;
}

const char* WireCodeName(WireCode code) {
  switch (code) {
    case WireCode::kOk: return "OK";
    case WireCode::kBadRequest: return "BAD_REQUEST";
    case WireCode::kUnsupportedVersion: return "UNSUPPORTED_VERSION";
    case WireCode::kNotFound: return "NOT_FOUND";
    case WireCode::kCorrupt: return "CORRUPT";
    case WireCode::kChecksumMismatch: return "CHECKSUM_MISMATCH";
    case WireCode::kNoSpace: return "NO_SPACE";
    case WireCode::kExists: return "EXISTS";
    case WireCode::kDenied: return "DENIED";
    case WireCode::kInternal: return "INTERNAL";
    case WireCode::kBusy: return "BUSY";
    case WireCode::kTooLarge: return "TOO_LARGE";
    case WireCode::kUnknownCommand: return "UNKNOWN_COMMAND";
  }
  return "UNKNOWN";
}

}  // namespace shardfs::wire
