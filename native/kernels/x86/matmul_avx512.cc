// AVX-512 (F, BW, VL, DQ, VNNI) activation quantization, matmul and row dequantization.
//
// Q4_0 weights meet Q8_0 activations in VNNI int8 dot products (vpdpbusd: u8 x s8 -> i32), as ggml's integer
// block dot products d_w * d_x * sum(q_w * q_x). Every field of both block types starts on an even byte, so one
// 16-bit permute gathers four blocks into a 512-bit register, 128-bit lane k holding block k. vpdpbusd wants one
// unsigned operand: the weights go in unsigned (Q4_0's raw nibbles) and the offset (8 times the activations'
// partial sums) starts the accumulator, computed once per activation block and shared by every weight row of the
// tile. The per-block scales multiply lanes 4k..4k+3, so a row needs one horizontal sum at its very end. Q8_0
// weights add in the AVX2 kernel's order, which matches llama.cpp's (kernels.cc, docs/kernels.md): decode runs on
// the AVX2 kernel, prefill here two columns per vector.
//
// Decode (one column) streams one row at a time against activations unpacked once per call; prefill runs register
// tiles of rows x columns against activations unpacked once per block of rows (see the sections below).
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/quants.h"
#include "kernels/scalar.h"
#include "kernels/x86/x86_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)

#define MN_X86_TARGET "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c"
#include "kernels/x86/target_begin.h"

#include "kernels/x86/simd_common.h"

namespace mn {
namespace x86 {
namespace {

constexpr size_t kQ4GroupBytes = 4 * sizeof(BlockQ4_0);  // 72
constexpr size_t kQ8GroupBytes = 4 * sizeof(BlockQ8_0);  // 136: a group of Q8_0 activation blocks

// Word indices for _mm512_permutex2var_epi16 over a group of four blocks (bit 5 picks the second source).
// Q4_0 from words 0..31 and 4..35: word 8k + m <- qs word m of block k (word 9k + 1 + m).
alignas(64) const uint16_t kQ4QsIndex[32] = {1,  2,  3,  4,  5,  6,  7,  8,  10, 11, 12, 13, 14, 15, 16, 17,
                                             19, 20, 21, 22, 23, 24, 25, 26, 28, 29, 30, 31, 60, 61, 62, 63};
// Q4_0 scales: word i < 16 <- d of block i/4 (word 9k).
alignas(64) const uint16_t kQ4DIndex[32] = {0, 0, 0, 0, 9, 9, 9, 9, 18, 18, 18, 18, 27, 27, 27, 27};
// Q4_0 from two consecutive 64-byte lines, the group starting at word 0 of the first (add 4 per 8 bytes of offset).
alignas(64) const uint16_t kQ4QsLineIndex[32] = {1,  2,  3,  4,  5,  6,  7,  8,  10, 11, 12, 13, 14, 15, 16, 17,
                                                 19, 20, 21, 22, 23, 24, 25, 26, 28, 29, 30, 31, 32, 33, 34, 35};
// Q8_0 from words 0..31 and 32..63: word 8k + m <- qs word m of block k (word 17k + 1 + m). The same index
// gathers the high halves from words 8..39 and 40..71.
alignas(64) const uint16_t kQ8QsIndex[32] = {1,  2,  3,  4,  5,  6,  7,  8,  18, 19, 20, 21, 22, 23, 24, 25,
                                             35, 36, 37, 38, 39, 40, 41, 42, 52, 53, 54, 55, 56, 57, 58, 59};
// Q8_0 scales: word i < 16 <- d of block i/4 (word 17k).
alignas(64) const uint16_t kQ8DIndex[32] = {0, 0, 0, 0, 17, 17, 17, 17, 34, 34, 34, 34, 51, 51, 51, 51};

// Four blocks: lane k of lo / hi holds block k's elements 0..15 / 16..31 (u8 for weights, s8 for activations);
// d lanes 4k..4k+3 hold block k's scale.
struct Quad {
  __m512i lo, hi;
  __m512 d;
};

// An activation quad plus the accumulator start that cancels the weights' unsigned offset.
struct ActQuad {
  __m512i lo, hi, init;
  __m512 d;
};

struct Indices {
  __m512i q4Qs, q4D, q8Qs, q8D;
};

Indices loadIndices() {
  Indices idx;
  idx.q4Qs = _mm512_load_si512(kQ4QsIndex);
  idx.q4D = _mm512_load_si512(kQ4DIndex);
  idx.q8Qs = _mm512_load_si512(kQ8QsIndex);
  idx.q8D = _mm512_load_si512(kQ8DIndex);
  return idx;
}

// The low `words` 16-bit lanes (0..32).
MN_INLINE __mmask32 wordMask(long words) {
  if (words <= 0) return 0;
  if (words >= 32) return 0xFFFFFFFFu;
  return (1u << words) - 1;
}

// `blocks` (1..4) Q4_0 blocks at p, nothing read past them; missing blocks read as zero.
MN_INLINE Quad loadQ4(const uint8_t* p, long blocks, const Indices& idx) {
  __m512i a, b;
  if (blocks == 4) {
    a = _mm512_loadu_si512(p);
    b = _mm512_loadu_si512(p + 8);
  } else {
    a = _mm512_maskz_loadu_epi16(wordMask(9 * blocks), p);
    b = _mm512_maskz_loadu_epi16(wordMask(9 * blocks - 4), p + 8);
  }
  const __m512i qs = _mm512_permutex2var_epi16(a, idx.q4Qs, b);
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  Quad quad;
  quad.lo = _mm512_and_si512(qs, low4);
  quad.hi = _mm512_and_si512(_mm512_srli_epi16(qs, 4), low4);
  quad.d = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(idx.q4D, a)));
  return quad;
}

// `blocks` (1..4) Q8_0 blocks at p as signed bytes, nothing read past them; missing blocks read as zero.
MN_INLINE Quad loadQ8(const uint8_t* p, long blocks, const Indices& idx) {
  __m512i x0, x1, h0, h1;
  if (blocks == 4) {
    x0 = _mm512_loadu_si512(p);
    x1 = _mm512_loadu_si512(p + 64);
    h0 = _mm512_loadu_si512(p + 16);
    h1 = _mm512_maskz_loadu_epi16(0x0FFFFFFFu, p + 80);
  } else {
    const long words = 17 * blocks;
    x0 = _mm512_maskz_loadu_epi16(wordMask(words), p);
    x1 = _mm512_maskz_loadu_epi16(wordMask(words - 32), p + 64);
    h0 = _mm512_maskz_loadu_epi16(wordMask(words - 8), p + 16);
    h1 = _mm512_maskz_loadu_epi16(wordMask(words - 40), p + 80);
  }
  Quad quad;
  quad.lo = _mm512_permutex2var_epi16(x0, idx.q8Qs, x1);
  quad.hi = _mm512_permutex2var_epi16(h0, idx.q8Qs, h1);
  quad.d = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutex2var_epi16(x0, idx.q8D, x1)));
  return quad;
}

