// Decode attention benchmark: one query token over the cached keys and values of one KV head (its 4 query heads,
// head dim 128: Mixtral's shape) at `positions` cached positions (default 4000), for each ISA this CPU runs, one
// thread. It cycles over 16 KV heads' F16 caches (2 layers x 8 KV heads, as the benchmark slice) so that each call
// streams from memory as decode does, and prints the GB/s of K read by the scores and of V read by the
// accumulation, against a plain read of K and V. Build and run: bench/kernels.sh attention [positions].
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "common/half.h"
#include "kernels/kernels.h"

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

constexpr size_t kHeads = 4, kHeadDim = 128, kCaches = 16, kRepeats = 15;

}  // namespace

int main(int argc, char** argv) {
  const size_t positions = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 4000;
  if (positions == 0) {
    std::fprintf(stderr, "usage: bench/kernels.sh attention [positions > 0]\n");
    return 2;
  }
  const size_t cacheValues = positions * kHeadDim;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<uint16_t> k(kCaches * cacheValues), v(kCaches * cacheValues);
  for (uint16_t& x : k) x = mn::floatToFp16(normal(rng));
  for (uint16_t& x : v) x = mn::floatToFp16(normal(rng));
  std::vector<float> q(kHeads * kHeadDim), scores(kHeads * positions), out(kHeads * kHeadDim);
  for (float& x : q) x = normal(rng);
  std::vector<float> p(kHeads * positions, 1.0f / float(positions));
  const double cacheBytes = double(kCaches * cacheValues * sizeof(uint16_t));  // of K, and again of V

  std::printf("decode attention, %zu positions, %zu query heads per KV head, head dim %zu, 1 thread\n", positions,
              kHeads, kHeadDim);
  for (mn::Isa isa : {mn::Isa::Avx2, mn::Isa::Avx512}) {
    const mn::KernelTable* t = mn::kernelsFor(isa);
    if (t == nullptr) continue;
    double scoresSeconds = 1e9, accumulateSeconds = 1e9, readSeconds = 1e9;
    for (size_t repeat = 0; repeat < kRepeats; repeat++) {
      Clock::time_point start = Clock::now();
      for (size_t c = 0; c < kCaches; c++) {
        t->attnScoresF16(q.data(), kHeads, k.data() + c * cacheValues, kHeadDim, positions, 0.088f, scores.data(),
                         positions);
      }
      scoresSeconds = std::min(scoresSeconds, secondsSince(start));
      start = Clock::now();
      for (size_t c = 0; c < kCaches; c++) {
        std::fill(out.begin(), out.end(), 0.0f);
        t->attnAccumulateF16(out.data(), kHeads, p.data(), positions, v.data() + c * cacheValues, kHeadDim, positions);
      }
      accumulateSeconds = std::min(accumulateSeconds, secondsSince(start));
      start = Clock::now();
      volatile uint64_t sink = t->sumWords(reinterpret_cast<const uint64_t*>(k.data()), k.size() / 4) +
                               t->sumWords(reinterpret_cast<const uint64_t*>(v.data()), v.size() / 4);
      (void)sink;
      readSeconds = std::min(readSeconds, secondsSince(start));
    }
    std::printf("%-7s scores %5.1f GB/s, accumulate %5.1f GB/s, plain read %5.1f GB/s; both %.3f ms per %zu KV heads\n",
                mn::isaName(isa), cacheBytes / scoresSeconds / 1e9, cacheBytes / accumulateSeconds / 1e9,
                2 * cacheBytes / readSeconds / 1e9, (scoresSeconds + accumulateSeconds) * 1e3, kCaches);
  }
  return 0;
}
