// AVX-512 (VNNI) matmul over Q4_0 rows repacked 64 at a time (Q4_0x64, quants.h) against Q8_0 activations.
//
// A vector's 16 lanes are 16 rows. vpdpbusd (u8 x s8 -> i32) of one line of a block's quants (4 levels of each row,
// unsigned) with 4 of the activation's values broadcast adds 4 products to every row's lane, so 8 of them sum each
// row's whole block, starting from -8 * (the block's activation sum), the offset of Q4_0's unsigned levels. Each
// (row, column) then adds float(sum) * (d_w * d_x) block after block in one fused multiply-add, exactly as
// scalar::matmulQ4_0x64 does, so decode, prefill and the scalar reference agree to the bit.
//
// Decode streams each group of 64 rows from start to end (one memory stream), each broadcast activation value
// serving all 64 rows. Prefill unpacks 32 rows' levels for a chunk of blocks once and runs a register tile of
// 32 rows x 4 columns over them.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/quants.h"
#include "kernels/x86/x86_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c")
// GCC 12 warns about the intrinsics' own `__Y = __Y` placeholders once inlined here (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "kernels/x86/simd_common.h"

namespace mn {
namespace x86 {
namespace {

constexpr size_t kGroupRows = kQ4_0x64Rows;
constexpr int kRuns = kQ4_0x64Rows / 16;  // runs of 16 rows (one vector each) in a group
// Software prefetch distance of the decode stream, as the Q4_0 decode's (matmul_avx512.cc).
constexpr size_t kPrefetchBytes = 4608;
// Decode prepares the activations' offsets and scales for this many blocks at a time (4 KB of stack).
constexpr size_t kActChunkBlocks = 512;
// Prefill unpacks this many blocks of two runs (32 rows) at a time (36 KB of stack) and tiles this many columns.
constexpr size_t kLevelChunkBlocks = 32;
constexpr int kTileRuns = 2;
constexpr int kTileCols = 4;

// The lanes of the run of 16 rows starting at row `first` that lie in [rowBegin, rowEnd)
MN_INLINE __mmask16 rowMask(size_t first, size_t rowBegin, size_t rowEnd) {
  if (rowEnd <= first || rowBegin >= first + 16) return 0;
  const unsigned lo = rowBegin > first ? unsigned(rowBegin - first) : 0u;
  const unsigned hi = rowEnd < first + 16 ? unsigned(rowEnd - first) : 16u;
  return static_cast<__mmask16>((0xFFFFu >> (16 - hi)) & (0xFFFFu << lo));
}

// -8 * the sum of a Q8_0 block's 32 values
MN_INLINE int32_t levelOffset(const BlockQ8_0& block) {
  const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block.qs));
  const __m256i sums = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), q);
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(sums), _mm256_extracti128_si256(sums, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return -8 * _mm_cvtsi128_si32(s);
}

// Blocks [b0, b0 + count) of one activation row -> their level offsets and scales
void prepareActivations(const uint8_t* x, size_t b0, size_t count, int32_t* offsets, float* scales) {
  const BlockQ8_0* blocks = reinterpret_cast<const BlockQ8_0*>(x) + b0;
  for (size_t i = 0; i < count; i++) {
    offsets[i] = levelOffset(blocks[i]);
    scales[i] = halfToFloat(blocks[i].d);
  }
}

// 4 activation values from q: the broadcast operand of one vpdpbusd
MN_INLINE __m512i broadcastFour(const int8_t* q) {
  return _mm512_set1_epi32(static_cast<int>(loadU32(reinterpret_cast<const uint8_t*>(q))));
}

// ---- decode (one column) ----

// acc[s] (one lane per row of run s) += blocks [b0, b0 + count) of the group at `group` . x, in block order
MN_INLINE void groupDot(const uint8_t* group, size_t b0, size_t count, const BlockQ8_0* x, const int32_t* offsets,
                        const float* scales, __m512 (&acc)[kRuns]) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const uint8_t* block = group + b0 * kQ4_0x64BlockBytes;
  for (size_t i = 0; i < count; i++, block += kQ4_0x64BlockBytes) {
    for (size_t line = 0; line < kQ4_0x64BlockBytes; line += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(block + kPrefetchBytes + line), _MM_HINT_T0);
    }
    const BlockQ8_0& xb = x[b0 + i];
    // Per run, two chains of 4: low nibbles (values 0..15) from the offset, high nibbles (16..31) from zero.
    __m512i low[kRuns], high[kRuns];
    for (int s = 0; s < kRuns; s++) {
      low[s] = _mm512_set1_epi32(offsets[i]);
      high[s] = _mm512_setzero_si512();
    }
    for (int k = 0; k < 4; k++) {
      const __m512i xLow = broadcastFour(xb.qs + 4 * k), xHigh = broadcastFour(xb.qs + 16 + 4 * k);
      for (int s = 0; s < kRuns; s++) {
        const __m512i line = _mm512_load_si512(block + q4_0x64LineOffset(s, k));
        low[s] = _mm512_dpbusd_epi32(low[s], _mm512_and_si512(line, low4), xLow);
        high[s] = _mm512_dpbusd_epi32(high[s], _mm512_and_si512(_mm512_srli_epi16(line, 4), low4), xHigh);
      }
    }
    const __m512 dx = _mm512_set1_ps(scales[i]);
    for (int s = 0; s < kRuns; s++) {
      const __m512 dw = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(block + q4_0x64ScaleOffset(s, 0))));
      acc[s] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(low[s], high[s])), _mm512_mul_ps(dw, dx), acc[s]);
    }
  }
}

