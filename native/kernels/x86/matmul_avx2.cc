// AVX2 (+FMA, F16C) activation quantization, matmul and row dequantization.
//
// Decode streams one row at a time against activations unpacked once per call; prefill runs row x column tiles.
// Q4_0 / Q8_0 weights meet Q8_0 activations block by block with vpmaddubsw (u8 x s8 -> i16 pairs) and vpmaddwd:
// Q4_0's raw nibbles are the unsigned operand and 8 * (pair sums of q_x) is subtracted once per activation block,
// shared by the rows of the tile; Q8_0 uses |q_w| and sign(q_x, q_w) (ggml's mul_sum_i8_pairs). Each block's i32
// sums are scaled by d_w * d_x into a float accumulator per (row, column).
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

constexpr int kTileRows = 2;
constexpr int kTileCols = 3;

// ---- the summation order shared by decode and prefill ----
// A dot product is summed in spans of kSpanBlocks blocks (4096 values). Within a span, each block's 8 partial i32 sums
// are scaled by d_w * d_x and added lane-wise, even blocks (counted from the span start) into one accumulator and odd
// ones into another (two dependency chains for single-row decode). At the span's end the two are added and the lanes
// summed; span results are added in order. Decode and prefill both sum this way, so each (row, column) comes out
// bit-identical whatever the call's columns, tile shape or row range.

constexpr size_t kSpanBlocks = 128;

// sum(q_w * q_x) of one block as 8 partial i32 sums; offset = 8 * (pair sums of q_x) for Q4_0, whose weights come
// as raw nibbles 0..15
template <bool kQ4>
MN_INLINE __m256i quantDot(__m256i wq, __m256i xq, __m256i offset) {
  const __m256i pairs = kQ4 ? _mm256_sub_epi16(_mm256_maddubs_epi16(wq, xq), offset)
                            : _mm256_maddubs_epi16(_mm256_sign_epi8(wq, wq), _mm256_sign_epi8(xq, wq));
  return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

// Block b of a Q4_0 (nibbles 0..15) or Q8_0 row as 32 bytes, and its scale
template <bool kQ4>
MN_INLINE __m256i loadWeights(const uint8_t* row, size_t b) {
  if (kQ4) {
    const BlockQ4_0& block = reinterpret_cast<const BlockQ4_0*>(row)[b];
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block.qs));
    const __m128i low4 = _mm_set1_epi8(0x0F);
    return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(packed, 4), low4), _mm_and_si128(packed, low4));
  }
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(reinterpret_cast<const BlockQ8_0*>(row)[b].qs));
}

template <bool kQ4>
MN_INLINE uint16_t blockScale(const uint8_t* row, size_t b) {
  return kQ4 ? reinterpret_cast<const BlockQ4_0*>(row)[b].d : reinterpret_cast<const BlockQ8_0*>(row)[b].d;
}

// acc[r][c] += blocks first, first + 2, ... < end of W rows (R) . X columns (C)
template <int R, int C, bool kQ4>
MN_INLINE void tilePass(const uint8_t* w, size_t wRowBytes, size_t first, size_t end, const uint8_t* x,
                        size_t actRowBytes, __m256 (&acc)[R][C]) {
  const __m256i eights = _mm256_set1_epi8(8);
  for (size_t b = first; b < end; b += 2) {
    __m256i xq[C], offset[C];
    float xd[C];
    for (int c = 0; c < C; c++) {
      const BlockQ8_0& block = reinterpret_cast<const BlockQ8_0*>(x + c * actRowBytes)[b];
      xq[c] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block.qs));
      offset[c] = kQ4 ? _mm256_maddubs_epi16(eights, xq[c]) : xq[c];
      xd[c] = halfToFloat(block.d);
    }
    for (int r = 0; r < R; r++) {
      const uint8_t* row = w + r * wRowBytes;
      const __m256i wq = loadWeights<kQ4>(row, b);
      const float wd = halfToFloat(blockScale<kQ4>(row, b));
      for (int c = 0; c < C; c++) {
        const __m256 sums = _mm256_cvtepi32_ps(quantDot<kQ4>(wq, xq[c], offset[c]));
        acc[r][c] = _mm256_fmadd_ps(sums, _mm256_set1_ps(wd * xd[c]), acc[r][c]);
      }
    }
  }
}

