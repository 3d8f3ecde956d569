// ZAP policy and handler thread. See curve_zap.h; ZAP frames per ZeroMQ
// RFC 27 (version, request id, domain, address, identity, mechanism,
// credentials...; reply: version, request id, status code, status text,
// user id, metadata).
#include "lib/curve_zap.h"

#include <zmq.h>

#include <chrono>

#include "lib/log.h"

namespace shardfs {
namespace {

constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";

}  // namespace

Result<ZapRequest> ParseZapRequest(const std::vector<std::string>& frames) {
  if (frames.size() < 6) return Status::InvalidArgument("ZAP request with too few frames");
  ZapRequest r;
  r.version = frames[0];
  r.request_id = frames[1];
  r.domain = frames[2];
  r.address = frames[3];
  r.identity = frames[4];
  r.mechanism = frames[5];
  r.credentials.assign(frames.begin() + 6, frames.end());
  return r;
}

ZapDecision DecideZap(const ZapRequest& req, const ZapPolicy& policy) {
  if (req.version != "1.0") return {"500", "unsupported ZAP version", ""};
  if (req.mechanism != "CURVE") {
    return {"400", "mechanism " + req.mechanism + " refused: shardfs requires CURVE", ""};
  }
  if (req.domain != policy.domain) return {"400", "not this network's domain", ""};
  if (req.credentials.size() != 1 || req.credentials[0].size() != 32) {
    return {"400", "malformed CURVE credentials", ""};
  }
  char z85[41] = {};
  zmq_z85_encode(z85, reinterpret_cast<const uint8_t*>(req.credentials[0].data()), 32);
  std::string key = z85;
  if (policy.denied_keys.count(key)) return {"400", "key is denied on this node", ""};
  return {"200", "OK", key};
}

ZapHandler::ZapHandler(zmq::context_t& ctx, ZapPolicy policy)
    : ctx_(ctx), policy_(std::move(policy)) {}

ZapHandler::~ZapHandler() { Stop(); }

Status ZapHandler::Start() {
  try {
    socket_ = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::rep);
    socket_->set(zmq::sockopt::linger, 0);
    socket_->bind(kZapEndpoint);
  } catch (const zmq::error_t& e) {
    socket_.reset();
    return Status::Unavailable(std::string("ZAP handler: bind ") + kZapEndpoint + ": " + e.what());
  }
  thread_ = std::thread([this] { Loop(); });
  return Status::OK();
}

void ZapHandler::Stop() {
  if (!thread_.joinable()) return;
  stop_ = true;
  thread_.join();
  socket_.reset();
}

void ZapHandler::Loop() {
  zmq::socket_t& s = *socket_;
  while (!stop_) {
    try {
      zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(100));
      if (!(item.revents & ZMQ_POLLIN)) continue;
      std::vector<std::string> frames;
      bool more = true;
      while (more && frames.size() < 16) {
        zmq::message_t m;
        (void)s.recv(m);
        frames.emplace_back(static_cast<const char*>(m.data()), m.size());
        more = m.more();
      }
      while (more) {  // drain anything beyond what a ZAP request holds
        zmq::message_t m;
        (void)s.recv(m);
        more = m.more();
      }
      auto req = ParseZapRequest(frames);
      ZapDecision d = req.ok() ? DecideZap(*req, policy_)
                               : ZapDecision{"500", req.status().message(), ""};
      if (d.status_code == "200") {
        admitted_.fetch_add(1);
        LOG_DEBUG("ZAP: admitted {} from {}", d.user_id, req->address);
      } else {
        refused_.fetch_add(1);
        LOG_WARN("ZAP: refused a {} handshake from {}: {}", req.ok() ? req->mechanism : "?",
                 req.ok() ? req->address : "?", d.status_text);
      }
      const std::string version = "1.0";
      const std::string rid = req.ok() ? req->request_id : (frames.size() > 1 ? frames[1] : "");
      s.send(zmq::buffer(version), zmq::send_flags::sndmore);
      s.send(zmq::buffer(rid), zmq::send_flags::sndmore);
      s.send(zmq::buffer(d.status_code), zmq::send_flags::sndmore);
      s.send(zmq::buffer(d.status_text), zmq::send_flags::sndmore);
      s.send(zmq::buffer(d.user_id), zmq::send_flags::sndmore);
      s.send(zmq::message_t(), zmq::send_flags::none);  // no metadata
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) return;
      if (e.num() != EINTR) LOG_ERROR("ZAP handler: {}", e.what());
    }
  }
}

}  // namespace shardfs