// Activations with init = -8 * (partial sums of q_x), the offset of Q4_0's unsigned weight levels.
MN_INLINE ActQuad loadActivations(const uint8_t* p, long blocks, const Indices& idx) {
  const Quad quad = loadQ8(p, blocks, idx);
  const __m512i offset = _mm512_set1_epi8(8);
  __m512i sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), offset, quad.lo);
  sums = _mm512_dpbusd_epi32(sums, offset, quad.hi);
  ActQuad act;
  act.lo = quad.lo;
  act.hi = quad.hi;
  act.init = _mm512_sub_epi32(_mm512_setzero_si512(), sums);
  act.d = quad.d;
  return act;
}

// ---- decode (one column): one weight row at a time, activations packed once per call ----
//
// Several rows in flight interleave several memory streams, which this kind of CPU prefetches far worse than one:
// 4 rows stream at ~17 GB/s where one row streams at ~30. So decode reads one row from start to end, and the
// activations, shared by all rows, are unpacked once per call into a stack buffer the row loop reads from L1.
// A row whose start is 8-byte aligned is read with aligned 64-byte loads (never split, never past a line that holds
// row bytes); each group's 72 bytes then sit in two consecutive lines at a word
// offset fixed by the row's alignment, so the permute indices are per-offset constants.

constexpr size_t kPackGroups = 128;  // groups of activations packed per chunk: 16384 values, 32 KB of stack
// Every (row, column) dot product is summed in spans of this many groups (4096 values). Within a span, even groups
// accumulate lane-wise into one vector and odd groups into another (two dependency chains for single-row decode);
// at its end the two are added and reduced, and span results are added in order. Decode and prefill both sum this
// way, so a result never depends on how many columns a call had, its tile shape or which rows it covered.
constexpr size_t kSpanGroups = 32;
constexpr size_t kSpanBytes = kSpanGroups * kQ4GroupBytes;  // 2304: one span of a Q4_0 row
// Software prefetch distance of the row stream: measured on Zen 5, 17 -> 22 GB/s single-thread (2.3-7 KB all help).
constexpr size_t kPrefetchBytes = 4608;

// Decode of rows longer than one span goes span by span over blocks of kSpanRows rows, so that only one span's packed
// activations (8 KB) are in use while the weights stream past them in L1 (a whole 14336-long row's 28 KB took the
// down projections a fifth below gate and up: docs/performance.md). Each span prefetches the span visited
// kSpanPrefetchAhead later. Measured on the down projections: 8 rows and 3 ahead stream 42.5-43.2 GB/s, 16 rows
// 38-41, 4 rows 39-40, 1 or 5 ahead 36-39. (The K-quant decode, 17.5 KB of packed activations at that width, and the
// AVX2 decode, 30 KB, both decoded slower this way, so they stream whole rows.)
constexpr size_t kSpanRows = 8;
constexpr size_t kSpanPrefetchAhead = 3;

// Bytes from span s of row i to the span visited kSpanPrefetchAhead later, in a block of `rows` rows (rowBytes apart)
// of `spans` spans walked span by span; past the block's last span come the next block's rows.
MN_INLINE ptrdiff_t spanPrefetchDistance(size_t s, size_t i, size_t rows, size_t spans, size_t rowBytes) {
  const size_t ahead = s * rows + i + kSpanPrefetchAhead;
  const bool inBlock = ahead < spans * rows;
  const size_t nextS = inBlock ? ahead / rows : 0, nextI = inBlock ? ahead % rows : ahead - spans * rows + rows;
  return (static_cast<ptrdiff_t>(nextI) - static_cast<ptrdiff_t>(i)) * static_cast<ptrdiff_t>(rowBytes) +
         (static_cast<ptrdiff_t>(nextS) - static_cast<ptrdiff_t>(s)) * static_cast<ptrdiff_t>(kSpanBytes);
}

struct PackedGroup {
  __m512i lo, hi, init;
  __m512 d;
};

// Permute indices for a Q4_0 group at word offset 4 * o (o < 8) of a pair of lines.
struct LineIndices {
  __m512i qs[8], d[8];
};

LineIndices makeLineIndices() {
  LineIndices li;
  const __m512i qs = _mm512_load_si512(kQ4QsLineIndex), d = _mm512_load_si512(kQ4DIndex);
  for (int o = 0; o < 8; o++) {
    const __m512i offset = _mm512_set1_epi16(static_cast<short>(4 * o));
    li.qs[o] = _mm512_add_epi16(qs, offset);
    li.d[o] = _mm512_add_epi16(d, offset);
  }
  return li;
}

// Prefetches `count` lines from p on, into L1
MN_INLINE void prefetchLines(const uint8_t* p, int count) {
  for (int i = 0; i < count; i++) _mm_prefetch(reinterpret_cast<const char*>(p + 64 * i), _MM_HINT_T0);
}

