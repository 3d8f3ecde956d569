// The stages `shardctl bench` measures, each over the same byte stream:
// encrypt (SealSegment), encode (Codec::Encode), put and get through a
// ClusterClient, and the two local references (durable write, cold read).
//
// The stream is `total` bytes cut into segments; its bytes come from a
// random pool of at most kMaxPoolBytes, repeated (AES output is random
// whatever goes in, so a repeated pool measures the same as fresh bytes
// while keeping memory bounded for large --size).
//
// Thread-safety: run one stage at a time from one thread; BenchGet starts
// its own reader threads and joins them before returning.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "lib/cluster_client.h"
#include "lib/crypto.h"
#include "lib/erasure.h"
#include "lib/locator.h"
#include "tools/bench_meter.h"

namespace shardfs::shardctl {

inline constexpr size_t kMaxPoolBytes = 256 * 1024 * 1024;

class BenchStream {
 public:
  // Fills the pool from the CSPRNG. REQUIRES: segment > 0.
  static Result<BenchStream> Create(size_t total, size_t segment);

  size_t total() const { return total_; }
  size_t segment_size() const { return segment_; }
  size_t segments() const { return (total_ + segment_ - 1) / segment_; }
  // Bytes of segment i; the pool has `segment_` bytes of slack after every
  // segment start, so callers may read up to k * shard_size from data().
  std::span<const uint8_t> Segment(size_t i) const;

 private:
  BenchStream(size_t total, size_t segment) : total_(total), segment_(segment) {}
  size_t total_;
  size_t segment_;
  size_t pool_segments_ = 0;
  std::vector<uint8_t> pool_;
};

// Every stage stops early (and says so in the result's note) once `stop`
// becomes true, e.g. on Ctrl-C.
StageResult BenchEncrypt(const BenchStream& data, const Key& master, const CpuMeter& meter,
                         const std::atomic<bool>& stop);
StageResult BenchEncode(const BenchStream& data, const Codec& codec, const CpuMeter& meter,
                        const std::atomic<bool>& stop);
// Pipelined: WriteSegmentAsync for every segment, then waits for all.
// Stores the locators (by segment) in `locators` for BenchGet.
StageResult BenchPut(const BenchStream& data, ClusterClient& client, const CpuMeter& meter,
                     const std::atomic<bool>& stop, std::vector<Locator>* locators);
// `readers` threads call ReadSegment on consecutive segments and compare the
// bytes; a mismatch or error fails the stage.
StageResult BenchGet(const BenchStream& data, ClusterClient& client,
                     const std::vector<Locator>& locators, int readers, const CpuMeter& meter,
                     const std::atomic<bool>& stop);
// write(2) of the stream into `path`, fsync of the file and its directory.
StageResult BenchLocalWrite(const BenchStream& data, const std::string& path, const CpuMeter& meter,
                            const std::atomic<bool>& stop);
// Sequential read(2) of `path` in segment-sized chunks (caller drops caches).
StageResult BenchLocalRead(const std::string& path, size_t chunk, const CpuMeter& meter,
                           const std::atomic<bool>& stop);

}  // namespace shardfs::shardctl
