// Memory read bandwidth, measured the way decode reads weights: every thread streams its own slice once.
#pragma once

#include <cstddef>
#include <vector>

namespace mn {

// GB/s (1e9 bytes) of each of `passes` passes reading a fresh `bytes`-byte buffer (in 2 MiB pages where the system
// grants them) with `threads` threads; empty when the buffer cannot be allocated.
std::vector<double> measureReadBandwidth(size_t bytes, unsigned threads, unsigned passes);

}  // namespace mn
