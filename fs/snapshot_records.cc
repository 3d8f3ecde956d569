// Volume records on the nodes. See snapshot_records.h and SNAPSHOTS.md §2.
#include "fs/snapshot_records.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <condition_variable>
#include <cstring>
#include <mutex>

#include "lib/atomic_file.h"
#include "lib/checksum.h"
#include "lib/coding.h"
#include "lib/curve_keys.h"
#include "lib/log.h"

namespace shardfs::fs {
namespace {

constexpr uint32_t kRecordMagic = 0x43524853;  // "SHRC" little-endian
constexpr uint8_t kRecordVersion = 1;
// Records are small; anything bigger on a node is not one of ours.
constexpr uint64_t kMaxRecordSize = 64 * 1024;
// LIST_SHARDS page size: every record of a volume fits (a handful of heads,
// lease, beats), plus slack for ids of other stripes that follow.
constexpr uint32_t kListLimit = 256;

// Waits for a fan-out of requests; each callback fills its own slot.
struct FanOut {
  std::mutex mu;
  std::condition_variable cv;
  size_t left = 0;
  std::vector<Result<RpcReply>> replies;

  explicit FanOut(size_t n) : left(n) {
    replies.reserve(n);
    for (size_t i = 0; i < n; ++i) replies.emplace_back(Status::Aborted("not sent"));
  }
  RpcCallback Slot(size_t i, const std::shared_ptr<FanOut>& self) {
    return [self, i](Result<RpcReply> r) {
      std::lock_guard<std::mutex> lock(self->mu);
      self->replies[i] = std::move(r);
      if (--self->left == 0) self->cv.notify_all();
    };
  }
  void Wait() {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return left == 0; });
  }
};

std::span<const uint8_t> AsBytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace

Result<VolumeKeys> VolumeKeys::Derive(const Key& master) {
  VolumeKeys k;
  k.master = master;
  ASSIGN_OR_RETURN(k.records, DeriveKey(master, {}, "shardfs records v1"));
  ASSIGN_OR_RETURN(k.snapshots, DeriveKey(master, {}, "shardfs snapshot v1"));
  ASSIGN_OR_RETURN(Key prefix, DeriveKey(master, {}, "shardfs record prefix v1"));
  std::memcpy(k.prefix, prefix.data(), sizeof(k.prefix));
  // The owner keypair: a Curve25519 secret from the key, its public half
  // from libzmq, both Z85 as in client identity files.
  ASSIGN_OR_RETURN(Key secret, DeriveKey(master, {}, "shardfs volume owner v1"));
  char sec[41] = {}, pub[41] = {};
  if (zmq_z85_encode(sec, secret.data(), secret.size()) == nullptr ||
      zmq_curve_public(pub, sec) != 0) {
    return Status::Unavailable("deriving the volume owner key: " +
                               std::string(zmq_strerror(zmq_errno())) +
                               " (libzmq built without CURVE?)");
  }
  k.owner.public_key = pub;
  k.owner.secret_key = sec;
  // Record PUTs and DELETEs name this owner, and a node accepts them only
  // from a socket authenticated as it (SECURITY.md §3): the transport finds
  // the keypair here whatever identity its default sockets use.
  RegisterCurveIdentity(CurveKeypair{k.owner.public_key, k.owner.secret_key});
  return k;
}

Result<StripeId> VolumeKeys::Id(char kind, uint64_t number) const {
  std::string salt;
  PutU8(&salt, static_cast<uint8_t>(kind));
  PutU64(&salt, number);
  ASSIGN_OR_RETURN(Key h, DeriveKey(master, AsBytes(salt), "shardfs record id v1"));
  StripeId id;
  std::memcpy(id.bytes.data(), prefix, 8);
  id.bytes[8] = static_cast<uint8_t>(kind);
  std::memcpy(id.bytes.data() + 9, h.data(), 7);
  return id;
}

bool VolumeKeys::HasPrefix(const StripeId& id) const {
  return std::memcmp(id.bytes.data(), prefix, 8) == 0;
}

Status WriteOwnerIdentity(const VolumeKeys& keys, const std::string& path) {
  const std::string text =
      "shardfs-identity-v1 " + keys.owner.public_key + " " + keys.owner.secret_key + "\n";
  auto existing = LoadClientIdentity(path);
  if (existing.ok() && existing->public_key == keys.owner.public_key) return Status::OK();
  return WriteFileAtomic(path, text, 0600);
}

RecordStore::RecordStore(const VolumeKeys& keys, std::vector<std::string> endpoints,
                         std::unique_ptr<RpcClient> rpc, std::chrono::milliseconds timeout)
    : keys_(keys), endpoints_(std::move(endpoints)), timeout_(timeout), rpc_(std::move(rpc)) {
  nodes_ = std::make_unique<NodeTable>(rpc_.get(), endpoints_,
                                       std::min(timeout_, std::chrono::milliseconds(2000)));
}

RecordStore::~RecordStore() { rpc_->Shutdown(); }

