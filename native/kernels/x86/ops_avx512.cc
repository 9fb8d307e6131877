// AVX-512 element-wise and attention kernels: RMSNorm, RoPE rotation, attention scores / accumulation over F16
// and F32 caches, softmax, SiLU-gated product, axpy. Each matches its scalar twin in scalar.h within
// REFERENCE.md's NMSE thresholds; exp is a Cephes-style polynomial (about 1 ulp on the reduced range).
#include <cstddef>
#include <cstdint>

#include "kernels/scalar.h"
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

__m512 loadHalfs(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
__m512 loadHalfsMasked(const uint16_t* p, __mmask16 mask) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, p)); }

// q (headDim,) . k (headDim,), F16 or F32 k
template <bool kHalf, typename T>
float dotHead(const float* q, const T* k, size_t headDim) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= headDim; i += 32) {
    if (kHalf) {
      acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), loadHalfs(reinterpret_cast<const uint16_t*>(k) + i), acc0);
      acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), loadHalfs(reinterpret_cast<const uint16_t*>(k) + i + 16),
          acc1);
    } else {
      acc0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), _mm512_loadu_ps(reinterpret_cast<const float*>(k) + i), acc0);
      acc1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), _mm512_loadu_ps(reinterpret_cast<const float*>(k) + i + 16),
          acc1);
    }
  }
  for (; i < headDim; i += 16) {
    const __mmask16 mask = headDim - i >= 16 ? 0xFFFF : tailMask(headDim - i);
    const __m512 kv = kHalf ? loadHalfsMasked(reinterpret_cast<const uint16_t*>(k) + i, mask)
                            : _mm512_maskz_loadu_ps(mask, reinterpret_cast<const float*>(k) + i);
    acc0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, q + i), kv, acc0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

// scores (count,) = scale * K (count, headDim) @ q (headDim,)
void attnScoresF16(const float* q, const uint16_t* k, size_t headDim, size_t count, float scale, float* scores) {
  for (size_t j = 0; j < count; j++) scores[j] = scale * dotHead<true>(q, k + j * headDim, headDim);
}

void attnScoresF32(const float* q, const float* k, size_t headDim, size_t count, float scale, float* scores) {
  for (size_t j = 0; j < count; j++) scores[j] = scale * dotHead<false>(q, k + j * headDim, headDim);
}

// out[i0 .. i0 + 16V) += p (count,) @ V[:, i0 ..], V accumulators in registers; the last vector masked by `last`
template <int V, bool kHalf, typename T>
void accumulateChunk(float* out, const float* p, const T* v, size_t headDim, size_t count, __mmask16 last) {
  __m512 acc[V];
  for (int t = 0; t < V; t++) acc[t] = _mm512_maskz_loadu_ps(t == V - 1 ? last : 0xFFFF, out + 16 * t);
  for (size_t j = 0; j < count; j++, v += headDim) {
    const __m512 weight = _mm512_set1_ps(p[j]);
    for (int t = 0; t < V; t++) {
      const __mmask16 mask = t == V - 1 ? last : 0xFFFF;
      const __m512 values = kHalf ? loadHalfsMasked(reinterpret_cast<const uint16_t*>(v) + 16 * t, mask)
                                  : _mm512_maskz_loadu_ps(mask, reinterpret_cast<const float*>(v) + 16 * t);
      acc[t] = _mm512_fmadd_ps(weight, values, acc[t]);
    }
  }
  for (int t = 0; t < V; t++) _mm512_mask_storeu_ps(out + 16 * t, t == V - 1 ? last : 0xFFFF, acc[t]);
}

// out (headDim,) += p (count,) @ V (count, headDim), 128 columns of V per pass
template <bool kHalf, typename T>
void attnAccumulate(float* out, const float* p, const T* v, size_t headDim, size_t count) {
  for (size_t i0 = 0; i0 < headDim; i0 += 128) {
    const size_t width = headDim - i0 < 128 ? headDim - i0 : 128;
    const __mmask16 last = width % 16 == 0 ? 0xFFFF : tailMask(width % 16);
    float* o = out + i0;
    const T* vc = v + i0;
    switch ((width + 15) / 16) {
      case 8: accumulateChunk<8, kHalf>(o, p, vc, headDim, count, last); break;
      case 7: accumulateChunk<7, kHalf>(o, p, vc, headDim, count, last); break;
      case 6: accumulateChunk<6, kHalf>(o, p, vc, headDim, count, last); break;
      case 5: accumulateChunk<5, kHalf>(o, p, vc, headDim, count, last); break;
      case 4: accumulateChunk<4, kHalf>(o, p, vc, headDim, count, last); break;
      case 3: accumulateChunk<3, kHalf>(o, p, vc, headDim, count, last); break;
      case 2: accumulateChunk<2, kHalf>(o, p, vc, headDim, count, last); break;
      default: accumulateChunk<1, kHalf>(o, p, vc, headDim, count, last); break;
    }
  }
}

void attnAccumulateF16(float* out, const float* p, const uint16_t* v, size_t headDim, size_t count) {
  attnAccumulate<true>(out, p, v, headDim, count);
}

void attnAccumulateF32(float* out, const float* p, const float* v, size_t headDim, size_t count) {
  attnAccumulate<false>(out, p, v, headDim, count);
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
extern const OpsKernels kOpsAvx512 = {rmsNorm, rope, attnScoresF16, attnScoresF32, attnAccumulateF16,
                                      attnAccumulateF32, softmax, siluMul, axpy};
}  // namespace x86
}  // namespace mn

#endif  // x86-64
