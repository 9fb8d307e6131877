#include "model/thread_pool.h"

#include <chrono>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define MN_PAUSE() _mm_pause()
#else
#define MN_PAUSE() ((void)0)
#endif

namespace mn {

namespace {
// How long an idle worker spins before sleeping: long enough to bridge the gaps between the regions of one
// forward pass, short enough that a model waiting for the next user call stops burning a core quickly.
constexpr auto kSpinTime = std::chrono::microseconds(2000);
}  // namespace

ThreadPool::ThreadPool(unsigned threadCount) : threadCount_(threadCount < 1 ? 1 : threadCount) {
  for (unsigned i = 1; i < threadCount_; i++) workers_.emplace_back([this, i] { workerLoop(i); });
}

ThreadPool::~ThreadPool() {
  stopping_.store(true);
  {
    std::lock_guard<std::mutex> lock(sleepMutex_);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

void ThreadPool::run(Task task, void* context) {
  if (threadCount_ == 1) {
    task(context, 0, 1);
    return;
  }
  task_ = task;
  context_ = context;
  pending_.store(threadCount_ - 1, std::memory_order_relaxed);
  // Publish the region before looking for sleepers; a worker announces itself before its last look at the
  // generation, so (both seq_cst) at least one side sees the other and no wake-up is lost.
  generation_.fetch_add(1, std::memory_order_seq_cst);
  if (sleepers_.load(std::memory_order_seq_cst) > 0) {
    { std::lock_guard<std::mutex> lock(sleepMutex_); }
    wake_.notify_all();
  }
  task(context, 0, threadCount_);
  // Yielding now and then lets a descheduled worker run on a busy machine instead of spinning out a timeslice.
  unsigned spins = 0;
  while (pending_.load(std::memory_order_acquire) != 0) {
    MN_PAUSE();
    if (++spins % 64 == 0) std::this_thread::yield();
  }
}

void ThreadPool::workerLoop(unsigned index) {
  uint64_t seen = 0;
  for (;;) {
    const auto spinUntil = std::chrono::steady_clock::now() + kSpinTime;
    unsigned spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen) {
      MN_PAUSE();
      if (spins % 64 == 63) std::this_thread::yield();
      if (++spins % 1024 == 0 && std::chrono::steady_clock::now() > spinUntil) {
        std::unique_lock<std::mutex> lock(sleepMutex_);
        sleepers_.fetch_add(1, std::memory_order_seq_cst);
        wake_.wait(lock, [&] { return generation_.load(std::memory_order_seq_cst) != seen; });
        sleepers_.fetch_sub(1, std::memory_order_acq_rel);
      }
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stopping_.load()) return;
    task_(context_, index, threadCount_);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace mn
