// BufferPool: recycles the large segment buffers of the data path.
//
// A segment write needs one n * shard_size buffer (about 6 MiB for 4+2 at
// 4 MiB segments) that lives until the last shard is on the wire; a read
// needs one k * shard_size buffer. Fresh allocations of that size come from
// mmap, and touching them costs a page fault per 4 KiB, comparable to the
// AES pass itself; recycling avoids it. Buffers are uninitialized.
//
// A buffer handed out is a shared_ptr whose deleter returns it to the pool,
// so it may be released on any thread (ZeroMQ's I/O thread releases
// payload frames), even after the pool object itself is gone.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

namespace shardfs {

struct PooledBuffer {
  uint8_t* data = nullptr;
  size_t size = 0;      // requested size
  size_t capacity = 0;  // allocated size
};

class BufferPool {
 public:
  // Keeps at most `max_cached` idle buffers.
  explicit BufferPool(size_t max_cached) : state_(std::make_shared<State>()) {
    state_->max_cached = max_cached;
  }
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A buffer of at least `size` bytes (uninitialized). Throws std::bad_alloc.
  std::shared_ptr<PooledBuffer> Get(size_t size) {
    PooledBuffer* b = nullptr;
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      auto& idle = state_->idle;
      for (size_t i = 0; i < idle.size(); ++i) {
        // Reuse only a buffer of about the right size, so one small segment
        // does not pin a large buffer forever.
        if (idle[i]->capacity >= size && idle[i]->capacity / 2 <= size) {
          b = idle[i];
          idle[i] = idle.back();
          idle.pop_back();
          break;
        }
      }
    }
    if (b == nullptr) {
      b = new PooledBuffer;
      b->capacity = (size + 63) / 64 * 64;
      if (b->capacity == 0) b->capacity = 64;
      b->data = static_cast<uint8_t*>(std::aligned_alloc(64, b->capacity));
      if (b->data == nullptr) {
        delete b;
        throw std::bad_alloc();
      }
    }
    b->size = size;
    std::shared_ptr<State> state = state_;
    return std::shared_ptr<PooledBuffer>(b, [state](PooledBuffer* p) { state->Put(p); });
  }

 private:
  struct State {
    std::mutex mu;
    size_t max_cached = 0;
    std::vector<PooledBuffer*> idle;  // guarded by mu

    void Put(PooledBuffer* p) {
      {
        std::lock_guard<std::mutex> lock(mu);
        if (idle.size() < max_cached) {
          idle.push_back(p);
          return;
        }
      }
      Free(p);
    }
    static void Free(PooledBuffer* p) {
      std::free(p->data);
      delete p;
    }
    ~State() {
      for (PooledBuffer* p : idle) Free(p);
    }
  };
  std::shared_ptr<State> state_;
};

}  // namespace shardfs