// acc += (weights quad . packed activations), lane-wise scaled
MN_INLINE void accumulatePacked(const Quad& w, const PackedGroup& x, __m512& acc) {
  __m512i dot = _mm512_dpbusd_epi32(x.init, w.lo, x.lo);
  dot = _mm512_dpbusd_epi32(dot, w.hi, x.hi);
  acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), _mm512_mul_ps(w.d, x.d), acc);
}

// The Q4_0 group held by lines a, b at word offset 4 * o, unpacked
MN_INLINE Quad q4FromLines(__m512i a, __m512i b, __m512i qsIndex, __m512i dIndex) {
  const __m512i qs = _mm512_permutex2var_epi16(a, qsIndex, b);
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  Quad quad;
  quad.lo = _mm512_and_si512(qs, low4);
  quad.hi = _mm512_and_si512(_mm512_srli_epi16(qs, 4), low4);
  quad.d = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutex2var_epi16(a, dIndex, b)));
  return quad;
}

// acc += nSuper runs of 8 Q4_0 groups (576 bytes = 9 lines), starting 8 * S bytes into the line at `lines`, times the
// packed activations x; even groups go to acc[0], odd ones to acc[1]. Each run prefetches the lines `prefetch` bytes
// from its own.
template <int S>
void q4RowAligned(const uint8_t* lines, size_t nSuper, const PackedGroup* x, const LineIndices& li, ptrdiff_t prefetch,
                  __m512 (&acc)[2]) {
  for (size_t j = 0; j < nSuper; j++, lines += 576, x += 8) {
    __m512i line[10];
    for (int i = 0; i < 9; i++) line[i] = _mm512_load_si512(lines + 64 * i);
    line[9] = S > 0 ? _mm512_load_si512(lines + 576) : _mm512_setzero_si512();
    prefetchLines(lines + prefetch, 9);
    // Fully unrolled so `line` and the indices stay in registers.
#pragma GCC unroll 8
    for (int g = 0; g < 8; g++) {
      const int first = g + (S + g >= 8 ? 1 : 0), offset = (S + g) & 7;
      accumulatePacked(q4FromLines(line[first], line[first + 1], li.qs[offset], li.d[offset]), x[g], acc[g % 2]);
    }
  }
}

// Packs activation groups [groupBegin, groupBegin + count) of x (nBlocks blocks).
void packActivations(const uint8_t* x, size_t groupBegin, size_t count, size_t nBlocks, const Indices& idx,
                     PackedGroup* out) {
  for (size_t g = 0; g < count; g++) {
    const size_t firstBlock = 4 * (groupBegin + g);
    const long blocks = nBlocks - firstBlock < 4 ? static_cast<long>(nBlocks - firstBlock) : 4;
    const ActQuad act = loadActivations(x + (groupBegin + g) * kQ8GroupBytes, blocks, idx);
    out[g].lo = act.lo;
    out[g].hi = act.hi;
    out[g].init = act.init;
    out[g].d = act.d;
  }
}

// acc += the groups [0, count) of one row (whose first group is at `row`, nBlocks blocks remaining from there) times
// the packed activations x, even groups into acc[0] and odd ones into acc[1], prefetching `prefetch` bytes from the
// lines being read. The aligned line loads take the runs of 8 whole groups; the rest (and rows not 8-byte aligned) go
// through masked loads. Both give identical lanes.
MN_INLINE void spanDot(const uint8_t* row, size_t count, size_t nBlocks, const PackedGroup* x, const Indices& idx,
                       const LineIndices& li, ptrdiff_t prefetch, __m512 (&acc)[2]) {
  size_t g = 0;
  const uintptr_t misalignment = reinterpret_cast<uintptr_t>(row) & 63;
  if (misalignment % 8 == 0) {
    const size_t fullGroups = nBlocks / 4 < count ? nBlocks / 4 : count;
    const size_t nSuper = fullGroups / 8;
    const uint8_t* lines = row - misalignment;
    switch (misalignment / 8) {
      case 0: q4RowAligned<0>(lines, nSuper, x, li, prefetch, acc); break;
      case 1: q4RowAligned<1>(lines, nSuper, x, li, prefetch, acc); break;
      case 2: q4RowAligned<2>(lines, nSuper, x, li, prefetch, acc); break;
      case 3: q4RowAligned<3>(lines, nSuper, x, li, prefetch, acc); break;
      case 4: q4RowAligned<4>(lines, nSuper, x, li, prefetch, acc); break;
      case 5: q4RowAligned<5>(lines, nSuper, x, li, prefetch, acc); break;
      case 6: q4RowAligned<6>(lines, nSuper, x, li, prefetch, acc); break;
      default: q4RowAligned<7>(lines, nSuper, x, li, prefetch, acc); break;
    }
    g = 8 * nSuper;
  }
  for (; g < count; g++) {
    const long blocks = nBlocks - 4 * g < 4 ? static_cast<long>(nBlocks - 4 * g) : 4;
    const uint8_t* p = row + g * kQ4GroupBytes;
    for (size_t line = 0; line < kQ4GroupBytes; line += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(p + prefetch + line), _MM_HINT_T0);
    }
    accumulatePacked(loadQ4(p, blocks, idx), x[g], acc[g % 2]);
  }
}