void decode(const uint8_t* w, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x, float* y) {
  const size_t nBlocks = n / kQK, groupBytes = nBlocks * kQ4_0x64BlockBytes;
  const size_t gBegin = rowBegin / kGroupRows, gEnd = (rowEnd + kGroupRows - 1) / kGroupRows;
  alignas(64) int32_t offsets[kActChunkBlocks];
  alignas(64) float scales[kActChunkBlocks];
  for (size_t b0 = 0; b0 < nBlocks; b0 += kActChunkBlocks) {
    const size_t count = nBlocks - b0 < kActChunkBlocks ? nBlocks - b0 : kActChunkBlocks;
    prepareActivations(x, b0, count, offsets, scales);
    for (size_t g = gBegin; g < gEnd; g++) {
      __mmask16 masks[kRuns];
      __m512 acc[kRuns];
      for (int s = 0; s < kRuns; s++) {
        masks[s] = rowMask(g * kGroupRows + 16 * s, rowBegin, rowEnd);
        acc[s] = b0 == 0 ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(masks[s], y + g * kGroupRows + 16 * s);
      }
      groupDot(w + g * groupBytes, b0, count, reinterpret_cast<const BlockQ8_0*>(x), offsets, scales, acc);
      for (int s = 0; s < kRuns; s++) _mm512_mask_storeu_ps(y + g * kGroupRows + 16 * s, masks[s], acc[s]);
    }
  }
}

// ---- prefill (several columns) ----

// One block of a run of 16 rows, unpacked: vector k holds levels 4k..4k+3 of every row (lane j = row j), whose
// activations are always the block's qs[4k..4k+3] (levels 16.. are the high nibbles), and the rows' scales.
struct alignas(64) LevelBlock {
  __m512i levels[8];
  __m512 d;
};

// Blocks [b0, b0 + count) of run s of the group at `group`, unpacked
void unpackLevels(const uint8_t* group, int s, size_t b0, size_t count, LevelBlock* out) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const uint8_t* block = group + b0 * kQ4_0x64BlockBytes;
  for (size_t i = 0; i < count; i++, block += kQ4_0x64BlockBytes) {
    for (int k = 0; k < 4; k++) {
      const __m512i line = _mm512_load_si512(block + q4_0x64LineOffset(s, k));
      out[i].levels[k] = _mm512_and_si512(line, low4);
      out[i].levels[k + 4] = _mm512_and_si512(_mm512_srli_epi16(line, 4), low4);
    }
    out[i].d = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(block + q4_0x64ScaleOffset(s, 0))));
  }
}

// The activations of a column tile over one chunk of blocks
struct TileActivations {
  const BlockQ8_0* blocks[kTileCols];  // each column's block b0
  int32_t offsets[kTileCols][kLevelChunkBlocks];
  float scales[kTileCols][kLevelChunkBlocks];
};

