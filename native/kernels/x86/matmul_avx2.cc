// AVX2 (+FMA, F16C) activation quantization, matmul and row dequantization.
//
// Q4_0 and Q8_0 weights meet Q8_0 activations block by block with vpmaddubsw (u8 x s8 -> i16 pairs). Q8_0 uses |q_w|
// and sign(q_x, q_w) (ggml's mul_sum_i8_pairs); its decode streams one row at a time and its prefill runs row x
// column tiles, each block's 8 partial sums scaled by d_w * d_x into a float accumulator per (row, column). Q4_0's
// raw nibbles are the unsigned operand, 8 * (pair sums of q_x) is subtracted, and eight rows go at a time, each
// row's blocks added in llama.cpp's order (its section below).
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/quants.h"
#include "kernels/scalar.h"
#include "kernels/x86/x86_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)

#define MN_X86_TARGET "avx2,fma,f16c"
#include "kernels/x86/target_begin.h"

#include "kernels/x86/simd_common.h"

namespace mn {
namespace x86 {
namespace {

// ---- Q8_0 weights ----
// A dot product is summed in spans of kSpanBlocks blocks (4096 values). Within a span, each block's 8 partial i32 sums
// are scaled by d_w * d_x and added lane-wise, even blocks (counted from the span start) into one accumulator and odd
// ones into another (two dependency chains for single-row decode). At the span's end the two are added and the lanes
// summed; span results are added in order. Decode and prefill both sum this way, so each (row, column) comes out
// bit-identical whatever the call's columns, tile shape or row range.

constexpr int kTileRows = 2;
constexpr int kTileCols = 3;
constexpr size_t kSpanBlocks = 128;

// sum(q_w * q_x) of one Q8_0 block as 8 partial i32 sums (ggml's mul_sum_i8_pairs)
MN_INLINE __m256i q8Dot(__m256i wq, __m256i xq) {
  const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(wq, wq), _mm256_sign_epi8(xq, wq));
  return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

MN_INLINE __m256i q8Quants(const uint8_t* row, size_t b) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(reinterpret_cast<const BlockQ8_0*>(row)[b].qs));
}

MN_INLINE uint16_t q8Scale(const uint8_t* row, size_t b) { return reinterpret_cast<const BlockQ8_0*>(row)[b].d; }

// acc[r][c] += blocks first, first + 2, ... < end of W rows (R) . X columns (C)
template <int R, int C>
MN_INLINE void tilePass(const uint8_t* w, size_t wRowBytes, size_t first, size_t end, const uint8_t* x,
                        size_t actRowBytes, __m256 (&acc)[R][C]) {
  for (size_t b = first; b < end; b += 2) {
    __m256i xq[C];
    float xd[C];
    for (int c = 0; c < C; c++) {
      xq[c] = q8Quants(x + c * actRowBytes, b);
      xd[c] = halfToFloat(q8Scale(x + c * actRowBytes, b));
    }
    for (int r = 0; r < R; r++) {
      const uint8_t* row = w + r * wRowBytes;
      const __m256i wq = q8Quants(row, b);
      const float wd = halfToFloat(q8Scale(row, b));
      for (int c = 0; c < C; c++) {
        const __m256 sums = _mm256_cvtepi32_ps(q8Dot(wq, xq[c]));
        acc[r][c] = _mm256_fmadd_ps(sums, _mm256_set1_ps(wd * xd[c]), acc[r][c]);
      }
    }
  }
}

// W rows (R, nBlocks*32) Q8_0 @ X (C, nBlocks*32) Q8_0 -> y[c * ldy + r], in the order above: per span a pass over the
// even blocks and one over the odd blocks (the tile has no registers for both accumulators at once)
template <int R, int C>
void tileQ8(const uint8_t* w, size_t wRowBytes, size_t nBlocks, const uint8_t* x, size_t actRowBytes, float* y,
            size_t ldy) {
  sumTileSpans<R, C>(nBlocks, kSpanBlocks, y, ldy, [&](size_t first, size_t end, __m256 (&acc)[R][C]) {
    tilePass<R, C>(w, wRowBytes, first, end, x, actRowBytes, acc);
  });
}

template <int C>
void tileQ8Rows(size_t rows, const uint8_t* w, size_t wRowBytes, size_t nBlocks, const uint8_t* x, size_t actRowBytes,
                float* y, size_t ldy) {
  if (rows == 2) {
    tileQ8<2, C>(w, wRowBytes, nBlocks, x, actRowBytes, y, ldy);
  } else {
    tileQ8<1, C>(w, wRowBytes, nBlocks, x, actRowBytes, y, ldy);
  }
}

// Decode (one column) streams one row at a time against activations unpacked once per call: several rows in flight
// interleave several memory streams, which prefetch worse than one (see matmul_avx512.cc).

constexpr size_t kPackBlocks = 512;      // activation blocks packed per chunk: 16384 values
constexpr size_t kPrefetchBytes = 4608;  // as the AVX-512 decode

// Q8_0 activation blocks as the Q8_0 decode reads them (arrays, so no padding between the pieces)
struct PackedActivations {
  __m256i q[kPackBlocks];
  float d[kPackBlocks];
};

void packActivations(const uint8_t* x, size_t blockBegin, size_t count, PackedActivations& out) {
  const BlockQ8_0* blocks = reinterpret_cast<const BlockQ8_0*>(x) + blockBegin;
  for (size_t b = 0; b < count; b++) {
    out.q[b] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blocks[b].qs));
    out.d[b] = halfToFloat(blocks[b].d);
  }
}