// W (nRows, n) rows [rowBegin, rowEnd) Q4_0 @ x (n,) Q8_0 -> y[r], summed in the order of kSpanGroups, as the
// prefill tiles do. A row of one span is streamed from start to end (one stream prefetches far better than several
// interleaved rows); longer rows go span by span over blocks of kSpanRows rows (above).
void streamQuant(const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x,
                 float* y, const Indices& idx) {
  static_assert(kPackGroups % kSpanGroups == 0, "a packed chunk holds whole spans");
  PackedGroup packed[kPackGroups];
  const LineIndices li = makeLineIndices();
  const size_t nBlocks = n / 32, nGroups = (nBlocks + 3) / 4;
  for (size_t g0 = 0; g0 < nGroups; g0 += kPackGroups) {
    const size_t count = nGroups - g0 < kPackGroups ? nGroups - g0 : kPackGroups;
    packActivations(x, g0, count, nBlocks, idx, packed);
    const size_t spans = (count + kSpanGroups - 1) / kSpanGroups;
    const size_t blockRows = spans == 1 ? 1 : kSpanRows;
    for (size_t r0 = rowBegin; r0 < rowEnd; r0 += blockRows) {
      const size_t rows = rowEnd - r0 < blockRows ? rowEnd - r0 : blockRows;
      float sums[kSpanRows];
      for (size_t i = 0; i < rows; i++) sums[i] = g0 == 0 ? 0.0f : y[r0 + i];
      for (size_t s = 0; s < spans; s++) {
        const size_t g = g0 + s * kSpanGroups;
        const size_t spanCount = count - s * kSpanGroups < kSpanGroups ? count - s * kSpanGroups : kSpanGroups;
        for (size_t i = 0; i < rows; i++) {
          const uint8_t* span = w + (r0 + i) * wRowBytes + g * kQ4GroupBytes;
          const ptrdiff_t prefetch = spans == 1 ? ptrdiff_t(kPrefetchBytes)
                                                : spanPrefetchDistance(s, i, rows, spans, wRowBytes);
          __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
          spanDot(span, spanCount, nBlocks - 4 * g, packed + s * kSpanGroups, idx, li, prefetch, acc);
          const float partial = _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1]));
          sums[i] = g == 0 ? partial : sums[i] + partial;
        }
      }
      for (size_t i = 0; i < rows; i++) y[r0 + i] = sums[i];
    }
  }
}

// ---- prefill (several columns) ----
//
// Activations are packed for a tile of kPrefillCols columns and a chunk of kChunkGroups groups (32 KB of stack)
// once per block of kRowBlock rows, so unpacking them costs 1/kRowBlock of a row's work; the block's weights
// (at most 516 KB at n = 14336) stay in L2 while every column tile passes over them. In the register tile each
// weight group is unpacked once and meets kPrefillCols packed activation groups read from L1.

constexpr size_t kPrefillRows = 4;
constexpr size_t kPrefillCols = 4;
constexpr size_t kChunkGroups = kSpanGroups;  // one span per tile pass: the order decode sums in
constexpr size_t kRowBlock = 64;

// acc[r][c] += the groups first, first + 2, ... < count of W rows (R) @ packed X (C columns); nBlocks blocks remain in
// each row from its group 0 on
template <int R, int C>
MN_INLINE void prefillPass(const uint8_t* w, size_t wRowBytes, size_t first, size_t count, size_t nBlocks,
                           const PackedGroup* packed, const Indices& idx, __m512 (&acc)[R][C]) {
  for (size_t g = first; g < count; g += 2) {
    const long blocks = nBlocks - 4 * g < 4 ? static_cast<long>(nBlocks - 4 * g) : 4;
    for (int r = 0; r < R; r++) {
      const uint8_t* p = w + r * wRowBytes + g * kQ4GroupBytes;
      const Quad quad = loadQ4(p, blocks, idx);
      for (int c = 0; c < C; c++) accumulatePacked(quad, packed[c * kChunkGroups + g], acc[r][c]);
    }
  }
}

// W rows (R, 4 * count blocks) from their group g0 @ packed X (C columns) -> y[c * ldy + r] (added when accumulate);
// nBlocks blocks remain in each row from the first group on. The chunk is one span: a pass over the even groups, one
// over the odd groups (a register tile has no room for both accumulators at once), then the span sum.
template <int R, int C>
void prefillTile(const uint8_t* w, size_t wRowBytes, size_t count, size_t nBlocks, const PackedGroup* packed,
                 float* y, size_t ldy, bool accumulate, const Indices& idx) {
  __m512 even[R][C], odd[R][C];
  for (int r = 0; r < R; r++)
    for (int c = 0; c < C; c++) even[r][c] = odd[r][c] = _mm512_setzero_ps();
  prefillPass<R, C>(w, wRowBytes, 0, count, nBlocks, packed, idx, even);
  prefillPass<R, C>(w, wRowBytes, 1, count, nBlocks, packed, idx, odd);
  for (int r = 0; r < R; r++) {
    for (int c = 0; c < C; c++) {
      const float sum = _mm512_reduce_add_ps(_mm512_add_ps(even[r][c], odd[r][c]));
      y[c * ldy + r] = accumulate ? y[c * ldy + r] + sum : sum;
    }
  }
}

template <int C>
void prefillTileRows(size_t rows, const uint8_t* w, size_t wRowBytes, size_t count, size_t nBlocks,
                     const PackedGroup* packed, float* y, size_t ldy, bool accumulate, const Indices& idx) {
  switch (rows) {
    case 4: prefillTile<4, C>(w, wRowBytes, count, nBlocks, packed, y, ldy, accumulate, idx); return;
    case 3: prefillTile<3, C>(w, wRowBytes, count, nBlocks, packed, y, ldy, accumulate, idx); return;
    case 2: prefillTile<2, C>(w, wRowBytes, count, nBlocks, packed, y, ldy, accumulate, idx); return;
    default: prefillTile<1, C>(w, wRowBytes, count, nBlocks, packed, y, ldy, accumulate, idx); return;
  }
}

using PrefillTileFn = void (*)(size_t rows, const uint8_t* w, size_t wRowBytes, size_t count, size_t nBlocks,
                               const PackedGroup* packed, float* y, size_t ldy, bool accumulate, const Indices& idx);

