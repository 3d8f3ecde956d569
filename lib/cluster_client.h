// ClusterClient: the client side of the data path, the one thing fs/ and
// tools/ use to store and fetch segments. It owns the transport (one I/O
// thread, one DEALER per node), the node table and the codec.
//
// Write: seal (crypto.h) -> encode (erasure.h) -> CRC32C + SHA-256 per shard
// -> placement -> n PUT_SHARD in parallel; a failed or timed-out node is
// replaced by the next placement choice. Succeeds only when all n shards are
// acknowledged. Read: the k data shards first, parity on error, timeout or
// CRC mismatch; decode; open (GCM authenticates). ARCHITECTURE.md "Data path".
//
// Thread-safety: every method may be called from any number of threads at
// once. Callbacks run on the transport's I/O thread: they must not block.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "lib/client_config.h"
#include "lib/crypto.h"
#include "lib/locator.h"
#include "lib/status.h"

namespace shardfs {

struct NodeInfo {
  NodeId id = 0;
  std::string endpoint;
  std::string zone;
  uint64_t capacity_bytes = 0;
  uint64_t used_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t shard_count = 0;
  bool up = false;  // answered the last PING
};

class ClusterClient {
 public:
  using WriteDone = std::function<void(Result<Locator>)>;

  // Loads the identity, pings every configured node (at least k + m must
  // answer for writes to work; Connect itself needs one). Unavailable if no
  // node answers.
  static Result<std::unique_ptr<ClusterClient>> Connect(const ClientConfig& cfg,
                                                        const Key& master);
  virtual ~ClusterClient() = default;

  // Seals and encodes on the calling thread, then sends; `done` runs once,
  // when all n shards are acknowledged or the write has failed. Blocks only
  // while more than `max_in_flight` segments are outstanding (backpressure).
  // REQUIRES: 0 < plaintext.size() <= segment_size.
  virtual void WriteSegmentAsync(std::vector<uint8_t> plaintext, WriteDone done) = 0;
  virtual Result<Locator> WriteSegment(std::span<const uint8_t> plaintext) = 0;

  // Byte-exact plaintext or an error: AuthFailed (wrong key / tampered),
  // Unavailable (fewer than k shards could be fetched intact).
  virtual Result<std::vector<uint8_t>> ReadSegment(const Locator& loc) = 0;

  // Deletes every shard of the stripe. OK when each shard is gone (NotFound
  // counts as gone); otherwise the first error, after trying all.
  virtual Status DeleteSegment(const Locator& loc) = 0;

  // Pings every known node now.
  virtual std::vector<NodeInfo> Nodes() = 0;

  virtual const ClientConfig& config() const = 0;
};

}  // namespace shardfs