// Y (C columns of R runs' rows) = (or +=, unless first) the chunk's count blocks of R unpacked runs . C columns
template <int R, int C>
void tile(const LevelBlock* const (&levels)[kTileRuns], size_t count, const TileActivations& act,
          const __mmask16 (&masks)[kTileRuns], float* const (&out)[kTileRuns], size_t ldy, bool first) {
  __m512 acc[R][C];
  for (int r = 0; r < R; r++) {
    for (int c = 0; c < C; c++) {
      acc[r][c] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(masks[r], out[r] + c * ldy);
    }
  }
  for (size_t i = 0; i < count; i++) {
    __m512i sums[R][C];
    for (int c = 0; c < C; c++) {
      const __m512i offset = _mm512_set1_epi32(act.offsets[c][i]);
      for (int r = 0; r < R; r++) sums[r][c] = offset;
    }
    for (int k = 0; k < 8; k++) {
      __m512i w[R];
      for (int r = 0; r < R; r++) w[r] = _mm512_load_si512(&levels[r][i].levels[k]);
      for (int c = 0; c < C; c++) {
        const __m512i four = broadcastFour(act.blocks[c][i].qs + 4 * k);
        for (int r = 0; r < R; r++) sums[r][c] = _mm512_dpbusd_epi32(sums[r][c], w[r], four);
      }
    }
    for (int c = 0; c < C; c++) {
      const __m512 dx = _mm512_set1_ps(act.scales[c][i]);
      for (int r = 0; r < R; r++) {
        acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums[r][c]), _mm512_mul_ps(levels[r][i].d, dx), acc[r][c]);
      }
    }
  }
  for (int r = 0; r < R; r++) {
    for (int c = 0; c < C; c++) _mm512_mask_storeu_ps(out[r] + c * ldy, masks[r], acc[r][c]);
  }
}

using TileFn = void (*)(const LevelBlock* const (&levels)[kTileRuns], size_t count, const TileActivations& act,
                        const __mmask16 (&masks)[kTileRuns], float* const (&out)[kTileRuns], size_t ldy, bool first);

template <int R>
TileFn tileFor(size_t cols) {
  static_assert(kTileCols == 4, "one case per column count");
  switch (cols) {
    case 4: return tile<R, 4>;
    case 3: return tile<R, 3>;
    case 2: return tile<R, 2>;
    default: return tile<R, 1>;
  }
}

void prefill(const uint8_t* w, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x, size_t actRowBytes,
             size_t nCols, float* y, size_t ldy) {
  const size_t nBlocks = n / kQK, groupBytes = nBlocks * kQ4_0x64BlockBytes;
  // Runs of 16 rows, numbered across groups: run u is run u % kRuns of group u / kRuns.
  const size_t uBegin = rowBegin / 16, uEnd = (rowEnd + 15) / 16;
  LevelBlock unpacked[kTileRuns][kLevelChunkBlocks];
  const LevelBlock* const levels[kTileRuns] = {unpacked[0], unpacked[1]};
  TileActivations act;
  for (size_t u0 = uBegin; u0 < uEnd; u0 += kTileRuns) {
    const int runs = uEnd - u0 < size_t(kTileRuns) ? int(uEnd - u0) : kTileRuns;
    __mmask16 masks[kTileRuns] = {};
    for (int r = 0; r < runs; r++) masks[r] = rowMask(16 * (u0 + r), rowBegin, rowEnd);
    for (size_t b0 = 0; b0 < nBlocks; b0 += kLevelChunkBlocks) {
      const size_t count = nBlocks - b0 < kLevelChunkBlocks ? nBlocks - b0 : kLevelChunkBlocks;
      for (int r = 0; r < runs; r++) {
        const size_t u = u0 + r;
        unpackLevels(w + u / kRuns * groupBytes, int(u % kRuns), b0, count, unpacked[r]);
      }
      for (size_t c0 = 0; c0 < nCols; c0 += kTileCols) {
        const size_t cols = nCols - c0 < size_t(kTileCols) ? nCols - c0 : size_t(kTileCols);
        for (size_t c = 0; c < cols; c++) {
          const uint8_t* column = x + (c0 + c) * actRowBytes;
          act.blocks[c] = reinterpret_cast<const BlockQ8_0*>(column) + b0;
          prepareActivations(column, b0, count, act.offsets[c], act.scales[c]);
        }
        float* const out[kTileRuns] = {y + c0 * ldy + 16 * u0, y + c0 * ldy + 16 * (u0 + 1)};
        const TileFn run = runs == 2 ? tileFor<2>(cols) : tileFor<1>(cols);
        run(levels, count, act, masks, out, ldy, b0 == 0);
      }
    }
  }
}

void matmulQ4_0x64(const uint8_t* w, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x, size_t actRowBytes,
                   size_t nCols, float* y, size_t ldy) {
  if (rowBegin >= rowEnd) return;
  if (nCols == 1) {
    decode(w, n, rowBegin, rowEnd, x, y);
  } else {
    prefill(w, n, rowBegin, rowEnd, x, actRowBytes, nCols, y, ldy);
  }
}

}  // namespace
}  // namespace x86
}  // namespace mn

#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif

namespace mn {
namespace x86 {
extern const MatmulQ4_0x64Fn kMatmulQ4_0x64Avx512 = matmulQ4_0x64;
}  // namespace x86
}  // namespace mn

#endif
