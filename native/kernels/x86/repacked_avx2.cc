// AVX2 matmul over Q4_0 rows interleaved 128 at a time (Q4_0x128 against Q8_0 activations; layout in quants.h), and
// the Q4_0 prefill of rows as the file has them, which copies them into the same runs first.
//
// Half a line of a block's quants holds 4 bytes (8 levels) of each of 8 rows, so a vector's eight 32-bit lanes are 8
// rows. vpmaddubsw of the low (high) nibbles with 4 of the activation's values broadcast adds 2 pair sums to every
// row's lane; eight of them sum a row's whole 32-value block, one vpmaddwd folds the pairs, and -8 * the block's
// activation sum cancels the levels' offset. Each (row, column) then adds its blocks in order,
// acc = fma(float(sum), d_w * d_x, acc), exactly as scalar::matmulInterleaved, the AVX2 file-layout decode and
// llama.cpp do: decode, prefill, the scalar reference and mapped weights agree to the bit. There is no Q4_Kx64 kernel
// for AVX2; such matrices stay as the file has them (interleaves() in kernels.h).
//
// Decode walks each group block by block (one memory stream, 2304 contiguous bytes a block), the 16 sets of 8 rows
// keeping their sums in L1. Prefill takes a run of 16 rows (one line per 4 values) against 2 columns whose
// activations were broadcast once into memory: each vector loaded serves two vpmaddubsw, and every operand comes
// straight from a load, where broadcasting in the loop took the shuffle ports the multiplies need.
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

// One column's activation block, prepared for prefill so that the kernel's loads need no broadcast: its values
// 4k..4k+3 (k < 4) and 16 + 4k..16 + 4k + 3 (4 + k) each broadcast to a whole vector, the level offsets, and d_x.
// vpmaddubsw puts values 4k, 4k + 1, 16 + 4k, 17 + 4k of every k into the first i16 of each lane and the other
// two of each four into the second, so `offset` holds -8 times each of those two sums, broadcast: starting each
// lane's i16 pairs there cancels the levels' offset inside the pairs, where no partial sum passes 16 * 8 * 128 = 16384.
struct alignas(32) PreparedBlock {
  __m256i x[8];
  __m256i offset;
  __m256 d;
};

constexpr size_t kPrefillCols = 2;      // columns per tile
constexpr size_t kPreparedBlocks = 16;  // blocks per chunk: prepared activations of a tile take 10 KB
constexpr size_t kRunRows = 16;

void prepareBlock(const BlockQ8_0& xb, PreparedBlock& out) {
  const uint8_t* q = reinterpret_cast<const uint8_t*>(xb.qs);
  for (size_t k = 0; k < 4; k++) {
    out.x[k] = _mm256_set1_epi32(static_cast<int32_t>(loadU32(q + 4 * k)));
    out.x[4 + k] = _mm256_set1_epi32(static_cast<int32_t>(loadU32(q + 16 + 4 * k)));
  }
  // pairs holds x[2i] + x[2i + 1] in i16 i: the even i16s of all 8 lanes sum to the first offset, the odd to the second
  const __m256i values = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
  const __m256i pairs = _mm256_maddubs_epi16(_mm256_set1_epi8(1), values);
  __m128i sums = _mm_add_epi16(_mm256_castsi256_si128(pairs), _mm256_extracti128_si256(pairs, 1));
  sums = _mm_add_epi16(sums, _mm_unpackhi_epi64(sums, sums));
  sums = _mm_add_epi16(sums, _mm_shuffle_epi32(sums, 1));
  out.offset = _mm256_broadcastd_epi32(_mm_mullo_epi16(sums, _mm_set1_epi16(-8)));
  out.d = _mm256_set1_ps(halfToFloat(xb.d));
}

