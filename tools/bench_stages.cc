// Bench stages. See bench_stages.h.
#include "tools/bench_stages.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>

namespace shardfs::shardctl {
namespace {

StageResult Begin(std::string name, const CpuMeter& meter) {
  StageResult r;
  r.name = std::move(name);
  r.begin = meter.Sample();
  return r;
}

void Finish(StageResult* r, double bytes, const CpuMeter& meter, const std::atomic<bool>& stop) {
  r->end = meter.Sample();
  r->bytes = bytes;
  if (stop.load() && r->note.empty()) {
    r->note = "interrupted";
    r->failed = true;
  }
}

void Fail(StageResult* r, const std::string& why) {
  if (!r->failed) r->note = why;
  r->failed = true;
}

}  // namespace

Result<BenchStream> BenchStream::Create(size_t total, size_t segment) {
  if (segment == 0) return Status::InvalidArgument("segment size 0");
  BenchStream s(total, segment);
  size_t segs = std::max<size_t>(1, s.segments());
  s.pool_segments_ = std::min(segs, std::max<size_t>(1, kMaxPoolBytes / segment));
  // One extra segment of slack: see Segment().
  s.pool_.resize((s.pool_segments_ + 1) * segment);
  RETURN_IF_ERROR(RandomBytes(s.pool_));
  return s;
}

std::span<const uint8_t> BenchStream::Segment(size_t i) const {
  size_t offset = i * segment_;
  size_t len = std::min(segment_, total_ - std::min(total_, offset));
  return {pool_.data() + (i % pool_segments_) * segment_, len};
}

StageResult BenchEncrypt(const BenchStream& data, const Key& master, const CpuMeter& meter,
                         const std::atomic<bool>& stop) {
  std::vector<uint8_t> out(data.segment_size() + kSealOverhead);
  StripeId stripe = StripeId::Random();
  StageResult r = Begin("encrypt (AES-256-GCM)", meter);
  double bytes = 0;
  for (size_t i = 0; i < data.segments() && !stop.load(); ++i) {
    auto seg = data.Segment(i);
    stripe.bytes[0] = static_cast<uint8_t>(i);  // a distinct key per segment
    Status st = SealSegmentInto(master, stripe, seg, {out.data(), seg.size() + kSealOverhead});
    if (!st.ok()) {
      Fail(&r, st.ToString());
      break;
    }
    bytes += static_cast<double>(seg.size());
  }
  Finish(&r, bytes, meter, stop);
  return r;
}

StageResult BenchEncode(const BenchStream& data, const Codec& codec, const CpuMeter& meter,
                        const std::atomic<bool>& stop) {
  const int k = codec.k();
  const size_t max_shard = Codec::ShardSize(data.segment_size(), k);
  std::vector<uint8_t> parity(static_cast<size_t>(std::max(codec.m(), 0)) * max_shard);
  std::vector<uint8_t*> shards(codec.n());
  StageResult r =
      Begin("encode (ISA-L " + std::to_string(k) + "+" + std::to_string(codec.m()) + ")", meter);
  double bytes = 0;
  for (size_t i = 0; i < data.segments() && !stop.load(); ++i) {
    auto seg = data.Segment(i);
    size_t shard = Codec::ShardSize(seg.size(), k);
    // Data shards point into the stream itself (no copy: ISA-L's encode is
    // faster than memcpy would be). The pool's slack covers the padding.
    for (int j = 0; j < k; ++j) shards[j] = const_cast<uint8_t*>(seg.data()) + j * shard;
    for (int j = 0; j < codec.m(); ++j) shards[k + j] = parity.data() + j * shard;
    Status st = codec.Encode(shard, shards);
    if (!st.ok()) {
      Fail(&r, st.ToString());
      break;
    }
    bytes += static_cast<double>(seg.size());
  }
  Finish(&r, bytes, meter, stop);
  return r;
}

StageResult BenchPut(const BenchStream& data, ClusterClient& client, const CpuMeter& meter,
                     const std::atomic<bool>& stop, std::vector<Locator>* locators) {
  // Shared with the callbacks, which run on the transport's I/O thread.
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    size_t pending = 0;
    std::string first_error;
    std::vector<Locator> locators;
  };
  auto state = std::make_shared<State>();
  state->locators.resize(data.segments());
  StageResult r = Begin("put (pipelined)", meter);
  double bytes = 0;
  for (size_t i = 0; i < data.segments() && !stop.load(); ++i) {
    auto seg = data.Segment(i);
    if (seg.empty()) break;
    {
      std::lock_guard<std::mutex> lock(state->mu);
      if (!state->first_error.empty()) break;
      ++state->pending;
    }
    client.WriteSegmentAsync(std::vector<uint8_t>(seg.begin(), seg.end()),
                             [state, i](Result<Locator> res) {
                               std::lock_guard<std::mutex> lock(state->mu);
                               if (res.ok()) {
                                 state->locators[i] = std::move(res).value();
                               } else if (state->first_error.empty()) {
                                 state->first_error = res.status().ToString();
                               }
                               if (--state->pending == 0) state->cv.notify_all();
                             });
    bytes += static_cast<double>(seg.size());
  }
  {
    std::unique_lock<std::mutex> lock(state->mu);
    state->cv.wait(lock, [&] { return state->pending == 0; });
    if (!state->first_error.empty()) Fail(&r, state->first_error);
    *locators = state->locators;
  }
  Finish(&r, bytes, meter, stop);
  return r;
}

