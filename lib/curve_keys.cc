// Network secret, derived CURVE keys, join tokens and network files. See
// curve_keys.h; the scheme is described in SECURITY.md §2.
#include "lib/curve_keys.h"

#include <fcntl.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "lib/atomic_file.h"
#include "lib/checksum.h"
#include "lib/log.h"

namespace shardfs {
namespace {

constexpr std::string_view kTokenPrefix = "shardfs1.";
constexpr size_t kCheckSize = 4;
constexpr size_t kMaxEndpoint = 255;
constexpr std::string_view kB64 =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string Base64Url(const std::vector<uint8_t>& in) {
  std::string out;
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t v = (in[i] << 16) | (in[i + 1] << 8) | in[i + 2];
    for (int s = 18; s >= 0; s -= 6) out += kB64[(v >> s) & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = in[i] << 16;
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
  } else if (i + 2 == in.size()) {
    uint32_t v = (in[i] << 16) | (in[i + 1] << 8);
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
  }
  return out;
}

bool UnBase64Url(std::string_view in, std::vector<uint8_t>* out) {
  if (in.size() % 4 == 1) return false;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    size_t v = kB64.find(c);
    if (v == std::string_view::npos) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<uint8_t>(acc >> bits));
      acc &= (1u << bits) - 1;
    }
  }
  return true;
}

std::string Z85Of(const uint8_t raw[32]) {
  char buf[41] = {};
  zmq_z85_encode(buf, raw, 32);
  return buf;
}

bool RawOfZ85(const std::string& z85, uint8_t raw[32]) {
  return z85.size() == 40 && zmq_z85_decode(raw, z85.c_str()) != nullptr;
}

std::mutex g_mu;
std::vector<CurveKeypair> g_identities;  // guarded by g_mu
CurveClientKeys g_default;      // guarded by g_mu
std::string g_default_network;  // guarded by g_mu

}  // namespace

Status CheckCurveAvailable() {
  if (!zmq_has("curve")) {
    return Status::Unavailable(
        "this libzmq was built without CURVE security (zmq_has(\"curve\") is false); shardfs "
        "refuses to run unencrypted: install a libzmq with libsodium or tweetnacl support");
  }
  return Status::OK();
}

Result<NetworkSecret> NewNetworkSecret() {
  NetworkSecret s{};
  if (RAND_bytes(s.data(), static_cast<int>(s.size())) != 1) {
    return Status::Unavailable("RAND_bytes failed: no entropy for a network secret");
  }
  return s;
}

Result<CurveKeypair> NetworkServerKeypair(const NetworkSecret& secret) {
  RETURN_IF_ERROR(CheckCurveAvailable());
  static constexpr std::string_view kLabel = "shardfs network server key v1";
  uint8_t raw[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const uint8_t*>(kLabel.data()), kLabel.size(), raw, &len) == nullptr ||
      len != 32) {
    return Status::Unavailable("HMAC-SHA256 failed deriving the network server key");
  }
  CurveKeypair kp;
  kp.secret_key = Z85Of(raw);
  OPENSSL_cleanse(raw, sizeof(raw));
  char pub[41] = {};
  if (zmq_curve_public(pub, kp.secret_key.c_str()) != 0) {
    return Status::Unavailable(std::string("zmq_curve_public: ") + zmq_strerror(zmq_errno()));
  }
  kp.public_key = pub;
  return kp;
}

std::string NetworkId(const NetworkSecret& secret) {
  std::vector<uint8_t> buf = {'s', 'h', 'a', 'r', 'd', 'f', 's', '-', 'i', 'd'};
  buf.insert(buf.end(), secret.begin(), secret.end());
  Sha256Digest d = Sha256(buf);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 8; ++i) {
    out += kHex[d[i] >> 4];
    out += kHex[d[i] & 15];
  }
  return out;
}

std::string EncodeJoinToken(const JoinToken& token) {
  std::vector<uint8_t> bytes(token.secret.begin(), token.secret.end());
  uint8_t key[32] = {};
  if (!token.node_key.empty()) (void)RawOfZ85(token.node_key, key);
  bytes.insert(bytes.end(), key, key + 32);
  std::string ep = token.endpoint.substr(0, kMaxEndpoint);
  bytes.insert(bytes.end(), ep.begin(), ep.end());
  Sha256Digest d = Sha256(bytes);
  bytes.insert(bytes.end(), d.begin(), d.begin() + kCheckSize);
  return std::string(kTokenPrefix) + Base64Url(bytes);
}

