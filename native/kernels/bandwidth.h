// Memory read bandwidth, measured the way decode reads weights: every thread streams its own slice once.
#pragma once

#include <cstddef>

namespace mn {

// GB/s (1e9 bytes) reading a fresh `bytes`-byte buffer (in 2 MiB pages where the system grants them) with `threads`
// threads; the best of `repeats` passes.
double measureReadBandwidth(size_t bytes, unsigned threads, unsigned repeats);

}  // namespace mn
