// Helpers every x86 kernel file shares. Include this after the file's target pragma and <immintrin.h>. Everything
// here has internal linkage, so each file compiles its own copy for its own ISA, and the linker cannot hand an AVX2
// path a copy built for AVX-512.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/quants.h"

#if defined(_MSC_VER)
#define MN_INLINE __forceinline
#define MN_NOINLINE __declspec(noinline)
#else
#define MN_INLINE inline __attribute__((always_inline))
#define MN_NOINLINE __attribute__((noinline))
#endif

namespace mn {
namespace x86 {
namespace {

// v, loaded once into a register for all its uses: GCC otherwise folds a load into every instruction that reads v,
// and a tile whose loads are its bottleneck then loads each operand once per use (the AVX2 Q6_K tile: 8 loads per 4
// vpmaddubsw, and 111-117 GFLOP/s where one load each gave 126-132, best of 5 alternating runs)
MN_INLINE __m256i inRegister(__m256i v) {
#if !defined(_MSC_VER)
  __asm__("" : "+x"(v));
#endif
  return v;
}

MN_INLINE float halfToFloat(uint16_t h) { return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h))); }

MN_INLINE uint16_t floatToHalf(float f) {
  return static_cast<uint16_t>(_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(f), _MM_FROUND_TO_NEAREST_INT), 0));
}

MN_INLINE uint16_t loadU16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

MN_INLINE uint32_t loadU32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// The 8 scales and the 8 mins of a Q4_K or Q5_K super-block's 12 packed bytes, one byte each in sub-block order (as
// unpackQ4Scales in quants.cc): bytes 0..7 the scales, 8..15 the mins. Reads 16 bytes, the 12 and the 4 after them,
// which both block types hold (quants or high bits follow). In vector registers, where a scalar unpack needed two
// moves into them: the Q4_K decode in L2 ran 1.026x as fast (best of 40 alternating rounds in one process).
MN_INLINE __m128i q4ScaleBytes(const uint8_t* packed) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(packed));
  // the low bits: scales 0..3 are bytes 0..3, mins 0..3 bytes 4..7, scales and mins 4..7 the nibbles of bytes 8..11
  const __m128i low = _mm_shuffle_epi8(v, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 8, 9, 10, 11));
  const __m128i nibbles = _mm_blend_epi32(low, _mm_srli_epi16(low, 4), 0x8);  // mins 4..7: the high nibbles
  const __m128i lowBits = _mm_and_si128(
      nibbles, _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 15, 15, 15, 15));
  // the top two bits of scales and mins 4..7: bits 6 and 7 of bytes 0..3 and 4..7
  const __m128i top = _mm_shuffle_epi8(v, _mm_setr_epi8(-1, -1, -1, -1, 0, 1, 2, 3, -1, -1, -1, -1, 4, 5, 6, 7));
  return _mm_or_si128(lowBits, _mm_and_si128(_mm_srli_epi16(top, 2), _mm_set1_epi8(0x30)));
}

// 8 signed 32-bit values (16-bit range) -> each in both 16-bit halves of its lane, for vpmaddwd
MN_INLINE __m256i replicateWords(__m256i v) {
  return _mm256_or_si256(_mm256_and_si256(v, _mm256_set1_epi32(0xFFFF)), _mm256_slli_epi32(v, 16));
}

// Values 32p .. 32p + 31 (p < 8) of the 4-bit levels packed as Q4_K's and Q5_K's qs (the low nibbles of 32 bytes,
// then their high nibbles), one byte each in element order
MN_INLINE __m256i nibbleLevels(const uint8_t* qs, int p) {
  const __m256i packed = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * (p / 2)));
  return _mm256_and_si256(p % 2 ? _mm256_srli_epi16(packed, 4) : packed, _mm256_set1_epi8(0x0F));
}

// Values 32p .. 32p + 31 (p < 8) of a Q6_K super-block: its unsigned 6-bit levels, one byte each in element order
MN_INLINE __m256i q6Levels(const uint8_t* block, int p) {
  const BlockQ6_K* b = reinterpret_cast<const BlockQ6_K*>(block);
  const int h = p / 4, t = p % 4;
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m256i packed = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->ql + 64 * h + 32 * (t % 2)));
  const __m256i nibble = _mm256_and_si256(t / 2 ? _mm256_srli_epi16(packed, 4) : packed, low4);
  const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b->qh + 32 * h));
  const __m256i high = _mm256_slli_epi16(_mm256_srli_epi16(qh, 2 * t), 4);
  return _mm256_or_si256(nibble, _mm256_and_si256(high, _mm256_set1_epi8(0x30)));
}

MN_INLINE float horizontalSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// y[0 .. count) <- lanes [first, first + count) of v
MN_INLINE void storeLanes(float* y, __m256 v, size_t first, size_t count) {
  if (first == 0 && count == 8) {
    _mm256_storeu_ps(y, v);
    return;
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, v);
  std::memcpy(y, lanes + first, count * sizeof(float));
}

// Lanes [first, first + count) <- y[0 .. count), the others zero
MN_INLINE __m256 loadLanes(const float* y, size_t first, size_t count) {
  if (first == 0 && count == 8) return _mm256_loadu_ps(y);
  alignas(32) float lanes[8] = {};
  std::memcpy(lanes + first, y, count * sizeof(float));
  return _mm256_load_ps(lanes);
}

MN_INLINE float horizontalMax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// y[c * ldy + r] = the (r, c) sums of an R x C register tile of 8-lane accumulators, in the order decode sums a
// row: per span of `span` blocks, pass(first, end, acc) adds blocks first, first + 2, ... < end into acc, once for the
// even and once for the odd blocks (a tile has no registers for both accumulators at once); the two are added and
// reduced, and the spans' sums are added in order.
template <int R, int C, typename Pass>
MN_INLINE void sumTileSpans(size_t nBlocks, size_t span, float* y, size_t ldy, Pass&& pass) {
  float sum[R][C];
  for (size_t b0 = 0; b0 < nBlocks; b0 += span) {
    const size_t end = nBlocks - b0 < span ? nBlocks : b0 + span;
    __m256 even[R][C], odd[R][C];
    for (int r = 0; r < R; r++)
      for (int c = 0; c < C; c++) even[r][c] = odd[r][c] = _mm256_setzero_ps();
    pass(b0, end, even);
    pass(b0 + 1, end, odd);
    for (int r = 0; r < R; r++) {
      for (int c = 0; c < C; c++) {
        const float partial = horizontalSum(_mm256_add_ps(even[r][c], odd[r][c]));
        sum[r][c] = b0 == 0 ? partial : sum[r][c] + partial;
      }
    }
  }
  for (int r = 0; r < R; r++)
    for (int c = 0; c < C; c++) y[c * ldy + r] = sum[r][c];
}

}  // namespace
}  // namespace x86
}  // namespace mn
