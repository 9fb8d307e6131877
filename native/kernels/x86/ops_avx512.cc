// AVX-512 element-wise and attention kernels: RMSNorm, RoPE rotation, attention scores / accumulation over F16
// and F32 caches, softmax, SiLU-gated product, axpy. Each matches its scalar twin in scalar.h within
// REFERENCE.md's NMSE thresholds; exp is a Cephes-style polynomial (about 1 ulp on the reduced range).
#include <cstddef>
#include <cstdint>

#include "kernels/scalar.h"
#include "kernels/x86/x86_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)

#define MN_X86_TARGET "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c"
#include "kernels/x86/target_begin.h"

#include "kernels/x86/simd_common.h"
#include "kernels/x86/attention_heads.h"

namespace mn {
namespace x86 {
namespace {

__mmask16 tailMask(size_t count) { return static_cast<__mmask16>((1u << count) - 1); }

// e^x for 16 lanes: x = n ln2 + r, |r| <= ln2/2, e^r by a degree-6 polynomial, times 2^n by scalef (which
// underflows to 0 and overflows to inf by itself); inputs are clamped so +-inf never reach the reduction.
__m512 exp16(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-120.0f)), _mm512_set1_ps(89.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

// out (n,) = x (n,) / sqrt(mean(x^2) + eps) * weight (n,)
void rmsNorm(float* out, const float* x, const float* weight, size_t n, float eps) {
  __m512 sum0 = _mm512_setzero_ps(), sum1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + 16);
    sum0 = _mm512_fmadd_ps(a, a, sum0);
    sum1 = _mm512_fmadd_ps(b, b, sum1);
  }
  for (; i < n; i += 16) {
    const __m512 a = _mm512_maskz_loadu_ps(n - i >= 16 ? 0xFFFF : tailMask(n - i), x + i);
    sum0 = _mm512_fmadd_ps(a, a, sum0);
  }
  const float mean = _mm512_reduce_add_ps(_mm512_add_ps(sum0, sum1)) / static_cast<float>(n);
  const __m512 scale = _mm512_set1_ps(1.0f / _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(mean + eps))));
  for (i = 0; i + 16 <= n; i += 16) {
    _mm512_storeu_ps(out + i, _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), scale), _mm512_loadu_ps(weight + i)));
  }
  if (i < n) {
    const __mmask16 mask = tailMask(n - i);
    const __m512 v = _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(mask, x + i), scale),
        _mm512_maskz_loadu_ps(mask, weight + i));
    _mm512_mask_storeu_ps(out + i, mask, v);
  }
}

// x (nHeads, headDim) in place, pairs (2i, 2i+1), i < ropeDim/2, rotated by the scalar reference's angles.
// Eight pairs (16 floats) at a time: out = x * [c, c] + swap(x) * [-s, s].
void rope(float* x, size_t nHeads, size_t headDim, size_t ropeDim, int64_t pos, float freqBase) {
  alignas(32) float cosines[8], sines[8];
  const __m512i duplicate = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
  const size_t nPairs = ropeDim / 2;
  for (size_t i0 = 0; i0 < nPairs; i0 += 8) {
    const size_t pairs = nPairs - i0 < 8 ? nPairs - i0 : 8;
    scalar::ropeAngles(pos, freqBase, ropeDim, i0, i0 + pairs, cosines, sines);
    for (size_t p = pairs; p < 8; p++) cosines[p] = sines[p] = 0.0f;
    const __m512 c = _mm512_permutexvar_ps(duplicate, _mm512_castps256_ps512(_mm256_load_ps(cosines)));
    __m512 s = _mm512_permutexvar_ps(duplicate, _mm512_castps256_ps512(_mm256_load_ps(sines)));
    s = _mm512_mask_sub_ps(s, 0x5555, _mm512_setzero_ps(), s);
    const __mmask16 mask = tailMask(2 * pairs);
    for (size_t h = 0; h < nHeads; h++) {
      float* head = x + h * headDim + 2 * i0;
      const __m512 v = _mm512_maskz_loadu_ps(mask, head);
      const __m512 swapped = _mm512_permute_ps(v, 0xB1);
      _mm512_mask_storeu_ps(head, mask, _mm512_fmadd_ps(swapped, s, _mm512_mul_ps(v, c)));
    }
  }
}

