// The node's identity: a CurveZMQ keypair kept in DATA_DIR/identity
// (STORAGE.md §1), created on first start, and the NodeId derived from it.
// A restarted node keeps its keypair and therefore its id, which is how
// peers recognise it (issue 4) and what CURVE will authenticate (issue 5).
//
// The file has the same one-line format as a client's identity file
// (lib/client_identity.h), so one loader serves both.
//
// Thread-safety: pure functions over the file system.
#pragma once

#include <string>
#include <string_view>

#include "lib/ids.h"
#include "lib/status.h"

namespace shardfs {

struct NodeIdentity {
  std::string public_key;  // Z85, 40 chars
  std::string secret_key;  // Z85, 40 chars; never logged or sent
  NodeId id = 0;
};

// Loads `path`, or creates it (mode 0600) with a fresh keypair.
Result<NodeIdentity> LoadOrCreateNodeIdentity(const std::string& path);

// NodeId = the first 8 bytes, little-endian, of SHA-256 over the 32-byte
// raw public key. InvalidArgument if `z85` is not a 40-char Z85 key.
Result<NodeId> NodeIdFromPublicKey(std::string_view z85);

}  // namespace shardfs