Result<std::unique_ptr<RecordStore>> RecordStore::Connect(const VolumeKeys& keys,
                                                          std::vector<std::string> endpoints,
                                                          std::chrono::milliseconds timeout) {
  if (endpoints.empty()) return Status::InvalidArgument("no node endpoints");
  ASSIGN_OR_RETURN(auto rpc, RpcClient::Create());
  std::unique_ptr<RecordStore> s(
      new RecordStore(keys, std::move(endpoints), std::move(rpc), timeout));
  if (s->Refresh() == 0) {
    std::string msg = "none of the nodes answered (";
    for (size_t i = 0; i < s->endpoints_.size(); ++i) msg += (i ? ", " : "") + s->endpoints_[i];
    return Status::Unavailable(msg + ")");
  }
  return s;
}

size_t RecordStore::Refresh() { return nodes_->Refresh(); }

std::vector<NodeInfo> RecordStore::Nodes() const { return nodes_->Snapshot(); }

RecordStore::Listing RecordStore::List() {
  Listing out;
  std::vector<NodeInfo> up;
  for (const NodeInfo& n : nodes_->Snapshot()) {
    if (n.up && n.id != 0) up.push_back(n);
  }
  out.nodes_asked = nodes_->Snapshot().size();
  // The cursor sits just before the prefix: (prefix ‖ 0…0, index 0) is
  // excluded, which only a 2^-64 id could be.
  wire::ListShardsRequest req;
  req.has_cursor = true;
  std::memcpy(req.after_stripe.bytes.data(), keys_.prefix, 8);
  req.after_index = 0;
  req.limit = kListLimit;
  auto fan = std::make_shared<FanOut>(up.size());
  const auto deadline = Clock::now() + timeout_;
  for (size_t i = 0; i < up.size(); ++i) {
    rpc_->Send(up[i].endpoint, req, Payload{}, deadline, fan->Slot(i, fan));
  }
  fan->Wait();
  for (size_t i = 0; i < up.size(); ++i) {
    wire::ListShardsReply reply;
    Status st = fan->replies[i].ok() ? ParseReply(*fan->replies[i], &reply)
                                     : fan->replies[i].status();
    if (!st.ok()) {
      out.errors.push_back(up[i].endpoint + ": " + st.ToString());
      continue;
    }
    ++out.nodes_answered;
    for (const wire::ListEntry& e : reply.entries) {
      if (!keys_.HasPrefix(e.stripe)) break;  // past our records (ordered list)
      if (e.index != 0 || e.size > kMaxRecordSize) continue;
      out.holders[e.stripe].push_back(up[i]);
    }
    // A full page still inside the prefix would mean hundreds of records:
    // more than this volume ever keeps. Say so rather than page on.
    if (reply.more && !reply.entries.empty() && keys_.HasPrefix(reply.entries.back().stripe)) {
      LOG_WARN("{}: more than {} volume records listed; some were not read", up[i].endpoint,
               kListLimit);
    }
  }
  return out;
}

Result<std::vector<wire::ListEntry>> RecordStore::ListNode(const NodeInfo& node) {
  std::vector<wire::ListEntry> out;
  wire::ListShardsRequest req;
  req.limit = wire::kMaxListLimit;
  for (;;) {
    auto r = rpc_->Call(node.endpoint, req, Clock::now() + timeout_);
    wire::ListShardsReply reply;
    Status st = r.ok() ? ParseReply(*r, &reply) : r.status();
    if (!st.ok()) return st.With("listing the shards of " + node.endpoint);
    out.insert(out.end(), reply.entries.begin(), reply.entries.end());
    if (!reply.more || reply.entries.empty()) return out;
    req.has_cursor = true;
    req.after_stripe = reply.entries.back().stripe;
    req.after_index = reply.entries.back().index;
  }
}

Result<wire::StatShardReply> RecordStore::StatShard(const NodeInfo& node, const StripeId& stripe,
                                                    ShardIndex index) {
  wire::StatShardRequest req;
  req.stripe = stripe;
  req.index = index;
  auto r = rpc_->Call(node.endpoint, req, Clock::now() + timeout_);
  wire::StatShardReply reply;
  Status st = r.ok() ? ParseReply(*r, &reply) : r.status();
  if (!st.ok()) return st;
  return reply;
}

Status RecordStore::DeleteShard(const NodeInfo& node, const StripeId& stripe, ShardIndex index,
                                const std::string& owner) {
  wire::DeleteShardRequest req;
  req.stripe = stripe;
  req.index = index;
  req.owner = owner;
  auto r = rpc_->Call(node.endpoint, req, Clock::now() + timeout_);
  wire::DeleteShardReply reply;
  Status st = r.ok() ? ParseReply(*r, &reply) : r.status();
  return st.IsNotFound() ? Status::OK() : st;
}

