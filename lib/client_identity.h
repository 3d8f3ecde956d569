// The client's keypair (CurveZMQ, Z85-encoded), kept in the config's
// identity_file. Its public key is the `owner` the client sends with every
// PUT_SHARD and DELETE_SHARD: a node lets only that key delete the shard.
// The same keypair authenticates the client's CURVE sockets (issue 5).
//
// File format, one line, mode 0600:
//   "shardfs-identity-v1 <public key, 40 Z85 chars> <secret key, 40 Z85 chars>\n"
//
// Thread-safety: pure functions over the file system.
#pragma once

#include <string>

#include "lib/status.h"

namespace shardfs {

struct ClientIdentity {
  std::string public_key;  // Z85, 40 chars
  std::string secret_key;  // Z85, 40 chars
};

// Loads `path`, or creates it with a fresh keypair (mode 0600) when absent.
// Two processes racing to create it end up with the same keypair: the file
// is published with link(2), which never replaces an existing one.
// PermissionDenied when group or others can access the file, Corruption
// when it is malformed.
Result<ClientIdentity> LoadOrCreateClientIdentity(const std::string& path);

// Only loads: NotFound when absent.
Result<ClientIdentity> LoadClientIdentity(const std::string& path);

}  // namespace shardfs