// W rows (R, nBlocks*32) Q4_0/Q8_0 @ X (C, nBlocks*32) Q8_0 -> y[c * ldy + r], in the order above: per span a pass
// over the even blocks and one over the odd blocks (the tile has no registers for both accumulators at once)
template <int R, int C, bool kQ4>
void tileQuant(const uint8_t* w, size_t wRowBytes, size_t nBlocks, const uint8_t* x, size_t actRowBytes, float* y,
               size_t ldy) {
  sumTileSpans<R, C>(nBlocks, kSpanBlocks, y, ldy, [&](size_t first, size_t end, __m256 (&acc)[R][C]) {
    tilePass<R, C, kQ4>(w, wRowBytes, first, end, x, actRowBytes, acc);
  });
}

template <int C, bool kQ4>
void tileQuantRows(size_t rows, const uint8_t* w, size_t wRowBytes, size_t nBlocks, const uint8_t* x,
                   size_t actRowBytes, float* y, size_t ldy) {
  switch (rows) {
    case 3: tileQuant<3, C, kQ4>(w, wRowBytes, nBlocks, x, actRowBytes, y, ldy); return;
    case 2: tileQuant<2, C, kQ4>(w, wRowBytes, nBlocks, x, actRowBytes, y, ldy); return;
    default: tileQuant<1, C, kQ4>(w, wRowBytes, nBlocks, x, actRowBytes, y, ldy); return;
  }
}

// ---- decode (one column): one weight row at a time, activations packed once per call ----
// Several rows in flight interleave several memory streams, which prefetch worse than one (see matmul_avx512.cc);
// the activations, shared by every row, are unpacked once per call into a stack buffer the row loop reads from L1.

constexpr size_t kPackBlocks = 512;      // activation blocks packed per chunk: 16384 values, 34 KB of stack
constexpr size_t kPrefetchBytes = 4608;  // as the AVX-512 decode

// Activation blocks as the decode loop reads them (arrays, so no padding between the pieces)
struct PackedActivations {
  __m256i q[kPackBlocks];       // q_x
  __m256i offset[kPackBlocks];  // 8 * (q_x[2i] + q_x[2i+1]) as i16 pairs (Q4_0 weights only)
  float d[kPackBlocks];
};

template <bool kQ4>
void packActivations(const uint8_t* x, size_t blockBegin, size_t count, PackedActivations& out) {
  const __m256i eights = _mm256_set1_epi8(8);
  const BlockQ8_0* blocks = reinterpret_cast<const BlockQ8_0*>(x) + blockBegin;
  for (size_t b = 0; b < count; b++) {
    out.q[b] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blocks[b].qs));
    if (kQ4) out.offset[b] = _mm256_maddubs_epi16(eights, out.q[b]);
    out.d[b] = halfToFloat(blocks[b].d);
  }
}

// sum(q_w * q_x) of block b of the row and packed activation block b, as 8 partial i32 sums
template <bool kQ4>
MN_INLINE __m256i blockDot(const uint8_t* row, size_t b, const PackedActivations& x) {
  if (kQ4) {
    // Both halves of the register get the 16 packed bytes; the upper one is shifted down a nibble.
    const BlockQ4_0& block = reinterpret_cast<const BlockQ4_0*>(row)[b];
    const __m256i packed = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block.qs)));
    const __m256i wq = _mm256_and_si256(_mm256_srlv_epi64(packed, _mm256_set_epi64x(4, 4, 0, 0)), _mm256_set1_epi8(15));
    return quantDot<true>(wq, x.q[b], x.offset[b]);
  }
  const BlockQ8_0& block = reinterpret_cast<const BlockQ8_0*>(row)[b];
  return quantDot<false>(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block.qs)), x.q[b], x.q[b]);
}

// d_w * d_x of blocks b .. b + 7, converted together
template <bool kQ4>
MN_INLINE __m256 blockScales8(const uint8_t* row, size_t b, const PackedActivations& x) {
  __m128i halves = _mm_cvtsi32_si128(blockScale<kQ4>(row, b));
  halves = _mm_insert_epi16(halves, blockScale<kQ4>(row, b + 1), 1);
  halves = _mm_insert_epi16(halves, blockScale<kQ4>(row, b + 2), 2);
  halves = _mm_insert_epi16(halves, blockScale<kQ4>(row, b + 3), 3);
  halves = _mm_insert_epi16(halves, blockScale<kQ4>(row, b + 4), 4);
  halves = _mm_insert_epi16(halves, blockScale<kQ4>(row, b + 5), 5);
  halves = _mm_insert_epi16(halves, blockScale<kQ4>(row, b + 6), 6);
  halves = _mm_insert_epi16(halves, blockScale<kQ4>(row, b + 7), 7);
  return _mm256_mul_ps(_mm256_cvtph_ps(halves), _mm256_loadu_ps(x.d + b));
}

