// Snapshot head, blob and local state formats. See snapshot_format.h.
#include "fs/snapshot_format.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>

#include "lib/atomic_file.h"
#include "lib/coding.h"
#include "lib/crypto.h"

namespace shardfs::fs {
namespace {

constexpr uint8_t kHeadVersion = 1;
constexpr size_t kMaxStr = 4096;
constexpr uint32_t kMaxEndpoints = 1024;
// A metadata database beyond this is not ours (about 50 million files).
constexpr uint64_t kMaxDbSize = 64ull << 30;

void PutStr(std::string* out, const std::string& s) {
  PutLengthPrefixed(out, std::string_view(s).substr(0, kMaxStr));
}

}  // namespace

std::string FormatLocalTime(uint64_t unix_ms) {
  time_t t = static_cast<time_t>(unix_ms / 1000);
  struct tm tm;
  char buf[64];
  localtime_r(&t, &tm);
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string Hex(std::span<const uint8_t> bytes) {
  static const char kHex[] = "0123456789abcdef";
  std::string s;
  for (uint8_t b : bytes) {
    s.push_back(kHex[b >> 4]);
    s.push_back(kHex[b & 15]);
  }
  return s;
}

StateId RandomStateId() {
  StateId id{};
  if (!RandomBytes(id).ok()) std::abort();  // as StripeId::Random: no entropy, no ids
  return id;
}

void EncodeHead(const SnapshotHead& h, std::string* out) {
  PutU8(out, kHeadVersion);
  PutU64(out, h.seq);
  PutU64(out, h.created_unix_ms);
  PutBytes(out, h.object.bytes.data(), h.object.bytes.size());
  PutU64(out, h.blob_size);
  PutBytes(out, h.blob_sha256.data(), h.blob_sha256.size());
  PutU64(out, h.db_size);
  PutU8(out, h.k);
  PutU8(out, h.m);
  PutU32(out, h.segment_size);
  PutU32(out, h.timeout_ms);
  PutBytes(out, h.state_id.data(), h.state_id.size());
  PutStr(out, h.host);
  PutStr(out, h.state_dir);
  PutU32(out, static_cast<uint32_t>(std::min<size_t>(h.endpoints.size(), kMaxEndpoints)));
  for (size_t i = 0; i < h.endpoints.size() && i < kMaxEndpoints; ++i) PutStr(out, h.endpoints[i]);
  PutStr(out, h.identity_public);
  PutStr(out, h.identity_secret);
  PutU64(out, h.files);
  PutU64(out, h.file_bytes);
  PutU64(out, h.pending_segments);
}

Status DecodeHead(std::string_view body, SnapshotHead* out) {
  Reader in(body);
  SnapshotHead h;
  uint8_t version = 0;
  uint32_t n = 0;
  auto bad = [](const char* what) {
    return Status::Corruption(std::string("snapshot head: ") + what);
  };
  if (!in.GetU8(&version) || version < 1) return bad("bad version");
  if (!in.GetU64(&h.seq) || !in.GetU64(&h.created_unix_ms) ||
      !in.GetBytes(h.object.bytes.data(), h.object.bytes.size()) || !in.GetU64(&h.blob_size) ||
      !in.GetBytes(h.blob_sha256.data(), h.blob_sha256.size()) || !in.GetU64(&h.db_size) ||
      !in.GetU8(&h.k) || !in.GetU8(&h.m) || !in.GetU32(&h.segment_size) ||
      !in.GetU32(&h.timeout_ms) || !in.GetBytes(h.state_id.data(), h.state_id.size()) ||
      !in.GetLengthPrefixed(&h.host, kMaxStr) || !in.GetLengthPrefixed(&h.state_dir, kMaxStr) ||
      !in.GetU32(&n)) {
    return bad("truncated");
  }
  if (n > kMaxEndpoints || n > in.remaining() / 4) return bad("too many endpoints");
  h.endpoints.resize(n);
  for (std::string& e : h.endpoints) {
    if (!in.GetLengthPrefixed(&e, kMaxStr)) return bad("truncated endpoint");
  }
  if (!in.GetLengthPrefixed(&h.identity_public, kMaxStr) ||
      !in.GetLengthPrefixed(&h.identity_secret, kMaxStr) || !in.GetU64(&h.files) ||
      !in.GetU64(&h.file_bytes) || !in.GetU64(&h.pending_segments)) {
    return bad("truncated");
  }
  if (h.db_size > kMaxDbSize) return bad("database size out of range");
  *out = std::move(h);
  return Status::OK();
}

Result<std::vector<uint8_t>> SealSnapshotBlob(const VolumeKeys& keys, uint64_t seq,
                                              std::span<const uint8_t> db) {
  if (db.size() > kMaxDbSize) return Status::InvalidArgument("metadata database too large");
  uLongf bound = compressBound(static_cast<uLong>(db.size()));
  std::vector<uint8_t> plain(8 + bound);
  EncodeU64At(plain.data(), db.size());
  // Level 6 (zlib's default): SQLite pages of names and locators shrink by
  // about 2-4x (locator hashes do not compress); see SNAPSHOTS.md §6.
  int rc = compress2(plain.data() + 8, &bound, db.data(), static_cast<uLong>(db.size()), 6);
  if (rc != Z_OK) return Status::IOError("zlib compress2 failed: " + std::to_string(rc), ENOMEM);
  plain.resize(8 + bound);
  ASSIGN_OR_RETURN(StripeId id, keys.Id(kSnapshotBlob, seq));
  std::vector<uint8_t> sealed;
  RETURN_IF_ERROR(SealSegment(keys.snapshots, id, plain, &sealed));
  return sealed;
}

Result<std::vector<uint8_t>> OpenSnapshotBlob(const VolumeKeys& keys, uint64_t seq,
                                              std::span<const uint8_t> blob) {
  ASSIGN_OR_RETURN(StripeId id, keys.Id(kSnapshotBlob, seq));
  std::vector<uint8_t> plain;
  RETURN_IF_ERROR(OpenSegment(keys.snapshots, id, blob, &plain));
  if (plain.size() < 8) return Status::Corruption("snapshot blob: truncated");
  const uint64_t db_size = DecodeU64At(plain.data());
  // Authenticated by the GCM tag: the size is ours, but bound it anyway.
  if (db_size > kMaxDbSize) return Status::Corruption("snapshot blob: size out of range");
  std::vector<uint8_t> db(db_size);
  uLongf len = static_cast<uLongf>(db_size);
  int rc = uncompress(db.data(), &len, plain.data() + 8, static_cast<uLong>(plain.size() - 8));
  if (rc != Z_OK || len != db_size) {
    return Status::Corruption("snapshot blob does not decompress (zlib " + std::to_string(rc) +
                              ")");
  }
  return db;
}

Result<SnapshotState> ReadSnapshotState(const std::string& state_dir) {
  const std::string path = state_dir + "/snapshot.state";
  std::ifstream f(path);
  if (!f) {
    if (errno == ENOENT) return Status::NotFound(path + " does not exist");
    return Status::FromErrno(errno, "open " + path);
  }
  std::string line;
  if (!std::getline(f, line) || line != "shardfs-snapshot-state-v1") {
    return Status::Corruption(path + ": not a snapshot state file");
  }
  SnapshotState s;
  bool have_id = false;
  while (std::getline(f, line)) {
    std::istringstream ls(line);
    std::string key, value;
    ls >> key >> value;
    if (key == "state_id") {
      if (value.size() != 32) return Status::Corruption(path + ": bad state_id");
      auto stripe = StripeId::FromHex(value);  // same 16-byte hex form
      if (!stripe) return Status::Corruption(path + ": bad state_id");
      std::memcpy(s.state_id.data(), stripe->bytes.data(), 16);
      have_id = true;
    } else if (key == "last_seq") {
      s.last_seq = std::strtoull(value.c_str(), nullptr, 10);
    } else if (key == "clean") {
      s.clean = value == "1";
    } else if (key == "restored") {
      s.restored = value == "1";
    }
  }
  if (!have_id) return Status::Corruption(path + ": no state_id");
  return s;
}

Status WriteSnapshotState(const std::string& state_dir, const SnapshotState& s) {
  std::string text = "shardfs-snapshot-state-v1\nstate_id " + Hex(s.state_id) +
                     "\nlast_seq " + std::to_string(s.last_seq) + "\nclean " +
                     (s.clean ? "1" : "0") + "\nrestored " + (s.restored ? "1" : "0") + "\n";
  return WriteFileAtomic(state_dir + "/snapshot.state", text, 0600);
}

}  // namespace shardfs::fs
