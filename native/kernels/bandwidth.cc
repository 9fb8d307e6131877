#include "kernels/bandwidth.h"

#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "common/huge_pages.h"
#include "kernels/kernels.h"
#include "kernels/scalar.h"

namespace mn {

// Eight independent accumulators, so loads, not the add chain, set the pace (GCC makes 128-bit loads of them).
uint64_t scalar::sumWords(const uint64_t* words, size_t count) {
  uint64_t acc[8] = {};
  size_t i = 0;
  for (; i + 8 <= count; i += 8) {
    for (int k = 0; k < 8; k++) acc[k] += words[i + k];
  }
  for (; i < count; i++) acc[0] += words[i];
  uint64_t sum = 0;
  for (int k = 0; k < 8; k++) sum += acc[k];
  return sum;
}

namespace {

// The widest loads this CPU has, whatever MIXTRAL_NATIVE_ISA caps the engine to: the roofline's ceiling must not be
// set by a slow loop. On the Zen 5 VM 256- and 512-bit loads read 8.5% faster than the scalar loop's 128-bit ones
// (median of 12 alternating passes of each).
const KernelTable& widestTable() {
  for (Isa isa : {Isa::Avx512, Isa::Avx2}) {
    if (const KernelTable* table = kernelsFor(isa)) return *table;
  }
  return *kernelsFor(Isa::Scalar);
}

}  // namespace

std::vector<double> measureReadBandwidth(size_t bytes, unsigned threads, unsigned passes) {
  if (threads == 0) threads = 1;
  const size_t words = bytes / sizeof(uint64_t);
  // In 2 MiB pages: the ceiling is what memory delivers when page walks do not get in the way, as for weights in
  // 2 MiB page-cache folios (gguf.cc) or repacked into huge pages (model/repack.cc).
  HugePages buffer;
  if (!buffer.allocate(words * sizeof(uint64_t))) return {};
  uint64_t* data = reinterpret_cast<uint64_t*>(buffer.data());
  for (size_t i = 0; i < words; i++) data[i] = i;  // touch every page so the pass reads memory, not zero pages
  const auto sumWords = widestTable().sumWords;
  std::vector<uint64_t> sums(threads);
  std::vector<double> rates;
  // One untimed pass first: on this VM the first read of freshly written huge pages runs at a fraction of the speed.
  for (unsigned pass = 0; pass <= passes; pass++) {
    std::vector<std::thread> workers;
    const auto start = std::chrono::steady_clock::now();
    for (unsigned t = 0; t < threads; t++) {
      workers.emplace_back([&, t] {
        const size_t begin = words * t / threads, end = words * (t + 1) / threads;
        sums[t] = sumWords(data + begin, end - begin);
      });
    }
    for (std::thread& worker : workers) worker.join();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (pass > 0) rates.push_back(double(words * sizeof(uint64_t)) / seconds / 1e9);
  }
  volatile uint64_t sink = 0;
  for (uint64_t s : sums) sink = sink + s;
  return rates;
}

}  // namespace mn