// One row's dot product with `count` packed blocks (row and x point at the first), in the span order above; `sum`
// carries the spans before them and `first` says there are none.
template <bool kQ4>
float rowDotPacked(const uint8_t* row, size_t count, const PackedActivations& x, float sum, bool first) {
  constexpr size_t blockBytes = kQ4 ? sizeof(BlockQ4_0) : sizeof(BlockQ8_0);
  for (size_t b0 = 0; b0 < count; b0 += kSpanBlocks) {
    const size_t spanEnd = count - b0 < kSpanBlocks ? count : b0 + kSpanBlocks;
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    size_t b = b0;
    for (; b + 8 <= spanEnd; b += 8) {
      for (size_t line = 0; line < 8 * blockBytes; line += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(row + b * blockBytes + kPrefetchBytes + line), _MM_HINT_T0);
      }
      const __m256 scales = blockScales8<kQ4>(row, b, x);
      for (int u = 0; u < 8; u++) {
        const __m256 scale = _mm256_permutevar8x32_ps(scales, _mm256_set1_epi32(u));
        acc[u % 2] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(blockDot<kQ4>(row, b + u, x)), scale, acc[u % 2]);
      }
    }
    for (; b < spanEnd; b++) {
      const __m256 scale = _mm256_set1_ps(halfToFloat(blockScale<kQ4>(row, b)) * x.d[b]);
      __m256& target = (b - b0) % 2 == 0 ? acc[0] : acc[1];
      target = _mm256_fmadd_ps(_mm256_cvtepi32_ps(blockDot<kQ4>(row, b, x)), scale, target);
    }
    const float partial = horizontalSum(_mm256_add_ps(acc[0], acc[1]));
    sum = first && b0 == 0 ? partial : sum + partial;
  }
  return sum;
}

// W (nRows, n) rows [rowBegin, rowEnd) Q4_0/Q8_0 @ x (n,) Q8_0 -> y[r]
template <bool kQ4>
void decodeQuant(const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x,
                 float* y) {
  constexpr size_t blockBytes = kQ4 ? sizeof(BlockQ4_0) : sizeof(BlockQ8_0);
  static_assert(kPackBlocks % kSpanBlocks == 0, "a packed chunk holds whole spans");
  PackedActivations packed;
  const size_t nBlocks = n / 32;
  for (size_t b0 = 0; b0 < nBlocks; b0 += kPackBlocks) {
    const size_t count = nBlocks - b0 < kPackBlocks ? nBlocks - b0 : kPackBlocks;
    packActivations<kQ4>(x, b0, count, packed);
    for (size_t r = rowBegin; r < rowEnd; r++) {
      y[r] = rowDotPacked<kQ4>(w + r * wRowBytes + b0 * blockBytes, count, packed, b0 == 0 ? 0.0f : y[r], b0 == 0);
    }
  }
}

// ---- prefill (several columns): register tiles of kTileRows x kTileCols ----

using QuantTileFn = void (*)(size_t rows, const uint8_t* w, size_t wRowBytes, size_t nBlocks, const uint8_t* x,
                            size_t actRowBytes, float* y, size_t ldy);

// W (nRows, n) rows [rowBegin, rowEnd) Q4_0/Q8_0 @ X (nCols, n) Q8_0 -> Y[c * ldy + r]
template <bool kQ4>
void matmulQuant(const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x,
                 size_t actRowBytes, size_t nCols, float* y, size_t ldy) {
  const size_t nBlocks = n / 32;
  if (nCols == 1) {
    decodeQuant<kQ4>(w, wRowBytes, n, rowBegin, rowEnd, x, y);
    return;
  }
  for (size_t r = rowBegin; r < rowEnd; r += kTileRows) {
    const size_t rows = rowEnd - r < kTileRows ? rowEnd - r : kTileRows;
    const uint8_t* wTile = w + r * wRowBytes;
    for (size_t c = 0; c < nCols; c += kTileCols) {
      const size_t cols = nCols - c < kTileCols ? nCols - c : kTileCols;
      const QuantTileFn tile = cols == 3   ? tileQuantRows<3, kQ4>
                               : cols == 2 ? tileQuantRows<2, kQ4>
                                           : tileQuantRows<1, kQ4>;
      tile(rows, wTile, wRowBytes, nBlocks, x + c * actRowBytes, actRowBytes, y + c * ldy + r, ldy);
    }
  }
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
    case GgmlType::Q4_0: kernel = matmulQuant<true>; break;
    case GgmlType::Q8_0: kernel = matmulQuant<false>; break;
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
