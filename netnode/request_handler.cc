// Request decoding, dispatch and reply encoding. See request_handler.h;
// message formats in lib/PROTOCOL.md §4, status codes in §5.
#include "netnode/request_handler.h"

#include <cstdlib>
#include <cstring>

#include "lib/coding.h"
#include "lib/log.h"
#include "netnode/identity.h"

namespace shardfs {

using wire::Command;
using wire::WireCode;

namespace {

Reply Error(Command cmd, uint64_t rid, WireCode code, std::string_view msg) {
  return Reply{wire::EncodeError(cmd, rid, code, msg), std::nullopt};
}

Reply ErrorFromStatus(Command cmd, uint64_t rid, const Status& st) {
  WireCode code = wire::WireCodeFromStatus(st);
  if (code == WireCode::kInternal) {
    // Our own failure (disk, SQLite): worth a line in the node's log.
    LOG_ERROR("request {:#x}: {}", rid, st.ToString());
  } else {
    LOG_DEBUG("request {:#x}: {} {}", rid, wire::WireCodeName(code), st.message());
  }
  return Error(cmd, rid, code, st.message());
}

std::string_view View(const zmq::message_t& m) {
  return {static_cast<const char*>(m.data()), m.size()};
}

}  // namespace

std::optional<PeekedHeader> PeekHeader(const void* data, size_t size) {
  // PROTOCOL.md §3: magic(4) version(1) compat(1) command(1) flags(1)
  // request_id(8, LE) ...
  if (size < wire::kHeaderSize) return std::nullopt;
  const auto* p = static_cast<const uint8_t*>(data);
  if (std::memcmp(p, wire::kMagic, sizeof(wire::kMagic)) != 0) return std::nullopt;
  if (p[7] & wire::kFlagReply) return std::nullopt;  // never answer a reply
  return PeekedHeader{static_cast<Command>(p[6]), DecodeU64At(p + 8)};
}

RequestHandler::RequestHandler(ShardStore* store, NodeSelf info, NodeHooks hooks)
    : store_(store), info_(std::move(info)), hooks_(std::move(hooks)) {}

std::optional<Reply> RequestHandler::ErrorReply(const zmq::message_t& header, WireCode code,
                                                std::string_view message) {
  auto peek = PeekHeader(header.data(), header.size());
  if (!peek) return std::nullopt;
  return Error(peek->command, peek->request_id, code, message);
}

RequestHandler::Route RequestHandler::Triage(const Request& req, Reply* reply) const {
  auto fail = [&](WireCode code, std::string_view msg) {
    auto r = ErrorReply(req.header, code, msg);
    if (!r) return Route::kDrop;
    *reply = std::move(*r);
    return Route::kReplyNow;
  };
  auto frame = wire::DecodeFrame(View(req.header));
  if (!frame.ok()) return fail(wire::WireCodeFromStatus(frame.status()), frame.status().message());
  const wire::FrameHeader& h = frame->header;
  if (h.reply) return Route::kDrop;  // a reply sent to a node: not a request
  if (req.extra_frames > 0) return fail(WireCode::kBadRequest, "too many frames");
  const bool wants_payload = h.command == Command::kPutShard;
  if (wants_payload != req.payload.has_value()) {
    return fail(WireCode::kBadRequest,
                wants_payload ? "PUT_SHARD without a payload frame" : "unexpected payload frame");
  }
  if (req.payload && req.payload->size() > wire::kMaxShardSize) {
    return fail(WireCode::kTooLarge, "shard over the size limit");
  }
  if (h.command == Command::kPing) {
    wire::PingRequest ping;
    Status st = wire::DecodeBody(frame->body, &ping);
    if (!st.ok()) return fail(wire::WireCodeFromStatus(st), st.message());
    *reply = Ping(h.request_id);
    return Route::kReplyNow;
  }
  if (h.command == Command::kNodeStats) {
    wire::NodeStatsRequest stats_request;
    Status st = wire::DecodeBody(frame->body, &stats_request);
    if (!st.ok()) return fail(wire::WireCodeFromStatus(st), st.message());
    wire::NodeStats stats = hooks_.stats ? hooks_.stats() : wire::NodeStats{};
    *reply = Reply{wire::EncodeMessage(h.request_id, stats), std::nullopt};
    return Route::kReplyNow;
  }
  if (h.command == Command::kPeers) {
    // Memory only, like PING: a slow disk must not make us look dead.
    wire::PeersRequest peers;
    Status st = wire::DecodeBody(frame->body, &peers);
    if (!st.ok()) return fail(wire::WireCodeFromStatus(st), st.message());
    // SECURITY.md §3: a node speaks for itself only under its own key, so
    // nobody can take over another node's id (and its right to repair).
    if (!req.peer_key.empty() && peers.from_node && !peers.peers.empty()) {
      auto id = NodeIdFromPublicKey(req.peer_key);
      if (!id.ok() || *id != peers.peers[0].node_id) {
        return fail(WireCode::kDenied, "PEERS: the sender's entry is not its own key's node id");
      }
    }
    wire::PeersReply r;
    if (hooks_.peers) r = hooks_.peers(peers);
    if (r.peers.empty()) {
      // No membership (yet): answer with ourselves alone.
      StoreUsage u = store_->Usage();
      wire::PeerEntry self;
      self.node_id = info_.id;
      self.zone = info_.zone;
      self.endpoint = info_.endpoint;
      self.capacity_bytes = u.capacity_bytes;
      self.used_bytes = u.used_bytes;
      self.free_bytes = u.free_bytes;
      self.shard_count = u.shard_count;
      r.peers.push_back(std::move(self));
    }
    *reply = Reply{wire::EncodeMessage(h.request_id, r), std::nullopt};
    return Route::kReplyNow;
  }
  return Route::kWorker;
}

Reply RequestHandler::Ping(uint64_t rid) const {
  // Atomics only: PING is answered on the I/O thread and must not wait on
  // the disk.
  StoreUsage u = store_->Usage();
  wire::PingReply r;
  r.node_id = info_.id;
  r.zone = info_.zone;
  r.capacity_bytes = u.capacity_bytes;
  r.used_bytes = u.used_bytes;
  r.free_bytes = u.free_bytes;
  r.shard_count = u.shard_count;
  r.public_key = info_.public_key;
  r.endpoint = info_.endpoint;
  return Reply{wire::EncodeMessage(rid, r), std::nullopt};
}

void RequestHandler::Execute(Catalog* catalog, Request req, ReplyFn done) const {
  auto frame = wire::DecodeFrame(View(req.header));
  if (!frame.ok()) {
    // Triage accepted it, so this is not expected; answer anyway.
    auto r =
        ErrorReply(req.header, wire::WireCodeFromStatus(frame.status()), frame.status().message());
    if (r) done(std::move(*r));
    return;
  }
  const uint64_t rid = frame->header.request_id;
  std::string_view body = frame->body;
  try {
    switch (frame->header.command) {
      case Command::kPutShard:
        return Put(catalog, rid, body, req, done);
      case Command::kGetShard:
        return done(Get(catalog, rid, body));
      case Command::kDeleteShard:
        return done(Delete(catalog, rid, body, req.peer_key));
      case Command::kStatShard:
        return done(Stat(catalog, rid, body));
      case Command::kListShards:
        return done(List(catalog, rid, body, false));
      case Command::kListHoldings:
        return done(List(catalog, rid, body, true));
      case Command::kSyncLocator:
        return done(SyncLocator(catalog, rid, body, req.peer_key));
      case Command::kPing:
        return done(Ping(rid));
      case Command::kPeers:
      case Command::kNodeStats:
        break;  // answered by Triage
    }
    done(Error(frame->header.command, rid, WireCode::kUnknownCommand, "unknown command"));
  } catch (const std::bad_alloc&) {
    // One oversized request must not take the node down.
    done(Error(frame->header.command, rid, WireCode::kInternal, "out of memory"));
  }
}

void RequestHandler::Put(Catalog* catalog, uint64_t rid, std::string_view body, Request& req,
                         const ReplyFn& done) const {
  wire::PutShardRequest m;
  Status st = wire::DecodeBody(body, &m);
  if (!st.ok()) return done(ErrorFromStatus(Command::kPutShard, rid, st));
  // The locator must describe this shard: it is what repair will trust.
  if (!(m.locator.stripe == m.stripe) || m.index >= m.locator.n()) {
    return done(Error(Command::kPutShard, rid, WireCode::kBadRequest,
                      "locator does not match the shard's stripe and index"));
  }
  if (m.owner.empty()) {
    return done(Error(Command::kPutShard, rid, WireCode::kBadRequest, "empty owner"));
  }
  // SECURITY.md §3: a client stores under its own key; only a node (repair,
  // hand-off) may store a shard for another owner.
  if (!req.peer_key.empty() && m.owner != req.peer_key && !PeerIsNode(req.peer_key)) {
    return done(Error(Command::kPutShard, rid, WireCode::kDenied,
                      "owner must be the sender's own key"));
  }
  PutArgs args;
  args.key = ShardKey{m.stripe, m.index};
  args.crc32c = m.crc32c;
  args.owner = std::move(m.owner);
  args.locator = std::move(m.locator);
  args.payload = {static_cast<const uint8_t*>(req.payload->data()), req.payload->size()};
  store_->Put(catalog, args, [done, rid](Status s) {
    if (s.ok()) {
      done(Reply{wire::EncodeMessage(rid, wire::PutShardReply{}), std::nullopt});
    } else {
      done(ErrorFromStatus(Command::kPutShard, rid, s));
    }
  });
}

Reply RequestHandler::Get(Catalog* catalog, uint64_t rid, std::string_view body) const {
  wire::GetShardRequest m;
  Status st = wire::DecodeBody(body, &m);
  if (!st.ok()) return ErrorFromStatus(Command::kGetShard, rid, st);
  auto bytes = store_->Get(catalog, ShardKey{m.stripe, m.index}, m.offset, m.length);
  if (!bytes.ok()) return ErrorFromStatus(Command::kGetShard, rid, bytes.status());
  wire::GetShardReply r;
  r.shard_size = bytes->shard_size;
  r.crc32c = bytes->crc32c;
  Reply out{wire::EncodeMessage(rid, r), zmq::message_t()};
  if (bytes->length > 0) {
    // Zero-copy: the message owns the malloc'd buffer from here on and frees
    // it (the base, passed as hint) once ZeroMQ has sent it.
    uint8_t* base = bytes->buffer.release();
    out.payload.emplace(
        base + bytes->offset, bytes->length, [](void*, void* hint) { std::free(hint); }, base);
  }
  return out;
}

bool RequestHandler::PeerIsNode(const std::string& peer_key) const {
  if (!hooks_.is_node) return false;
  auto id = NodeIdFromPublicKey(peer_key);
  return id.ok() && hooks_.is_node(*id);
}

Reply RequestHandler::Delete(Catalog* catalog, uint64_t rid, std::string_view body,
                             const std::string& peer_key) const {
  wire::DeleteShardRequest m;
  Status st = wire::DecodeBody(body, &m);
  if (!st.ok()) return ErrorFromStatus(Command::kDeleteShard, rid, st);
  // SECURITY.md §3: the owner named must be the authenticated sender; the
  // store then checks it against the owner recorded at PUT.
  if (!peer_key.empty() && m.owner != peer_key) {
    return Error(Command::kDeleteShard, rid, WireCode::kDenied,
                 "shard " + ShardKey{m.stripe, m.index}.ToString() +
                     ": only the key that stored it may delete it");
  }
  st = store_->Delete(catalog, ShardKey{m.stripe, m.index}, m.owner);
  if (!st.ok()) return ErrorFromStatus(Command::kDeleteShard, rid, st);
  return Reply{wire::EncodeMessage(rid, wire::DeleteShardReply{}), std::nullopt};
}

Reply RequestHandler::Stat(Catalog* catalog, uint64_t rid, std::string_view body) const {
  wire::StatShardRequest m;
  Status st = wire::DecodeBody(body, &m);
  if (!st.ok()) return ErrorFromStatus(Command::kStatShard, rid, st);
  ShardKey key{m.stripe, m.index};
  auto rec = catalog->Get(key);
  if (!rec.ok()) return ErrorFromStatus(Command::kStatShard, rid, rec.status());
  if (!rec->has_value()) {
    return Error(Command::kStatShard, rid, WireCode::kNotFound, "no shard " + key.ToString());
  }
  const ShardRecord& s = **rec;
  if (s.state == ShardState::kCorrupt) {
    return Error(Command::kStatShard, rid, WireCode::kCorrupt,
                 "shard " + key.ToString() + " is marked corrupt");
  }
  wire::StatShardReply r;
  r.size = s.size;
  r.crc32c = s.crc32c;
  r.owner = s.owner;
  r.created_unix_ms = s.created_ms;
  r.locator = s.locator;
  return Reply{wire::EncodeMessage(rid, r), std::nullopt};
}

Reply RequestHandler::List(Catalog* catalog, uint64_t rid, std::string_view body,
                           bool holdings) const {
  // LIST_HOLDINGS (§4.13) has LIST_SHARDS's request body.
  const Command cmd = holdings ? Command::kListHoldings : Command::kListShards;
  wire::ListShardsRequest m;
  Status st = wire::DecodeBody(body, &m);
  if (!st.ok()) return ErrorFromStatus(cmd, rid, st);
  if (m.limit < 1 || m.limit > wire::kMaxListLimit) {
    return Error(cmd, rid, WireCode::kBadRequest, "limit out of range");
  }
  std::optional<StripeId> filter;
  if (m.has_stripe_filter) filter = m.stripe_filter;
  std::optional<ShardKey> after;
  if (m.has_cursor) after = ShardKey{m.after_stripe, m.after_index};
  // One extra row tells whether another page follows.
  auto rows = catalog->List(filter, after, m.limit + 1);
  if (!rows.ok()) return ErrorFromStatus(cmd, rid, rows.status());
  wire::ListHoldingsReply r;
  r.more = rows->size() > m.limit;
  if (r.more) rows->resize(m.limit);
  r.entries.reserve(rows->size());
  for (const CatalogEntry& e : *rows) {
    wire::ListEntry le{e.key.stripe, e.key.index, e.size, e.locator_version};
    le.k = e.k;
    le.m = e.m;
    le.corrupt = e.state == ShardState::kCorrupt;
    le.named = e.named_node == info_.id;
    r.entries.push_back(le);
  }
  if (holdings) return Reply{wire::EncodeMessage(rid, r), std::nullopt};
  return Reply{wire::EncodeMessage(rid, static_cast<const wire::ListShardsReply&>(r)),
               std::nullopt};
}

// PROTOCOL.md §4.11: adopt the offered locator if it supersedes ours, then
// answer with our newest and what we hold.
Reply RequestHandler::SyncLocator(Catalog* catalog, uint64_t rid, std::string_view body,
                                  const std::string& peer_key) const {
  wire::SyncLocatorRequest m;
  Status st = wire::DecodeBody(body, &m);
  if (!st.ok()) return ErrorFromStatus(Command::kSyncLocator, rid, st);
  // Only nodes publish locators (repair); a client may only ask.
  if (m.has_locator && !peer_key.empty() && !PeerIsNode(peer_key)) {
    return Error(Command::kSyncLocator, rid, WireCode::kDenied,
                 "only a node of the network may publish a locator");
  }
  if (m.has_locator) {
    bool changed = false;
    st = catalog->AdoptLocator(m.locator, &changed);
    if (!st.ok()) return ErrorFromStatus(Command::kSyncLocator, rid, st);
    if (changed) {
      LOG_DEBUG("stripe {}: adopted locator version {}", m.stripe.Hex(), m.locator.version);
      if (hooks_.locator_adopted) hooks_.locator_adopted(m.stripe);
    }
  }
  auto rows = catalog->StripeRows(m.stripe);
  if (!rows.ok()) return ErrorFromStatus(Command::kSyncLocator, rid, rows.status());
  wire::SyncLocatorReply r;
  for (const ShardRecord& row : *rows) {
    if (!r.has_locator || LocatorNewer(row.locator, r.locator)) {
      r.locator = row.locator;
      r.has_locator = true;
    }
    const uint64_t bit = uint64_t{1} << row.key.index;
    if (row.state == ShardState::kOk) {
      r.held_ok |= bit;
    } else {
      r.held_corrupt |= bit;
    }
  }
  return Reply{wire::EncodeMessage(rid, r), std::nullopt};
}

}  // namespace shardfs