// Units 2s and 2s + 1 (rows 16s .. 16s + 15 of the group: the two halves of each of their lines) against C prepared
// columns (x[c * kPreparedBlocks + i] is column c's block i), blocks [0, count) from the group block at `block`;
// acc[u][c] holds unit 2s + u's lanes for column c.
template <size_t C>
MN_INLINE void runTile(const uint8_t* block, size_t s, size_t count, const PreparedBlock* x, __m256 (&acc)[2][C]) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  for (size_t i = 0; i < count; i++, block += kQ4_0x128BlockBytes) {
    __m256i pairs[2][C];
    for (size_t c = 0; c < C; c++) pairs[0][c] = pairs[1][c] = x[c * kPreparedBlocks + i].offset;
    // Kept rolled: unrolled, GCC loads every k's operands first and spills them.
#pragma GCC unroll 1
    for (size_t k = 0; k < 4; k++) {
      const uint8_t* line = block + q4_0x128LineOffset(s, k);
      const __m256i q0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(line));
      const __m256i q1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(line + 32));
      const __m256i low[2] = {_mm256_and_si256(q0, low4), _mm256_and_si256(q1, low4)};
      const __m256i high[2] = {_mm256_and_si256(_mm256_srli_epi16(q0, 4), low4),
                               _mm256_and_si256(_mm256_srli_epi16(q1, 4), low4)};
      for (size_t c = 0; c < C; c++) {
        const PreparedBlock& xb = x[c * kPreparedBlocks + i];
        for (size_t u = 0; u < 2; u++) {
          pairs[u][c] = _mm256_add_epi16(pairs[u][c], _mm256_maddubs_epi16(low[u], xb.x[k]));
          pairs[u][c] = _mm256_add_epi16(pairs[u][c], _mm256_maddubs_epi16(high[u], xb.x[4 + k]));
        }
      }
    }
    for (size_t u = 0; u < 2; u++) {
      const __m256 dw = unitScales(block, 2 * s + u);
      for (size_t c = 0; c < C; c++) {
        const __m256i sums = _mm256_madd_epi16(pairs[u][c], _mm256_set1_epi16(1));
        const __m256 scale = _mm256_mul_ps(dw, x[c * kPreparedBlocks + i].d);
        acc[u][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), scale, acc[u][c]);
      }
    }
  }
}

// Runs [sBegin, sEnd) of a group whose first row is groupRow and whose chunk of blocks starts at `blocks`, rows
// [rowBegin, rowEnd) of them, @ C prepared columns: each run carries its sums in Y from one chunk to the next (first:
// this is the first chunk).
template <size_t C>
void prefillRuns(const uint8_t* blocks, size_t groupRow, size_t sBegin, size_t sEnd, size_t rowBegin, size_t rowEnd,
                 bool first, size_t count, const PreparedBlock* x, float* y, size_t ldy) {
  for (size_t s = sBegin; s < sEnd; s++) {
    size_t unitRow[2], lo[2], hi[2];  // rows [lo, hi) of each unit are in the range
    for (size_t u = 0; u < 2; u++) {
      unitRow[u] = groupRow + kRunRows * s + kUnitRows * u;
      lo[u] = unitRow[u] > rowBegin ? unitRow[u] : rowBegin;
      hi[u] = unitRow[u] + kUnitRows < rowEnd ? unitRow[u] + kUnitRows : rowEnd;
      if (hi[u] < lo[u]) hi[u] = lo[u];
    }
    __m256 acc[2][C];
    for (size_t u = 0; u < 2; u++) {
      for (size_t c = 0; c < C; c++) {
        acc[u][c] = first || hi[u] == lo[u] ? _mm256_setzero_ps()
                                            : loadLanes(y + c * ldy + lo[u], lo[u] - unitRow[u], hi[u] - lo[u]);
      }
    }
    runTile<C>(blocks, s, count, x, acc);
    for (size_t u = 0; u < 2; u++) {
      if (hi[u] == lo[u]) continue;
      for (size_t c = 0; c < C; c++) storeLanes(y + c * ldy + lo[u], acc[u][c], lo[u] - unitRow[u], hi[u] - lo[u]);
    }
  }
}