// W (nRows, n) rows [rowBegin, rowEnd) Q4_0 @ X (nCols, n) Q8_0 -> Y[c * ldy + r]
void prefillQuant(const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x,
                  size_t actRowBytes, size_t nCols, float* y, size_t ldy, const Indices& idx) {
  PackedGroup packed[kPrefillCols * kChunkGroups];
  const size_t nBlocks = n / 32, nGroups = (nBlocks + 3) / 4;
  for (size_t blockBegin = rowBegin; blockBegin < rowEnd; blockBegin += kRowBlock) {
    const size_t blockEnd = rowEnd - blockBegin < kRowBlock ? rowEnd : blockBegin + kRowBlock;
    for (size_t c0 = 0; c0 < nCols; c0 += kPrefillCols) {
      const size_t cols = nCols - c0 < kPrefillCols ? nCols - c0 : kPrefillCols;
      const PrefillTileFn tile = cols == 4   ? prefillTileRows<4>
                                 : cols == 3 ? prefillTileRows<3>
                                 : cols == 2 ? prefillTileRows<2>
                                             : prefillTileRows<1>;
      for (size_t g0 = 0; g0 < nGroups; g0 += kChunkGroups) {
        const size_t count = nGroups - g0 < kChunkGroups ? nGroups - g0 : kChunkGroups;
        for (size_t c = 0; c < cols; c++) {
          packActivations(x + (c0 + c) * actRowBytes, g0, count, nBlocks, idx, packed + c * kChunkGroups);
        }
        for (size_t r = blockBegin; r < blockEnd; r += kPrefillRows) {
          const size_t rows = blockEnd - r < kPrefillRows ? blockEnd - r : kPrefillRows;
          const uint8_t* wTile = w + r * wRowBytes + g0 * kQ4GroupBytes;
          float* yTile = y + c0 * ldy + r;
          tile(rows, wTile, wRowBytes, count, nBlocks - 4 * g0, packed, yTile, ldy, g0 != 0, idx);
        }
      }
    }
  }
}

// W (nRows, n) rows [rowBegin, rowEnd) Q4_0 @ X (nCols, n) Q8_0 -> Y[c * ldy + r]
void matmulQuant(const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x,
                 size_t actRowBytes, size_t nCols, float* y, size_t ldy) {
  const Indices idx = loadIndices();
  switch (nCols) {
    case 1: streamQuant(w, wRowBytes, n, rowBegin, rowEnd, x, y, idx); return;
    default: prefillQuant(w, wRowBytes, n, rowBegin, rowEnd, x, actRowBytes, nCols, y, ldy, idx); return;
  }
}

// ---- Q8_0 prefill, in the AVX2 kernel's order with two columns per vector ----
// Each 256-bit half carries one column through exactly the arithmetic of matmul_avx2.cc's tile: 8 lanes of 4-product
// sums per block, scaled by the float d_w * d_x and added per 128-block span into an even-block and an odd-block
// accumulator, summed by the same sumTileSpans. So Q8_0 results stay bit-identical to the AVX2 decode (which Q8_0
// keeps, kernels.cc) at any batching. The lane sums are the same integers: vpdpbusd takes q_w + 128 as its unsigned
// operand, starting from -128 * (the activations' 4-value sums).

constexpr size_t kQ8SpanBlocks = 128;  // matmul_avx2.cc's kSpanBlocks
// Tile 4 rows x 6 columns: 177 GFLOP/s single-thread prefill against 133 at 2 x 6, 164 at 4 x 4 and 3 x 8 (the AVX2
// kernel: 74)
constexpr int kQ8TileRows = 4;
constexpr int kQ8TilePairs = 3;  // column pairs

// One block of a column pair: both columns' q_x, the offset that starts the sums, and the d_x of each half
struct Q8PairBlock {
  __m512i q, offset;
  __m512 d;
};

// Block b of columns x0 and x1 (the same column twice for an odd tile's last pair)
MN_INLINE Q8PairBlock loadQ8Pair(const uint8_t* x0, const uint8_t* x1, size_t b) {
  const BlockQ8_0& first = reinterpret_cast<const BlockQ8_0*>(x0)[b];
  const BlockQ8_0& second = reinterpret_cast<const BlockQ8_0*>(x1)[b];
  Q8PairBlock pair;
  pair.q = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(first.qs))),
                              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(second.qs)), 1);
  const __m512i sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(static_cast<char>(0x80)), pair.q);
  pair.offset = _mm512_sub_epi32(_mm512_setzero_si512(), sums);
  pair.d = _mm512_insertf32x8(_mm512_set1_ps(halfToFloat(first.d)), _mm256_set1_ps(halfToFloat(second.d)), 1);
  return pair;
}

// acc[r][c] += blocks first, first + 2, ... < end of W rows (R) . columns (C), which run in pairs (P): a pair's
// accumulators are joined into one vector for the pass and split again after it
template <int R, int C, int P>
MN_INLINE void q8PrefillPass(const uint8_t* w, size_t wRowBytes, size_t first, size_t end, const uint8_t* const* x0,
                             const uint8_t* const* x1, __m256 (&columns)[R][C]) {
  const __m512i bias = _mm512_set1_epi8(static_cast<char>(0x80));
  __m512 acc[R][P];
  for (int r = 0; r < R; r++) {
    for (int p = 0; p < P; p++) {
      const __m256 high = 2 * p + 1 < C ? columns[r][2 * p + 1] : columns[r][2 * p];
      acc[r][p] = _mm512_insertf32x8(_mm512_castps256_ps512(columns[r][2 * p]), high, 1);
    }
  }
  for (size_t b = first; b < end; b += 2) {
    Q8PairBlock pairs[P];
    for (int p = 0; p < P; p++) pairs[p] = loadQ8Pair(x0[p], x1[p], b);
    for (int r = 0; r < R; r++) {
      const BlockQ8_0& block = reinterpret_cast<const BlockQ8_0*>(w + r * wRowBytes)[b];
      const __m512i levels = _mm512_xor_si512(
          _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block.qs))), bias);
      const __m512 wd = _mm512_set1_ps(halfToFloat(block.d));
      for (int p = 0; p < P; p++) {
        const __m512 sums = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(pairs[p].offset, levels, pairs[p].q));
        acc[r][p] = _mm512_fmadd_ps(sums, _mm512_mul_ps(wd, pairs[p].d), acc[r][p]);
      }
    }
  }
  for (int r = 0; r < R; r++) {
    for (int c = 0; c < C; c++) {
      columns[r][c] = c % 2 == 0 ? _mm512_castps512_ps256(acc[r][c / 2]) : _mm512_extractf32x8_ps(acc[r][c / 2], 1);
    }
  }
}

