// Volume records: small, sealed, replicated blobs that a volume keeps on
// the nodes under ids derived from the master key, so that they can be found
// again from the key alone (fs/SNAPSHOTS.md §2). Snapshot heads and the
// network lease are built on them; nodes need no new operation.
//
//   id(kind, n) = prefix(8) ‖ kind(1) ‖ HKDF(master, salt = kind ‖ u64 n,
//                                           "shardfs record id v1")[:7]
//   prefix      = HKDF(master, "shardfs record prefix v1")[:8]
//
// Every record of a volume shares the prefix, so one LIST_SHARDS page per
// node, with its cursor just before the prefix, returns all of them (node
// shard lists are ordered by stripe id). The rest of the id hides the
// number. A record is stored as shard 0 of a one-shard stripe (locator k = 1,
// m = 0 naming the holder) on every node that answers, sealed with
// SealSegment under a records key derived from the master key, with the id
// as AAD: a node can neither read nor forge one, and a record moved to
// another id fails to open.
//
// Records are written once: a PUT of an id a node already holds with other
// content is refused (EXISTS, PROTOCOL.md §4.2). That per-node
// create-if-absent is what the lease and the head sequence rely on.
//
// Owner: every record (and every snapshot segment) is stored under the
// volume owner key, a CURVE keypair derived from the master key, so any
// machine holding the key can delete them.
//
// Thread-safety: a RecordStore may be used from any thread; its methods
// block (never call them from a transport callback).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lib/client_identity.h"
#include "lib/crypto.h"
#include "lib/ids.h"
#include "lib/node_table.h"
#include "lib/status.h"
#include "lib/transport.h"

namespace shardfs::fs {

// Record kinds (byte 8 of the id). SNAPSHOTS.md §2.
inline constexpr char kHeadRecord = 'H';     // n = snapshot sequence number
inline constexpr char kLeaseRecord = 'L';    // n = lease generation
inline constexpr char kBeatRecord = 'B';     // n = generation << 32 | renewal
inline constexpr char kReleaseRecord = 'X';  // n = lease generation
// Not a record: the pseudo stripe id that binds a snapshot blob's seal.
inline constexpr char kSnapshotBlob = 'S';

// Keys and ids derived from the master key.
struct VolumeKeys {
  Key master{};
  Key records{};    // SealSegment key for records
  Key snapshots{};  // SealSegment key for snapshot blobs
  uint8_t prefix[8]{};
  ClientIdentity owner;  // volume owner keypair (Z85)

  static Result<VolumeKeys> Derive(const Key& master);
  Result<StripeId> Id(char kind, uint64_t number) const;
  bool HasPrefix(const StripeId& id) const;
};

// Writes `path` as a client identity file (client_identity.h format) holding
// the volume owner keypair, if it does not hold it already.
Status WriteOwnerIdentity(const VolumeKeys& keys, const std::string& path);

struct Record {
  char kind = 0;
  uint64_t number = 0;
  std::string body;
};

class RecordStore {
 public:
  // Pings the endpoints; Unavailable when none answers.
  static Result<std::unique_ptr<RecordStore>> Connect(const VolumeKeys& keys,
                                                      std::vector<std::string> endpoints,
                                                      std::chrono::milliseconds timeout);
  ~RecordStore();
  RecordStore(const RecordStore&) = delete;
  RecordStore& operator=(const RecordStore&) = delete;

  // Pings again; returns how many nodes are up.
  size_t Refresh();
  std::vector<NodeInfo> Nodes() const;
  size_t NodeCount() const { return endpoints_.size(); }

  // Where each record id is held.
  struct Listing {
    std::map<StripeId, std::vector<NodeInfo>> holders;
    size_t nodes_asked = 0;
    size_t nodes_answered = 0;
    std::vector<std::string> errors;  // per node that did not answer
  };
  // Every record of this volume on every up node.
  Listing List();

  // Every shard `node` holds, paged through LIST_SHARDS (restore, fsck).
  Result<std::vector<wire::ListEntry>> ListNode(const NodeInfo& node);

  // One shard's catalog entry on `node` (its owner, for fsck).
  Result<wire::StatShardReply> StatShard(const NodeInfo& node, const StripeId& stripe,
                                         ShardIndex index);
  // Deletes one shard as `owner` (a client identity's public key).
  Status DeleteShard(const NodeInfo& node, const StripeId& stripe, ShardIndex index,
                     const std::string& owner);

  // Reads and opens record `id` from the first holder that gives a valid
  // copy. AuthFailed/Corruption when no copy opens.
  Result<Record> Read(const StripeId& id, const std::vector<NodeInfo>& holders);

  struct PutOutcome {
    int stored = 0;   // OK replies (including an identical copy already there)
    int exists = 0;   // EXISTS: a different record holds the id on that node
    int failed = 0;   // timeouts, errors
    int asked = 0;
    std::string first_error;
  };
  // Seals once and stores a copy on every up node.
  Result<PutOutcome> Put(char kind, uint64_t number, const std::string& body);

  // Deletes every copy (NotFound counts as gone). Best effort: the first
  // error after trying all.
  Status Delete(const StripeId& id, const std::vector<NodeInfo>& holders);

  const VolumeKeys& keys() const { return keys_; }

 private:
  RecordStore(const VolumeKeys& keys, std::vector<std::string> endpoints,
              std::unique_ptr<RpcClient> rpc, std::chrono::milliseconds timeout);

  // Fixed after construction.
  const VolumeKeys keys_;
  const std::vector<std::string> endpoints_;
  const std::chrono::milliseconds timeout_;
  std::unique_ptr<RpcClient> rpc_;  // shut down before nodes_ goes
  std::unique_ptr<NodeTable> nodes_;
};

}  // namespace shardfs::fs
