// AVX2 (+FMA, F16C) element-wise and attention kernels: RMSNorm, RoPE rotation, attention scores /
// accumulation over F16 and F32 caches, softmax, SiLU-gated product, axpy. Tails of fewer than 8 values go
// through a zero-padded stack copy so nothing is read or written past the caller's arrays.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/scalar.h"
#include "kernels/x86/x86_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)

#define MN_X86_TARGET "avx2,fma,f16c"
#include "kernels/x86/target_begin.h"

#include "kernels/x86/simd_common.h"
#include "kernels/x86/attention_heads.h"

namespace mn {
namespace x86 {
namespace {

// The first `count` (< 8) floats at p, the rest `fill`
__m256 loadPartial(const float* p, size_t count, float fill) {
  alignas(32) float padded[8] = {fill, fill, fill, fill, fill, fill, fill, fill};
  std::memcpy(padded, p, count * sizeof(float));
  return _mm256_load_ps(padded);
}

void storePartial(float* p, __m256 v, size_t count) {
  alignas(32) float values[8];
  _mm256_store_ps(values, v);
  std::memcpy(p, values, count * sizeof(float));
}

__m256 loadHalfs(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

__m256 loadHalfsPartial(const uint16_t* p, size_t count) {
  alignas(16) uint16_t padded[8] = {};
  std::memcpy(padded, p, count * sizeof(uint16_t));
  return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(padded)));
}

// e^x for 8 lanes: x = n ln2 + r, e^r by a degree-6 polynomial, 2^n built in the exponent bits. x is clamped to
// [-87.3, 88.3] so 2^n stays normal; lanes below -87.3 return exactly 0 (as expf underflows).
__m256 exp8(__m256 x) {
  const __m256 lowest = _mm256_set1_ps(-87.3f);
  const __m256 underflow = _mm256_cmp_ps(x, lowest, _CMP_LT_OQ);
  x = _mm256_min_ps(_mm256_max_ps(x, lowest), _mm256_set1_ps(88.3f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i exponent = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(underflow, _mm256_mul_ps(p, _mm256_castsi256_ps(exponent)));
}

// out (n,) = x (n,) / sqrt(mean(x^2) + eps) * weight (n,)
void rmsNorm(float* out, const float* x, const float* weight, size_t n, float eps) {
  __m256 sum0 = _mm256_setzero_ps(), sum1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
    sum0 = _mm256_fmadd_ps(a, a, sum0);
    sum1 = _mm256_fmadd_ps(b, b, sum1);
  }
  for (; i + 8 <= n; i += 8) {
    const __m256 a = _mm256_loadu_ps(x + i);
    sum0 = _mm256_fmadd_ps(a, a, sum0);
  }
  if (i < n) {
    const __m256 a = loadPartial(x + i, n - i, 0.0f);
    sum1 = _mm256_fmadd_ps(a, a, sum1);
  }
  const float mean = horizontalSum(_mm256_add_ps(sum0, sum1)) / static_cast<float>(n);
  const __m256 scale = _mm256_set1_ps(1.0f / _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(mean + eps))));
  for (i = 0; i + 8 <= n; i += 8) {
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), scale), _mm256_loadu_ps(weight + i)));
  }
  if (i < n) {
    const __m256 v = _mm256_mul_ps(_mm256_mul_ps(loadPartial(x + i, n - i, 0.0f), scale), loadPartial(weight + i,
        n - i, 0.0f));
    storePartial(out + i, v, n - i);
  }
}

// x (nHeads, headDim) in place, pairs (2i, 2i+1), i < ropeDim/2, rotated by the scalar reference's angles.
// Four pairs (8 floats) at a time: out = x * [c, c] + swap(x) * [-s, s].
void rope(float* x, size_t nHeads, size_t headDim, size_t ropeDim, int64_t pos, float freqBase) {
  alignas(16) float cosines[4], sines[4];
  const __m256i duplicate = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
  const __m256 alternate = _mm256_setr_ps(-1.0f, 1.0f, -1.0f, 1.0f, -1.0f, 1.0f, -1.0f, 1.0f);
  const size_t nPairs = ropeDim / 2;
  for (size_t i0 = 0; i0 < nPairs; i0 += 4) {
    const size_t pairs = nPairs - i0 < 4 ? nPairs - i0 : 4;
    scalar::ropeAngles(pos, freqBase, ropeDim, i0, i0 + pairs, cosines, sines);
    for (size_t p = pairs; p < 4; p++) cosines[p] = sines[p] = 0.0f;
    const __m256 c = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_load_ps(cosines)), duplicate);
    const __m256 s = _mm256_mul_ps(_mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_load_ps(sines)), duplicate),
        alternate);
    for (size_t h = 0; h < nHeads; h++) {
      float* head = x + h * headDim + 2 * i0;
      const __m256 v = pairs == 4 ? _mm256_loadu_ps(head) : loadPartial(head, 2 * pairs, 0.0f);
      const __m256 rotated = _mm256_fmadd_ps(_mm256_permute_ps(v, 0xB1), s, _mm256_mul_ps(v, c));
      if (pairs == 4) {
        _mm256_storeu_ps(head, rotated);
      } else {
        storePartial(head, rotated, 2 * pairs);
      }
    }
  }
}

