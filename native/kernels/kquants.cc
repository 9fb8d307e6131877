// K-quant writers and readers (REFERENCE.md "ggml types"): super-blocks of 256 values whose sub-blocks of 16 or 32
// carry small integer scales (and mins) times one fp16 d (and dmin) per super-block.
//
// The writers follow the ideas of ggml's reference quantizers (quantize_row_q*_K_ref): for every sub-block, search
// the scale (and min) that minimise a weighted squared or absolute error, then quantize the scales themselves against
// the super-block's largest, then requantize the values with the scales as stored. Per sub-block:
// - with a min (Q2_K, Q4_K, Q5_K): x ≈ scale * L - min, L in [0, nmax]; candidate inverse scales around
//   nmax / (max - min) each give levels L, for which scale and min are refit by weighted least squares
//   (as make_qkx2_quants);
// - symmetric (Q6_K): x ≈ scale * L, L in [-nmax, nmax); 19 candidate inverse scales around -nmax / max, each refit by
//   least squares with weights x^2 (as make_qx_quants);
// - symmetric 3-bit (Q3_K): levels refined one at a time while the weighted fit improves (as make_q3_quants).
#include <cmath>
#include <cstring>

#include "common/half.h"
#include "kernels/quants.h"

namespace mn {
namespace {

// Below this largest magnitude a sub-block counts as all zero.
constexpr float kGroupMaxEps = 1e-15f;

// round(v), ties to even, for |v| < 2^22; larger magnitudes saturate and NaN gives 0 (never reached from finite data)
inline int nearestInt(float v) {
  if (!(std::fabs(v) < 4194303.0f)) return v > 0 ? 4194303 : v < 0 ? -4194303 : 0;
  const float shifted = v + 12582912.0f;  // 1.5 * 2^23: the integer lands in the low mantissa bits
  int32_t bits;
  std::memcpy(&bits, &shifted, 4);
  return (bits & 0x007fffff) - 0x00400000;
}

inline int clampInt(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

// x (n,) ≈ scale * L - min with L in [0, nmax] and min >= 0 (the affine offset never goes above zero), fit by
// weighted least squares over candidate inverse scales (rmin + rdelta * i + nmax) / (max - min), i <= nstep; the error
// is sum w * |e| (absError) or sum w * e^2. Returns scale, writes L and min; Ltmp is scratch of n.
float fitScaleAndMin(int n, int nmax, const float* x, const float* w, uint8_t* L, float* minOut, uint8_t* Ltmp,
                     float rmin, float rdelta, int nstep, bool absError) {
  float lo = x[0], hi = x[0], sumW = w[0], sumX = w[0] * x[0];
  for (int i = 1; i < n; i++) {
    lo = x[i] < lo ? x[i] : lo;
    hi = x[i] > hi ? x[i] : hi;
    sumW += w[i];
    sumX += w[i] * x[i];
  }
  if (lo > 0) lo = 0;
  if (hi == lo) {
    std::memset(L, 0, n);
    *minOut = -lo;
    return 0.0f;
  }
  const auto errorOf = [&](float scale, float offset, const uint8_t* levels) {
    float error = 0;
    for (int i = 0; i < n; i++) {
      const float e = scale * levels[i] + offset - x[i];
      error += w[i] * (absError ? std::fabs(e) : e * e);
    }
    return error;
  };
  float iscale = nmax / (hi - lo);
  float scale = 1 / iscale, offset = lo;
  for (int i = 0; i < n; i++) L[i] = static_cast<uint8_t>(clampInt(nearestInt(iscale * (x[i] - lo)), 0, nmax));
  float best = errorOf(scale, offset, L);
  for (int step = 0; step <= nstep; step++) {
    iscale = (rmin + rdelta * step + nmax) / (hi - lo);
    float sumL = 0, sumL2 = 0, sumXL = 0;
    for (int i = 0; i < n; i++) {
      const int l = clampInt(nearestInt(iscale * (x[i] - lo)), 0, nmax);
      Ltmp[i] = static_cast<uint8_t>(l);
      sumL += w[i] * l;
      sumL2 += w[i] * l * l;
      sumXL += w[i] * l * x[i];
    }
    const float det = sumW * sumL2 - sumL * sumL;
    if (det <= 0) continue;
    float thisScale = (sumW * sumXL - sumX * sumL) / det;
    float thisOffset = (sumL2 * sumX - sumL * sumXL) / det;
    if (thisOffset > 0) {
      thisOffset = 0;
      thisScale = sumXL / sumL2;
    }
    const float error = errorOf(thisScale, thisOffset, Ltmp);
    if (error < best) {
      std::memcpy(L, Ltmp, n);
      best = error;
      scale = thisScale;
      offset = thisOffset;
    }
  }
  *minOut = -offset;
  return scale;
}

// x (n,) ≈ scale * l with l in [-nmax, nmax), weights x^2; L = l + nmax. The 19 inverse scales
// -(nmax + 0.1 * i) / max, |i| <= 9, are each refit by least squares and the best fit kept.
float fitSymmetric(int n, int nmax, const float* x, int8_t* L) {
  const float extreme = largestMagnitude(x, size_t(n));
  if (std::fabs(extreme) < kGroupMaxEps) {
    for (int i = 0; i < n; i++) L[i] = static_cast<int8_t>(nmax);
    return 0.0f;
  }
  float scale = 0, best = 0;
  bool have = false;
  for (int step = -9; step <= 9; step++) {
    const float iscale = -(nmax + 0.1f * step) / extreme;
    float sumLX = 0, sumL2 = 0;
    for (int i = 0; i < n; i++) {
      const int l = clampInt(nearestInt(iscale * x[i]), -nmax, nmax - 1);
      const float w = x[i] * x[i];
      sumLX += w * x[i] * l;
      sumL2 += w * l * l;
    }
    // The fit's error is sum w x^2 - sumLX^2 / sumL2: a larger sumLX^2 / sumL2 is better.
    if (sumL2 > 0 && (!have || sumLX * sumLX > best * sumL2)) {
      have = true;
      scale = sumLX / sumL2;
      best = scale * sumLX;
      for (int i = 0; i < n; i++) {
        L[i] = static_cast<int8_t>(clampInt(nearestInt(iscale * x[i]), -nmax, nmax - 1) + nmax);
      }
    }
  }
  if (!have) {
    for (int i = 0; i < n; i++) L[i] = static_cast<int8_t>(nmax);
    return 0.0f;
  }
  return scale;
}

// x (n,) ≈ scale * l with l in [-nmax, nmax), weights x^2, starting from -nmax / max and then moving one level at a
// time to its best value given the others while the fit improves (up to 5 sweeps); L = l + nmax.
float fitSymmetricRefined(int n, int nmax, const float* x, int8_t* L) {
  const float extreme = largestMagnitude(x, size_t(n));
  if (std::fabs(extreme) < kGroupMaxEps) {
    for (int i = 0; i < n; i++) L[i] = static_cast<int8_t>(nmax);
    return 0.0f;
  }
  const float iscale = -nmax / extreme;
  float sumLX = 0, sumL2 = 0;
  for (int i = 0; i < n; i++) {
    L[i] = static_cast<int8_t>(clampInt(nearestInt(iscale * x[i]), -nmax, nmax - 1));
    const float w = x[i] * x[i];
    sumLX += w * x[i] * L[i];
    sumL2 += w * L[i] * L[i];
  }
  for (int sweep = 0; sweep < 5; sweep++) {
    int changed = 0;
    for (int i = 0; i < n; i++) {
      const float w = x[i] * x[i];
      float lx = sumLX - w * x[i] * L[i];
      if (lx <= 0) continue;
      float l2 = sumL2 - w * L[i] * L[i];
      const int next = clampInt(nearestInt(x[i] * l2 / lx), -nmax, nmax - 1);
      if (next == L[i]) continue;
      lx += w * x[i] * next;
      l2 += w * next * next;
      if (l2 > 0 && lx * lx * sumL2 > sumLX * sumLX * l2) {
        L[i] = static_cast<int8_t>(next);
        sumLX = lx;
        sumL2 = l2;
        changed++;
      }
    }
    if (changed == 0) break;
  }
  for (int i = 0; i < n; i++) L[i] = static_cast<int8_t>(L[i] + nmax);
  return sumL2 > 0 ? sumLX / sumL2 : 0.0f;
}

// Packs the 6-bit scale ls and min lm of sub-block j into Q4_K's / Q5_K's 12 bytes (zeroed first)
void packQ4Scale(uint8_t* packed, int j, int ls, int lm) {
  if (j < 4) {
    packed[j] = static_cast<uint8_t>(ls);
    packed[j + 4] = static_cast<uint8_t>(lm);
  } else {
    packed[j + 4] = static_cast<uint8_t>((ls & 15) | (lm & 15) << 4);
    packed[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
    packed[j] |= static_cast<uint8_t>((lm >> 4) << 6);
  }
}

// One super-block of Q4_K (nmax 15) or Q5_K (nmax 31): 8 sub-blocks of 32 with 6-bit scales and mins. Writes d,
// dmin, the packed scales and the levels L (256) in element order.
void quantizeScaleMinSuperBlock(const float* x, int nmax, uint16_t* dOut, uint16_t* dminOut, uint8_t* packed,
                                uint8_t* L) {
  float scales[8], mins[8], weights[32];
  uint8_t scratch[32];
  float maxScale = 0, maxMin = 0;
  const float rmin = nmax == 15 ? -1.0f : -0.5f;
  const int nstep = nmax == 15 ? 20 : 15;
  for (int j = 0; j < 8; j++) {
    const float* xs = x + 32 * j;
    float sumX2 = 0;
    for (int l = 0; l < 32; l++) sumX2 += xs[l] * xs[l];
    const float rms = std::sqrt(sumX2 / 32);
    for (int l = 0; l < 32; l++) weights[l] = rms + std::fabs(xs[l]);
    scales[j] = fitScaleAndMin(32, nmax, xs, weights, L + 32 * j, &mins[j], scratch, rmin, 0.1f, nstep, false);
    maxScale = scales[j] > maxScale ? scales[j] : maxScale;
    maxMin = mins[j] > maxMin ? mins[j] : maxMin;
  }
  const float invScale = maxScale > 0 ? 63 / maxScale : 0.0f, invMin = maxMin > 0 ? 63 / maxMin : 0.0f;
  std::memset(packed, 0, 12);
  uint8_t ls[8], lm[8];
  for (int j = 0; j < 8; j++) {
    ls[j] = static_cast<uint8_t>(clampInt(nearestInt(invScale * scales[j]), 0, 63));
    lm[j] = static_cast<uint8_t>(clampInt(nearestInt(invMin * mins[j]), 0, 63));
    packQ4Scale(packed, j, ls[j], lm[j]);
  }
  *dOut = floatToFp16(maxScale / 63);
  *dminOut = floatToFp16(maxMin / 63);
  const float d = fp16ToFloat(*dOut), dmin = fp16ToFloat(*dminOut);
  for (int j = 0; j < 8; j++) {
    const float scale = d * ls[j];
    if (scale == 0) continue;
    const float offset = dmin * lm[j];
    for (int l = 0; l < 32; l++) {
      L[32 * j + l] = static_cast<uint8_t>(clampInt(nearestInt((x[32 * j + l] + offset) / scale), 0, nmax));
    }
  }
}

}  // namespace

void unpackQ4Scales(const uint8_t* packed, uint8_t* scales, uint8_t* mins) {
  for (int j = 0; j < 8; j++) {
    if (j < 4) {
      scales[j] = packed[j] & 63;
      mins[j] = packed[j + 4] & 63;
    } else {
      scales[j] = static_cast<uint8_t>((packed[j + 4] & 15) | (packed[j - 4] >> 6) << 4);
      mins[j] = static_cast<uint8_t>((packed[j + 4] >> 4) | (packed[j] >> 6) << 4);
    }
  }
}

// Scale j: low 4 bits from byte j % 8 (low nibble for j < 8, high for j >= 8), high 2 bits at bit 2 * (j / 4) of
// byte 8 + j % 4; stored + 32.
void unpackQ3Scales(const uint8_t* packed, int8_t* scales) {
  for (int j = 0; j < 16; j++) {
    const int low = j < 8 ? packed[j] & 15 : packed[j - 8] >> 4;
    const int high = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
    scales[j] = static_cast<int8_t>((low | high << 4) - 32);
  }
}

// ---- Q2_K: 16 sub-blocks of 16, 2-bit levels, 4-bit scales and mins ----

void quantizeRowQ2_K(const float* x, BlockQ2_K* blocks, size_t n) {
  uint8_t L[kQKK], scratch[16];
  float weights[16], scales[16], mins[16];
  for (size_t b = 0; b < n / kQKK; b++, x += kQKK) {
    BlockQ2_K& block = blocks[b];
    float maxScale = 0, maxMin = 0;
    for (int j = 0; j < 16; j++) {
      for (int l = 0; l < 16; l++) weights[l] = std::fabs(x[16 * j + l]);
      scales[j] = fitScaleAndMin(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], scratch, -0.5f, 0.1f, 15, true);
      maxScale = scales[j] > maxScale ? scales[j] : maxScale;
      maxMin = mins[j] > maxMin ? mins[j] : maxMin;
    }
    const float invScale = maxScale > 0 ? 15 / maxScale : 0.0f, invMin = maxMin > 0 ? 15 / maxMin : 0.0f;
    for (int j = 0; j < 16; j++) {
      const int ls = clampInt(nearestInt(invScale * scales[j]), 0, 15);
      const int lm = clampInt(nearestInt(invMin * mins[j]), 0, 15);
      block.scales[j] = static_cast<uint8_t>(ls | lm << 4);
    }
    block.d = floatToFp16(maxScale / 15);
    block.dmin = floatToFp16(maxMin / 15);
    const float d = fp16ToFloat(block.d), dmin = fp16ToFloat(block.dmin);
    for (int j = 0; j < 16; j++) {
      const float scale = d * (block.scales[j] & 15);
      if (scale == 0) continue;
      const float offset = dmin * (block.scales[j] >> 4);
      for (int l = 0; l < 16; l++) {
        L[16 * j + l] = static_cast<uint8_t>(clampInt(nearestInt((x[16 * j + l] + offset) / scale), 0, 3));
      }
    }
    for (int h = 0; h < 2; h++) {
      for (int l = 0; l < 32; l++) {
        const uint8_t* q = L + 128 * h + l;
        block.qs[32 * h + l] = static_cast<uint8_t>(q[0] | q[32] << 2 | q[64] << 4 | q[96] << 6);
      }
    }
  }
}

void dequantizeRowQ2_K(const BlockQ2_K* blocks, float* out, size_t n) {
  for (size_t b = 0; b < n / kQKK; b++, out += kQKK) {
    const BlockQ2_K& block = blocks[b];
    const float d = fp16ToFloat(block.d), dmin = fp16ToFloat(block.dmin);
    for (int e = 0; e < 256; e++) {
      const int h = e / 128, t = (e % 128) / 32, l = e % 32;
      const int q = (block.qs[32 * h + l] >> (2 * t)) & 3;
      const uint8_t sc = block.scales[e / 16];
      out[e] = d * (sc & 15) * q - dmin * (sc >> 4);
    }
  }
}

// ---- Q3_K: 16 sub-blocks of 16, 3-bit levels, 6-bit signed scales ----

void quantizeRowQ3_K(const float* x, BlockQ3_K* blocks, size_t n) {
  int8_t L[kQKK];
  float scales[16];
  for (size_t b = 0; b < n / kQKK; b++, x += kQKK) {
    BlockQ3_K& block = blocks[b];
    for (int j = 0; j < 16; j++) scales[j] = fitSymmetricRefined(16, 4, x + 16 * j, L + 16 * j);
    const float extreme = largestMagnitude(scales, 16);
    std::memset(block.scales, 0, 12);
    if (extreme != 0) {
      const float iscale = -32 / extreme;
      for (int j = 0; j < 16; j++) {
        const int l = clampInt(nearestInt(iscale * scales[j]), -32, 31) + 32;
        if (j < 8) block.scales[j] = static_cast<uint8_t>(l & 15);
        else block.scales[j - 8] |= static_cast<uint8_t>((l & 15) << 4);
        block.scales[8 + j % 4] |= static_cast<uint8_t>((l >> 4) << (2 * (j / 4)));
      }
      block.d = floatToFp16(1 / iscale);
    } else {
      block.d = 0;
    }
    int8_t sc[16];
    unpackQ3Scales(block.scales, sc);
    const float d = fp16ToFloat(block.d);
    for (int j = 0; j < 16; j++) {
      const float scale = d * sc[j];
      if (scale == 0) continue;
      for (int l = 0; l < 16; l++) {
        L[16 * j + l] = static_cast<int8_t>(clampInt(nearestInt(x[16 * j + l] / scale), -4, 3) + 4);
      }
    }
    std::memset(block.hmask, 0, sizeof(block.hmask));
    for (int e = 0; e < 256; e++) {
      if (L[e] > 3) {
        block.hmask[e % 32] |= static_cast<uint8_t>(1 << (e / 32));
        L[e] = static_cast<int8_t>(L[e] - 4);
      }
    }
    for (int h = 0; h < 2; h++) {
      for (int l = 0; l < 32; l++) {
        const int8_t* q = L + 128 * h + l;
        block.qs[32 * h + l] = static_cast<uint8_t>(q[0] | q[32] << 2 | q[64] << 4 | q[96] << 6);
      }
    }
  }
}

void dequantizeRowQ3_K(const BlockQ3_K* blocks, float* out, size_t n) {
  int8_t sc[16];
  for (size_t b = 0; b < n / kQKK; b++, out += kQKK) {
    const BlockQ3_K& block = blocks[b];
    const float d = fp16ToFloat(block.d);
    unpackQ3Scales(block.scales, sc);
    for (int e = 0; e < 256; e++) {
      const int h = e / 128, t = (e % 128) / 32, l = e % 32;
      const int low = (block.qs[32 * h + l] >> (2 * t)) & 3;
      const int q = low - ((block.hmask[l] >> (e / 32)) & 1 ? 0 : 4);
      out[e] = d * sc[e / 16] * q;
    }
  }
}

// ---- Q4_K and Q5_K: 8 sub-blocks of 32, 4- or 5-bit levels, 6-bit scales and mins ----

void quantizeRowQ4_K(const float* x, BlockQ4_K* blocks, size_t n) {
  uint8_t L[kQKK];
  for (size_t b = 0; b < n / kQKK; b++, x += kQKK) {
    BlockQ4_K& block = blocks[b];
    quantizeScaleMinSuperBlock(x, 15, &block.d, &block.dmin, block.scales, L);
    for (int c = 0; c < 4; c++) {
      for (int l = 0; l < 32; l++) block.qs[32 * c + l] = static_cast<uint8_t>(L[64 * c + l] | L[64 * c + 32 + l] << 4);
    }
  }
}

void quantizeRowQ5_K(const float* x, BlockQ5_K* blocks, size_t n) {
  uint8_t L[kQKK];
  for (size_t b = 0; b < n / kQKK; b++, x += kQKK) {
    BlockQ5_K& block = blocks[b];
    quantizeScaleMinSuperBlock(x, 31, &block.d, &block.dmin, block.scales, L);
    std::memset(block.qh, 0, sizeof(block.qh));
    for (int c = 0; c < 4; c++) {
      for (int l = 0; l < 32; l++) {
        const int lo = L[64 * c + l], hi = L[64 * c + 32 + l];
        block.qs[32 * c + l] = static_cast<uint8_t>((lo & 15) | (hi & 15) << 4);
        block.qh[l] |= static_cast<uint8_t>((lo >> 4) << (2 * c) | (hi >> 4) << (2 * c + 1));
      }
    }
  }
}

void dequantizeRowQ4_K(const BlockQ4_K* blocks, float* out, size_t n) {
  uint8_t sc[8], m[8];
  for (size_t b = 0; b < n / kQKK; b++, out += kQKK) {
    const BlockQ4_K& block = blocks[b];
    const float d = fp16ToFloat(block.d), dmin = fp16ToFloat(block.dmin);
    unpackQ4Scales(block.scales, sc, m);
    for (int e = 0; e < 256; e++) {
      const int c = e / 64, i = (e % 64) / 32, l = e % 32;
      const int q = (block.qs[32 * c + l] >> (4 * i)) & 15;
      out[e] = d * sc[e / 32] * q - dmin * m[e / 32];
    }
  }
}

void dequantizeRowQ5_K(const BlockQ5_K* blocks, float* out, size_t n) {
  uint8_t sc[8], m[8];
  for (size_t b = 0; b < n / kQKK; b++, out += kQKK) {
    const BlockQ5_K& block = blocks[b];
    const float d = fp16ToFloat(block.d), dmin = fp16ToFloat(block.dmin);
    unpackQ4Scales(block.scales, sc, m);
    for (int e = 0; e < 256; e++) {
      const int c = e / 64, i = (e % 64) / 32, l = e % 32;
      const int q = ((block.qs[32 * c + l] >> (4 * i)) & 15) | ((block.qh[l] >> (2 * c + i)) & 1) << 4;
      out[e] = d * sc[e / 32] * q - dmin * m[e / 32];
    }
  }
}

// ---- Q6_K: 16 sub-blocks of 16, 6-bit levels, 8-bit signed scales ----

void quantizeRowQ6_K(const float* x, BlockQ6_K* blocks, size_t n) {
  int8_t L[kQKK];
  float scales[16];
  for (size_t b = 0; b < n / kQKK; b++, x += kQKK) {
    BlockQ6_K& block = blocks[b];
    for (int j = 0; j < 16; j++) scales[j] = fitSymmetric(16, 32, x + 16 * j, L + 16 * j);
    const float extreme = largestMagnitude(scales, 16);
    if (std::fabs(extreme) < kGroupMaxEps) {
      std::memset(&block, 0, sizeof(block));
      continue;
    }
    const float iscale = -128 / extreme;
    block.d = floatToFp16(1 / iscale);
    for (int j = 0; j < 16; j++) {
      block.scales[j] = static_cast<int8_t>(clampInt(nearestInt(iscale * scales[j]), -128, 127));
    }
    const float d = fp16ToFloat(block.d);
    for (int j = 0; j < 16; j++) {
      const float scale = d * block.scales[j];
      if (scale == 0) continue;
      for (int l = 0; l < 16; l++) {
        L[16 * j + l] = static_cast<int8_t>(clampInt(nearestInt(x[16 * j + l] / scale), -32, 31) + 32);
      }
    }
    for (int h = 0; h < 2; h++) {
      for (int l = 0; l < 32; l++) {
        const int8_t* q = L + 128 * h + l;
        block.ql[64 * h + l] = static_cast<uint8_t>((q[0] & 15) | (q[64] & 15) << 4);
        block.ql[64 * h + 32 + l] = static_cast<uint8_t>((q[32] & 15) | (q[96] & 15) << 4);
        block.qh[32 * h + l] =
            static_cast<uint8_t>(q[0] >> 4 | (q[32] >> 4) << 2 | (q[64] >> 4) << 4 | (q[96] >> 4) << 6);
      }
    }
  }
}

void dequantizeRowQ6_K(const BlockQ6_K* blocks, float* out, size_t n) {
  for (size_t b = 0; b < n / kQKK; b++, out += kQKK) {
    const BlockQ6_K& block = blocks[b];
    const float d = fp16ToFloat(block.d);
    for (int e = 0; e < 256; e++) {
      const int h = e / 128, t = (e % 128) / 32, l = e % 32;
      const int low = (block.ql[64 * h + 32 * (t % 2) + l] >> (4 * (t / 2))) & 15;
      const int high = (block.qh[32 * h + l] >> (2 * t)) & 3;
      out[e] = d * block.scales[e / 16] * ((low | high << 4) - 32);
    }
  }
}

}  // namespace mn
