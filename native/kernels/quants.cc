// Scalar reference quantizers (the algorithms of ggml's quantize_row_*_ref) and dequantizers of the 32-value block
// types and the activation formats; the K-quants are in kquants.cc.
#include "kernels/quants.h"

#include <cmath>
#include <cstring>

#include "common/half.h"
#include "kernels/scalar.h"

namespace mn {

float largestMagnitude(const float* x, size_t n) {
  float amax = 0.0f, extreme = 0.0f;
  for (size_t j = 0; j < n; j++) {
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      extreme = x[j];
    }
  }
  return extreme;
}

namespace {

// q (kQK,) = x * (127 / max|x|) rounded half to even, as llama.cpp's runtime Q8_0/Q8_1 quantizers; returns max|x|
float roundBlockToInt8(const float* x, int8_t* q) {
  const float amax = std::fabs(largestMagnitude(x, kQK));
  const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
  for (size_t j = 0; j < kQK; j++) q[j] = static_cast<int8_t>(std::nearbyint(x[j] * id));
  return amax;
}

// Q8_0: d = max|x| / 127, q = x * (127 / max|x|) rounded half to even. This is llama.cpp's runtime (SIMD) quantizer
// rather than quantize_row_q8_0_ref (x * (1 / d), halves away from zero): activations then land on the same integers
// as llama.cpp's, so the two engines' outputs do not drift apart through one flipped rounding.
void quantizeQ8_0(const float* x, BlockQ8_0* blocks, size_t n) {
  for (size_t b = 0; b < n / kQK; b++, x += kQK) blocks[b].d = floatToFp16(roundBlockToInt8(x, blocks[b].qs) / 127.0f);
}

// Q4_0: d = (the value of largest magnitude) / -8, q = clamp(x / d + 8.5, 0, 15)
void quantizeQ4_0(const float* x, BlockQ4_0* blocks, size_t n) {
  for (size_t b = 0; b < n / kQK; b++, x += kQK) {
    const float d = largestMagnitude(x, kQK) / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    blocks[b].d = floatToFp16(d);
    for (size_t j = 0; j < kQK / 2; j++) {
      const int lo = static_cast<int>(static_cast<int8_t>(x[j] * id + 8.5f));
      const int hi = static_cast<int>(static_cast<int8_t>(x[j + kQK / 2] * id + 8.5f));
      blocks[b].qs[j] = static_cast<uint8_t>((lo < 15 ? lo : 15) | (hi < 15 ? hi : 15) << 4);
    }
  }
}

// Q4_1 / Q5_1: d = (max - min) / (2^bits - 1), m = min, q = round((x - min) / d)
template <int kBits>
void quantizeWithMin(const float* x, uint8_t* dst, size_t n) {
  constexpr int kMax = (1 << kBits) - 1;
  constexpr size_t blockBytes = kBits == 4 ? sizeof(BlockQ4_1) : sizeof(BlockQ5_1);
  for (size_t b = 0; b < n / kQK; b++, x += kQK, dst += blockBytes) {
    float lo = x[0], hi = x[0];
    for (size_t j = 1; j < kQK; j++) {
      lo = std::fmin(lo, x[j]);
      hi = std::fmax(hi, x[j]);
    }
    const float d = (hi - lo) / kMax;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    uint8_t q[kQK];
    uint32_t qh = 0;
    for (size_t j = 0; j < kQK; j++) {
      const int v = static_cast<int>((x[j] - lo) * id + 0.5f);
      q[j] = static_cast<uint8_t>(v < 0 ? 0 : v > kMax ? kMax : v);
      qh |= static_cast<uint32_t>(q[j] >> 4) << j;
    }
    const uint16_t dBits = floatToFp16(d), mBits = floatToFp16(lo);
    std::memcpy(dst, &dBits, 2);
    std::memcpy(dst + 2, &mBits, 2);
    uint8_t* qs = dst + 4;
    if (kBits == 5) {
      std::memcpy(dst + 4, &qh, 4);
      qs = dst + 8;
    }
    for (size_t j = 0; j < kQK / 2; j++) qs[j] = static_cast<uint8_t>((q[j] & 15) | (q[j + kQK / 2] & 15) << 4);
  }
}

// Q5_0: d = (the value of largest magnitude) / -16, q = clamp(x / d + 16.5, 0, 31)
void quantizeQ5_0(const float* x, BlockQ5_0* blocks, size_t n) {
  for (size_t b = 0; b < n / kQK; b++, x += kQK) {
    const float d = largestMagnitude(x, kQK) / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    blocks[b].d = floatToFp16(d);
    uint32_t qh = 0;
    for (size_t j = 0; j < kQK / 2; j++) {
      const int lo = static_cast<int>(static_cast<int8_t>(x[j] * id + 16.5f));
      const int hi = static_cast<int>(static_cast<int8_t>(x[j + kQK / 2] * id + 16.5f));
      const int q0 = lo < 31 ? lo : 31, q1 = hi < 31 ? hi : 31;
      blocks[b].qs[j] = static_cast<uint8_t>((q0 & 15) | (q1 & 15) << 4);
      qh |= static_cast<uint32_t>(q0 >> 4) << j | static_cast<uint32_t>(q1 >> 4) << (j + kQK / 2);
    }
    std::memcpy(blocks[b].qh, &qh, 4);
  }
}

// The 5-bit values of a Q5_0 / Q5_1 block: low nibbles from qs, bit 4 from qh
void unpackFiveBits(const uint8_t* qs, const uint8_t* qhBytes, int* q) {
  uint32_t qh;
  std::memcpy(&qh, qhBytes, 4);
  for (size_t j = 0; j < kQK / 2; j++) {
    q[j] = (qs[j] & 15) | static_cast<int>((qh >> j) & 1) << 4;
    q[j + kQK / 2] = (qs[j] >> 4) | static_cast<int>((qh >> (j + kQK / 2)) & 1) << 4;
  }
}

}  // namespace

