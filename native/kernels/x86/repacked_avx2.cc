// AVX2 matmul over Q4_0 rows interleaved 128 at a time (Q4_0x128 against Q8_0 activations; layout in quants.h).
//
// Half a line of a block's quants holds 4 bytes (8 levels) of each of 8 rows, so a vector's eight 32-bit lanes are 8
// rows. vpmaddubsw of the low (high) nibbles with 4 of the activation's values broadcast adds 2 pair sums to every
// row's lane; eight of them sum a row's whole 32-value block (each i16 at most 8 * 2 * 15 * 127 = 30480), one
// vpmaddwd folds the pairs, and -8 * the block's activation sum cancels the levels' offset. Each (row, column) then
// adds its blocks in order, acc = fma(float(sum), d_w * d_x, acc), exactly as scalar::matmulInterleaved, the AVX2
// file-layout kernel and llama.cpp do: decode, prefill, the scalar reference and mapped weights agree to the bit.
// There is no Q4_Kx64 kernel for AVX2; such matrices stay as the file has them (interleaves() in kernels.h).
//
// Decode walks each group block by block (one memory stream, 2304 contiguous bytes a block), the 16 sets of 8 rows
// keeping their sums in L1. Prefill unpacks 8 rows' block once for 4 columns.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/quants.h"
#include "kernels/x86/x86_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)

#define MN_X86_TARGET "avx2,fma,f16c"
#include "kernels/x86/target_begin.h"

#include "kernels/x86/simd_common.h"

namespace mn {
namespace x86 {
namespace {

constexpr size_t kUnitRows = 8;                            // rows per vector: a unit
constexpr size_t kGroupUnits = kQ4_0x128Rows / kUnitRows;  // 16
constexpr size_t kPrefetchBytes = 4608;                    // as the file-layout decode
constexpr size_t kActChunkBlocks = 512;                    // activation offsets and scales prepared at a time
constexpr size_t kPrefillCols = 4;

// -8 * sum(q_x) of a Q8_0 block: the offset of Q4_0's unsigned levels
MN_INLINE int32_t levelOffset(const BlockQ8_0& block) {
  int32_t sum = 0;
  for (int8_t q : block.qs) sum += q;
  return -8 * sum;
}

// Blocks [b0, b0 + count) of one activation row -> their level offsets and scales
void prepareActivations(const uint8_t* x, size_t b0, size_t count, int32_t* offsets, float* scales) {
  const BlockQ8_0* blocks = reinterpret_cast<const BlockQ8_0*>(x) + b0;
  for (size_t i = 0; i < count; i++) {
    offsets[i] = levelOffset(blocks[i]);
    scales[i] = halfToFloat(blocks[i].d);
  }
}

// The unpacked levels of one block of 8 rows: low[k] holds each row's values 4k..4k+3, high[k] its 16+4k..16+4k+3
struct UnitLevels {
  __m256i low[4], high[4];
};

// Unit u (rows 8u .. 8u + 7 of the group) of the group block at `block`
MN_INLINE UnitLevels unitLevels(const uint8_t* block, size_t u) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const size_t s = u / 2, half = 32 * (u % 2);
  UnitLevels levels;
  for (size_t k = 0; k < 4; k++) {
    const __m256i quants =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + q4_0x128LineOffset(s, k) + half));
    levels.low[k] = _mm256_and_si256(quants, low4);
    levels.high[k] = _mm256_and_si256(_mm256_srli_epi16(quants, 4), low4);
  }
  return levels;
}

// d_w of unit u's 8 rows in the group block at `block`
MN_INLINE __m256 unitScales(const uint8_t* block, size_t u) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2 * kUnitRows * u)));
}

// sum_j (q_w - 8) * q_x of each of the 8 rows' block against activation block xb (offset = -8 * sum(q_x))
MN_INLINE __m256i unitSums(const UnitLevels& w, const BlockQ8_0& xb, int32_t offset) {
  const uint8_t* xq = reinterpret_cast<const uint8_t*>(xb.qs);
  __m256i pairs = _mm256_setzero_si256();
  for (size_t k = 0; k < 4; k++) {
    const __m256i xLow = _mm256_set1_epi32(static_cast<int32_t>(loadU32(xq + 4 * k)));
    const __m256i xHigh = _mm256_set1_epi32(static_cast<int32_t>(loadU32(xq + 16 + 4 * k)));
    pairs = _mm256_add_epi16(pairs, _mm256_maddubs_epi16(w.low[k], xLow));
    pairs = _mm256_add_epi16(pairs, _mm256_maddubs_epi16(w.high[k], xHigh));
  }
  return _mm256_add_epi32(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)), _mm256_set1_epi32(offset));
}

