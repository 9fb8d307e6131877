// A fixed set of worker threads that run one parallel region at a time. The calling thread takes part as
// thread 0, so a pool of n threads starts n - 1 workers. Workers spin briefly between regions (decode issues
// several regions per layer) and then sleep, so an idle model costs no CPU.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <thread>
#include <vector>

namespace mn {

class ThreadPool {
 public:
  using Task = void (*)(void* context, unsigned threadIndex, unsigned threadCount);

  explicit ThreadPool(unsigned threadCount);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  unsigned threadCount() const { return threadCount_; }

  // Runs task(context, i, n) on every thread i < n and returns when all have finished. Not reentrant: one
  // region at a time (the model serialises sessions).
  void run(Task task, void* context);

  // Convenience for lambdas: fn(threadIndex, threadCount).
  template <typename Fn>
  void parallel(Fn&& fn) {
    run([](void* context, unsigned i, unsigned n) { (*static_cast<Fn*>(context))(i, n); }, &fn);
  }

 private:
  void workerLoop(unsigned index);

  unsigned threadCount_;
  std::vector<std::thread> workers_;
  Task task_ = nullptr;
  void* context_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<unsigned> pending_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<unsigned> sleepers_{0};
  std::mutex sleepMutex_;
  std::condition_variable wake_;
};

// Splits [0, total) into chunks of `grain` handed out dynamically, so a thread slowed by another process does
// not hold the others back. Reset before each region by the thread that owns it.
class WorkCounter {
 public:
  void reset() { next_.store(0, std::memory_order_relaxed); }
  // Claims the next chunk; false when none is left.
  bool claim(size_t total, size_t grain, size_t* begin, size_t* end) {
    const size_t start = next_.fetch_add(grain, std::memory_order_relaxed);
    if (start >= total) return false;
    *begin = start;
    *end = start + grain < total ? start + grain : total;
    return true;
  }
  // Claims 1/parts of what is left, rounded up to a multiple of `grain`: large chunks first and small ones at the
  // end, so that threads finish together however the machine delays one of them.
  bool claimGuided(size_t total, size_t grain, size_t parts, size_t* begin, size_t* end) {
    size_t start = next_.load(std::memory_order_relaxed);
    for (;;) {
      if (start >= total) return false;
      const size_t share = std::max(grain, ((total - start) / parts + grain - 1) / grain * grain);
      const size_t stop = std::min(total, start + share);
      if (next_.compare_exchange_weak(start, stop, std::memory_order_relaxed)) {
        *begin = start;
        *end = stop;
        return true;
      }
    }
  }

 private:
  alignas(64) std::atomic<size_t> next_{0};
};

}  // namespace mn
