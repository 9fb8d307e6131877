// Kernel benchmark: single-thread weight streaming (decode, one column) and prefill throughput (64 columns unless
// --cols says otherwise) of matmul for each ISA this CPU runs, at Mixtral's FFN shape (14336 rows of 4096 and 4096
// rows of 14336), and prefill on the same matrix repacked where the ISA has a kernel for its layout.
// Build and run: bench/kernels.sh [--threads N] [--cols N] [--quick]. Not part of the addon; links the kernel sources
// only.
//
// Decode GB/s = weight bytes read / time; the weights cycle through several copies larger than the caches so each
// call streams from memory. Prefill GFLOP/s = 2 * rows * n * columns / time. "read" is a plain streaming read of the
// same buffers, the ceiling decode can approach.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <time.h>
#include <vector>

#include "common/ggml_type.h"
#include "kernels/kernels.h"
#include "kernels/quants.h"

namespace {

using Clock = std::chrono::steady_clock;

double secondsSince(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

struct Shape {
  size_t rows, n;
};

struct Options {
  int threads = 1;
  bool quick = false;
  size_t cols = 64;  // prefill columns (an expert's share of a 512-token chunk is about 128)
  std::string isa;  // only this ISA when set
};

std::vector<float> randomFloats(size_t count, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> values(count);
  for (float& v : values) v = normal(rng);
  return values;
}

// `copies` weight matrices of `shape` in `type`, back to back (each copy quantized from the same random rows)
std::vector<uint8_t> makeWeights(mn::GgmlType type, Shape shape, size_t copies) {
  const size_t rowBytes = mn::ggmlRowBytes(type, shape.n);
  std::vector<uint8_t> bytes(rowBytes * shape.rows * copies);
  const std::vector<float> row = randomFloats(shape.n * 64, 7);
  for (size_t r = 0; r < shape.rows; r++) {
    mn::quantizeRow(type, row.data() + (r % 64) * shape.n, bytes.data() + r * rowBytes, shape.n);
  }
  for (size_t c = 1; c < copies; c++) std::memcpy(bytes.data() + c * rowBytes * shape.rows, bytes.data(),
      rowBytes * shape.rows);
  return bytes;
}

// Runs matmul over rows [0, rows) split into `threads` contiguous ranges (whole groups of an interleaved layout when
// `interleaved`: w is then the repacked matrix).
void runMatmul(const mn::KernelTable& k, mn::GgmlType type, const uint8_t* w, size_t rowBytes, Shape shape, size_t rows,
               const uint8_t* x, size_t actRowBytes, size_t nCols, float* y, int threads, bool interleaved = false) {
  const size_t grain = interleaved ? mn::interleavedGroupRows(type) : 1;
  const auto run = [&](size_t begin, size_t end) {
    if (interleaved) {
      k.matmulInterleaved(type, w, shape.n, begin, end, x, actRowBytes, nCols, y, shape.rows);
    } else {
      k.matmul(type, w, rowBytes, shape.n, begin, end, x, actRowBytes, nCols, y, shape.rows);
    }
  };
  if (threads <= 1) {
    run(0, rows);
    return;
  }
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; t++) {
    const size_t begin = rows / grain * t / threads * grain, end = t + 1 == threads ? rows : rows / grain * (t + 1) /
        threads * grain;
    pool.emplace_back([&, begin, end] { run(begin, end); });
  }
  for (std::thread& thread : pool) thread.join();
}

// CPU seconds of this thread: on a machine shared with other jobs, single-thread numbers should not count the time
// the scheduler gave to someone else.
double threadSeconds() {
  timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

bool gUseThreadTime = false;

// Best-of-N seconds per call of `work` (thread CPU time for one thread, wall time otherwise)
template <typename Work>
double bestSeconds(int repeats, Work work) {
  double best = 1e30;
  for (int i = 0; i < repeats; i++) {
    const Clock::time_point start = Clock::now();
    const double cpuStart = threadSeconds();
    work(i);
    best = std::min(best, gUseThreadTime ? threadSeconds() - cpuStart : secondsSince(start));
  }
  return best;
}

uint64_t streamRead(const uint8_t* p, size_t bytes) {
  const uint64_t* words = reinterpret_cast<const uint64_t*>(p);
  uint64_t a = 0, b = 0, c = 0, d = 0;
  for (size_t i = 0; i + 4 <= bytes / 8; i += 4) {
    a += words[i];
    b ^= words[i + 1];
    c += words[i + 2];
    d ^= words[i + 3];
  }
  return a + b + c + d;
}

double readBandwidth(const std::vector<uint8_t>& buffer, int threads) {
  volatile uint64_t sink = 0;
  if (threads == 1) {
    const double seconds = bestSeconds(5, [&](int) { sink = sink + streamRead(buffer.data(), buffer.size()); });
    return static_cast<double>(buffer.size()) / seconds / 1e9;
  }
  const double seconds = bestSeconds(5, [&](int) {
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; t++) {
      pool.emplace_back([&, t] {
        const size_t begin = buffer.size() * t / threads, end = buffer.size() * (t + 1) / threads;
        sink = sink + streamRead(buffer.data() + begin, end - begin);
      });
    }
    for (std::thread& thread : pool) thread.join();
  });
  return static_cast<double>(buffer.size()) / seconds / 1e9;
}

void benchType(mn::GgmlType type, Shape shape, const Options& options) {
  const char* typeName = mn::ggmlTypeTraits(type).name;
  const size_t rowBytes = mn::ggmlRowBytes(type, shape.n);
  const size_t matrixBytes = rowBytes * shape.rows;
  const size_t copies = std::max<size_t>(2, (256u << 20) / matrixBytes);
  const std::vector<uint8_t> weights = makeWeights(type, shape, copies);
  const mn::ActFormat format = mn::activationFormatFor(type);
  const size_t actRowBytes = mn::activationRowBytes(format, shape.n);
  const size_t kPrefillCols = options.cols;
  const std::vector<float> x = randomFloats(shape.n * kPrefillCols, 11);
  std::vector<float> y(shape.rows * kPrefillCols);

  std::printf("%-5s W (%zu, %zu) %.1f MB/matrix, read %.1f GB/s (%d thread%s)\n", typeName, shape.rows, shape.n,
              matrixBytes / 1e6, readBandwidth(weights, options.threads), options.threads,
                  options.threads > 1 ? "s" : "");
  for (mn::Isa isa : {mn::Isa::Scalar, mn::Isa::Avx2, mn::Isa::Avx512}) {
    const mn::KernelTable* k = mn::kernelsFor(isa);
    if (k == nullptr || (!options.isa.empty() && options.isa != mn::isaName(isa))) continue;
    std::vector<uint8_t> act(actRowBytes * kPrefillCols);
    for (size_t c = 0; c < kPrefillCols; c++) k->quantizeActivations(format, x.data() + c * shape.n,
        act.data() + c * actRowBytes, shape.n);

    const bool scalar = isa == mn::Isa::Scalar;
    const int decodeRepeats = options.quick || scalar ? 3 : 12;
    const double decodeSeconds = bestSeconds(decodeRepeats, [&](int i) {
      runMatmul(*k, type, weights.data() + (i % copies) * matrixBytes, rowBytes, shape, shape.rows, act.data(),
          actRowBytes, 1,
                y.data(), options.threads);
    });
    // The same kernel on 128 rows that stay in L2: the compute ceiling of decode.
    const size_t cachedRows = 128;
    const int cachedCalls = scalar ? 10 : 200;
    const double cachedSeconds = bestSeconds(decodeRepeats, [&](int) {
      for (int call = 0; call < cachedCalls; call++) {
        runMatmul(*k, type, weights.data(), rowBytes, shape, cachedRows, act.data(), actRowBytes, 1, y.data(), 1);
      }
    }) / cachedCalls;
    // Prefill on a slice of the rows for the scalar kernel, which would take seconds on the whole matrix.
    const size_t prefillRows = scalar ? std::min<size_t>(shape.rows, 256) : shape.rows;
    const double prefillSeconds = bestSeconds(options.quick || scalar ? 2 : 4, [&](int) {
      runMatmul(*k, type, weights.data(), rowBytes, shape, prefillRows, act.data(), actRowBytes, kPrefillCols, y.data(),
                options.threads);
    });
    const double flops = 2.0 * prefillRows * shape.n * kPrefillCols;
    std::printf("  %-7s decode %7.2f ms %6.1f GB/s (in L2: %6.1f GB/s) | prefill x%zu %8.2f ms %7.1f GFLOP/s\n",
                mn::isaName(isa), decodeSeconds * 1e3, matrixBytes / decodeSeconds / 1e9,
                cachedRows * rowBytes / cachedSeconds / 1e9, kPrefillCols, prefillSeconds * 1e3,
                    flops / prefillSeconds / 1e9);
    if (scalar || !k->interleaves(type)) continue;
    // The same matrices repacked at load (weights: "repacked"), decode and prefill as the engine runs them. Decode's
    // GB/s count the file's bytes, as the roofline does (Q4_Kx64 reads 148 bytes for 144).
    const size_t groups = shape.rows / mn::interleavedGroupRows(type);
    const size_t repackedBytes = groups * mn::interleavedGroupBytes(type, shape.n);
    std::vector<uint8_t> repacked(copies * repackedBytes);
    for (size_t copy = 0; copy < copies; copy++) {
      mn::repackInterleaved(type, weights.data() + copy * matrixBytes, rowBytes, shape.n, 0, groups,
                            repacked.data() + copy * repackedBytes);
    }
    const double repackedDecodeSeconds = bestSeconds(decodeRepeats, [&](int i) {
      runMatmul(*k, type, repacked.data() + (i % copies) * repackedBytes, rowBytes, shape, shape.rows, act.data(),
                actRowBytes, 1, y.data(), options.threads, true);
    });
    const double repackedCachedSeconds = bestSeconds(decodeRepeats, [&](int) {
      for (int call = 0; call < cachedCalls; call++) {
        runMatmul(*k, type, repacked.data(), rowBytes, shape, cachedRows, act.data(), actRowBytes, 1, y.data(), 1,
                  true);
      }
    }) / cachedCalls;
    std::printf("  %-7s repacked decode %7.2f ms %6.1f GB/s (in L2: %6.1f GB/s)\n", mn::isaName(isa),
                repackedDecodeSeconds * 1e3, matrixBytes / repackedDecodeSeconds / 1e9,
                cachedRows * rowBytes / repackedCachedSeconds / 1e9);
    const double repackedSeconds = bestSeconds(options.quick ? 2 : 4, [&](int) {
      runMatmul(*k, type, repacked.data(), rowBytes, shape, shape.rows, act.data(), actRowBytes, kPrefillCols,
                y.data(), options.threads, true);
    });
    // 128 rows (a Q4_0x128 group, two Q4_Kx64 ones), which stay in L2: the compute ceiling of prefill
    const int groupCalls = 20;
    const double groupSeconds = bestSeconds(3, [&](int) {
      for (int call = 0; call < groupCalls; call++) {
        runMatmul(*k, type, repacked.data(), rowBytes, shape, cachedRows, act.data(), actRowBytes, kPrefillCols,
                  y.data(), 1, true);
      }
    }) / groupCalls;
    std::printf("  %-7s repacked prefill x%zu %8.2f ms %7.1f GFLOP/s (%zu rows in L2: %6.1f GFLOP/s)\n",
                mn::isaName(isa), kPrefillCols, repackedSeconds * 1e3, flops / repackedSeconds / 1e9, cachedRows,
                2.0 * cachedRows * shape.n * kPrefillCols / groupSeconds / 1e9);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  std::vector<mn::GgmlType> types = {mn::GgmlType::Q4_0, mn::GgmlType::Q4_K, mn::GgmlType::Q6_K, mn::GgmlType::Q8_0};
  for (int i = 1; i < argc; i++) {
    const std::string arg = argv[i];
    if (arg == "--threads" && i + 1 < argc) {
      options.threads = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--cols" && i + 1 < argc) {
      options.cols = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--quick") {
      options.quick = true;
    } else if (arg == "--all-types") {
      types = {mn::GgmlType::Q4_0, mn::GgmlType::Q4_K, mn::GgmlType::Q6_K, mn::GgmlType::Q8_0, mn::GgmlType::Q5_K,
               mn::GgmlType::Q3_K, mn::GgmlType::Q2_K, mn::GgmlType::Q5_0, mn::GgmlType::Q4_1, mn::GgmlType::Q5_1,
               mn::GgmlType::F16, mn::GgmlType::BF16, mn::GgmlType::F32};
    } else if (arg == "--type" && i + 1 < argc) {
      const std::string name = argv[++i];
      types.clear();
      for (uint32_t id : {0u, 1u, 2u, 3u, 6u, 7u, 8u, 10u, 11u, 12u, 13u, 14u, 30u}) {
        if (name == mn::ggmlTypeTraits(id).name) types.push_back(static_cast<mn::GgmlType>(id));
      }
    } else if (arg == "--isa" && i + 1 < argc) {
      options.isa = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--threads N] [--cols N] [--quick] [--all-types | --type Q4_K] [--isa avx512]\n",
                   argv[0]);
      return 2;
    }
  }
  gUseThreadTime = options.threads == 1;
  const mn::CpuFeatures& cpu = mn::detectedCpuFeatures();
  std::printf("cpu: avx2 %d avx512 %d avx512bf16 %d, active isa %s\n", cpu.avx2, cpu.avx512, cpu.avx512bf16,
              mn::isaName(mn::activeIsa()));
  for (mn::GgmlType type : types) {
    benchType(type, {14336, 4096}, options);
    if (!options.quick) benchType(type, {4096, 14336}, options);
  }
  return 0;
}