// d_w * d_x of blocks b .. b + 7, converted together
MN_INLINE __m256 q8Scales8(const uint8_t* row, size_t b, const PackedActivations& x) {
  __m128i halves = _mm_cvtsi32_si128(q8Scale(row, b));
  halves = _mm_insert_epi16(halves, q8Scale(row, b + 1), 1);
  halves = _mm_insert_epi16(halves, q8Scale(row, b + 2), 2);
  halves = _mm_insert_epi16(halves, q8Scale(row, b + 3), 3);
  halves = _mm_insert_epi16(halves, q8Scale(row, b + 4), 4);
  halves = _mm_insert_epi16(halves, q8Scale(row, b + 5), 5);
  halves = _mm_insert_epi16(halves, q8Scale(row, b + 6), 6);
  halves = _mm_insert_epi16(halves, q8Scale(row, b + 7), 7);
  return _mm256_mul_ps(_mm256_cvtph_ps(halves), _mm256_loadu_ps(x.d + b));
}

// One Q8_0 row's dot product with `count` packed blocks (row and x point at the first), in the span order above;
// `sum` carries the spans before them and `first` says there are none.
float q8RowDot(const uint8_t* row, size_t count, const PackedActivations& x, float sum, bool first) {
  for (size_t b0 = 0; b0 < count; b0 += kSpanBlocks) {
    const size_t spanEnd = count - b0 < kSpanBlocks ? count : b0 + kSpanBlocks;
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    size_t b = b0;
    for (; b + 8 <= spanEnd; b += 8) {
      for (size_t line = 0; line < 8 * sizeof(BlockQ8_0); line += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(row + b * sizeof(BlockQ8_0) + kPrefetchBytes + line), _MM_HINT_T0);
      }
      const __m256 scales = q8Scales8(row, b, x);
      for (int u = 0; u < 8; u++) {
        const __m256 scale = _mm256_permutevar8x32_ps(scales, _mm256_set1_epi32(u));
        acc[u % 2] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q8Dot(q8Quants(row, b + u), x.q[b + u])), scale, acc[u % 2]);
      }
    }
    for (; b < spanEnd; b++) {
      const __m256 scale = _mm256_set1_ps(halfToFloat(q8Scale(row, b)) * x.d[b]);
      __m256& target = (b - b0) % 2 == 0 ? acc[0] : acc[1];
      target = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q8Dot(q8Quants(row, b), x.q[b])), scale, target);
    }
    const float partial = horizontalSum(_mm256_add_ps(acc[0], acc[1]));
    sum = first && b0 == 0 ? partial : sum + partial;
  }
  return sum;
}

