// A measured prototype for the next prefill lever (docs/performance.md, "A dense slice"), not used by the engine:
// a Q4_0 x Q8_0 register tile of 32 rows x 4 columns whose lanes are rows, each lane summing whole 32-value blocks,
// so the float scaling is paid once per block and 512 products instead of once per 128 as in the engine's tile. Each
// group of 16 rows is repacked once per call into unpacked levels (8 vectors of 16 rows x 4 levels per block), which
// every column tile then reads. It sums each (row, column) over the blocks in one accumulator, an order the engine's
// decode does not use, so landing it means changing decode's order too (prefill and decode must stay bit-identical).
//
// Build and run from the repository root (x86-64 with AVX-512 VNNI):
//   g++ -std=c++17 -O3 -march=native -pthread -Inative bench/q4_0-prefill-prototype.cc native/common/cpu.cc \
//     native/kernels/*.cc native/kernels/x86/*.cc -o build/q4_0-prefill-prototype && build/q4_0-prefill-prototype [n] [rows]
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/quants.h"

using namespace mn;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// One block of 16 rows: level vector k holds levels 4k..4k+3 of every row (lane r = row r), and the rows' scales.
struct alignas(64) RowGroupBlock {
  __m512i levels[8];
  __m512 d;
};

// Rows [0, 16) at w -> out[b] for every block b. Level 4k + j of a block is the low nibble of qs[4k + j] for k < 4 and
// the high nibble of qs[4(k - 4) + j] after, so its activation is always x.qs[4k + j].
void repackRowGroup(const uint8_t* w, size_t rowBytes, size_t nBlocks, RowGroupBlock* out) {
  for (size_t b = 0; b < nBlocks; b++) {
    alignas(64) uint8_t levels[8][16][4];
    alignas(64) float d[16];
    for (int r = 0; r < 16; r++) {
      const BlockQ4_0& block = reinterpret_cast<const BlockQ4_0*>(w + r * rowBytes)[b];
      d[r] = _cvtsh_ss(block.d);
      for (int k = 0; k < 8; k++) {
        for (int j = 0; j < 4; j++) {
          const uint8_t byte = block.qs[(k % 4) * 4 + j];
          levels[k][r][j] = k < 4 ? (byte & 15) : (byte >> 4);
        }
      }
    }
    for (int k = 0; k < 8; k++) out[b].levels[k] = _mm512_load_si512(levels[k]);
    out[b].d = _mm512_load_ps(d);
  }
}

// y[c * ldy + r] = rows (two groups of 16) . columns c < C, over all blocks. offsets[c * nBlocks + b] is -8 times the
// sum of column c's block b (Q4_0's levels are unsigned), scales[c * nBlocks + b] its d.
template <int C>
void tile(const RowGroupBlock* g0, const RowGroupBlock* g1, size_t nBlocks, const uint8_t* x, size_t actRowBytes,
          const int32_t* offsets, const float* scales, float* y, size_t ldy) {
  __m512 acc[2][C];
  for (int c = 0; c < C; c++) acc[0][c] = acc[1][c] = _mm512_setzero_ps();
  for (size_t b = 0; b < nBlocks; b++) {
    __m512i sums[2][C];
    for (int c = 0; c < C; c++) sums[0][c] = sums[1][c] = _mm512_set1_epi32(offsets[c * nBlocks + b]);
    for (int k = 0; k < 8; k++) {
      const __m512i w0 = _mm512_load_si512(&g0[b].levels[k]), w1 = _mm512_load_si512(&g1[b].levels[k]);
      for (int c = 0; c < C; c++) {
        int32_t four;
        std::memcpy(&four, reinterpret_cast<const BlockQ8_0*>(x + c * actRowBytes)[b].qs + 4 * k, 4);
        const __m512i xs = _mm512_set1_epi32(four);
        sums[0][c] = _mm512_dpbusd_epi32(sums[0][c], w0, xs);
        sums[1][c] = _mm512_dpbusd_epi32(sums[1][c], w1, xs);
      }
    }
    for (int c = 0; c < C; c++) {
      const __m512 dx = _mm512_set1_ps(scales[c * nBlocks + b]);
      acc[0][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums[0][c]), _mm512_mul_ps(g0[b].d, dx), acc[0][c]);
      acc[1][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums[1][c]), _mm512_mul_ps(g1[b].d, dx), acc[1][c]);
    }
  }
  for (int c = 0; c < C; c++) {
    _mm512_storeu_ps(y + c * ldy, acc[0][c]);
    _mm512_storeu_ps(y + c * ldy + 16, acc[1][c]);
  }
}

constexpr int kCols = 4;

// Buffers kept across calls, as an engine would keep them, so the timing holds no page faults.
struct Scratch {
  std::vector<RowGroupBlock> repacked;
  std::vector<int32_t> offsets;
  std::vector<float> scales;
};

