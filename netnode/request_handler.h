// RequestHandler: one request in, one reply out (PROTOCOL.md §4), with no
// sockets: the server hands it frames and sends what comes back, so every
// path here is testable with plain buffers.
//
// Two entry points, for the two threads that call them:
//   Triage()  on the I/O thread: decodes the header frame, answers PING and
//             anything malformed at once (never touches the disk);
//   Execute() on a worker thread: everything else, through the ShardStore.
// Input is untrusted: any frame that cannot be decoded gets an error reply
// when its header names a command and request id, and is dropped otherwise.
//
// Thread-safety: thread-safe (holds only immutable state and the store).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <zmq.hpp>

#include "lib/ids.h"
#include "lib/wire_messages.h"
#include "netnode/catalog.h"
#include "netnode/shard_store.h"

namespace shardfs {

// What PING reports besides the store's usage. (Not lib's NodeInfo, which
// is a client's view of a node.)
struct NodeSelf {
  NodeId id = 0;
  std::string zone;
  std::string public_key;  // Z85
  std::string endpoint;    // advertised
};

// The parts of the node the handler reaches beyond the store; each may be
// empty (tests, a node without membership).
struct NodeHooks {
  // PEERS (PROTOCOL.md §4.10), on the I/O thread: must not block.
  std::function<wire::PeersReply(const wire::PeersRequest&)> peers;
  // NODE_STATS (PROTOCOL.md §4.12), on the I/O thread: must not block.
  std::function<wire::NodeStats()> stats;
  // A SYNC_LOCATOR or PUT made this node adopt a newer locator for a stripe
  // (worker thread): the repairer may want to look at it.
  std::function<void(const StripeId&)> locator_adopted;
  // Whether `id` is a node this node knows (membership), on any thread:
  // only nodes may store a shard under another key (repair, hand-off) or
  // publish locators (SECURITY.md §3).
  std::function<bool(NodeId)> is_node;
};

// The frames of one request after the ROUTER identity.
struct Request {
  zmq::message_t header;
  std::optional<zmq::message_t> payload;
  size_t extra_frames = 0;  // frames beyond header + payload: always an error
  // The sender's CURVE public key (Z85) as the ZAP handler admitted it; ""
  // on a plain socket (unit tests), where ownership is not enforced
  // against the sender.
  std::string peer_key;
};

// The frames of one reply, to go after the identity.
struct Reply {
  std::string header;
  std::optional<zmq::message_t> payload;  // GET_SHARD only
};

// Command and request id read straight from a header frame's fixed part,
// without validating the rest: enough to address an error reply.
struct PeekedHeader {
  wire::Command command;
  uint64_t request_id;
};
std::optional<PeekedHeader> PeekHeader(const void* data, size_t size);

class RequestHandler {
 public:
  // REQUIRES: `store` outlives the handler.
  RequestHandler(ShardStore* store, NodeSelf info, NodeHooks hooks = {});

  enum class Route {
    kDrop,      // undecodable and unaddressable, or a reply sent to us
    kReplyNow,  // *reply is filled in
    kWorker,    // hand to Execute() on a worker
  };
  Route Triage(const Request& req, Reply* reply) const;

  using ReplyFn = std::function<void(Reply)>;
  // REQUIRES: Triage(req) returned kWorker. `done` is called exactly once,
  // on this thread or (for PUT_SHARD) on the store's committer thread.
  void Execute(Catalog* catalog, Request req, ReplyFn done) const;

  // An error reply addressed from `header`'s command and request id, or
  // nullopt when the header cannot be peeked.
  static std::optional<Reply> ErrorReply(const zmq::message_t& header, wire::WireCode code,
                                         std::string_view message);

  const NodeSelf& info() const { return info_; }

 private:
  Reply Ping(uint64_t request_id) const;
  void Put(Catalog* catalog, uint64_t rid, std::string_view body, Request& req,
           const ReplyFn& done) const;
  Reply Get(Catalog* catalog, uint64_t rid, std::string_view body) const;
  Reply Delete(Catalog* catalog, uint64_t rid, std::string_view body,
               const std::string& peer_key) const;
  bool PeerIsNode(const std::string& peer_key) const;
  Reply Stat(Catalog* catalog, uint64_t rid, std::string_view body) const;
  Reply List(Catalog* catalog, uint64_t rid, std::string_view body, bool holdings) const;
  Reply SyncLocator(Catalog* catalog, uint64_t rid, std::string_view body,
                    const std::string& peer_key) const;

  ShardStore* const store_;
  const NodeSelf info_;
  const NodeHooks hooks_;
};

}  // namespace shardfs