// W (nRows, n) rows [rowBegin, rowEnd) Q8_0 @ X (nCols, n) Q8_0 -> Y[c * ldy + r]
void matmulQ8(const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x,
              size_t actRowBytes, size_t nCols, float* y, size_t ldy) {
  const size_t nBlocks = n / 32;
  if (nCols == 1) {
    static_assert(kPackBlocks % kSpanBlocks == 0, "a packed chunk holds whole spans");
    PackedActivations packed;
    for (size_t b0 = 0; b0 < nBlocks; b0 += kPackBlocks) {
      const size_t count = nBlocks - b0 < kPackBlocks ? nBlocks - b0 : kPackBlocks;
      packActivations(x, b0, count, packed);
      for (size_t r = rowBegin; r < rowEnd; r++) {
        y[r] = q8RowDot(w + r * wRowBytes + b0 * sizeof(BlockQ8_0), count, packed, b0 == 0 ? 0.0f : y[r], b0 == 0);
      }
    }
    return;
  }
  for (size_t r = rowBegin; r < rowEnd; r += kTileRows) {
    const size_t rows = rowEnd - r < kTileRows ? rowEnd - r : kTileRows;
    for (size_t c = 0; c < nCols; c += kTileCols) {
      const size_t cols = nCols - c < kTileCols ? nCols - c : kTileCols;
      const auto tile = cols == 3 ? tileQ8Rows<3> : cols == 2 ? tileQ8Rows<2> : tileQ8Rows<1>;
      tile(rows, w + r * wRowBytes, wRowBytes, nBlocks, x + c * actRowBytes, actRowBytes, y + c * ldy + r, ldy);
    }
  }
}

// ---- Q4_0 weights: eight rows at a time, each row's blocks added one after another ----
// llama.cpp's x86 Q4_0 kernels (on its 8-row repacked layout) add each block's integer dot product into the row's
// sum in block order, acc = fma(float(sum_j (q_w - 8) * q_x), d_w * d_x, acc), and so does this kernel, so its results
// are llama.cpp's to the bit (and the scalar reference's). Eight rows of the file's layout go through together: each
// row's block meets the activations in i16 pair sums (vpmaddubsw on the raw nibbles, minus 8 times the activations'
// pair sums), a tree of vphaddw folds the eight rows' pair sums into one value per row (|sum| <= 32 * 8 * 127 = 32512,
// so nothing wraps), and one FMA adds the eight rows' block terms. Prefill (several columns) copies the rows into
// Q4_0x128's runs and multiplies them there (kQ4_0PrefillAvx2, repacked_avx2.cc), in the same order: every (row,
// column) gets the same bits whatever the call's columns, its row range or the rows that share its group.

constexpr size_t kQ4Rows = 8;

// In each 128-bit lane, word i <- the sum of row i's eight words in that lane
MN_INLINE __m256i foldRows(const __m256i (&sums)[kQ4Rows]) {
  const __m256i rows0123 = _mm256_hadd_epi16(_mm256_hadd_epi16(sums[0], sums[1]), _mm256_hadd_epi16(sums[2], sums[3]));
  const __m256i rows4567 = _mm256_hadd_epi16(_mm256_hadd_epi16(sums[4], sums[5]), _mm256_hadd_epi16(sums[6], sums[7]));
  return _mm256_hadd_epi16(rows0123, rows4567);
}

// The eight rows of a group starting at `first`, a short group (rows < 8) repeating its last row
struct RowGroup {
  const uint8_t* row[kQ4Rows];
  RowGroup(const uint8_t* first, size_t rows, size_t wRowBytes) {
    for (size_t i = 0; i < kQ4Rows; i++) row[i] = first + (i < rows ? i : rows - 1) * wRowBytes;
  }
};

// d_w of the block `at` bytes into each row of the group, as floats
MN_INLINE __m256 rowScales(const RowGroup& g, size_t at) {
  __m128i halves = _mm_cvtsi32_si128(loadU16(g.row[0] + at));
  halves = _mm_insert_epi16(halves, loadU16(g.row[1] + at), 1);
  halves = _mm_insert_epi16(halves, loadU16(g.row[2] + at), 2);
  halves = _mm_insert_epi16(halves, loadU16(g.row[3] + at), 3);
  halves = _mm_insert_epi16(halves, loadU16(g.row[4] + at), 4);
  halves = _mm_insert_epi16(halves, loadU16(g.row[5] + at), 5);
  halves = _mm_insert_epi16(halves, loadU16(g.row[6] + at), 6);
  halves = _mm_insert_epi16(halves, loadU16(g.row[7] + at), 7);
  return _mm256_cvtph_ps(halves);
}

// Decode takes a row's blocks two at a time, block b in the low 128-bit lane and b + 1 in the high one, against
// activations packed the same way once per call: half the tree per block. Eight rows in step are eight memory
// streams, which this kind of CPU prefetches worse than one; the block order leaves no cheaper way to stream one row
// (docs/performance.md, "Q4_0 in llama.cpp's order").
constexpr size_t kPackPairs = kPackBlocks / 2;

