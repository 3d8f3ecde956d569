// FakeNode: an in-process stand-in for shardfs-node, for client tests.
//
// A ROUTER socket on tcp://127.0.0.1:* and one thread that answers every
// request of PROTOCOL.md from an in-memory map, with switches to misbehave:
// silent (a SIGSTOPped node), no space, flipped bytes or forged bytes on
// GET. It checks the CRC of PUT payloads and the owner of DELETEs like the
// real node. Nothing here is durable or fast; it is a protocol peer.
//
// Thread-safety: the setters and accessors may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "lib/checksum.h"
#include "lib/wire_messages.h"

namespace shardfs::testing {

class FakeNode {
 public:
  FakeNode(NodeId id, std::string zone, uint64_t capacity = 1ull << 34)
      : id_(id),
        zone_(std::move(zone)),
        capacity_(capacity),
        socket_(ctx_, zmq::socket_type::router) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.set(zmq::sockopt::sndhwm, 0);
    socket_.bind("tcp://127.0.0.1:*");
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
    thread_ = std::thread([this] { Run(); });
  }
  ~FakeNode() {
    stop_ = true;
    thread_.join();
  }
  FakeNode(const FakeNode&) = delete;
  FakeNode& operator=(const FakeNode&) = delete;

  const std::string& endpoint() const { return endpoint_; }
  NodeId id() const { return id_; }

  std::atomic<bool> silent{false};       // drop every request (SIGSTOP)
  std::atomic<bool> no_space{false};     // PUT answers NO_SPACE
  std::atomic<bool> flip_on_get{false};  // GET payloads get one byte flipped
  std::atomic<int> puts{0}, gets{0};