__m512 loadHalfsMasked(const uint16_t* p, __mmask16 mask) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, p)); }

// The sums of the 16 lanes of a, b, c and d, in that order, each by the same additions: quarters, then lanes.
MN_INLINE __m128 sum4(__m512 a, __m512 b, __m512 c, __m512 d) {
  const __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
  const __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, 0x44), _mm512_shuffle_f32x4(c, d, 0xEE));
  __m512 quarters = _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, 0x88), _mm512_shuffle_f32x4(ab, cd, 0xDD));
  quarters = _mm512_add_ps(quarters, _mm512_permute_ps(quarters, 0x4E));
  quarters = _mm512_add_ps(quarters, _mm512_permute_ps(quarters, 0xB1));
  return _mm512_castps512_ps128(_mm512_permutexvar_ps(_mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4, 0),
                                                      quarters));
}

// scores_h[j] = scale * q_h (headDim,) . k_j (headDim,) for the H rows of q, four keys at a time, each key converted
// once for all heads. Each of the 4H dot products sums in one lane-wise chain over 16 values at a time, then across
// lanes by sum4 (one horizontal reduction per four dot products instead of one each). A last group of fewer than
// four keys repeats its last key, so every score takes the same additions whatever the count and H.
template <int H, bool kHalf, typename T>
void scoreHeads(const float* q, const T* k, size_t headDim, size_t count, float scale, float* scores,
                size_t scoresStride) {
  constexpr size_t kKeys = 4;
  const __m128 scales = _mm_set1_ps(scale);
  for (size_t j = 0; j < count; j += kKeys) {
    const size_t keys = count - j < kKeys ? count - j : kKeys;
    const T* rows[kKeys];
#pragma GCC unroll 4
    for (size_t r = 0; r < kKeys; r++) rows[r] = k + (j + (r < keys ? r : keys - 1)) * headDim;
    __m512 acc[H][kKeys];
#pragma GCC unroll 32
    for (int h = 0; h < H; h++) {
#pragma GCC unroll 4
      for (size_t r = 0; r < kKeys; r++) acc[h][r] = _mm512_setzero_ps();
    }
    for (size_t i = 0; i < headDim; i += 16) {
      const __mmask16 mask = headDim - i >= 16 ? 0xFFFF : tailMask(headDim - i);
      __m512 key[kKeys];
#pragma GCC unroll 4
      for (size_t r = 0; r < kKeys; r++) {
        key[r] = kHalf ? loadHalfsMasked(reinterpret_cast<const uint16_t*>(rows[r]) + i, mask)
                       : _mm512_maskz_loadu_ps(mask, reinterpret_cast<const float*>(rows[r]) + i);
      }
#pragma GCC unroll 32
      for (int h = 0; h < H; h++) {
        const __m512 query = _mm512_maskz_loadu_ps(mask, q + h * headDim + i);
#pragma GCC unroll 4
        for (size_t r = 0; r < kKeys; r++) acc[h][r] = _mm512_fmadd_ps(query, key[r], acc[h][r]);
      }
    }
#pragma GCC unroll 32
    for (int h = 0; h < H; h++) {
      const __m128 dots = _mm_mul_ps(scales, sum4(acc[h][0], acc[h][1], acc[h][2], acc[h][3]));
      _mm_mask_storeu_ps(scores + h * scoresStride + j, static_cast<__mmask8>((1u << keys) - 1), dots);
    }
  }
}