struct PackedPairs {
  __m256i lo[kPackPairs];      // q_x 0..15 of blocks 2p and 2p + 1, one per 128-bit lane
  __m256i hi[kPackPairs];      // q_x 16..31 of the same
  __m256i offset[kPackPairs];  // 8 * (q_x[2i] + q_x[2i + 1] + q_x[16 + 2i] + q_x[17 + 2i]) per lane's block
  float d[2 * kPackPairs];
};

// Packs activation blocks [blockBegin, blockBegin + count); a missing last block of a pair is zero
void packPairs(const uint8_t* x, size_t blockBegin, size_t count, PackedPairs& out) {
  const __m256i eights = _mm256_set1_epi8(8);
  const BlockQ8_0* blocks = reinterpret_cast<const BlockQ8_0*>(x) + blockBegin;
  for (size_t b = 0; b < count; b += 2) {
    const __m256i first = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blocks[b].qs));
    const __m256i second = b + 1 < count ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blocks[b + 1].qs))
                                         : _mm256_setzero_si256();
    const size_t p = b / 2;
    out.lo[p] = _mm256_permute2x128_si256(first, second, 0x20);
    out.hi[p] = _mm256_permute2x128_si256(first, second, 0x31);
    out.offset[p] = _mm256_add_epi16(_mm256_maddubs_epi16(eights, out.lo[p]), _mm256_maddubs_epi16(eights, out.hi[p]));
    out.d[b] = halfToFloat(blocks[b].d);
    out.d[b + 1] = b + 1 < count ? halfToFloat(blocks[b + 1].d) : 0.0f;
  }
}

// sum_j (q_w - 8) * q_x of blocks b (low lane) and b + 1 (high lane, zero when `single`) as 8 i16 sums per lane
MN_INLINE __m256i q4PairSums(const uint8_t* block, bool single, const PackedPairs& x, size_t p) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m128i first = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2));
  const __m128i second = single ? _mm_setzero_si128()
                                : _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + sizeof(BlockQ4_0) + 2));
  const __m256i packed = _mm256_inserti128_si256(_mm256_castsi128_si256(first), second, 1);
  const __m256i low = _mm256_and_si256(packed, low4), high = _mm256_and_si256(_mm256_srli_epi16(packed, 4), low4);
  return _mm256_sub_epi16(_mm256_add_epi16(_mm256_maddubs_epi16(low, x.lo[p]), _mm256_maddubs_epi16(high, x.hi[p])),
                          x.offset[p]);
}

// The eight rows' sums of the two blocks from their pair sums: the low lane's block, then the high lane's, as i32
MN_INLINE void rowSumsOfPair(const __m256i (&sums)[kQ4Rows], __m256i& first, __m256i& second) {
  const __m256i rows = foldRows(sums);
  first = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(rows));
  second = _mm256_cvtepi16_epi32(_mm256_extracti128_si256(rows, 1));
}

// y[0 .. rows) (rows <= 8) += W rows (first block of the first at `first`) . packed activations, `count` blocks; y
// starts from zero unless `carry`
void q4DecodeGroup(const uint8_t* first, size_t wRowBytes, size_t rows, size_t count, const PackedPairs& x, float* y,
                   bool carry) {
  const RowGroup g(first, rows, wRowBytes);
  __m256 acc = carry ? loadLanes(y, 0, rows) : _mm256_setzero_ps();
  for (size_t b = 0; b < count; b += 2) {
    const size_t at = b * sizeof(BlockQ4_0);
    if (b % 4 == 0) {
      for (const uint8_t* row : g.row) {
        _mm_prefetch(reinterpret_cast<const char*>(row + at + kPrefetchBytes), _MM_HINT_T0);
      }
    }
    const bool single = b + 1 == count;
    __m256i sums[kQ4Rows];
    for (size_t i = 0; i < kQ4Rows; i++) sums[i] = q4PairSums(g.row[i] + at, single, x, b / 2);
    __m256i firstSums, secondSums;
    rowSumsOfPair(sums, firstSums, secondSums);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(firstSums), _mm256_mul_ps(rowScales(g, at), _mm256_set1_ps(x.d[b])), acc);
    if (single) break;
    const __m256 secondScale = _mm256_mul_ps(rowScales(g, at + sizeof(BlockQ4_0)), _mm256_set1_ps(x.d[b + 1]));
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(secondSums), secondScale, acc);
  }
  storeLanes(y, acc, 0, rows);
}

