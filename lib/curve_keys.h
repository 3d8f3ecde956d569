// CurveZMQ keys of a shardfs network (SECURITY.md §2, PROTOCOL.md §8).
//
// A network is defined by a 32-byte random *network secret*. Every member
// (node or client) holds it, in a network file (mode 0600) that holds one
// join token. From the secret every member derives the same *network
// server keypair*: each node's ROUTER socket is a CURVE server with it, and
// every client socket names its public half as ZMQ_CURVE_SERVERKEY. That
// public key is never written down or sent (CurveZMQ never sends the
// server's permanent key in clear), so only a holder of the secret can
// build a HELLO the node can open: outsiders are refused in the handshake.
// The client side of each socket is the member's own keypair (node
// identity or client identity), which the node's ZAP handler turns into
// the request's authenticated owner key.
//
// Join token (one line, shell-safe):
//   "shardfs1." base64url( secret[32] | node_key[32] | endpoint[rest] | check[4] )
// node_key is the raw public key of the inviting node (zeros if unknown);
// check = SHA-256 of everything before it, first 4 bytes (catches typos).
//
// Thread-safety: pure functions, except the process default below, which
// is guarded by a mutex.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "lib/status.h"

namespace shardfs {

constexpr size_t kNetworkSecretSize = 32;
using NetworkSecret = std::array<uint8_t, kNetworkSecretSize>;

struct CurveKeypair {
  std::string public_key;  // Z85, 40 chars
  std::string secret_key;  // Z85, 40 chars
};

// What a client socket needs: its own keypair and the server's public key.
struct CurveClientKeys {
  std::string public_key;
  std::string secret_key;
  std::string server_key;
  bool empty() const { return public_key.empty(); }
};

// What a node's server socket needs.
struct CurveServerKeys {
  std::string secret_key;  // network server secret key, Z85
  std::string domain;      // ZAP domain: "shardfs/" + NetworkId
  bool empty() const { return secret_key.empty(); }
};

struct JoinToken {
  NetworkSecret secret{};
  std::string endpoint;  // bootstrap node, may be empty
  std::string node_key;  // Z85 public key of that node, may be empty
};

// Unavailable with a clear message when libzmq lacks CURVE.
Status CheckCurveAvailable();

// A fresh secret from OpenSSL's CSPRNG.
Result<NetworkSecret> NewNetworkSecret();

// HMAC-SHA256(secret, "shardfs network server key v1") as the Curve25519
// secret key; the public key from zmq_curve_public.
Result<CurveKeypair> NetworkServerKeypair(const NetworkSecret& secret);

// 16 hex characters naming the network in logs and the ZAP domain; derived
// one-way, so it reveals nothing of the secret.
std::string NetworkId(const NetworkSecret& secret);

std::string EncodeJoinToken(const JoinToken& token);
// InvalidArgument saying what is wrong (prefix, encoding, length, check).
Result<JoinToken> ParseJoinToken(std::string_view text);

// Reads a network file: one join token line. PermissionDenied when group
// or others can access it (chmod 600), NotFound when absent.
Result<JoinToken> LoadNetworkFile(const std::string& path);
// Atomic write, mode 0600.
Status WriteNetworkFile(const std::string& path, const JoinToken& token);

// Client keys for `secret` and the member keypair.
Result<CurveClientKeys> ClientKeysFor(const NetworkSecret& secret, const CurveKeypair& member);
Result<CurveServerKeys> ServerKeysFor(const NetworkSecret& secret);

// Process default for RpcClients created without explicit keys (tools that
// build their own RpcClient after LoadClientConfig). Until set: keys for
// $SHARDFS_NETWORK_FILE with a fresh per-process keypair (enough to read,
// e.g. shardctl restore), else empty.
void SetDefaultCurveClientKeys(const CurveClientKeys& keys);
CurveClientKeys DefaultCurveClientKeys();
// The network file the default keys came from ("" if none), so a config
// written by this process (WriteClientConfig) can name it.
void SetDefaultNetworkFile(const std::string& path);
std::string DefaultNetworkFile();

// Keypairs this process holds (every identity file loaded by
// LoadClientIdentity), so a request naming an owner can travel on a socket
// authenticated as that owner (transport.h).
void RegisterCurveIdentity(const CurveKeypair& keys);
std::optional<CurveKeypair> FindCurveIdentity(const std::string& public_key);

}  // namespace shardfs