Result<Record> RecordStore::Read(const StripeId& id, const std::vector<NodeInfo>& holders) {
  Status last = Status::NotFound("record " + id.Hex() + ": no holder");
  for (const NodeInfo& h : holders) {
    wire::GetShardRequest req;
    req.stripe = id;
    req.index = 0;
    auto r = rpc_->Call(h.endpoint, req, Clock::now() + timeout_);
    wire::GetShardReply reply;
    Status st = r.ok() ? ParseReply(*r, &reply) : r.status();
    if (st.ok() && !r->has_payload) st = Status::Corruption("GET reply without payload");
    if (st.ok() && Crc32c(r->payload_bytes()) != reply.crc32c) {
      st = Status::Corruption("record crc mismatch");
    }
    std::vector<uint8_t> plain;
    if (st.ok()) st = OpenSegment(keys_.records, id, r->payload_bytes(), &plain);
    if (!st.ok()) {
      last = st.With("record " + id.Hex() + " on " + h.endpoint);
      continue;
    }
    Reader in(plain.data(), plain.size());
    uint32_t magic = 0;
    uint8_t version = 0, kind = 0;
    Record rec;
    if (!in.GetU32(&magic) || magic != kRecordMagic || !in.GetU8(&version) ||
        version != kRecordVersion || !in.GetU8(&kind) || !in.GetU64(&rec.number)) {
      last = Status::Corruption("record " + id.Hex() + " on " + h.endpoint + ": bad header");
      continue;
    }
    rec.kind = static_cast<char>(kind);
    // The id must be the one this kind and number derive to: a record
    // sealed for one id and stored under another has already failed the
    // AAD check; this catches a body that names another slot.
    auto expect = keys_.Id(rec.kind, rec.number);
    if (!expect.ok() || !(*expect == id)) {
      last = Status::Corruption("record " + id.Hex() + ": kind/number do not match its id");
      continue;
    }
    rec.body.assign(reinterpret_cast<const char*>(in.data()), in.remaining());
    return rec;
  }
  return last;
}

Result<RecordStore::PutOutcome> RecordStore::Put(char kind, uint64_t number,
                                                 const std::string& body) {
  ASSIGN_OR_RETURN(StripeId id, keys_.Id(kind, number));
  std::string plain;
  PutU32(&plain, kRecordMagic);
  PutU8(&plain, kRecordVersion);
  PutU8(&plain, static_cast<uint8_t>(kind));
  PutU64(&plain, number);
  plain += body;
  auto sealed = std::make_shared<std::vector<uint8_t>>();
  RETURN_IF_ERROR(SealSegment(keys_.records, id, AsBytes(plain), sealed.get()));
  const uint32_t crc = Crc32c(*sealed);
  const Sha256Digest sha = Sha256(*sealed);

  std::vector<NodeInfo> up;
  for (const NodeInfo& n : nodes_->Snapshot()) {
    if (n.up && n.id != 0) up.push_back(n);
  }
  PutOutcome out;
  out.asked = static_cast<int>(up.size());
  auto fan = std::make_shared<FanOut>(up.size());
  const auto deadline = Clock::now() + timeout_;
  for (size_t i = 0; i < up.size(); ++i) {
    wire::PutShardRequest req;
    req.stripe = id;
    req.index = 0;
    req.crc32c = crc;
    req.owner = keys_.owner.public_key;
    req.locator.stripe = id;
    req.locator.k = 1;
    req.locator.m = 0;
    req.locator.shard_size = static_cast<uint32_t>(sealed->size());
    req.locator.sealed_size = static_cast<uint32_t>(sealed->size());
    req.locator.shards.push_back(ShardLocation{up[i].id, crc, sha});
    Payload payload{sealed, sealed->data(), sealed->size()};
    rpc_->Send(up[i].endpoint, req, payload, deadline, fan->Slot(i, fan));
  }
  fan->Wait();
  for (size_t i = 0; i < up.size(); ++i) {
    wire::PutShardReply reply;
    Status st = fan->replies[i].ok() ? ParseReply(*fan->replies[i], &reply)
                                     : fan->replies[i].status();
    if (st.ok()) {
      ++out.stored;
    } else if (st.code() == Code::kExists) {
      ++out.exists;
    } else {
      ++out.failed;
      if (out.first_error.empty()) out.first_error = up[i].endpoint + ": " + st.ToString();
    }
  }
  return out;
}

Status RecordStore::Delete(const StripeId& id, const std::vector<NodeInfo>& all) {
  // A node that is down would only make us wait for its timeout.
  std::vector<NodeInfo> holders;
  for (const NodeInfo& n : all) {
    if (n.up) holders.push_back(n);
  }
  auto fan = std::make_shared<FanOut>(holders.size());
  const auto deadline = Clock::now() + timeout_;
  for (size_t i = 0; i < holders.size(); ++i) {
    wire::DeleteShardRequest req;
    req.stripe = id;
    req.index = 0;
    req.owner = keys_.owner.public_key;
    rpc_->Send(holders[i].endpoint, req, Payload{}, deadline, fan->Slot(i, fan));
  }
  fan->Wait();
  Status first;
  for (size_t i = 0; i < holders.size(); ++i) {
    wire::DeleteShardReply reply;
    Status st = fan->replies[i].ok() ? ParseReply(*fan->replies[i], &reply)
                                     : fan->replies[i].status();
    if (!st.ok() && !st.IsNotFound() && first.ok()) {
      first = st.With("deleting record " + id.Hex() + " on " + holders[i].endpoint);
    }
  }
  return first;
}

}  // namespace shardfs::fs
