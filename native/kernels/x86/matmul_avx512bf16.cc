// BF16 weights x BF16 activations with AVX512-BF16 dot products (vdpbf16ps: 32 bf16 pairs -> 16 f32 sums per
// instruction). kernels.cc routes the AVX-512 table's BF16 matmul here only when the CPU reports avx512bf16.
#include <cstddef>
#include <cstdint>

#include "kernels/x86/x86_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512bf16,fma,f16c"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512bf16,fma,f16c")
// GCC 12 warns about the intrinsics' own `__Y = __Y` placeholders once inlined here (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

namespace mn {
namespace x86 {
namespace {

// 32 bf16 values at p; the first `count` only when masked (the rest zero, nothing read past them)
__m512bh loadBf16(const uint8_t* p) { return reinterpret_cast<__m512bh>(_mm512_loadu_si512(p)); }
__m512bh loadBf16Masked(const uint8_t* p, __mmask32 mask) {
  return reinterpret_cast<__m512bh>(_mm512_maskz_loadu_epi16(mask, p));
}

// W rows (R, n) BF16 @ X (C, n) BF16 -> y[c * ldy + r]
template <int R, int C>
void tileBf16(const uint8_t* w, size_t wRowBytes, size_t n, const uint8_t* x, size_t actRowBytes, float* y,
              size_t ldy) {
  __m512 acc[R][C];
  for (int r = 0; r < R; r++)
    for (int c = 0; c < C; c++) acc[r][c] = _mm512_setzero_ps();
  const size_t nSteps = n / 32;
  for (size_t s = 0; s < nSteps; s++) {
    __m512bh xs[C];
    for (int c = 0; c < C; c++) xs[c] = loadBf16(x + c * actRowBytes + 64 * s);
    for (int r = 0; r < R; r++) {
      const __m512bh ws = loadBf16(w + r * wRowBytes + 64 * s);
      for (int c = 0; c < C; c++) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], ws, xs[c]);
    }
  }
  if (n % 32 != 0) {
    const __mmask32 mask = (1u << (n % 32)) - 1;
    __m512bh xs[C];
    for (int c = 0; c < C; c++) xs[c] = loadBf16Masked(x + c * actRowBytes + 64 * nSteps, mask);
    for (int r = 0; r < R; r++) {
      const __m512bh ws = loadBf16Masked(w + r * wRowBytes + 64 * nSteps, mask);
      for (int c = 0; c < C; c++) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], ws, xs[c]);
    }
  }
  for (int r = 0; r < R; r++)
    for (int c = 0; c < C; c++) y[c * ldy + r] = _mm512_reduce_add_ps(acc[r][c]);
}

template <int C>
void tileBf16Rows(size_t rows, const uint8_t* w, size_t wRowBytes, size_t n, const uint8_t* x, size_t actRowBytes,
                  float* y, size_t ldy) {
  switch (rows) {
    case 4: tileBf16<4, C>(w, wRowBytes, n, x, actRowBytes, y, ldy); return;
    case 3: tileBf16<3, C>(w, wRowBytes, n, x, actRowBytes, y, ldy); return;
    case 2: tileBf16<2, C>(w, wRowBytes, n, x, actRowBytes, y, ldy); return;
    default: tileBf16<1, C>(w, wRowBytes, n, x, actRowBytes, y, ldy); return;
  }
}

// w (n,) . x (n,) BF16 for decode: one row streamed with four accumulators and a 4.5 KB prefetch (see
// matmul_avx512.cc: a single stream reads faster than several interleaved rows)
float rowDotBf16(const uint8_t* w, const uint8_t* x, size_t n) {
  constexpr size_t kPrefetchBytes = 4608;
  __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  size_t s = 0;
  for (; s + 4 <= n / 32; s += 4) {
    for (size_t line = 0; line < 256; line += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(w + 64 * s + kPrefetchBytes + line), _MM_HINT_T0);
    }
    for (int u = 0; u < 4; u++) acc[u] = _mm512_dpbf16_ps(acc[u], loadBf16(w + 64 * (s + u)),
        loadBf16(x + 64 * (s + u)));
  }
  for (; s < n / 32; s++) acc[0] = _mm512_dpbf16_ps(acc[0], loadBf16(w + 64 * s), loadBf16(x + 64 * s));
  if (n % 32 != 0) {
    const __mmask32 mask = (1u << (n % 32)) - 1;
    acc[1] = _mm512_dpbf16_ps(acc[1], loadBf16Masked(w + 64 * s, mask), loadBf16Masked(x + 64 * s, mask));
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}

using TileFn = void (*)(size_t rows, const uint8_t* w, size_t wRowBytes, size_t n, const uint8_t* x,
                       size_t actRowBytes, float* y, size_t ldy);

// W (nRows, n) BF16 rows [rowBegin, rowEnd) @ X (nCols, n) BF16 -> Y[c * ldy + r]; other types leave Y untouched
void matmulBf16(GgmlType wType, const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin, size_t rowEnd,
                const uint8_t* x, size_t actRowBytes, size_t nCols, float* y, size_t ldy) {
  if (wType != GgmlType::BF16) return;
  if (nCols == 1) {
    for (size_t r = rowBegin; r < rowEnd; r++) y[r] = rowDotBf16(w + r * wRowBytes, x, n);
    return;
  }
  for (size_t r = rowBegin; r < rowEnd; r += 4) {
    const size_t rows = rowEnd - r < 4 ? rowEnd - r : 4;
    const uint8_t* wTile = w + r * wRowBytes;
    for (size_t c = 0; c < nCols; c += 3) {
      const size_t cols = nCols - c < 3 ? nCols - c : 3;
      const TileFn tile = cols == 3 ? tileBf16Rows<3> : cols == 2 ? tileBf16Rows<2> : tileBf16Rows<1>;
      tile(rows, wTile, wRowBytes, n, x + c * actRowBytes, actRowBytes, y + c * ldy + r, ldy);
    }
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
extern const MatmulFn kMatmulBf16Avx512Bf16 = matmulBf16;
}  // namespace x86
}  // namespace mn

#endif  // x86-64