// W rows [rowBegin, rowEnd) @ x (n,) -> y[r]: per chunk of activation blocks (prepared once), each group's units
// [u0, u1) walked block by block, their sums carried in y from one chunk to the next
void decode(const uint8_t* w, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x, float* y) {
  const size_t nBlocks = n / 32, groupBytes = nBlocks * kQ4_0x128BlockBytes;
  alignas(32) int32_t offsets[kActChunkBlocks];
  alignas(32) float scales[kActChunkBlocks];
  for (size_t b0 = 0; b0 < nBlocks; b0 += kActChunkBlocks) {
    const size_t count = nBlocks - b0 < kActChunkBlocks ? nBlocks - b0 : kActChunkBlocks;
    prepareActivations(x, b0, count, offsets, scales);
    const BlockQ8_0* xb = reinterpret_cast<const BlockQ8_0*>(x) + b0;
    for (size_t g = rowBegin / kQ4_0x128Rows; g * kQ4_0x128Rows < rowEnd; g++) {
      const size_t groupRow = g * kQ4_0x128Rows;
      const size_t first = rowBegin > groupRow ? rowBegin - groupRow : 0;
      const size_t end = rowEnd - groupRow < kQ4_0x128Rows ? rowEnd - groupRow : kQ4_0x128Rows;
      const size_t u0 = first / kUnitRows, u1 = (end + kUnitRows - 1) / kUnitRows;
      // rows [lo(u), hi(u)) of unit u are in the range
      const auto lo = [&](size_t u) { return u * kUnitRows > first ? u * kUnitRows : first; };
      const auto hi = [&](size_t u) { return (u + 1) * kUnitRows < end ? (u + 1) * kUnitRows : end; };
      __m256 acc[kGroupUnits];
      for (size_t u = u0; u < u1; u++) {
        acc[u] = b0 == 0 ? _mm256_setzero_ps() : loadLanes(y + groupRow + lo(u), lo(u) - u * kUnitRows, hi(u) - lo(u));
      }
      for (size_t i = 0; i < count; i++) {
        const uint8_t* block = w + g * groupBytes + (b0 + i) * kQ4_0x128BlockBytes;
        // the scale lines and the units' quant lines of the block kPrefetchBytes ahead
        for (size_t at = 0; at < q4_0x128LineOffset(0, 0); at += 64) {
          _mm_prefetch(reinterpret_cast<const char*>(block + at + kPrefetchBytes), _MM_HINT_T0);
        }
        for (size_t at = q4_0x128LineOffset(u0 / 2, 0); at < q4_0x128LineOffset((u1 - 1) / 2 + 1, 0); at += 64) {
          _mm_prefetch(reinterpret_cast<const char*>(block + at + kPrefetchBytes), _MM_HINT_T0);
        }
        const __m256 dx = _mm256_set1_ps(scales[i]);
        for (size_t u = u0; u < u1; u++) {
          const __m256i sums = unitSums(unitLevels(block, u), xb[i], offsets[i]);
          acc[u] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_mul_ps(unitScales(block, u), dx), acc[u]);
        }
      }
      for (size_t u = u0; u < u1; u++) storeLanes(y + groupRow + lo(u), acc[u], lo(u) - u * kUnitRows, hi(u) - lo(u));
    }
  }
}