// W rows (R) Q8_0 @ columns (C) Q8_0 at x, actRowBytes apart -> y[c * ldy + r]
template <int R, int C>
void q8PrefillTile(const uint8_t* w, size_t wRowBytes, size_t nBlocks, const uint8_t* x, size_t actRowBytes, float* y,
                   size_t ldy) {
  constexpr int P = (C + 1) / 2;
  const uint8_t* x0[P];
  const uint8_t* x1[P];
  for (int p = 0; p < P; p++) {
    x0[p] = x + 2 * p * actRowBytes;
    x1[p] = 2 * p + 1 < C ? x0[p] + actRowBytes : x0[p];
  }
  sumTileSpans<R, C>(nBlocks, kQ8SpanBlocks, y, ldy, [&](size_t first, size_t end, __m256 (&acc)[R][C]) {
    q8PrefillPass<R, C, P>(w, wRowBytes, first, end, x0, x1, acc);
  });
}

template <int C>
void q8PrefillTileRows(size_t rows, const uint8_t* w, size_t wRowBytes, size_t nBlocks, const uint8_t* x,
                       size_t actRowBytes, float* y, size_t ldy) {
  static_assert(kQ8TileRows <= 4, "one case per row count");
  switch (rows) {
    case 4: q8PrefillTile<4, C>(w, wRowBytes, nBlocks, x, actRowBytes, y, ldy); return;
    case 3: q8PrefillTile<3, C>(w, wRowBytes, nBlocks, x, actRowBytes, y, ldy); return;
    case 2: q8PrefillTile<2, C>(w, wRowBytes, nBlocks, x, actRowBytes, y, ldy); return;
    default: q8PrefillTile<1, C>(w, wRowBytes, nBlocks, x, actRowBytes, y, ldy); return;
  }
}

using Q8TileFn = void (*)(size_t rows, const uint8_t* w, size_t wRowBytes, size_t nBlocks, const uint8_t* x,
                          size_t actRowBytes, float* y, size_t ldy);

// W (nRows, n) rows [rowBegin, rowEnd) Q8_0 @ X (nCols, n) Q8_0 -> Y[c * ldy + r]. Right for one column too, but
// kernels.cc sends decode to the AVX2 kernel's row stream.
void matmulQ8(const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x,
               size_t actRowBytes, size_t nCols, float* y, size_t ldy) {
  static const Q8TileFn kTiles[2 * kQ8TilePairs] = {q8PrefillTileRows<1>, q8PrefillTileRows<2>, q8PrefillTileRows<3>,
                                                    q8PrefillTileRows<4>, q8PrefillTileRows<5>, q8PrefillTileRows<6>};
  const size_t nBlocks = n / 32, tileCols = 2 * kQ8TilePairs;
  for (size_t r = rowBegin; r < rowEnd; r += kQ8TileRows) {
    const size_t rows = rowEnd - r < kQ8TileRows ? rowEnd - r : kQ8TileRows;
    for (size_t c = 0; c < nCols; c += tileCols) {
      const size_t cols = nCols - c < tileCols ? nCols - c : tileCols;
      kTiles[cols - 1](rows, w + r * wRowBytes, wRowBytes, nBlocks, x + c * actRowBytes, actRowBytes, y + c * ldy + r,
                       ldy);
    }
  }
}

// ---- float weights: F32 x F32, F16 x F16, BF16 x BF16 (widened to f32, FMA) ----

enum class FloatKind { F32, F16, BF16 };

template <FloatKind K>
constexpr size_t floatBytes() {
  return K == FloatKind::F32 ? 4 : 2;
}

// 16 values at p as floats; the first `count` only when masked (the rest read as zero, nothing read past them)
template <FloatKind K>
MN_INLINE __m512 loadFloats(const uint8_t* p) {
  if (K == FloatKind::F32) return _mm512_loadu_ps(p);
  const __m256i half = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  if (K == FloatKind::F16) return _mm512_cvtph_ps(half);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(half), 16));
}

template <FloatKind K>
MN_INLINE __m512 loadFloatsMasked(const uint8_t* p, __mmask16 mask) {
  if (K == FloatKind::F32) return _mm512_maskz_loadu_ps(mask, p);
  const __m256i half = _mm256_maskz_loadu_epi16(mask, p);
  if (K == FloatKind::F16) return _mm512_cvtph_ps(half);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(half), 16));
}

// acc[r][c] += W rows (R) . X columns (C) over the 16 values at `offset` (the first `mask` of them when masked)
template <int R, int C, FloatKind K, bool kMasked>
MN_INLINE void floatStep(const uint8_t* w, size_t wRowBytes, const uint8_t* x, size_t actRowBytes, size_t offset,
                         __mmask16 mask, __m512 (&acc)[R][C]) {
  __m512 xs[C];
  for (int c = 0; c < C; c++) {
    const uint8_t* p = x + c * actRowBytes + offset;
    xs[c] = kMasked ? loadFloatsMasked<K>(p, mask) : loadFloats<K>(p);
  }
  for (int r = 0; r < R; r++) {
    const __m512 ws = kMasked ? loadFloatsMasked<K>(w + r * wRowBytes + offset, mask)
                              : loadFloats<K>(w + r * wRowBytes + offset);
    for (int c = 0; c < C; c++) acc[r][c] = _mm512_fmadd_ps(ws, xs[c], acc[r][c]);
  }
}