// Q8_1: Q8_0 (with llama.cpp's runtime rounding, as quantizeQ8_0) plus s = d * sum(q)
void quantizeRowQ8_1(const float* x, BlockQ8_1* blocks, size_t n) {
  for (size_t b = 0; b < n / kQK; b++, x += kQK) {
    const float d = roundBlockToInt8(x, blocks[b].qs) / 127.0f;
    int sum = 0;
    for (size_t j = 0; j < kQK; j++) sum += blocks[b].qs[j];
    blocks[b].d = floatToFp16(d);
    blocks[b].s = floatToFp16(static_cast<float>(sum) * d);
  }
}

// Q8_K: d = (the value of largest magnitude) / -127 in fp32, q = min(127, round(x / d)), bsums per 16
void quantizeRowQ8_K(const float* x, BlockQ8_K* blocks, size_t n) {
  for (size_t b = 0; b < n / kQKK; b++, x += kQKK) {
    BlockQ8_K& block = blocks[b];
    const float extreme = largestMagnitude(x, kQKK);
    if (extreme == 0.0f) {
      std::memset(&block, 0, sizeof(block));
      continue;
    }
    const float iscale = -127.0f / extreme;
    for (size_t j = 0; j < kQKK; j++) {
      const long q = std::lrint(iscale * x[j]);  // ggml's nearest_int rounds half to even
      block.qs[j] = static_cast<int8_t>(q < 127 ? q : 127);
    }
    for (size_t g = 0; g < kQKK / 16; g++) {
      int sum = 0;
      for (size_t j = 0; j < 16; j++) sum += block.qs[16 * g + j];
      block.bsums[g] = static_cast<int16_t>(sum);
    }
    block.d = 1.0f / iscale;
  }
}