// W (nRows, n) rows [rowBegin, rowEnd) Q4_0 @ X (nCols, n) Q8_0 -> Y[c * ldy + r]
void matmulQ4(const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x,
              size_t actRowBytes, size_t nCols, float* y, size_t ldy) {
  const size_t nBlocks = n / 32;
  if (nCols == 1) {
    PackedPairs packed;
    for (size_t b0 = 0; b0 < nBlocks; b0 += kPackBlocks) {
      const size_t count = nBlocks - b0 < kPackBlocks ? nBlocks - b0 : kPackBlocks;
      packPairs(x, b0, count, packed);
      for (size_t r = rowBegin; r < rowEnd; r += kQ4Rows) {
        const size_t rows = rowEnd - r < kQ4Rows ? rowEnd - r : kQ4Rows;
        q4DecodeGroup(w + r * wRowBytes + b0 * sizeof(BlockQ4_0), wRowBytes, rows, count, packed, y + r, b0 != 0);
      }
    }
    return;
  }
  kQ4_0PrefillAvx2(w, wRowBytes, n, rowBegin, rowEnd, x, actRowBytes, nCols, y, ldy);
}

// ---- float weights: F32 x F32, F16 x F16, BF16 x BF16 (widened to f32, FMA) ----

enum class FloatKind { F32, F16, BF16 };

template <FloatKind K>
constexpr size_t floatBytes() {
  return K == FloatKind::F32 ? 4 : 2;
}

// 8 values at p as floats
template <FloatKind K>
__m256 loadFloats(const uint8_t* p) {
  if (K == FloatKind::F32) return _mm256_loadu_ps(reinterpret_cast<const float*>(p));
  const __m128i half = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if (K == FloatKind::F16) return _mm256_cvtph_ps(half);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(half), 16));
}

// The first `count` (< 8) values at p as floats, the rest zero; nothing read past them
template <FloatKind K>
__m256 loadFloatsPartial(const uint8_t* p, size_t count) {
  alignas(32) uint8_t padded[32] = {};
  std::memcpy(padded, p, count * floatBytes<K>());
  return loadFloats<K>(padded);
}

// W rows (R, n) @ X (C, n) -> y[c * ldy + r], one element type for both
template <int R, int C, FloatKind K>
void tileFloat(const uint8_t* w, size_t wRowBytes, size_t n, const uint8_t* x, size_t actRowBytes, float* y,
               size_t ldy) {
  constexpr size_t step = 8 * floatBytes<K>();
  __m256 acc[R][C];
  for (int r = 0; r < R; r++)
    for (int c = 0; c < C; c++) acc[r][c] = _mm256_setzero_ps();
  const size_t nSteps = n / 8;
  for (size_t s = 0; s < nSteps; s++) {
    __m256 xs[C];
    for (int c = 0; c < C; c++) xs[c] = loadFloats<K>(x + c * actRowBytes + s * step);
    for (int r = 0; r < R; r++) {
      const __m256 ws = loadFloats<K>(w + r * wRowBytes + s * step);
      for (int c = 0; c < C; c++) acc[r][c] = _mm256_fmadd_ps(ws, xs[c], acc[r][c]);
    }
  }
  if (n % 8 != 0) {
    __m256 xs[C];
    for (int c = 0; c < C; c++) xs[c] = loadFloatsPartial<K>(x + c * actRowBytes + nSteps * step, n % 8);
    for (int r = 0; r < R; r++) {
      const __m256 ws = loadFloatsPartial<K>(w + r * wRowBytes + nSteps * step, n % 8);
      for (int c = 0; c < C; c++) acc[r][c] = _mm256_fmadd_ps(ws, xs[c], acc[r][c]);
    }
  }
  for (int r = 0; r < R; r++)
    for (int c = 0; c < C; c++) y[c * ldy + r] = horizontalSum(acc[r][c]);
}

template <int C, FloatKind K>
void tileFloatRows(size_t rows, const uint8_t* w, size_t wRowBytes, size_t n, const uint8_t* x, size_t actRowBytes,
                   float* y, size_t ldy) {
  switch (rows) {
    case 4: tileFloat<4, C, K>(w, wRowBytes, n, x, actRowBytes, y, ldy); return;
    case 3: tileFloat<3, C, K>(w, wRowBytes, n, x, actRowBytes, y, ldy); return;
    case 2: tileFloat<2, C, K>(w, wRowBytes, n, x, actRowBytes, y, ldy); return;
    default: tileFloat<1, C, K>(w, wRowBytes, n, x, actRowBytes, y, ldy); return;
  }
}