// W rows (R, n) @ X (C, n) -> y[c * ldy + r], one element type for both. Steps of 16 values alternate between two
// accumulators (even steps into `even`, odd into `odd`), as the decode row loop does, so both give identical results.
template <int R, int C, FloatKind K>
void tileFloat(const uint8_t* w, size_t wRowBytes, size_t n, const uint8_t* x, size_t actRowBytes, float* y,
               size_t ldy) {
  constexpr size_t step = 16 * floatBytes<K>();
  __m512 even[R][C], odd[R][C];
  for (int r = 0; r < R; r++)
    for (int c = 0; c < C; c++) even[r][c] = odd[r][c] = _mm512_setzero_ps();
  const size_t nSteps = n / 16;
  size_t s = 0;
  for (; s + 2 <= nSteps; s += 2) {
    floatStep<R, C, K, false>(w, wRowBytes, x, actRowBytes, s * step, 0, even);
    floatStep<R, C, K, false>(w, wRowBytes, x, actRowBytes, (s + 1) * step, 0, odd);
  }
  if (s < nSteps) floatStep<R, C, K, false>(w, wRowBytes, x, actRowBytes, s * step, 0, even);
  if (n % 16 != 0) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (n % 16)) - 1);
    if (nSteps % 2 == 0) floatStep<R, C, K, true>(w, wRowBytes, x, actRowBytes, nSteps * step, mask, even);
    else floatStep<R, C, K, true>(w, wRowBytes, x, actRowBytes, nSteps * step, mask, odd);
  }
  for (int r = 0; r < R; r++)
    for (int c = 0; c < C; c++) y[c * ldy + r] = _mm512_reduce_add_ps(_mm512_add_ps(even[r][c], odd[r][c]));
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

// w (n,) . x (n,) for decode: one row streamed with the decode prefetch distance, summed exactly as tileFloat
// (even steps into `even`, odd into `odd`)
template <FloatKind K>
float rowDotFloat(const uint8_t* w, const uint8_t* x, size_t n) {
  constexpr size_t step = 16 * floatBytes<K>();
  __m512 even = _mm512_setzero_ps(), odd = _mm512_setzero_ps();
  const size_t nSteps = n / 16;
  size_t s = 0;
  for (; s + 4 <= nSteps; s += 4) {
    for (size_t line = 0; line < 4 * step; line += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(w + s * step + kPrefetchBytes + line), _MM_HINT_T0);
    }
    even = _mm512_fmadd_ps(loadFloats<K>(w + s * step), loadFloats<K>(x + s * step), even);
    odd = _mm512_fmadd_ps(loadFloats<K>(w + (s + 1) * step), loadFloats<K>(x + (s + 1) * step), odd);
    even = _mm512_fmadd_ps(loadFloats<K>(w + (s + 2) * step), loadFloats<K>(x + (s + 2) * step), even);
    odd = _mm512_fmadd_ps(loadFloats<K>(w + (s + 3) * step), loadFloats<K>(x + (s + 3) * step), odd);
  }
  for (; s < nSteps; s++) {
    __m512& acc = s % 2 == 0 ? even : odd;
    acc = _mm512_fmadd_ps(loadFloats<K>(w + s * step), loadFloats<K>(x + s * step), acc);
  }
  if (n % 16 != 0) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (n % 16)) - 1);
    __m512& acc = nSteps % 2 == 0 ? even : odd;
    acc = _mm512_fmadd_ps(loadFloatsMasked<K>(w + s * step, mask), loadFloatsMasked<K>(x + s * step, mask), acc);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(even, odd));
}

using FloatTileFn = void (*)(size_t rows, const uint8_t* w, size_t wRowBytes, size_t n, const uint8_t* x,
                            size_t actRowBytes, float* y, size_t ldy);

// W (nRows, n) rows [rowBegin, rowEnd) @ X (nCols, n) -> Y[c * ldy + r], W and X of one float kind
template <FloatKind K>
void matmulFloat(const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x,
                 size_t actRowBytes, size_t nCols, float* y, size_t ldy) {
  if (nCols == 1) {
    for (size_t r = rowBegin; r < rowEnd; r++) y[r] = rowDotFloat<K>(w + r * wRowBytes, x, n);
    return;
  }
  for (size_t r = rowBegin; r < rowEnd; r += 4) {
    const size_t rows = rowEnd - r < 4 ? rowEnd - r : 4;
    const uint8_t* wTile = w + r * wRowBytes;
    size_t c = 0;
    for (; c + 3 <= nCols; c += 3) {
      tileFloatRows<3, K>(rows, wTile, wRowBytes, n, x + c * actRowBytes, actRowBytes, y + c * ldy + r, ldy);
    }
    if (c < nCols) {
      const FloatTileFn tile = nCols - c == 2 ? tileFloatRows<2, K> : tileFloatRows<1, K>;
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
    case GgmlType::Q4_0: kernel = matmulQuant; break;
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
  const __m512 signBit = _mm512_set1_ps(-0.0f);
  for (size_t b = 0; b < n / 32; b++, x += 32) {
    const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_andnot_ps(signBit, v0), _mm512_andnot_ps(signBit,
        v1)));
    const __m512 scale = _mm512_set1_ps(amax != 0.0f ? 127.0f / amax : 0.0f);
    blocks[b].d = floatToHalf(amax / 127.0f);
    const __m512i q0 = _mm512_cvt_roundps_epi32(_mm512_mul_ps(v0, scale), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512i q1 = _mm512_cvt_roundps_epi32(_mm512_mul_ps(v1, scale), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(blocks[b].qs), _mm512_cvtepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(blocks[b].qs + 16), _mm512_cvtepi32_epi8(q1));
  }
}

// x (n,) -> Q8_K blocks as the scalar reference: the first value of largest magnitude (NaN skipped) sets
// iscale = -127 / extreme, q = min(127, iscale * x rounded half to even), bsums per 16, d = 1 / iscale
void quantizeQ8_K(const float* x, BlockQ8_K* blocks, size_t n) {
  const __m512 signBit = _mm512_set1_ps(-0.0f);
  for (size_t b = 0; b < n / kQKK; b++, x += kQKK) {
    BlockQ8_K& block = blocks[b];
    __m512 magnitudes[kQKK / 16];
    __m512 amax = _mm512_setzero_ps();
    for (size_t g = 0; g < kQKK / 16; g++) {
      const __m512 v = _mm512_loadu_ps(x + 16 * g);
      magnitudes[g] = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), _mm512_andnot_ps(signBit, v));
      amax = _mm512_max_ps(amax, magnitudes[g]);
    }
    const __m512 largest = _mm512_set1_ps(_mm512_reduce_max_ps(amax));
    float extreme = 0.0f;
    for (size_t g = 0; g < kQKK / 16; g++) {
      const __mmask16 hit = _mm512_cmp_ps_mask(magnitudes[g], largest, _CMP_EQ_OQ);
      if (hit != 0) {
        extreme = x[16 * g + static_cast<size_t>(__builtin_ctz(hit))];
        break;
      }
    }
    if (extreme == 0.0f) {
      std::memset(&block, 0, sizeof(block));
      continue;
    }
    const float iscale = -127.0f / extreme;
    const __m512 scale = _mm512_set1_ps(iscale);
    const __m512i top = _mm512_set1_epi32(127);
    for (size_t g = 0; g < kQKK / 16; g++) {
      const __m512 v = _mm512_mul_ps(_mm512_loadu_ps(x + 16 * g), scale);
      const __m512i q = _mm512_min_epi32(_mm512_cvt_roundps_epi32(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), top);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(block.qs + 16 * g), _mm512_cvtsepi32_epi8(q));
      block.bsums[g] = static_cast<int16_t>(_mm512_reduce_add_epi32(q));
    }
    block.d = 1.0f / iscale;
  }
}