StageResult BenchGet(const BenchStream& data, ClusterClient& client,
                     const std::vector<Locator>& locators, int readers, const CpuMeter& meter,
                     const std::atomic<bool>& stop) {
  std::atomic<size_t> next{0};
  std::atomic<double> bytes{0};
  std::mutex mu;
  std::string first_error;
  size_t count = std::min(locators.size(), data.segments());
  StageResult r = Begin("get (" + std::to_string(readers) + " readers)", meter);
  auto worker = [&] {
    for (;;) {
      size_t i = next.fetch_add(1);
      if (i >= count || stop.load()) return;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (!first_error.empty()) return;
      }
      auto want = data.Segment(i);
      Result<std::vector<uint8_t>> got = client.ReadSegment(locators[i]);
      std::string err;
      if (!got.ok()) {
        err = "segment " + std::to_string(i) + ": " + got.status().ToString();
      } else if (got->size() != want.size() ||
                 std::memcmp(got->data(), want.data(), want.size()) != 0) {
        err = "segment " + std::to_string(i) + ": bytes differ from what was put";
      }
      if (!err.empty()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first_error.empty()) first_error = err;
        return;
      }
      double b = bytes.load();
      while (!bytes.compare_exchange_weak(b, b + static_cast<double>(want.size()))) {
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < std::max(1, readers); ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  if (!first_error.empty()) Fail(&r, first_error);
  Finish(&r, bytes.load(), meter, stop);
  return r;
}

StageResult BenchLocalWrite(const BenchStream& data, const std::string& path, const CpuMeter& meter,
                            const std::atomic<bool>& stop) {
  StageResult r = Begin("local write + fsync", meter);
  double bytes = 0;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    Fail(&r, "open " + path + ": " + std::strerror(errno));
    Finish(&r, 0, meter, stop);
    return r;
  }
  for (size_t i = 0; i < data.segments() && !stop.load() && !r.failed; ++i) {
    auto seg = data.Segment(i);
    size_t done = 0;
    while (done < seg.size()) {
      ssize_t n = ::write(fd, seg.data() + done, seg.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        Fail(&r, "write " + path + ": " + std::strerror(errno));
        break;
      }
      done += static_cast<size_t>(n);
    }
    bytes += static_cast<double>(done);
  }
  if (!r.failed && ::fsync(fd) != 0) Fail(&r, "fsync " + path + ": " + std::strerror(errno));
  ::close(fd);
  std::string dir = std::filesystem::path(path).parent_path().string();
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  Finish(&r, bytes, meter, stop);
  return r;
}

StageResult BenchLocalRead(const std::string& path, size_t chunk, const CpuMeter& meter,
                           const std::atomic<bool>& stop) {
  StageResult r = Begin("local read (cold)", meter);
  double bytes = 0;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    Fail(&r, "open " + path + ": " + std::strerror(errno));
    Finish(&r, 0, meter, stop);
    return r;
  }
  std::vector<uint8_t> buf(chunk);
  while (!stop.load()) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) Fail(&r, "read " + path + ": " + std::strerror(errno));
    if (n <= 0) break;
    bytes += static_cast<double>(n);
  }
  ::close(fd);
  Finish(&r, bytes, meter, stop);
  return r;
}

}  // namespace shardfs::shardctl
