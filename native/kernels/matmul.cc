// Scalar reference matmul: one dot product per (row, column), written as ggml's generic vec_dot_* so the fast
// kernels and llama.cpp can both be held to it. Float weights accumulate in double (ggml_float); the integer block
// types sum q_w * q_x exactly per block and scale by d_w * d_x in float (REFERENCE.md "ggml types").
#include <cstring>

#include "common/half.h"
#include "kernels/quants.h"
#include "kernels/scalar.h"

namespace mn {
namespace scalar {
namespace {

float loadF32(const uint8_t* p) {
  float f;
  std::memcpy(&f, p, 4);
  return f;
}

uint16_t loadU16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return h;
}

// w (n,) . x (n,), both F32
float dotF32(const uint8_t* w, const uint8_t* x, size_t n) {
  double sum = 0.0;
  for (size_t i = 0; i < n; i++) sum += static_cast<double>(loadF32(w + 4 * i) * loadF32(x + 4 * i));
  return static_cast<float>(sum);
}

// w (n,) . x (n,), both F16
float dotF16(const uint8_t* w, const uint8_t* x, size_t n) {
  double sum = 0.0;
  for (size_t i = 0; i < n; i++) {
    sum += static_cast<double>(fp16ToFloat(loadU16(w + 2 * i)) * fp16ToFloat(loadU16(x + 2 * i)));
  }
  return static_cast<float>(sum);
}

// w (n,) . x (n,), both BF16
float dotBf16(const uint8_t* w, const uint8_t* x, size_t n) {
  double sum = 0.0;
  for (size_t i = 0; i < n; i++) {
    sum += static_cast<double>(bf16ToFloat(loadU16(w + 2 * i)) * bf16ToFloat(loadU16(x + 2 * i)));
  }
  return static_cast<float>(sum);
}

// w (n,) Q8_0 . x (n,) Q8_0 = sum_b d_w * d_x * sum_j q_w * q_x  (ggml_vec_dot_q8_0_q8_0)
float dotQ8_0(const uint8_t* w, const uint8_t* x, size_t n) {
  const BlockQ8_0* wb = reinterpret_cast<const BlockQ8_0*>(w);
  const BlockQ8_0* xb = reinterpret_cast<const BlockQ8_0*>(x);
  float sum = 0.0f;
  for (size_t b = 0; b < n / kQK; b++) {
    int sumi = 0;
    for (size_t j = 0; j < kQK; j++) sumi += wb[b].qs[j] * xb[b].qs[j];
    sum += static_cast<float>(sumi) * (fp16ToFloat(wb[b].d) * fp16ToFloat(xb[b].d));
  }
  return sum;
}

// w (n,) Q4_0 . x (n,) Q8_0 = sum_b d_w * d_x * sum_j (q_w - 8) * q_x  (ggml_vec_dot_q4_0_q8_0)
float dotQ4_0(const uint8_t* w, const uint8_t* x, size_t n) {
  const BlockQ4_0* wb = reinterpret_cast<const BlockQ4_0*>(w);
  const BlockQ8_0* xb = reinterpret_cast<const BlockQ8_0*>(x);
  float sum = 0.0f;
  for (size_t b = 0; b < n / kQK; b++) {
    int sumi = 0;
    for (size_t j = 0; j < kQK / 2; j++) {
      sumi += ((wb[b].qs[j] & 15) - 8) * xb[b].qs[j];
      sumi += ((wb[b].qs[j] >> 4) - 8) * xb[b].qs[j + kQK / 2];
    }
    sum += static_cast<float>(sumi) * fp16ToFloat(wb[b].d) * fp16ToFloat(xb[b].d);
  }
  return sum;
}

using DotFn = float (*)(const uint8_t* w, const uint8_t* x, size_t n);

DotFn dotFor(GgmlType wType) {
  switch (wType) {
    case GgmlType::F32: return dotF32;
    case GgmlType::F16: return dotF16;
    case GgmlType::BF16: return dotBf16;
    case GgmlType::Q8_0: return dotQ8_0;
    case GgmlType::Q4_0: return dotQ4_0;
    default: return nullptr;
  }
}

}  // namespace

// W (nRows, n) rows [rowBegin, rowEnd) @ X (nCols, n) -> Y[c * ldy + r]; unsupported types leave Y untouched
void matmul(GgmlType wType, const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin, size_t rowEnd,
            const uint8_t* x, size_t actRowBytes, size_t nCols, float* y, size_t ldy) {
  const DotFn dot = dotFor(wType);
  if (dot == nullptr) return;
  for (size_t r = rowBegin; r < rowEnd; r++) {
    for (size_t c = 0; c < nCols; c++) y[c * ldy + r] = dot(w + r * wRowBytes, x + c * actRowBytes, n);
  }
}

}  // namespace scalar
}  // namespace mn