// x (n,) -> fp16 (n,), round to nearest even as floatToFp16
void quantizeF16(const float* x, uint16_t* out, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), _mm512_cvtps_ph(_mm512_loadu_ps(x + i),
        _MM_FROUND_TO_NEAREST_INT));
  }
  if (i < n) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m256i halves = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(mask, x + i), _MM_FROUND_TO_NEAREST_INT);
    _mm256_mask_storeu_epi16(out + i, mask, halves);
  }
}

// 16 floats -> bfloat16 with floatToBf16's rounding (to nearest even; NaN kept quiet)
__m256i floatsToBf16(__m512 v) {
  const __m512i bits = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(bits, _mm512_set1_epi32(0x7fffffff)),
                                                _mm512_set1_epi32(0x7f800000));
  rounded = _mm512_mask_mov_epi32(rounded, nan, _mm512_or_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(64)));
  return _mm512_cvtepi32_epi16(rounded);
}

void quantizeBf16(const float* x, uint16_t* out, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i),
      floatsToBf16(_mm512_loadu_ps(x + i)));
  if (i < n) {
    const __mmask16 mask = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm256_mask_storeu_epi16(out + i, mask, floatsToBf16(_mm512_maskz_loadu_ps(mask, x + i)));
  }
}

// x (n,) -> one activation row in `format`
void quantizeActivations(ActFormat format, const float* x, void* dst, size_t n) {
  switch (format) {
    case ActFormat::F32: std::memcpy(dst, x, n * sizeof(float)); return;
    case ActFormat::F16: quantizeF16(x, static_cast<uint16_t*>(dst), n); return;
    case ActFormat::BF16: quantizeBf16(x, static_cast<uint16_t*>(dst), n); return;
    case ActFormat::Q8_0: quantizeQ8_0(x, static_cast<BlockQ8_0*>(dst), n); return;
    case ActFormat::Q8_K: quantizeQ8_K(x, static_cast<BlockQ8_K*>(dst), n); return;
    default: scalar::quantizeActivations(format, x, dst, n); return;
  }
}

// ---- row dequantization ----

// 16 int32 -> floats * d, stored at out
void storeScaled(float* out, __m512i q, __m512 d) { _mm512_storeu_ps(out, _mm512_mul_ps(_mm512_cvtepi32_ps(q), d)); }

// One row of n values of `type` -> out (n,)
void dequantizeRow(GgmlType type, const uint8_t* row, float* out, size_t n) {
  switch (type) {
    case GgmlType::Q4_0: {
      const BlockQ4_0* blocks = reinterpret_cast<const BlockQ4_0*>(row);
      const __m128i low4 = _mm_set1_epi8(0x0F);
      const __m512i eight = _mm512_set1_epi32(8);
      for (size_t b = 0; b < n / 32; b++, out += 32) {
        const __m512 d = _mm512_set1_ps(_mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(blocks[b].d))));
        const __m128i qs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks[b].qs));
        storeScaled(out, _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_and_si128(qs, low4)), eight), d);
        storeScaled(out + 16, _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(qs, 4), low4)),
            eight), d);
      }
      return;
    }
    case GgmlType::Q8_0: {
      const BlockQ8_0* blocks = reinterpret_cast<const BlockQ8_0*>(row);
      for (size_t b = 0; b < n / 32; b++, out += 32) {
        const __m512 d = _mm512_set1_ps(_mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(blocks[b].d))));
        const __m128i* qs = reinterpret_cast<const __m128i*>(blocks[b].qs);
        storeScaled(out, _mm512_cvtepi8_epi32(_mm_loadu_si128(qs)), d);
        storeScaled(out + 16, _mm512_cvtepi8_epi32(_mm_loadu_si128(qs + 1)), d);
      }
      return;
    }
    case GgmlType::F16:
    case GgmlType::BF16: {
      size_t i = 0;
      for (; i + 16 <= n; i += 16) {
        _mm512_storeu_ps(out + i, type == GgmlType::F16 ? loadFloats<FloatKind::F16>(row + 2 * i)
                                                        : loadFloats<FloatKind::BF16>(row + 2 * i));
      }
      if (i < n) {
        const __mmask16 mask = static_cast<__mmask16>((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(out + i, mask, type == GgmlType::F16 ? loadFloatsMasked<FloatKind::F16>(row + 2 * i, mask)
                                                                   : loadFloatsMasked<FloatKind::BF16>(row + 2 * i,
                                                                       mask));
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
extern const MatmulKernels kMatmulAvx512 = {quantizeActivations, matmul, dequantizeRow};
}  // namespace x86
}  // namespace mn

#endif  // x86-64
