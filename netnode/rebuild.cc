// Fetch, verify, reconstruct. See rebuild.h.
#include "netnode/rebuild.h"

#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>

#include "lib/checksum.h"
#include "lib/erasure.h"
#include "lib/log.h"

namespace shardfs {
namespace {

// Replies handed from the transport's I/O thread to the rebuilding thread.
struct Arrivals {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::pair<size_t, Result<RpcReply>>> queue;  // (source position, reply)
};

}  // namespace

Result<ShardBuffers> RebuildShards(const Locator& loc, const std::vector<RebuildSource>& sources,
                                   const std::vector<int>& wanted, const RebuildContext& ctx) {
  const int k = loc.k, n = loc.n();
  const size_t ss = loc.shard_size;
  const std::string what = "stripe " + loc.stripe.Hex();
  if (k < 1 || static_cast<int>(loc.shards.size()) != n) {
    return Status::InvalidArgument(what + ": malformed locator");
  }
  ASSIGN_OR_RETURN(auto codec, Codec::Create(k, loc.m));
  std::vector<uint8_t> buffer(static_cast<size_t>(n) * ss);
  std::vector<bool> present(n, false);
  int good = 0;
  std::vector<std::string> errors;

  auto accept = [&](int index, const uint8_t* data, size_t size, const std::string& from) {
    if (size != ss) {
      errors.push_back(from + ": shard " + std::to_string(index) + " has " + std::to_string(size) +
                       " bytes");
      return;
    }
    // Never trust a peer (or our own disk) with a rebuild: the owner's hash.
    if (Sha256({data, size}) != loc.shards[index].sha256) {
      LOG_WARN("{}: shard {} from {} does not match its recorded SHA-256: not used", what, index,
               from);
      errors.push_back(from + ": shard " + std::to_string(index) + " fails its SHA-256");
      return;
    }
    std::memcpy(buffer.data() + static_cast<size_t>(index) * ss, data, ss);
    present[index] = true;
    ++good;
  };

  auto arrivals = std::make_shared<Arrivals>();
  size_t next = 0;
  int outstanding = 0;
  while (good < k) {
    // Keep enough requests out to reach k if they all succeed.
    while (good + outstanding < k && next < sources.size()) {
      const size_t pos = next++;
      const RebuildSource& src = sources[pos];
      if (src.index < 0 || src.index >= n || present[src.index]) continue;
      if (src.local) {
        auto bytes = ctx.store->Get(ctx.catalog,
                                    ShardKey{loc.stripe, static_cast<ShardIndex>(src.index)}, 0, 0);
        if (!bytes.ok()) {
          errors.push_back("local shard " + std::to_string(src.index) + ": " +
                           bytes.status().ToString());
          continue;
        }
        accept(src.index, bytes->data(), bytes->length, "this node");
        continue;
      }
      if (ctx.limiter && !ctx.limiter->Acquire(ss)) return Status::Aborted("node is stopping");
      wire::GetShardRequest req;
      req.stripe = loc.stripe;
      req.index = static_cast<ShardIndex>(src.index);
      ++outstanding;
      ctx.rpc->Send(src.endpoint, req, Payload{}, Clock::now() + ctx.timeout,
                    [arrivals, pos](Result<RpcReply> r) {
                      std::lock_guard<std::mutex> lock(arrivals->mu);
                      arrivals->queue.emplace_back(pos, std::move(r));
                      arrivals->cv.notify_one();
                    });
    }
    if (good >= k) break;
    if (outstanding == 0) break;  // nothing left to ask
    std::unique_lock<std::mutex> lock(arrivals->mu);
    // Bounded: every request's callback runs by its deadline.
    arrivals->cv.wait(lock, [&] { return !arrivals->queue.empty(); });
    auto [pos, r] = std::move(arrivals->queue.front());
    arrivals->queue.pop_front();
    lock.unlock();
    --outstanding;
    const RebuildSource& src = sources[pos];
    wire::GetShardReply reply;
    Status st = r.ok() ? ParseReply(*r, &reply) : r.status();
    if (st.ok() && !r->has_payload) st = Status::Corruption("no payload frame");
    if (!st.ok()) {
      errors.push_back(src.endpoint + ": shard " + std::to_string(src.index) + ": " +
                       st.ToString());
      continue;
    }
    if (ctx.bytes_fetched) *ctx.bytes_fetched += r->payload.size();
    if (!present[src.index]) {
      accept(src.index, static_cast<const uint8_t*>(r->payload.data()), r->payload.size(),
             src.endpoint);
    }
  }
  // Late replies go to `arrivals`, which the callbacks keep alive.
  if (good < k) {
    std::string msg = what + ": only " + std::to_string(good) + " of the " + std::to_string(k) +
                      " verified shards needed";
    for (const std::string& e : errors) msg += "; " + e;
    return Status::Unavailable(msg);
  }

  std::vector<uint8_t*> ptrs(n);
  for (int i = 0; i < n; ++i) ptrs[i] = buffer.data() + static_cast<size_t>(i) * ss;
  std::unique_ptr<bool[]> present_arr(new bool[n]);
  for (int i = 0; i < n; ++i) present_arr[i] = present[i];
  RETURN_IF_ERROR(codec->Reconstruct(ss, ptrs, std::span<const bool>(present_arr.get(), n)));

  ShardBuffers out;
  for (int i : wanted) {
    if (i < 0 || i >= n) return Status::InvalidArgument(what + ": no shard " + std::to_string(i));
    auto shard = std::make_shared<std::vector<uint8_t>>(ptrs[i], ptrs[i] + ss);
    if (Sha256(*shard) != loc.shards[i].sha256) {
      return Status::Corruption(what + ": rebuilt shard " + std::to_string(i) +
                                " does not match its recorded SHA-256");
    }
    out.emplace(i, std::move(shard));
  }
  return out;
}

}  // namespace shardfs