using FloatTileFn = void (*)(size_t rows, const uint8_t* w, size_t wRowBytes, size_t n, const uint8_t* x,
                            size_t actRowBytes, float* y, size_t ldy);

// W (nRows, n) rows [rowBegin, rowEnd) @ X (nCols, n) -> Y[c * ldy + r], W and X of one float kind
template <FloatKind K>
void matmulFloat(const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x,
                 size_t actRowBytes, size_t nCols, float* y, size_t ldy) {
  for (size_t r = rowBegin; r < rowEnd; r += 4) {
    const size_t rows = rowEnd - r < 4 ? rowEnd - r : 4;
    const uint8_t* wTile = w + r * wRowBytes;
    for (size_t c = 0; c < nCols; c += 2) {
      const FloatTileFn tile = nCols - c >= 2 ? tileFloatRows<2, K> : tileFloatRows<1, K>;
      tile(rows, wTile, wRowBytes, n, x + c * actRowBytes, actRowBytes, y + c * ldy + r, ldy);
    }
  }
}

using TypedMatmulFn = void (*)(const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin, size_t rowEnd,
                              const uint8_t* x, size_t actRowBytes, size_t nCols, float* y, size_t ldy);

// W (nRows, n) rows [rowBegin, rowEnd) @ X (nCols, n) -> Y[c * ldy + r]; unsupported types leave Y untouched
void matmul(GgmlType wType, const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin, size_t rowEnd,
            const uint8_t* x, size_t actRowBytes, size_t nCols, float* y, size_t ldy) {
  TypedMatmulFn kernel = nullptr;
  switch (wType) {
    case GgmlType::Q4_0: kernel = matmulQ4; break;
    case GgmlType::Q8_0: kernel = matmulQ8; break;
    case GgmlType::F32: kernel = matmulFloat<FloatKind::F32>; break;
    case GgmlType::F16: kernel = matmulFloat<FloatKind::F16>; break;
    case GgmlType::BF16: kernel = matmulFloat<FloatKind::BF16>; break;
    default: return;
  }
  kernel(w, wRowBytes, n, rowBegin, rowEnd, x, actRowBytes, nCols, y, ldy);
}

// ---- activation quantization, bit-identical to the scalar reference ----


// x (n,) -> Q8_0 blocks as the scalar reference: d = max|x| / 127, q = x * (127 / max|x|) rounded half to even
void quantizeQ8_0(const float* x, BlockQ8_0* blocks, size_t n) {
  const __m256 signBit = _mm256_set1_ps(-0.0f);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (size_t b = 0; b < n / 32; b++, x += 32) {
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int k = 0; k < 4; k++) {
      v[k] = _mm256_loadu_ps(x + 8 * k);
      amax = _mm256_max_ps(_mm256_andnot_ps(signBit, v[k]), amax);
    }
    const float max = horizontalMax(amax);
    const float id = max != 0.0f ? 127.0f / max : 0.0f;
    blocks[b].d = floatToHalf(max / 127.0f);
    const __m256 scale = _mm256_set1_ps(id);
    __m256i q[4];
    for (int k = 0; k < 4; k++) q[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], scale), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    const __m256i bytes = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(blocks[b].qs), _mm256_permutevar8x32_epi32(bytes, order));
  }
}

// x (n,) -> fp16 (n,), round to nearest even as floatToFp16
void quantizeF16(const float* x, uint16_t* out, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i),
        _MM_FROUND_TO_NEAREST_INT));
  }
  if (i < n) {
    alignas(32) float padded[8] = {};
    alignas(16) uint16_t halves[8];
    std::memcpy(padded, x + i, (n - i) * sizeof(float));
    _mm_store_si128(reinterpret_cast<__m128i*>(halves), _mm256_cvtps_ph(_mm256_load_ps(padded),
        _MM_FROUND_TO_NEAREST_INT));
    std::memcpy(out + i, halves, (n - i) * sizeof(uint16_t));
  }
}

