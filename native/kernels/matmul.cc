// Scalar reference matmul: one dot product per (row, column), written as ggml's generic vec_dot_* so the fast
// kernels and llama.cpp can both be held to it. Float weights accumulate in double (ggml_float); the integer block
// types sum q_w * q_x exactly per block and scale by d_w * d_x in float (REFERENCE.md "ggml types").
#include <cmath>
#include <cstddef>
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

// w (n,) Q4_0 . x (n,) Q8_0 = sum_b d_w * d_x * sum_j (q_w - 8) * q_x, each block's term fused into the sum in block
// order as llama.cpp's x86 Q4_0 kernels add it (ggml_gemv_q4_0_8x8_q8_0), so the AVX2 kernel matches both to the bit
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
    sum = std::fma(static_cast<float>(sumi), fp16ToFloat(wb[b].d) * fp16ToFloat(xb[b].d), sum);
  }
  return sum;
}

// w (n,) Q4_1 / Q5_1 . x (n,) Q8_1 = sum_b d_w * d_x * sum_j q_w * q_x + m_w * s_x  (ggml_vec_dot_q4_1_q8_1)
template <int kBits>
float dotWithMin(const uint8_t* w, const uint8_t* x, size_t n) {
  constexpr size_t blockBytes = kBits == 4 ? sizeof(BlockQ4_1) : sizeof(BlockQ5_1);
  const BlockQ8_1* xb = reinterpret_cast<const BlockQ8_1*>(x);
  float sum = 0.0f;
  for (size_t b = 0; b < n / kQK; b++, w += blockBytes) {
    uint32_t qh = 0;
    if (kBits == 5) std::memcpy(&qh, w + 4, 4);
    const uint8_t* qs = w + (kBits == 5 ? 8 : 4);
    int sumi = 0;
    for (size_t j = 0; j < kQK / 2; j++) {
      sumi += ((qs[j] & 15) | static_cast<int>((qh >> j) & 1) << 4) * xb[b].qs[j];
      sumi += ((qs[j] >> 4) | static_cast<int>((qh >> (j + 16)) & 1) << 4) * xb[b].qs[j + kQK / 2];
    }
    sum += static_cast<float>(sumi) * (fp16ToFloat(loadU16(w)) * fp16ToFloat(xb[b].d)) +
           fp16ToFloat(loadU16(w + 2)) * fp16ToFloat(xb[b].s);
  }
  return sum;
}

// w (n,) Q5_0 . x (n,) Q8_0 = sum_b d_w * d_x * sum_j (q_w - 16) * q_x  (ggml_vec_dot_q5_0_q8_0)
float dotQ5_0(const uint8_t* w, const uint8_t* x, size_t n) {
  const BlockQ5_0* wb = reinterpret_cast<const BlockQ5_0*>(w);
  const BlockQ8_0* xb = reinterpret_cast<const BlockQ8_0*>(x);
  float sum = 0.0f;
  for (size_t b = 0; b < n / kQK; b++) {
    uint32_t qh;
    std::memcpy(&qh, wb[b].qh, 4);
    int sumi = 0;
    for (size_t j = 0; j < kQK / 2; j++) {
      sumi += (((wb[b].qs[j] & 15) | static_cast<int>((qh >> j) & 1) << 4) - 16) * xb[b].qs[j];
      sumi += (((wb[b].qs[j] >> 4) | static_cast<int>((qh >> (j + 16)) & 1) << 4) - 16) * xb[b].qs[j + kQK / 2];
    }
    sum += static_cast<float>(sumi) * fp16ToFloat(wb[b].d) * fp16ToFloat(xb[b].d);
  }
  return sum;
}

// ---- K-quants x Q8_K (ggml_vec_dot_q*_K_q8_K): per super-block, exact integer sums of scale * q_w * q_x and of
// min * (sums of q_x) from bsums, then d * d_x * sumi - dmin * d_x * summ in float ----

// The levels of one super-block (as the dequantizers read them, element order) and per-sub-block scales and mins
struct KLevels {
  int q[kQKK];
  int scale[16];  // per sub-block of `subSize`
  int min[16];
  int subSize;
  float d, dmin;
};