// W (nRows, a multiple of 32) Q4_0 @ X (nCols, a multiple of kCols) Q8_0 -> Y[c * nRows + r], one thread
void matmulBlockSums(const uint8_t* w, size_t rowBytes, size_t n, size_t nRows, const uint8_t* x, size_t actRowBytes,
                     size_t nCols, float* y, Scratch& scratch) {
  const size_t nBlocks = n / 32;
  std::vector<RowGroupBlock>& repacked = scratch.repacked;
  std::vector<int32_t>& offsets = scratch.offsets;
  std::vector<float>& scales = scratch.scales;
  repacked.resize(2 * nBlocks);
  offsets.resize(nCols * nBlocks);
  scales.resize(nCols * nBlocks);
  for (size_t c = 0; c < nCols; c++) {
    for (size_t b = 0; b < nBlocks; b++) {
      const BlockQ8_0& block = reinterpret_cast<const BlockQ8_0*>(x + c * actRowBytes)[b];
      int sum = 0;
      for (int j = 0; j < 32; j++) sum += block.qs[j];
      offsets[c * nBlocks + b] = -8 * sum;
      scales[c * nBlocks + b] = _cvtsh_ss(block.d);
    }
  }
  for (size_t r0 = 0; r0 < nRows; r0 += 32) {
    repackRowGroup(w + r0 * rowBytes, rowBytes, nBlocks, repacked.data());
    repackRowGroup(w + (r0 + 16) * rowBytes, rowBytes, nBlocks, repacked.data() + nBlocks);
    for (size_t c0 = 0; c0 < nCols; c0 += kCols) {
      alignas(64) float out[kCols * 32];
      tile<kCols>(repacked.data(), repacked.data() + nBlocks, nBlocks, x + c0 * actRowBytes, actRowBytes,
                  offsets.data() + c0 * nBlocks, scales.data() + c0 * nBlocks, out, 32);
      for (int c = 0; c < kCols; c++)
        for (int r = 0; r < 32; r++) y[(c0 + c) * nRows + r0 + r] = out[c * 32 + r];
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  const size_t n = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 4096;
  const size_t nRows = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 1024;
  const size_t nCols = 64;
  if (n == 0 || n % 128 != 0 || nRows == 0 || nRows % 32 != 0) {
    std::fprintf(stderr, "n must be a positive multiple of 128 and rows of 32; got n %zu, rows %zu\n", n, nRows);
    return 2;
  }
  const KernelTable& k = kernels();
  const size_t rowBytes = n / 32 * sizeof(BlockQ4_0);
  const size_t actRowBytes = activationRowBytes(ActFormat::Q8_0, n);
  uint32_t state = 1;
  const auto uniform = [&] {
    state = state * 1664525u + 1013904223u;
    return static_cast<float>(state >> 8) / 16777216.0f * 2 - 1;
  };
  std::vector<float> values(std::max(nRows, nCols) * n);
  std::vector<uint8_t> w(nRows * rowBytes), x(nCols * actRowBytes);
  for (float& v : values) v = uniform();
  for (size_t r = 0; r < nRows; r++) quantizeRow(GgmlType::Q4_0, values.data() + r * n, w.data() + r * rowBytes, n);
  for (float& v : values) v = uniform();
  for (size_t c = 0; c < nCols; c++) k.quantizeActivations(ActFormat::Q8_0, values.data() + c * n, x.data() + c * actRowBytes, n);

  std::vector<float> engine(nCols * nRows), prototype(nCols * nRows);
  const double flop = 2.0 * n * nRows * nCols;
  std::vector<double> ratios;
  Scratch scratch;
  for (int pass = 0; pass < 9; pass++) {
    const double t0 = now();
    k.matmul(GgmlType::Q4_0, w.data(), rowBytes, n, 0, nRows, x.data(), actRowBytes, nCols, engine.data(), nRows);
    const double t1 = now();
    matmulBlockSums(w.data(), rowBytes, n, nRows, x.data(), actRowBytes, nCols, prototype.data(), scratch);
    const double t2 = now();
    std::printf("engine tile %6.1f GFLOP/s, block-sum prototype %6.1f GFLOP/s\n", flop / (t1 - t0) / 1e9,
                flop / (t2 - t1) / 1e9);
    ratios.push_back((t1 - t0) / (t2 - t1));
  }
  double maxDifference = 0, maxValue = 0;
  for (size_t i = 0; i < engine.size(); i++) {
    maxDifference = std::max(maxDifference, static_cast<double>(std::fabs(engine[i] - prototype[i])));
    maxValue = std::max(maxValue, static_cast<double>(std::fabs(engine[i])));
  }
  std::sort(ratios.begin(), ratios.end());
  std::printf("n %zu, %zu rows, %zu columns, 1 thread: prototype / engine median %.2fx; largest difference %.3g (values up to %.3g)\n",
              n, nRows, nCols, ratios[ratios.size() / 2], maxDifference, maxValue);
  return maxDifference <= 1e-5 * maxValue * std::sqrt(static_cast<double>(n)) ? 0 : 1;
}