Result<JoinToken> ParseJoinToken(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
    text.remove_suffix(1);
  }
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  if (!text.starts_with(kTokenPrefix)) {
    return Status::InvalidArgument("not a shardfs join token (it starts with \"shardfs1.\")");
  }
  std::vector<uint8_t> bytes;
  if (!UnBase64Url(text.substr(kTokenPrefix.size()), &bytes)) {
    return Status::InvalidArgument("join token: invalid characters or length (copy it whole)");
  }
  if (bytes.size() < 64 + kCheckSize || bytes.size() > 64 + kMaxEndpoint + kCheckSize) {
    return Status::InvalidArgument("join token: wrong length (copy it whole)");
  }
  const size_t body = bytes.size() - kCheckSize;
  Sha256Digest d = Sha256(std::span<const uint8_t>(bytes.data(), body));
  if (std::memcmp(d.data(), bytes.data() + body, kCheckSize) != 0) {
    return Status::InvalidArgument("join token: check digits do not match (mistyped?)");
  }
  JoinToken t;
  std::memcpy(t.secret.data(), bytes.data(), 32);
  static constexpr uint8_t kZero[32] = {};
  if (std::memcmp(bytes.data() + 32, kZero, 32) != 0) t.node_key = Z85Of(bytes.data() + 32);
  t.endpoint.assign(reinterpret_cast<const char*>(bytes.data()) + 64, body - 64);
  for (char c : t.endpoint) {
    if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e) {
      return Status::InvalidArgument("join token: endpoint has non-printable characters");
    }
  }
  return t;
}

Result<JoinToken> LoadNetworkFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string buf,
                   ReadPrivateFile(path, "network file", 1023));
  auto t = ParseJoinToken(buf);
  if (!t.ok()) return t.status().With(path);
  return t;
}

Status WriteNetworkFile(const std::string& path, const JoinToken& token) {
  return WriteFileAtomic(path, EncodeJoinToken(token) + "\n", 0600);
}

Result<CurveClientKeys> ClientKeysFor(const NetworkSecret& secret, const CurveKeypair& member) {
  ASSIGN_OR_RETURN(CurveKeypair server, NetworkServerKeypair(secret));
  return CurveClientKeys{member.public_key, member.secret_key, server.public_key};
}

Result<CurveServerKeys> ServerKeysFor(const NetworkSecret& secret) {
  ASSIGN_OR_RETURN(CurveKeypair server, NetworkServerKeypair(secret));
  return CurveServerKeys{server.secret_key, "shardfs/" + NetworkId(secret)};
}

void SetDefaultCurveClientKeys(const CurveClientKeys& keys) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_default = keys;
}

CurveClientKeys DefaultCurveClientKeys() {
  std::lock_guard<std::mutex> lock(g_mu);
  if (!g_default.empty()) return g_default;
  // A process that loaded no client config (shardctl restore on a new
  // machine) may still name a network file: it connects with a fresh
  // keypair of its own, enough to read; it owns nothing.
  const char* env = std::getenv("SHARDFS_NETWORK_FILE");
  if (env == nullptr || *env == '\0') return g_default;
  auto token = LoadNetworkFile(env);
  if (!token.ok()) {
    LOG_WARN("SHARDFS_NETWORK_FILE: {}", token.status().ToString());
    return g_default;
  }
  char pub[41] = {}, sec[41] = {};
  if (zmq_curve_keypair(pub, sec) != 0) return g_default;
  auto keys = ClientKeysFor(token->secret, CurveKeypair{pub, sec});
  if (!keys.ok()) return g_default;
  g_default = *keys;
  g_default_network = env;
  return g_default;
}

void SetDefaultNetworkFile(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_default_network = path;
}

std::string DefaultNetworkFile() {
  {
    std::lock_guard<std::mutex> lock(g_mu);
    if (!g_default_network.empty()) return g_default_network;
  }
  const char* env = std::getenv("SHARDFS_NETWORK_FILE");
  return env != nullptr ? env : "";
}

void RegisterCurveIdentity(const CurveKeypair& keys) {
  std::lock_guard<std::mutex> lock(g_mu);
  for (const CurveKeypair& k : g_identities) {
    if (k.public_key == keys.public_key) return;
  }
  g_identities.push_back(keys);
}

std::optional<CurveKeypair> FindCurveIdentity(const std::string& public_key) {
  std::lock_guard<std::mutex> lock(g_mu);
  for (const CurveKeypair& k : g_identities) {
    if (k.public_key == public_key) return k;
  }
  return std::nullopt;
}

}  // namespace shardfs
