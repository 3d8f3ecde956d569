// Names of everything a node keeps in its data dir (STORAGE.md §1). Every
// path the node builds comes from here, so no request can name a file
// outside the data dir: shard names are made only from a StripeId (16 bytes,
// printed as 32 hex digits) and an index below shardfile::kMaxIndex.
//
// Thread-safety: immutable after construction.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "lib/ids.h"

namespace shardfs {

struct ShardKey {
  StripeId stripe;
  ShardIndex index = 0;
  bool operator==(const ShardKey&) const = default;
  auto operator<=>(const ShardKey&) const = default;
  std::string ToString() const;  // "<stripe hex>.<index>", for logs
};

class DataLayout {
 public:
  explicit DataLayout(std::string data_dir);

  const std::string& root() const { return root_; }
  std::string LockFile() const { return root_ + "/lock"; }
  std::string IdentityFile() const { return root_ + "/identity"; }
  std::string EndpointFile() const { return root_ + "/endpoint"; }
  std::string CatalogFile() const { return root_ + "/node.db"; }
  std::string ShardsDir() const { return root_ + "/shards"; }
  std::string TmpDir() const { return root_ + "/tmp"; }
  std::string QuarantineDir() const { return root_ + "/quarantine"; }
  // Known peers (id and endpoint per line), so a restart finds the cluster
  // even when its bootstrap peers are gone (STORAGE.md §1).
  std::string PeersFile() const { return root_ + "/peers"; }

  // shards/<first 2 hex digits of the stripe>/
  std::string ShardDir(const StripeId& stripe) const;
  // shards/<xx>/<stripe hex>.<index>
  std::string ShardPath(const ShardKey& key) const;
  // tmp/<stripe hex>.<index>.<seq>.tmp; `seq` makes concurrent writers of
  // one id use distinct files.
  std::string TmpPath(const ShardKey& key, uint64_t seq) const;

  // "<32 hex>.<index>" -> key; nullopt for any other name (strict: lowercase
  // hex, decimal index without leading zeros, index < kMaxIndex).
  static std::optional<ShardKey> ParseShardFileName(std::string_view name);
  // The file name of a shard (no directory).
  static std::string ShardFileName(const ShardKey& key);

 private:
  std::string root_;
};

}  // namespace shardfs