bool quantizeRow(GgmlType type, const float* x, uint8_t* dst, size_t n) {
  switch (type) {
    case GgmlType::F32:
      std::memcpy(dst, x, n * sizeof(float));
      return true;
    case GgmlType::F16:
      for (size_t i = 0; i < n; i++) {
        const uint16_t h = floatToFp16(x[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return true;
    case GgmlType::BF16:
      for (size_t i = 0; i < n; i++) {
        const uint16_t h = floatToBf16(x[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return true;
    case GgmlType::Q8_0:
      if (n % kQK != 0) return false;
      quantizeQ8_0(x, reinterpret_cast<BlockQ8_0*>(dst), n);
      return true;
    case GgmlType::Q4_0:
      if (n % kQK != 0) return false;
      quantizeQ4_0(x, reinterpret_cast<BlockQ4_0*>(dst), n);
      return true;
    case GgmlType::Q4_1:
      if (n % kQK != 0) return false;
      quantizeWithMin<4>(x, dst, n);
      return true;
    case GgmlType::Q5_0:
      if (n % kQK != 0) return false;
      quantizeQ5_0(x, reinterpret_cast<BlockQ5_0*>(dst), n);
      return true;
    case GgmlType::Q5_1:
      if (n % kQK != 0) return false;
      quantizeWithMin<5>(x, dst, n);
      return true;
    default:
      break;
  }
  if (n % kQKK != 0) return false;
  switch (type) {
    case GgmlType::Q2_K: quantizeRowQ2_K(x, reinterpret_cast<BlockQ2_K*>(dst), n); return true;
    case GgmlType::Q3_K: quantizeRowQ3_K(x, reinterpret_cast<BlockQ3_K*>(dst), n); return true;
    case GgmlType::Q4_K: quantizeRowQ4_K(x, reinterpret_cast<BlockQ4_K*>(dst), n); return true;
    case GgmlType::Q5_K: quantizeRowQ5_K(x, reinterpret_cast<BlockQ5_K*>(dst), n); return true;
    case GgmlType::Q6_K: quantizeRowQ6_K(x, reinterpret_cast<BlockQ6_K*>(dst), n); return true;
    default: return false;
  }
}

bool dequantizeRowReference(GgmlType type, const uint8_t* row, float* out, size_t n) {
  switch (type) {
    case GgmlType::F32:
      std::memcpy(out, row, n * sizeof(float));
      return true;
    case GgmlType::F16:
      for (size_t i = 0; i < n; i++) {
        uint16_t h;
        std::memcpy(&h, row + 2 * i, 2);
        out[i] = fp16ToFloat(h);
      }
      return true;
    case GgmlType::BF16:
      for (size_t i = 0; i < n; i++) {
        uint16_t h;
        std::memcpy(&h, row + 2 * i, 2);
        out[i] = bf16ToFloat(h);
      }
      return true;
    case GgmlType::Q8_0: {
      if (n % kQK != 0) return false;
      const BlockQ8_0* blocks = reinterpret_cast<const BlockQ8_0*>(row);
      for (size_t b = 0; b < n / kQK; b++) {
        const float d = fp16ToFloat(blocks[b].d);
        for (size_t j = 0; j < kQK; j++) out[b * kQK + j] = blocks[b].qs[j] * d;
      }
      return true;
    }
    case GgmlType::Q4_0: {
      if (n % kQK != 0) return false;
      const BlockQ4_0* blocks = reinterpret_cast<const BlockQ4_0*>(row);
      for (size_t b = 0; b < n / kQK; b++) {
        const float d = fp16ToFloat(blocks[b].d);
        for (size_t j = 0; j < kQK / 2; j++) {
          out[b * kQK + j] = ((blocks[b].qs[j] & 15) - 8) * d;
          out[b * kQK + j + kQK / 2] = ((blocks[b].qs[j] >> 4) - 8) * d;
        }
      }
      return true;
    }
    case GgmlType::Q4_1: {
      if (n % kQK != 0) return false;
      const BlockQ4_1* blocks = reinterpret_cast<const BlockQ4_1*>(row);
      for (size_t b = 0; b < n / kQK; b++) {
        const float d = fp16ToFloat(blocks[b].d), m = fp16ToFloat(blocks[b].m);
        for (size_t j = 0; j < kQK / 2; j++) {
          out[b * kQK + j] = (blocks[b].qs[j] & 15) * d + m;
          out[b * kQK + j + kQK / 2] = (blocks[b].qs[j] >> 4) * d + m;
        }
      }
      return true;
    }
    case GgmlType::Q5_0: {
      if (n % kQK != 0) return false;
      const BlockQ5_0* blocks = reinterpret_cast<const BlockQ5_0*>(row);
      int q[kQK];
      for (size_t b = 0; b < n / kQK; b++) {
        const float d = fp16ToFloat(blocks[b].d);
        unpackFiveBits(blocks[b].qs, blocks[b].qh, q);
        for (size_t j = 0; j < kQK; j++) out[b * kQK + j] = (q[j] - 16) * d;
      }
      return true;
    }
    case GgmlType::Q5_1: {
      if (n % kQK != 0) return false;
      const BlockQ5_1* blocks = reinterpret_cast<const BlockQ5_1*>(row);
      int q[kQK];
      for (size_t b = 0; b < n / kQK; b++) {
        const float d = fp16ToFloat(blocks[b].d), m = fp16ToFloat(blocks[b].m);
        unpackFiveBits(blocks[b].qs, blocks[b].qh, q);
        for (size_t j = 0; j < kQK; j++) out[b * kQK + j] = q[j] * d + m;
      }
      return true;
    }
    default:
      break;
  }
  if (n % kQKK != 0) return false;
  switch (type) {
    case GgmlType::Q2_K: dequantizeRowQ2_K(reinterpret_cast<const BlockQ2_K*>(row), out, n); return true;
    case GgmlType::Q3_K: dequantizeRowQ3_K(reinterpret_cast<const BlockQ3_K*>(row), out, n); return true;
    case GgmlType::Q4_K: dequantizeRowQ4_K(reinterpret_cast<const BlockQ4_K*>(row), out, n); return true;
    case GgmlType::Q5_K: dequantizeRowQ5_K(reinterpret_cast<const BlockQ5_K*>(row), out, n); return true;
    case GgmlType::Q6_K: dequantizeRowQ6_K(reinterpret_cast<const BlockQ6_K*>(row), out, n); return true;
    default: return false;
  }
}

bool convertRows(GgmlType srcType, const uint8_t* src, GgmlType dstType, uint8_t* dst, size_t rowLength,
                 size_t rowBegin, size_t rowEnd, float* scratch) {
  const uint64_t srcRowBytes = ggmlRowBytes(srcType, rowLength), dstRowBytes = ggmlRowBytes(dstType, rowLength);
  for (size_t r = rowBegin; r < rowEnd; r++) {
    if (!dequantizeRowReference(srcType, src + r * srcRowBytes, scratch, rowLength)) return false;
    if (!quantizeRow(dstType, scratch, dst + r * dstRowBytes, rowLength)) return false;
  }
  return true;
}

void packQ4_0x128Group(const uint8_t* src, size_t srcRowBytes, size_t rows, size_t nBlocks, uint8_t* dst) {
  if (rows < kQ4_0x128Rows) std::memset(dst, 0, nBlocks * kQ4_0x128BlockBytes);
  for (size_t b = 0; b < nBlocks; b++, dst += kQ4_0x128BlockBytes) {
    for (size_t row = 0; row < rows; row++) {
      const BlockQ4_0& block = reinterpret_cast<const BlockQ4_0*>(src + row * srcRowBytes)[b];
      const size_t s = row / 16, j = row % 16;
      std::memcpy(dst + q4_0x128ScaleOffset(s, j), &block.d, 2);
      for (size_t k = 0; k < 4; k++) std::memcpy(dst + q4_0x128LineOffset(s, k) + 4 * j, block.qs + 4 * k, 4);
    }
  }
}

namespace {

// Rows [0, 128) of src (Q4_0, n values each, srcRowBytes apart) -> one Q4_0x128 group at dst (128 rows' bytes).
void repackQ4_0x128(const uint8_t* src, size_t srcRowBytes, size_t n, uint8_t* dst) {
  packQ4_0x128Group(src, srcRowBytes, kQ4_0x128Rows, n / kQK, dst);
}

// Rows [0, 64) of src (Q4_K, n values each, srcRowBytes apart) -> one Q4_Kx64 group at dst (n / 256 * 9472 bytes).
void repackQ4_Kx64(const uint8_t* src, size_t srcRowBytes, size_t n, uint8_t* dst) {
  for (size_t b = 0; b < n / kQKK; b++, dst += kQ4_Kx64BlockBytes) {
    for (size_t row = 0; row < kQ4_Kx64Rows; row++) {
      const BlockQ4_K& block = reinterpret_cast<const BlockQ4_K*>(src + row * srcRowBytes)[b];
      const size_t s = row / 16, j = row % 16;
      std::memcpy(dst + q4_Kx64DOffset(s) + 2 * j, &block.d, 2);
      std::memcpy(dst + q4_Kx64DminOffset(s) + 2 * j, &block.dmin, 2);
      uint8_t scales[8], mins[8];
      unpackQ4Scales(block.scales, scales, mins);
      for (size_t sub = 0; sub < 8; sub++) {
        dst[q4_Kx64ScaleOffset(sub, s) + j] = scales[sub];
        dst[q4_Kx64MinOffset(sub, s) + j] = mins[sub];
      }
      for (size_t c = 0; c < 4; c++) {
        for (size_t k = 0; k < 8; k++) {
          std::memcpy(dst + q4_Kx64LineOffset(s, c, k) + 4 * j, block.qs + 32 * c + 4 * k, 4);
        }
      }
    }
  }
}

}  // namespace

bool hasInterleavedLayout(GgmlType type) { return type == GgmlType::Q4_0 || type == GgmlType::Q4_K; }

size_t interleavedGroupRows(GgmlType type) { return type == GgmlType::Q4_K ? kQ4_Kx64Rows : kQ4_0x128Rows; }

size_t interleavedGroupBytes(GgmlType type, size_t n) {
  return type == GgmlType::Q4_K ? n / kQKK * kQ4_Kx64BlockBytes : n / kQK * kQ4_0x128BlockBytes;
}

void repackInterleaved(GgmlType type, const uint8_t* src, size_t srcRowBytes, size_t n, size_t groupBegin,
                       size_t groupEnd, uint8_t* dst) {
  const auto repackGroup = type == GgmlType::Q4_K ? repackQ4_Kx64 : repackQ4_0x128;
  const size_t srcGroupBytes = interleavedGroupRows(type) * srcRowBytes, dstGroupBytes = interleavedGroupBytes(type, n);
  for (size_t g = groupBegin; g < groupEnd; g++) {
    repackGroup(src + g * srcGroupBytes, srcRowBytes, n, dst + g * dstGroupBytes);
  }
}

namespace scalar {

// x (n,) -> one activation row in `format` (REFERENCE.md: Q8_0 for Q4_0/Q5_0/Q8_0 weights, as quantize_row_q8_0_ref)
void quantizeActivations(ActFormat format, const float* x, void* dst, size_t n) {
  uint8_t* out = static_cast<uint8_t*>(dst);
  switch (format) {
    case ActFormat::F32: quantizeRow(GgmlType::F32, x, out, n); return;
    case ActFormat::F16: quantizeRow(GgmlType::F16, x, out, n); return;
    case ActFormat::BF16: quantizeRow(GgmlType::BF16, x, out, n); return;
    case ActFormat::Q8_0: quantizeQ8_0(x, reinterpret_cast<BlockQ8_0*>(out), n); return;
    case ActFormat::Q8_1: quantizeRowQ8_1(x, reinterpret_cast<BlockQ8_1*>(out), n); return;
    case ActFormat::Q8_K: quantizeRowQ8_K(x, reinterpret_cast<BlockQ8_K*>(out), n); return;
  }
}

// One row of n values of `type` -> out (n,); types without a reader leave out untouched (the engine checks first).
void dequantizeRow(GgmlType type, const uint8_t* row, float* out, size_t n) { dequantizeRowReference(type, row, out,
    n); }

}  // namespace scalar
}  // namespace mn
