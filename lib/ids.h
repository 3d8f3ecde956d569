// Identifiers shared by the client, the wire and the node.
//
// StripeId: 16 random bytes chosen by the client for every segment it writes
//   (copy-on-write: a rewritten segment gets a new id). It also salts the
//   segment's key derivation (crypto.h), so it is never reused.
// NodeId: the first 8 bytes (little-endian) of SHA-256 of a node's public key;
//   stable across restarts because the keypair lives in the node's data dir.
// ShardIndex: 0..k-1 are data shards, k..k+m-1 parity.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace shardfs {

using NodeId = uint64_t;
using ShardIndex = uint8_t;

struct StripeId {
  std::array<uint8_t, 16> bytes{};

  static StripeId Random();  // from the OpenSSL CSPRNG; aborts if it fails
  std::string Hex() const;   // 32 lowercase hex digits
  // Strict: exactly 32 hex digits, else nullopt. Used on names from disk and
  // user input, so it must reject anything that could form a path.
  static std::optional<StripeId> FromHex(std::string_view hex);
  bool operator==(const StripeId&) const = default;
  auto operator<=>(const StripeId&) const = default;
};

// 16 lowercase hex digits.
std::string NodeIdHex(NodeId id);
std::optional<NodeId> NodeIdFromHex(std::string_view hex);

}  // namespace shardfs