// dots[h] = q_h (headDim,) . k (headDim,) for the H rows of q, F16 or F32 k converted once for all of them; each
// head sums in two lane-wise chains over 16 values at a time, then across lanes, whatever H is.
template <int H, bool kHalf, typename T>
MN_INLINE void dotHeads(const float* q, const T* k, size_t headDim, float* dots) {
  __m256 acc0[H], acc1[H];
#pragma GCC unroll 32
  for (int h = 0; h < H; h++) acc0[h] = acc1[h] = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= headDim; i += 16) {
    const __m256 k0 = kHalf ? loadHalfs(reinterpret_cast<const uint16_t*>(k) + i)
                            : _mm256_loadu_ps(reinterpret_cast<const float*>(k) + i);
    const __m256 k1 = kHalf ? loadHalfs(reinterpret_cast<const uint16_t*>(k) + i + 8)
                            : _mm256_loadu_ps(reinterpret_cast<const float*>(k) + i + 8);
#pragma GCC unroll 32
    for (int h = 0; h < H; h++) {
      acc0[h] = _mm256_fmadd_ps(_mm256_loadu_ps(q + h * headDim + i), k0, acc0[h]);
      acc1[h] = _mm256_fmadd_ps(_mm256_loadu_ps(q + h * headDim + i + 8), k1, acc1[h]);
    }
  }
  for (; i < headDim; i += 8) {
    const size_t count = headDim - i < 8 ? headDim - i : 8;
    const __m256 kv = kHalf ? loadHalfsPartial(reinterpret_cast<const uint16_t*>(k) + i, count)
                            : loadPartial(reinterpret_cast<const float*>(k) + i, count, 0.0f);
#pragma GCC unroll 32
    for (int h = 0; h < H; h++) acc0[h] = _mm256_fmadd_ps(loadPartial(q + h * headDim + i, count, 0.0f), kv, acc0[h]);
  }
#pragma GCC unroll 32
  for (int h = 0; h < H; h++) dots[h] = horizontalSum(_mm256_add_ps(acc0[h], acc1[h]));
}

// scores_h[j] = scale * q_h . k_j for the H rows of q, one key at a time
template <int H, bool kHalf, typename T>
void scoreHeads(const float* q, const T* k, size_t headDim, size_t count, float scale, float* scores,
                size_t scoresStride) {
  for (size_t j = 0; j < count; j++) {
    float dots[H];
    dotHeads<H, kHalf>(q, k + j * headDim, headDim, dots);
#pragma GCC unroll 32
    for (int h = 0; h < H; h++) scores[h * scoresStride + j] = scale * dots[h];
  }
}

// Vectors of 8 columns per pass for H heads: H * V accumulators, one value vector and the weights fit 16 registers.
template <int H>
constexpr int kVectorsPerPass = H == 1 ? 8 : H == 2 ? 4 : 2;

// out_h[i0 .. i0 + 8V) += p_h (count,) @ V[:, i0 ..] for the H rows of out (headDim apart), V full vectors in
// registers; each value vector is converted once for all heads
template <int V, int H, bool kHalf, typename T>
void accumulateChunk(float* out, const float* p, size_t pStride, const T* v, size_t headDim, size_t count) {
  // The loops over heads and vectors are unrolled by pragma: left to itself, GCC keeps acc in registers but also
  // stores every accumulator to the stack after each FMA, and those stores set the pace.
  __m256 acc[H * V];
#pragma GCC unroll 32
  for (int h = 0; h < H; h++) {
#pragma GCC unroll 32
    for (int t = 0; t < V; t++) acc[h * V + t] = _mm256_loadu_ps(out + h * headDim + 8 * t);
  }
  for (size_t j = 0; j < count; j++, v += headDim) {
    __m256 weight[H];
#pragma GCC unroll 32
    for (int h = 0; h < H; h++) weight[h] = _mm256_set1_ps(p[h * pStride + j]);
#pragma GCC unroll 32
    for (int t = 0; t < V; t++) {
      const __m256 values = kHalf ? loadHalfs(reinterpret_cast<const uint16_t*>(v) + 8 * t)
                                  : _mm256_loadu_ps(reinterpret_cast<const float*>(v) + 8 * t);
#pragma GCC unroll 32
      for (int h = 0; h < H; h++) acc[h * V + t] = _mm256_fmadd_ps(weight[h], values, acc[h * V + t]);
    }
  }
#pragma GCC unroll 32
  for (int h = 0; h < H; h++) {
#pragma GCC unroll 32
    for (int t = 0; t < V; t++) _mm256_storeu_ps(out + h * headDim + 8 * t, acc[h * V + t]);
  }
}

// accumulateChunk over `vectors` (<= V) full vectors of columns
template <int V, int H, bool kHalf, typename T>
void accumulateVectors(size_t vectors, float* out, const float* p, size_t pStride, const T* v, size_t headDim,
                       size_t count) {
  if constexpr (V > 1) {
    if (vectors < V) return accumulateVectors<V - 1, H, kHalf>(vectors, out, p, pStride, v, headDim, count);
  }
  accumulateChunk<V, H, kHalf>(out, p, pStride, v, headDim, count);
}

