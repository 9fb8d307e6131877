// A model load's link to the thread that started it, which may ask it to stop and polls how far it has come
// (addon/model_binding.cc). The load's long steps (reading the file into memory, scanning tensors, repacking
// matrices) call step() between chunks of a few tens of MiB.
#pragma once

#include <atomic>
#include <cstdint>

#include "common/status.h"

namespace mn {

class LoadControl {
 public:
  void requestAbort() { abort_.store(true, std::memory_order_relaxed); }

  // The long steps will process `bytes` in all; progress() is measured against it.
  void plan(uint64_t bytes) { planned_.store(bytes, std::memory_order_relaxed); }

  // Counts `bytes` more as done; ABORT_ERR once an abort has been requested.
  Error step(uint64_t bytes) {
    done_.fetch_add(bytes, std::memory_order_relaxed);
    if (!abort_.load(std::memory_order_relaxed)) return Error::none();
    return makeError("ABORT_ERR", "the model load was aborted");
  }

  // Done over planned, in [0, 1]; 0 while nothing is planned.
  double progress() const {
    const uint64_t planned = planned_.load(std::memory_order_relaxed);
    const uint64_t done = done_.load(std::memory_order_relaxed);
    if (planned == 0) return 0.0;
    return done >= planned ? 1.0 : double(done) / double(planned);
  }

 private:
  std::atomic<bool> abort_{false};
  std::atomic<uint64_t> planned_{0};
  std::atomic<uint64_t> done_{0};
};

}  // namespace mn
