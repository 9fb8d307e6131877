// BF16 weights x BF16 activations with AVX512-BF16 dot products (vdpbf16ps: 32 bf16 pairs -> 16 f32 sums per
// instruction). kernels.cc routes the AVX-512 table's BF16 matmul here only when the CPU reports avx512bf16.
#include <cstddef>
#include <cstdint>

#include "kernels/x86/x86_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)

#define MN_X86_TARGET "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512bf16,fma,f16c"
#include "kernels/x86/target_begin.h"

#include "kernels/x86/simd_common.h"

namespace mn {
namespace x86 {
namespace {

// 32 bf16 values at p; the first `count` only when masked (the rest zero, nothing read past them)
__m512bh loadBf16(const uint8_t* p) { return reinterpret_cast<__m512bh>(_mm512_loadu_si512(p)); }
__m512bh loadBf16Masked(const uint8_t* p, __mmask32 mask) {
  return reinterpret_cast<__m512bh>(_mm512_maskz_loadu_epi16(mask, p));
}

// acc[r][c] += W rows (R) . X columns (C) over the 32 values at `offset` (the first `mask` of them when masked)
template <int R, int C, bool kMasked>
MN_INLINE void bf16Step(const uint8_t* w, size_t wRowBytes, const uint8_t* x, size_t actRowBytes, size_t offset,
                        __mmask32 mask, __m512 (&acc)[R][C]) {
  __m512bh xs[C];
  for (int c = 0; c < C; c++) {
    xs[c] = kMasked ? loadBf16Masked(x + c * actRowBytes + offset, mask) : loadBf16(x + c * actRowBytes + offset);
  }
  for (int r = 0; r < R; r++) {
    const uint8_t* p = w + r * wRowBytes + offset;
    const __m512bh ws = kMasked ? loadBf16Masked(p, mask) : loadBf16(p);
    for (int c = 0; c < C; c++) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], ws, xs[c]);
  }
}

// W rows (R, n) BF16 @ X (C, n) BF16 -> y[c * ldy + r]. Steps of 32 values alternate between two accumulators (even
// steps into `even`, odd into `odd`), as the decode row loop does, so both give identical results.
template <int R, int C>
void tileBf16(const uint8_t* w, size_t wRowBytes, size_t n, const uint8_t* x, size_t actRowBytes, float* y,
              size_t ldy) {
  __m512 even[R][C], odd[R][C];
  for (int r = 0; r < R; r++)
    for (int c = 0; c < C; c++) even[r][c] = odd[r][c] = _mm512_setzero_ps();
  const size_t nSteps = n / 32;
  size_t s = 0;
  for (; s + 2 <= nSteps; s += 2) {
    bf16Step<R, C, false>(w, wRowBytes, x, actRowBytes, 64 * s, 0, even);
    bf16Step<R, C, false>(w, wRowBytes, x, actRowBytes, 64 * (s + 1), 0, odd);
  }
  if (s < nSteps) bf16Step<R, C, false>(w, wRowBytes, x, actRowBytes, 64 * s, 0, even);
  if (n % 32 != 0) {
    const __mmask32 mask = (1u << (n % 32)) - 1;
    if (nSteps % 2 == 0) bf16Step<R, C, true>(w, wRowBytes, x, actRowBytes, 64 * nSteps, mask, even);
    else bf16Step<R, C, true>(w, wRowBytes, x, actRowBytes, 64 * nSteps, mask, odd);
  }
  for (int r = 0; r < R; r++)
    for (int c = 0; c < C; c++) y[c * ldy + r] = _mm512_reduce_add_ps(_mm512_add_ps(even[r][c], odd[r][c]));
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

// w (n,) . x (n,) BF16 for decode: one row streamed with a 4.5 KB prefetch (see matmul_avx512.cc: a single stream
// reads faster than several interleaved rows), summed exactly as tileBf16 (even steps into `even`, odd into `odd`)
float rowDotBf16(const uint8_t* w, const uint8_t* x, size_t n) {
  constexpr size_t kPrefetchBytes = 4608;
  __m512 even = _mm512_setzero_ps(), odd = _mm512_setzero_ps();
  const size_t nSteps = n / 32;
  size_t s = 0;
  for (; s + 4 <= nSteps; s += 4) {
    for (size_t line = 0; line < 256; line += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(w + 64 * s + kPrefetchBytes + line), _MM_HINT_T0);
    }
    even = _mm512_dpbf16_ps(even, loadBf16(w + 64 * s), loadBf16(x + 64 * s));
    odd = _mm512_dpbf16_ps(odd, loadBf16(w + 64 * (s + 1)), loadBf16(x + 64 * (s + 1)));
    even = _mm512_dpbf16_ps(even, loadBf16(w + 64 * (s + 2)), loadBf16(x + 64 * (s + 2)));
    odd = _mm512_dpbf16_ps(odd, loadBf16(w + 64 * (s + 3)), loadBf16(x + 64 * (s + 3)));
  }
  for (; s < nSteps; s++) {
    __m512& acc = s % 2 == 0 ? even : odd;
    acc = _mm512_dpbf16_ps(acc, loadBf16(w + 64 * s), loadBf16(x + 64 * s));
  }
  if (n % 32 != 0) {
    const __mmask32 mask = (1u << (n % 32)) - 1;
    __m512& acc = nSteps % 2 == 0 ? even : odd;
    acc = _mm512_dpbf16_ps(acc, loadBf16Masked(w + 64 * s, mask), loadBf16Masked(x + 64 * s, mask));
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(even, odd));
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

#include "kernels/x86/target_end.h"

namespace mn {
namespace x86 {
extern const MatmulFn kMatmulBf16Avx512Bf16 = matmulBf16;
}  // namespace x86
}  // namespace mn

#endif  // x86-64