// Vectors of 16 columns per pass for H heads: H * V accumulators, V values and the weights fit 32 registers.
template <int H>
constexpr int kVectorsPerPass = H <= 3 ? 8 : 4;

// out_h[i0 .. i0 + 16V) += p_h (count,) @ V[:, i0 ..] for the H rows of out (headDim apart), accumulators in
// registers; each value vector is converted once for all heads; the last vector is masked by `last`
template <int V, int H, bool kHalf, typename T>
void accumulateChunk(float* out, const float* p, size_t pStride, const T* v, size_t headDim, size_t count,
                     __mmask16 last) {
  // The loops over heads and vectors are unrolled by pragma: left to itself, GCC keeps acc in registers but also
  // stores every accumulator to the stack after each FMA, and those stores set the pace.
  __m512 acc[H * V];
#pragma GCC unroll 32
  for (int h = 0; h < H; h++) {
#pragma GCC unroll 32
    for (int t = 0; t < V; t++) acc[h * V + t] = _mm512_maskz_loadu_ps(t == V - 1 ? last : 0xFFFF, out + h * headDim + 16 * t);
  }
  for (size_t j = 0; j < count; j++, v += headDim) {
    __m512 weight[H];
#pragma GCC unroll 32
    for (int h = 0; h < H; h++) weight[h] = _mm512_set1_ps(p[h * pStride + j]);
#pragma GCC unroll 32
    for (int t = 0; t < V; t++) {
      const __mmask16 mask = t == V - 1 ? last : 0xFFFF;
      const __m512 values = kHalf ? loadHalfsMasked(reinterpret_cast<const uint16_t*>(v) + 16 * t, mask)
                                  : _mm512_maskz_loadu_ps(mask, reinterpret_cast<const float*>(v) + 16 * t);
#pragma GCC unroll 32
      for (int h = 0; h < H; h++) acc[h * V + t] = _mm512_fmadd_ps(weight[h], values, acc[h * V + t]);
    }
  }
#pragma GCC unroll 32
  for (int h = 0; h < H; h++) {
#pragma GCC unroll 32
    for (int t = 0; t < V; t++) {
      _mm512_mask_storeu_ps(out + h * headDim + 16 * t, t == V - 1 ? last : 0xFFFF, acc[h * V + t]);
    }
  }
}

// accumulateChunk over `vectors` (<= V) vectors of columns
template <int V, int H, bool kHalf, typename T>
void accumulateVectors(size_t vectors, float* out, const float* p, size_t pStride, const T* v, size_t headDim,
                       size_t count, __mmask16 last) {
  if constexpr (V > 1) {
    if (vectors < V) return accumulateVectors<V - 1, H, kHalf>(vectors, out, p, pStride, v, headDim, count, last);
  }
  accumulateChunk<V, H, kHalf>(out, p, pStride, v, headDim, count, last);
}

// out_h (headDim,) += p_h (count,) @ V (count, headDim) for the H rows of out, 16 * kVectorsPerPass<H> columns a pass
template <int H, bool kHalf, typename T>
void accumulateHeads(float* out, const float* p, size_t pStride, const T* v, size_t headDim, size_t count) {
  constexpr size_t kColumns = 16 * kVectorsPerPass<H>;
  for (size_t i0 = 0; i0 < headDim; i0 += kColumns) {
    const size_t width = headDim - i0 < kColumns ? headDim - i0 : kColumns;
    const __mmask16 last = width % 16 == 0 ? 0xFFFF : tailMask(width % 16);
    accumulateVectors<kVectorsPerPass<H>, H, kHalf>((width + 15) / 16, out + i0, p, pStride, v + i0, headDim, count,
                                                    last);
  }
}