// Rows [rowBegin, rowEnd) of one group (first row groupRow, its chunk of blocks [b0, b0 + count) at `blocks`) @ every
// column, 2 at a time, each pair's activations prepared once for the group's runs
void prefillChunk(const uint8_t* blocks, size_t groupRow, size_t rowBegin, size_t rowEnd, size_t b0, size_t count,
                  const uint8_t* x, size_t actRowBytes, size_t nCols, float* y, size_t ldy) {
  const size_t sBegin = (rowBegin - groupRow) / kRunRows, sEnd = (rowEnd - groupRow + kRunRows - 1) / kRunRows;
  PreparedBlock prepared[kPrefillCols * kPreparedBlocks];
  for (size_t c0 = 0; c0 < nCols; c0 += kPrefillCols) {
    const size_t cols = nCols - c0 < kPrefillCols ? nCols - c0 : kPrefillCols;
    for (size_t c = 0; c < cols; c++) {
      const BlockQ8_0* xb = reinterpret_cast<const BlockQ8_0*>(x + (c0 + c) * actRowBytes) + b0;
      for (size_t i = 0; i < count; i++) prepareBlock(xb[i], prepared[c * kPreparedBlocks + i]);
    }
    if (cols == 2) {
      prefillRuns<2>(blocks, groupRow, sBegin, sEnd, rowBegin, rowEnd, b0 == 0, count, prepared, y + c0 * ldy, ldy);
    } else {
      prefillRuns<1>(blocks, groupRow, sBegin, sEnd, rowBegin, rowEnd, b0 == 0, count, prepared, y + c0 * ldy, ldy);
    }
  }
}

// Prefill takes a group at a time, and per chunk of its blocks every pair of columns: the chunk's 37 KB stay in
// cache while they pass. One pass over all the rows per tile of columns, as before, streamed the matrix from memory
// once per tile and ran at half the speed (bench/kernels.sh).
void prefill(const uint8_t* w, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x, size_t actRowBytes,
             size_t nCols, float* y, size_t ldy) {
  const size_t nBlocks = n / 32, groupBytes = nBlocks * kQ4_0x128BlockBytes;
  for (size_t r0 = rowBegin; r0 < rowEnd;) {
    const size_t groupRow = r0 / kQ4_0x128Rows * kQ4_0x128Rows;
    const size_t r1 = groupRow + kQ4_0x128Rows < rowEnd ? groupRow + kQ4_0x128Rows : rowEnd;
    const uint8_t* group = w + groupRow / kQ4_0x128Rows * groupBytes;
    for (size_t b0 = 0; b0 < nBlocks; b0 += kPreparedBlocks) {
      const size_t count = nBlocks - b0 < kPreparedBlocks ? nBlocks - b0 : kPreparedBlocks;
      prefillChunk(group + b0 * kQ4_0x128BlockBytes, groupRow, r0, r1, b0, count, x, actRowBytes, nCols, y, ldy);
    }
    r0 = r1;
  }
}

// Rows [rowBegin, rowEnd) of Q4_0 as the file has them: each panel of up to 128 rows, a chunk of blocks at a time, is
// first copied into a Q4_0x128 group (packQ4_0x128Group, rows past the panel zero) and then multiplied as the repacked
// layout is. The copy costs a few percent of a prefill of 8 or more columns.
void prefillFileLayout(const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x,
                       size_t actRowBytes, size_t nCols, float* y, size_t ldy) {
  alignas(64) uint8_t group[kPreparedBlocks * kQ4_0x128BlockBytes];
  const size_t nBlocks = n / 32;
  for (size_t r0 = rowBegin; r0 < rowEnd; r0 += kQ4_0x128Rows) {
    const size_t r1 = rowEnd - r0 < kQ4_0x128Rows ? rowEnd : r0 + kQ4_0x128Rows;
    for (size_t b0 = 0; b0 < nBlocks; b0 += kPreparedBlocks) {
      const size_t count = nBlocks - b0 < kPreparedBlocks ? nBlocks - b0 : kPreparedBlocks;
      packQ4_0x128Group(w + r0 * wRowBytes + b0 * sizeof(BlockQ4_0), wRowBytes, r1 - r0, count, group);
      prefillChunk(group, r0, r0, r1, b0, count, x, actRowBytes, nCols, y, ldy);
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
extern const Q4_0PrefillFn kQ4_0PrefillAvx2 = prefillFileLayout;
}  // namespace x86
}  // namespace mn

#endif