// 8 floats -> bfloat16 with floatToBf16's rounding (to nearest even; NaN kept quiet)
__m128i floatsToBf16(__m256 v) {
  const __m256i bits = _mm256_castps_si256(v);
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
  const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(bits, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7fff))),
      16);
  const __m256i quiet = _mm256_or_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(64));
  const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(bits, _mm256_set1_epi32(0x7fffffff)),
      _mm256_set1_epi32(0x7f800000));
  const __m256i halves = _mm256_blendv_epi8(rounded, quiet, nan);
  const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(halves, halves), 0x08);
  return _mm256_castsi256_si128(packed);
}

void quantizeBf16(const float* x, uint16_t* out, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
      floatsToBf16(_mm256_loadu_ps(x + i)));
  if (i < n) {
    alignas(32) float padded[8] = {};
    alignas(16) uint16_t halves[8];
    std::memcpy(padded, x + i, (n - i) * sizeof(float));
    _mm_store_si128(reinterpret_cast<__m128i*>(halves), floatsToBf16(_mm256_load_ps(padded)));
    std::memcpy(out + i, halves, (n - i) * sizeof(uint16_t));
  }
}

// x (n,) -> one activation row in `format`
void quantizeActivations(ActFormat format, const float* x, void* dst, size_t n) {
  switch (format) {
    case ActFormat::F32: std::memcpy(dst, x, n * sizeof(float)); return;
    case ActFormat::F16: quantizeF16(x, static_cast<uint16_t*>(dst), n); return;
    case ActFormat::BF16: quantizeBf16(x, static_cast<uint16_t*>(dst), n); return;
    case ActFormat::Q8_0: quantizeQ8_0(x, static_cast<BlockQ8_0*>(dst), n); return;
    default: scalar::quantizeActivations(format, x, dst, n); return;
  }
}

// ---- row dequantization ----

// One row of n values of `type` -> out (n,)
void dequantizeRow(GgmlType type, const uint8_t* row, float* out, size_t n) {
  switch (type) {
    case GgmlType::Q4_0: {
      const BlockQ4_0* blocks = reinterpret_cast<const BlockQ4_0*>(row);
      const __m128i low4 = _mm_set1_epi8(0x0F);
      const __m256i eight = _mm256_set1_epi32(8);
      for (size_t b = 0; b < n / 32; b++, out += 32) {
        const __m256 d = _mm256_set1_ps(halfToFloat(blocks[b].d));
        const __m128i qs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks[b].qs));
        const __m128i lo = _mm_and_si128(qs, low4), hi = _mm_and_si128(_mm_srli_epi16(qs, 4), low4);
        const __m128i halves[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
        for (int k = 0; k < 4; k++) {
          const __m256i q = _mm256_sub_epi32(_mm256_cvtepu8_epi32(halves[k]), eight);
          _mm256_storeu_ps(out + 8 * k, _mm256_mul_ps(_mm256_cvtepi32_ps(q), d));
        }
      }
      return;
    }
    case GgmlType::Q8_0: {
      const BlockQ8_0* blocks = reinterpret_cast<const BlockQ8_0*>(row);
      for (size_t b = 0; b < n / 32; b++, out += 32) {
        const __m256 d = _mm256_set1_ps(halfToFloat(blocks[b].d));
        for (int k = 0; k < 4; k++) {
          const __m128i q8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(blocks[b].qs + 8 * k));
          _mm256_storeu_ps(out + 8 * k, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q8)), d));
        }
      }
      return;
    }
    case GgmlType::F16:
    case GgmlType::BF16: {
      size_t i = 0;
      for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(out + i, type == GgmlType::F16 ? loadFloats<FloatKind::F16>(row + 2 * i)
                                                        : loadFloats<FloatKind::BF16>(row + 2 * i));
      }
      if (i < n) {
        alignas(32) float values[8];
        _mm256_store_ps(values, type == GgmlType::F16 ? loadFloatsPartial<FloatKind::F16>(row + 2 * i, n - i)
                                                      : loadFloatsPartial<FloatKind::BF16>(row + 2 * i, n - i));
        std::memcpy(out + i, values, (n - i) * sizeof(float));
      }
      return;
    }
    default: scalar::dequantizeRow(type, row, out, n); return;
  }
}

}  // namespace
}  // namespace x86
}  // namespace mn

#include "kernels/x86/target_end.h"

namespace mn {
namespace x86 {
extern const MatmulKernels kMatmulAvx2 = {quantizeActivations, matmul, dequantizeRow};
}  // namespace x86
}  // namespace mn

#endif  // x86-64