// x (n,) <- exp(x - max) / sum
void softmax(float* x, size_t n) {
  __m512 maxes = _mm512_set1_ps(-__builtin_inff());
  size_t i = 0;
  for (; i + 16 <= n; i += 16) maxes = _mm512_max_ps(maxes, _mm512_loadu_ps(x + i));
  if (i < n) maxes = _mm512_mask_max_ps(maxes, tailMask(n - i), maxes, _mm512_maskz_loadu_ps(tailMask(n - i), x + i));
  const __m512 max = _mm512_set1_ps(_mm512_reduce_max_ps(maxes));
  __m512 sums = _mm512_setzero_ps();
  for (i = 0; i + 16 <= n; i += 16) {
    const __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), max));
    _mm512_storeu_ps(x + i, e);
    sums = _mm512_add_ps(sums, e);
  }
  if (i < n) {
    const __mmask16 mask = tailMask(n - i);
    const __m512 e = _mm512_maskz_mov_ps(mask, exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(mask, x + i), max)));
    _mm512_mask_storeu_ps(x + i, mask, e);
    sums = _mm512_add_ps(sums, e);
  }
  const __m512 inverse = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sums));
  for (i = 0; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), inverse));
  if (i < n) {
    const __mmask16 mask = tailMask(n - i);
    _mm512_mask_storeu_ps(x + i, mask, _mm512_mul_ps(_mm512_maskz_loadu_ps(mask, x + i), inverse));
  }
}

// silu(g) * u for 16 lanes
__m512 siluTimes(__m512 g, __m512 u) {
  const __m512 denominator = _mm512_add_ps(_mm512_set1_ps(1.0f), exp16(_mm512_sub_ps(_mm512_setzero_ps(), g)));
  return _mm512_mul_ps(_mm512_div_ps(g, denominator), u);
}

// gate (n,) <- silu(gate) * up (n,)
void siluMul(float* gate, const float* up, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(gate + i, siluTimes(_mm512_loadu_ps(gate + i),
      _mm512_loadu_ps(up + i)));
  if (i < n) {
    const __mmask16 mask = tailMask(n - i);
    _mm512_mask_storeu_ps(gate + i, mask, siluTimes(_mm512_maskz_loadu_ps(mask, gate + i), _mm512_maskz_loadu_ps(mask,
        up + i)));
  }
}

// y (n,) += a * x (n,)
void axpy(float* y, float a, const float* x, size_t n) {
  const __m512 scale = _mm512_set1_ps(a);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_fmadd_ps(scale, _mm512_loadu_ps(x + i),
      _mm512_loadu_ps(y + i)));
  if (i < n) {
    const __mmask16 mask = tailMask(n - i);
    _mm512_mask_storeu_ps(y + i, mask, _mm512_fmadd_ps(scale, _mm512_maskz_loadu_ps(mask, x + i),
        _mm512_maskz_loadu_ps(mask, y + i)));
  }
}

// The wrapping sum of count 64-bit words in 512-bit loads, four cache lines per step (two per step read 10% slower
// on the Zen 5 VM, 2 threads; four match the AVX2 loop's four 256-bit loads per step)
uint64_t sumWords(const uint64_t* words, size_t count) {
  __m512i acc[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512()};
  size_t i = 0;
  for (; i + 32 <= count; i += 32) {
    for (int k = 0; k < 4; k++) acc[k] = _mm512_add_epi64(acc[k], _mm512_loadu_si512(words + i + 8 * k));
  }
  const __m512i sum = _mm512_add_epi64(_mm512_add_epi64(acc[0], acc[1]), _mm512_add_epi64(acc[2], acc[3]));
  return static_cast<uint64_t>(_mm512_reduce_add_epi64(sum)) + scalar::sumWords(words + i, count - i);
}

}  // namespace
}  // namespace x86
}  // namespace mn

#include "kernels/x86/target_end.h"

namespace mn {
namespace x86 {
extern const OpKernels kOpsAvx512 = {rmsNorm, rope, attnScoresF16, attnScoresF32, attnAccumulateF16,
                                      attnAccumulateF32, softmax, siluMul, axpy, sumWords};
}  // namespace x86
}  // namespace mn

#endif  // x86-64