// W rows [rowBegin, rowEnd) @ X (C columns) -> Y[c * ldy + r], 8 rows at a time. offsets and scales hold the columns'
// prepared activations (nBlocks apart), or are null when the rows are too long for them: then each block's are computed
// where they are used.
template <size_t C>
void prefillColumns(const uint8_t* w, size_t nBlocks, size_t rowBegin, size_t rowEnd, const uint8_t* x,
                    size_t actRowBytes, const int32_t* offsets, const float* scales, float* y, size_t ldy) {
  const size_t groupBytes = nBlocks * kQ4_0x128BlockBytes;
  for (size_t r0 = rowBegin - rowBegin % kUnitRows; r0 < rowEnd; r0 += kUnitRows) {
    const size_t g = r0 / kQ4_0x128Rows, u = r0 % kQ4_0x128Rows / kUnitRows;
    const uint8_t* group = w + g * groupBytes;
    __m256 acc[C];
    for (size_t c = 0; c < C; c++) acc[c] = _mm256_setzero_ps();
    for (size_t b = 0; b < nBlocks; b++) {
      const uint8_t* block = group + b * kQ4_0x128BlockBytes;
      const UnitLevels levels = unitLevels(block, u);
      const __m256 dw = unitScales(block, u);
      for (size_t c = 0; c < C; c++) {
        const BlockQ8_0& xb = reinterpret_cast<const BlockQ8_0*>(x + c * actRowBytes)[b];
        const int32_t offset = offsets != nullptr ? offsets[c * nBlocks + b] : levelOffset(xb);
        const float dx = scales != nullptr ? scales[c * nBlocks + b] : halfToFloat(xb.d);
        const __m256i sums = unitSums(levels, xb, offset);
        acc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_mul_ps(dw, _mm256_set1_ps(dx)), acc[c]);
      }
    }
    const size_t lo = r0 > rowBegin ? r0 : rowBegin, hi = r0 + kUnitRows < rowEnd ? r0 + kUnitRows : rowEnd;
    for (size_t c = 0; c < C; c++) storeLanes(y + c * ldy + lo, acc[c], lo - r0, hi - lo);
  }
}

// Columns are taken kPrefillCols at a time, their activation offsets and scales prepared once per tile (for rows of
// up to kActChunkBlocks blocks; Mixtral's longest have 448)
void prefill(const uint8_t* w, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x, size_t actRowBytes,
             size_t nCols, float* y, size_t ldy) {
  const size_t nBlocks = n / 32;
  alignas(32) int32_t offsetBuffer[kPrefillCols * kActChunkBlocks];
  alignas(32) float scaleBuffer[kPrefillCols * kActChunkBlocks];
  const bool prepared = nBlocks <= kActChunkBlocks;
  const int32_t* offsets = prepared ? offsetBuffer : nullptr;
  const float* scales = prepared ? scaleBuffer : nullptr;
  for (size_t c0 = 0; c0 < nCols; c0 += kPrefillCols) {
    const size_t cols = nCols - c0 < kPrefillCols ? nCols - c0 : kPrefillCols;
    for (size_t c = 0; prepared && c < cols; c++) {
      prepareActivations(x + (c0 + c) * actRowBytes, 0, nBlocks, offsetBuffer + c * nBlocks, scaleBuffer + c * nBlocks);
    }
    const uint8_t* xTile = x + c0 * actRowBytes;
    float* yTile = y + c0 * ldy;
    switch (cols) {
      case 4: prefillColumns<4>(w, nBlocks, rowBegin, rowEnd, xTile, actRowBytes, offsets, scales, yTile, ldy); break;
      case 3: prefillColumns<3>(w, nBlocks, rowBegin, rowEnd, xTile, actRowBytes, offsets, scales, yTile, ldy); break;
      case 2: prefillColumns<2>(w, nBlocks, rowBegin, rowEnd, xTile, actRowBytes, offsets, scales, yTile, ldy); break;
      default: prefillColumns<1>(w, nBlocks, rowBegin, rowEnd, xTile, actRowBytes, offsets, scales, yTile, ldy); break;
    }
  }
}

void matmulInterleaved(GgmlType wType, const uint8_t* w, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x,
                       size_t actRowBytes, size_t nCols, float* y, size_t ldy) {
  if (wType != GgmlType::Q4_0 || rowBegin >= rowEnd) return;
  if (nCols == 1) {
    decode(w, n, rowBegin, rowEnd, x, y);
  } else {
    prefill(w, n, rowBegin, rowEnd, x, actRowBytes, nCols, y, ldy);
  }
}

}  // namespace
}  // namespace x86
}  // namespace mn

#include "kernels/x86/target_end.h"

namespace mn {
namespace x86 {
extern const MatmulInterleavedFn kMatmulInterleavedAvx2 = matmulInterleaved;
}  // namespace x86
}  // namespace mn

#endif