  // GET of `index` returns `bytes` instead of what was stored.
  void Forge(int index, std::vector<uint8_t> bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    forged_[index] = std::move(bytes);
  }
  size_t shard_count() const {
    std::lock_guard<std::mutex> lock(mu_);
    return shards_.size();
  }
  bool Has(const StripeId& s, int index) const {
    std::lock_guard<std::mutex> lock(mu_);
    return shards_.count({s, index}) > 0;
  }
  std::string OwnerOf(const StripeId& s, int index) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = shards_.find({s, index});
    return it == shards_.end() ? "" : it->second.owner;
  }

 private:
  struct Shard {
    std::vector<uint8_t> bytes;
    std::string owner;
    Locator locator;
  };
  using Key = std::pair<StripeId, int>;

  void Run() {
    while (!stop_) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(10));
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
        if (silent || parts.size() < 2) continue;
        Handle(parts);
      }
    }
  }

  void Reply(zmq::message_t& identity, const std::string& head, const uint8_t* payload = nullptr,
             size_t n = 0) {
    zmq::message_t id(identity.data(), identity.size());
    (void)socket_.send(id, zmq::send_flags::sndmore);
    zmq::message_t h(head.data(), head.size());
    (void)socket_.send(h, payload ? zmq::send_flags::sndmore : zmq::send_flags::none);
    if (payload) {
      zmq::message_t p(payload, n);
      (void)socket_.send(p, zmq::send_flags::none);
    }
  }

  void Handle(std::vector<zmq::message_t>& parts) {
    auto frame = wire::DecodeFrame(
        std::span<const uint8_t>(static_cast<const uint8_t*>(parts[1].data()), parts[1].size()));
    if (!frame.ok()) return;
    const uint64_t rid = frame->header.request_id;
    const wire::Command cmd = frame->header.command;
    auto error = [&](wire::WireCode code, const std::string& msg) {
      Reply(parts[0], wire::EncodeError(cmd, rid, code, msg));
    };
    std::lock_guard<std::mutex> lock(mu_);
    switch (cmd) {
      case wire::Command::kPing: {
        wire::PingReply r;
        r.node_id = id_;
        r.zone = zone_;
        r.capacity_bytes = capacity_;
        r.used_bytes = used_;
        r.free_bytes = capacity_ - used_;
        r.shard_count = shards_.size();
        r.endpoint = endpoint_;
        Reply(parts[0], wire::EncodeMessage(rid, r));
        return;
      }
      case wire::Command::kPutShard: {
        ++puts;
        wire::PutShardRequest req;
        if (!wire::DecodeBody(frame->body, &req).ok() || parts.size() < 3) {
          return error(wire::WireCode::kBadRequest, "bad put");
        }
        if (no_space) return error(wire::WireCode::kNoSpace, "over quota");
        const uint8_t* p = static_cast<const uint8_t*>(parts[2].data());
        if (Crc32c(p, parts[2].size()) != req.crc32c) {
          return error(wire::WireCode::kChecksumMismatch, "crc");
        }
        Shard s{std::vector<uint8_t>(p, p + parts[2].size()), req.owner, req.locator};
        used_ += s.bytes.size();
        shards_[{req.stripe, req.index}] = std::move(s);
        Reply(parts[0], wire::EncodeMessage(rid, wire::PutShardReply{}));
        return;
      }
      case wire::Command::kGetShard: {
        ++gets;
        wire::GetShardRequest req;
        if (!wire::DecodeBody(frame->body, &req).ok())
          return error(wire::WireCode::kBadRequest, "");
        auto it = shards_.find({req.stripe, req.index});
        if (it == shards_.end()) return error(wire::WireCode::kNotFound, "no such shard");
        std::vector<uint8_t> bytes = it->second.bytes;
        auto f = forged_.find(req.index);
        if (f != forged_.end()) bytes = f->second;
        if (flip_on_get && !bytes.empty()) bytes[bytes.size() / 2] ^= 0x40;
        wire::GetShardReply r;
        r.shard_size = bytes.size();
        r.crc32c = Crc32c(bytes.data(), bytes.size());
        Reply(parts[0], wire::EncodeMessage(rid, r), bytes.data(), bytes.size());
        return;
      }
      case wire::Command::kDeleteShard: {
        wire::DeleteShardRequest req;
        if (!wire::DecodeBody(frame->body, &req).ok())
          return error(wire::WireCode::kBadRequest, "");
        auto it = shards_.find({req.stripe, req.index});
        if (it == shards_.end()) return error(wire::WireCode::kNotFound, "no such shard");
        if (it->second.owner != req.owner) return error(wire::WireCode::kDenied, "not the owner");
        used_ -= it->second.bytes.size();
        shards_.erase(it);
        Reply(parts[0], wire::EncodeMessage(rid, wire::DeleteShardReply{}));
        return;
      }
      case wire::Command::kStatShard: {
        wire::StatShardRequest req;
        if (!wire::DecodeBody(frame->body, &req).ok())
          return error(wire::WireCode::kBadRequest, "");
        auto it = shards_.find({req.stripe, req.index});
        if (it == shards_.end()) return error(wire::WireCode::kNotFound, "no such shard");
        wire::StatShardReply r;
        r.size = it->second.bytes.size();
        r.crc32c = Crc32c(it->second.bytes.data(), it->second.bytes.size());
        r.owner = it->second.owner;
        r.locator = it->second.locator;
        Reply(parts[0], wire::EncodeMessage(rid, r));
        return;
      }
      case wire::Command::kListShards: {
        wire::ListShardsRequest req;
        if (!wire::DecodeBody(frame->body, &req).ok())
          return error(wire::WireCode::kBadRequest, "");
        wire::ListShardsReply r;
        for (auto& [key, shard] : shards_) {
          if (req.has_stripe_filter && key.first != req.stripe_filter) continue;
          r.entries.push_back({key.first, static_cast<ShardIndex>(key.second), shard.bytes.size(),
                               shard.locator.version});
        }
        Reply(parts[0], wire::EncodeMessage(rid, r));
        return;
      }
      default:  // membership and status commands: a fake node has none
        break;
    }
    error(wire::WireCode::kUnknownCommand, "unknown");
  }

  const NodeId id_;
  const std::string zone_;
  const uint64_t capacity_;
  zmq::context_t ctx_;
  zmq::socket_t socket_;  // the server thread's after construction
  std::string endpoint_;
  std::atomic<bool> stop_{false};
  std::thread thread_;

  mutable std::mutex mu_;
  std::map<Key, Shard> shards_;  // guarded by mu_
  std::map<int, std::vector<uint8_t>> forged_;
  uint64_t used_ = 0;
};

}  // namespace shardfs::testing
