// Node identity. See identity.h.
#include "netnode/identity.h"

#include <zmq.h>

#include <array>

#include "lib/checksum.h"
#include "lib/client_identity.h"
#include "lib/coding.h"

namespace shardfs {

Result<NodeId> NodeIdFromPublicKey(std::string_view z85) {
  if (z85.size() != 40) return Status::InvalidArgument("public key is not 40 Z85 characters");
  std::string text(z85);  // zmq_z85_decode wants a NUL-terminated string
  std::array<uint8_t, 32> raw{};
  if (zmq_z85_decode(raw.data(), text.c_str()) == nullptr) {
    return Status::InvalidArgument("public key is not valid Z85");
  }
  Sha256Digest digest = Sha256(raw);
  return DecodeU64At(digest.data());
}

Result<NodeIdentity> LoadOrCreateNodeIdentity(const std::string& path) {
  ASSIGN_OR_RETURN(ClientIdentity keys, LoadOrCreateClientIdentity(path));
  NodeIdentity out;
  out.public_key = std::move(keys.public_key);
  out.secret_key = std::move(keys.secret_key);
  auto id = NodeIdFromPublicKey(out.public_key);
  if (!id.ok()) return Status::Corruption(path + ": " + id.status().message());
  out.id = *id;
  return out;
}

}  // namespace shardfs