void levelsOf(GgmlType type, const uint8_t* block, KLevels& k) {
  switch (type) {
    case GgmlType::Q2_K: {
      const BlockQ2_K& b = *reinterpret_cast<const BlockQ2_K*>(block);
      for (int e = 0; e < 256; e++) k.q[e] = (b.qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
      for (int j = 0; j < 16; j++) {
        k.scale[j] = b.scales[j] & 15;
        k.min[j] = b.scales[j] >> 4;
      }
      k.subSize = 16;
      k.d = fp16ToFloat(b.d);
      k.dmin = fp16ToFloat(b.dmin);
      return;
    }
    case GgmlType::Q3_K: {
      const BlockQ3_K& b = *reinterpret_cast<const BlockQ3_K*>(block);
      int8_t sc[16];
      unpackQ3Scales(b.scales, sc);
      for (int e = 0; e < 256; e++) {
        const int low = (b.qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
        k.q[e] = low - ((b.hmask[e % 32] >> (e / 32)) & 1 ? 0 : 4);
      }
      for (int j = 0; j < 16; j++) {
        k.scale[j] = sc[j];
        k.min[j] = 0;
      }
      k.subSize = 16;
      k.d = fp16ToFloat(b.d);
      k.dmin = 0;
      return;
    }
    case GgmlType::Q4_K:
    case GgmlType::Q5_K: {
      const bool five = type == GgmlType::Q5_K;
      const BlockQ4_K& head = *reinterpret_cast<const BlockQ4_K*>(block);  // d, dmin, scales: the same in both
      const uint8_t* qs = block + (five ? offsetof(BlockQ5_K, qs) : offsetof(BlockQ4_K, qs));
      const uint8_t* qh = block + offsetof(BlockQ5_K, qh);
      for (int e = 0; e < 256; e++) {
        const int c = e / 64, i = (e % 64) / 32, l = e % 32;
        k.q[e] = (qs[32 * c + l] >> (4 * i)) & 15;
        if (five) k.q[e] |= ((qh[l] >> (2 * c + i)) & 1) << 4;
      }
      uint8_t sc[8], m[8];
      unpackQ4Scales(head.scales, sc, m);
      for (int j = 0; j < 8; j++) {
        k.scale[j] = sc[j];
        k.min[j] = m[j];
      }
      k.subSize = 32;
      k.d = fp16ToFloat(head.d);
      k.dmin = fp16ToFloat(head.dmin);
      return;
    }
    default: {  // Q6_K
      const BlockQ6_K& b = *reinterpret_cast<const BlockQ6_K*>(block);
      for (int e = 0; e < 256; e++) {
        const int h = e / 128, t = (e % 128) / 32, l = e % 32;
        const int low = (b.ql[64 * h + 32 * (t % 2) + l] >> (4 * (t / 2))) & 15;
        k.q[e] = (low | ((b.qh[32 * h + l] >> (2 * t)) & 3) << 4) - 32;
      }
      for (int j = 0; j < 16; j++) {
        k.scale[j] = b.scales[j];
        k.min[j] = 0;
      }
      k.subSize = 16;
      k.d = fp16ToFloat(b.d);
      k.dmin = 0;
      return;
    }
  }
}

// w (n,) K-quant . x (n,) Q8_K
template <GgmlType kType>
float dotK(const uint8_t* w, const uint8_t* x, size_t n) {
  constexpr size_t blockBytes = kType == GgmlType::Q2_K   ? sizeof(BlockQ2_K)
                                : kType == GgmlType::Q3_K ? sizeof(BlockQ3_K)
                                : kType == GgmlType::Q4_K ? sizeof(BlockQ4_K)
                                : kType == GgmlType::Q5_K ? sizeof(BlockQ5_K)
                                                          : sizeof(BlockQ6_K);
  const BlockQ8_K* xb = reinterpret_cast<const BlockQ8_K*>(x);
  KLevels k;
  float sum = 0.0f;
  for (size_t b = 0; b < n / kQKK; b++) {
    levelsOf(kType, w + b * blockBytes, k);
    int sumi = 0, summ = 0;
    for (int j = 0; j < static_cast<int>(kQKK) / k.subSize; j++) {
      int sub = 0, xsum = 0;
      for (int e = j * k.subSize; e < (j + 1) * k.subSize; e++) sub += k.q[e] * xb[b].qs[e];
      for (int g = j * k.subSize / 16; g < (j + 1) * k.subSize / 16; g++) xsum += xb[b].bsums[g];
      sumi += k.scale[j] * sub;
      summ += k.min[j] * xsum;
    }
    sum += k.d * xb[b].d * static_cast<float>(sumi) - k.dmin * xb[b].d * static_cast<float>(summ);
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
    case GgmlType::Q4_1: return dotWithMin<4>;
    case GgmlType::Q5_0: return dotQ5_0;
    case GgmlType::Q5_1: return dotWithMin<5>;
    case GgmlType::Q2_K: return dotK<GgmlType::Q2_K>;
    case GgmlType::Q3_K: return dotK<GgmlType::Q3_K>;
    case GgmlType::Q4_K: return dotK<GgmlType::Q4_K>;
    case GgmlType::Q5_K: return dotK<GgmlType::Q5_K>;
    case GgmlType::Q6_K: return dotK<GgmlType::Q6_K>;
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

namespace {

// W (nRows, n) Q4_0x128 (quants.h) rows [rowBegin, rowEnd) @ X (nCols, n) Q8_0 -> Y[c * ldy + r]. Each (row, column)
// adds its blocks in order with one rounding each, acc = fma(sum_j (q_w - 8) * q_x, d_w * d_x, acc); the product
// of the two fp16 scales is exact in float, so the SIMD kernels give these bits exactly.
void matmulQ4_0x128(const uint8_t* w, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x, size_t actRowBytes,
                   size_t nCols, float* y, size_t ldy) {
  const size_t nBlocks = n / kQK;
  for (size_t r = rowBegin; r < rowEnd; r++) {
    const uint8_t* group = w + r / kQ4_0x128Rows * nBlocks * kQ4_0x128BlockBytes;
    const size_t s = r % kQ4_0x128Rows / 16, j = r % 16;
    for (size_t c = 0; c < nCols; c++) {
      const BlockQ8_0* xb = reinterpret_cast<const BlockQ8_0*>(x + c * actRowBytes);
      float sum = 0.0f;
      for (size_t b = 0; b < nBlocks; b++) {
        const uint8_t* block = group + b * kQ4_0x128BlockBytes;
        int sumi = 0;
        for (size_t k = 0; k < 4; k++) {
          for (size_t i = 0; i < 4; i++) {
            const uint8_t byte = block[q4_0x128LineOffset(s, k) + 4 * j + i];
            sumi += ((byte & 15) - 8) * xb[b].qs[4 * k + i] + ((byte >> 4) - 8) * xb[b].qs[kQK / 2 + 4 * k + i];
          }
        }
        const float dw = fp16ToFloat(loadU16(block + q4_0x128ScaleOffset(s, j)));
        sum = std::fma(static_cast<float>(sumi), dw * fp16ToFloat(xb[b].d), sum);
      }
      y[c * ldy + r] = sum;
    }
  }
}

// W (nRows, n) Q4_Kx64 (quants.h) rows [rowBegin, rowEnd) @ X (nCols, n) Q8_K -> Y[c * ldy + r]. Per (row, column)
// and super-block, the integer sums sum_j sc_j * (q . x over sub-block j) and sum_j m_j * (x's sum over sub-block j)
// are added in order as acc = fma(sumi, d_w * d_x, acc), then acc = fma(summ, -(dmin_w * d_x), acc).
void matmulQ4_Kx64(const uint8_t* w, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x, size_t actRowBytes,
                   size_t nCols, float* y, size_t ldy) {
  const size_t nBlocks = n / kQKK;
  for (size_t r = rowBegin; r < rowEnd; r++) {
    const uint8_t* group = w + r / kQ4_Kx64Rows * nBlocks * kQ4_Kx64BlockBytes;
    const size_t s = r % kQ4_Kx64Rows / 16, j = r % 16;
    for (size_t c = 0; c < nCols; c++) {
      const BlockQ8_K* xb = reinterpret_cast<const BlockQ8_K*>(x + c * actRowBytes);
      float sum = 0.0f;
      for (size_t b = 0; b < nBlocks; b++) {
        const uint8_t* block = group + b * kQ4_Kx64BlockBytes;
        int sumi = 0, summ = 0;
        for (size_t sub = 0; sub < 8; sub++) {
          int dot = 0;
          for (size_t k = 0; k < 8; k++) {
            for (size_t i = 0; i < 4; i++) {
              const uint8_t byte = block[q4_Kx64LineOffset(s, sub / 2, k) + 4 * j + i];
              dot += ((byte >> (4 * (sub % 2))) & 15) * xb[b].qs[32 * sub + 4 * k + i];
            }
          }
          sumi += block[q4_Kx64ScaleOffset(sub, s) + j] * dot;
          summ += block[q4_Kx64MinOffset(sub, s) + j] * (xb[b].bsums[2 * sub] + xb[b].bsums[2 * sub + 1]);
        }
        const float d = fp16ToFloat(loadU16(block + q4_Kx64DOffset(s) + 2 * j));
        const float dmin = fp16ToFloat(loadU16(block + q4_Kx64DminOffset(s) + 2 * j));
        sum = std::fma(static_cast<float>(sumi), d * xb[b].d, sum);
        sum = std::fma(static_cast<float>(summ), -(dmin * xb[b].d), sum);
      }
      y[c * ldy + r] = sum;
    }
  }
}

}  // namespace

// W (nRows, n) wType rows interleaved (Q4_0x128 or Q4_Kx64) rows [rowBegin, rowEnd) @ X (nCols, n)
// -> Y[c * ldy + r]
void matmulInterleaved(GgmlType wType, const uint8_t* w, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x,
                       size_t actRowBytes, size_t nCols, float* y, size_t ldy) {
  const auto matmul = wType == GgmlType::Q4_K ? matmulQ4_Kx64 : matmulQ4_0x128;
  matmul(w, n, rowBegin, rowEnd, x, actRowBytes, nCols, y, ldy);
}

}  // namespace scalar
}  // namespace mn