// out_h (headDim,) += p_h (count,) @ V (count, headDim) for the H rows of out: 8 * kVectorsPerPass<H> columns per
// pass, a masked loop for the last < 8
template <int H, bool kHalf, typename T>
void accumulateHeads(float* out, const float* p, size_t pStride, const T* v, size_t headDim, size_t count) {
  constexpr size_t kColumns = 8 * kVectorsPerPass<H>;
  const size_t full = headDim / 8 * 8;
  for (size_t i0 = 0; i0 < full; i0 += kColumns) {
    const size_t vectors = (full - i0 < kColumns ? full - i0 : kColumns) / 8;
    accumulateVectors<kVectorsPerPass<H>, H, kHalf>(vectors, out + i0, p, pStride, v + i0, headDim, count);
  }
  if (full == headDim) return;
  const size_t width = headDim - full;
#pragma GCC unroll 32
  for (int h = 0; h < H; h++) {
    __m256 acc = loadPartial(out + h * headDim + full, width, 0.0f);
    for (size_t j = 0; j < count; j++) {
      const T* row = v + j * headDim + full;
      const __m256 values = kHalf ? loadHalfsPartial(reinterpret_cast<const uint16_t*>(row), width)
                                  : loadPartial(reinterpret_cast<const float*>(row), width, 0.0f);
      acc = _mm256_fmadd_ps(_mm256_set1_ps(p[h * pStride + j]), values, acc);
    }
    storePartial(out + h * headDim + full, acc, width);
  }
}

// x (n,) <- exp(x - max) / sum
void softmax(float* x, size_t n) {
  const float minusInf = -__builtin_inff();
  __m256 maxes = _mm256_set1_ps(minusInf);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) maxes = _mm256_max_ps(maxes, _mm256_loadu_ps(x + i));
  if (i < n) maxes = _mm256_max_ps(maxes, loadPartial(x + i, n - i, minusInf));
  const __m256 max = _mm256_set1_ps(horizontalMax(maxes));
  __m256 sums = _mm256_setzero_ps();
  for (i = 0; i + 8 <= n; i += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), max));
    _mm256_storeu_ps(x + i, e);
    sums = _mm256_add_ps(sums, e);
  }
  if (i < n) {
    const __m256 e = exp8(_mm256_sub_ps(loadPartial(x + i, n - i, minusInf), max));
    storePartial(x + i, e, n - i);
    sums = _mm256_add_ps(sums, e);
  }
  const __m256 inverse = _mm256_set1_ps(1.0f / horizontalSum(sums));
  for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inverse));
  for (; i < n; i++) x[i] *= _mm256_cvtss_f32(inverse);
}

// silu(g) * u for 8 lanes
__m256 siluTimes(__m256 g, __m256 u) {
  const __m256 denominator = _mm256_add_ps(_mm256_set1_ps(1.0f), exp8(_mm256_sub_ps(_mm256_setzero_ps(), g)));
  return _mm256_mul_ps(_mm256_div_ps(g, denominator), u);
}

// gate (n,) <- silu(gate) * up (n,)
void siluMul(float* gate, const float* up, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(gate + i, siluTimes(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
  if (i < n) storePartial(gate + i, siluTimes(loadPartial(gate + i, n - i, 0.0f), loadPartial(up + i, n - i, 0.0f)),
      n - i);
}

// y (n,) += a * x (n,)
void axpy(float* y, float a, const float* x, size_t n) {
  const __m256 scale = _mm256_set1_ps(a);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(scale, _mm256_loadu_ps(x + i),
      _mm256_loadu_ps(y + i)));
  for (; i < n; i++) y[i] += a * x[i];
}

// The wrapping sum of count 64-bit words in 256-bit loads, two cache lines per step
uint64_t sumWords(const uint64_t* words, size_t count) {
  __m256i acc[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
  size_t i = 0;
  for (; i + 16 <= count; i += 16) {
    for (int k = 0; k < 4; k++) {
      acc[k] = _mm256_add_epi64(acc[k], _mm256_loadu_si256(reinterpret_cast<const __m256i*>(words + i + 4 * k)));
    }
  }
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes),
                     _mm256_add_epi64(_mm256_add_epi64(acc[0], acc[1]), _mm256_add_epi64(acc[2], acc[3])));
  return lanes[0] + lanes[1] + lanes[2] + lanes[3] + scalar::sumWords(words + i, count - i);
}

}  // namespace
}  // namespace x86
}  // namespace mn

#include "kernels/x86/target_end.h"

namespace mn {
namespace x86 {
extern const OpKernels kOpsAvx2 = {rmsNorm, rope, attnScoresF16, attnScoresF32, attnAccumulateF16,
                                    attnAccumulateF32, softmax, siluMul, axpy, sumWords};
}  // namespace x86
}  // namespace mn

#endif  // x86-64
