// Scalar reference quantizers (the algorithms of ggml's quantize_row_*_ref) and dequantizers.
#include "kernels/quants.h"

#include <cmath>
#include <cstring>

#include "common/half.h"
#include "kernels/scalar.h"

namespace mn {
namespace {

// Q8_0: d = max|x| / 127, q = x * (127 / max|x|) rounded half to even. This is llama.cpp's runtime (SIMD) quantizer
// rather than quantize_row_q8_0_ref (x * (1 / d), halves away from zero): activations then land on the same integers
// as llama.cpp's, so the two engines' outputs do not drift apart through one flipped rounding.
void quantizeQ8_0(const float* x, BlockQ8_0* blocks, size_t n) {
  for (size_t b = 0; b < n / kQK; b++, x += kQK) {
    float amax = 0.0f;
    for (size_t j = 0; j < kQK; j++) amax = std::fmax(amax, std::fabs(x[j]));
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    blocks[b].d = floatToFp16(amax / 127.0f);
    for (size_t j = 0; j < kQK; j++) blocks[b].qs[j] = static_cast<int8_t>(std::nearbyint(x[j] * id));
  }
}

// Q4_0: d = (the value of largest magnitude) / -8, q = clamp(x / d + 8.5, 0, 15)
void quantizeQ4_0(const float* x, BlockQ4_0* blocks, size_t n) {
  for (size_t b = 0; b < n / kQK; b++, x += kQK) {
    float amax = 0.0f, extreme = 0.0f;
    for (size_t j = 0; j < kQK; j++) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        extreme = x[j];
      }
    }
    const float d = extreme / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    blocks[b].d = floatToFp16(d);
    for (size_t j = 0; j < kQK / 2; j++) {
      const int lo = static_cast<int>(static_cast<int8_t>(x[j] * id + 8.5f));
      const int hi = static_cast<int>(static_cast<int8_t>(x[j + kQK / 2] * id + 8.5f));
      blocks[b].qs[j] = static_cast<uint8_t>((lo < 15 ? lo : 15) | (hi < 15 ? hi : 15) << 4);
    }
  }
}

}  // namespace

// Q8_1: Q8_0 (with llama.cpp's runtime rounding, as quantizeQ8_0) plus s = d * sum(q)
void quantizeRowQ8_1(const float* x, BlockQ8_1* blocks, size_t n) {
  for (size_t b = 0; b < n / kQK; b++, x += kQK) {
    float amax = 0.0f;
    for (size_t j = 0; j < kQK; j++) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = amax != 0.0f ? 127.0f / amax : 0.0f;
    int sum = 0;
    for (size_t j = 0; j < kQK; j++) {
      blocks[b].qs[j] = static_cast<int8_t>(std::nearbyint(x[j] * id));
      sum += blocks[b].qs[j];
    }
    blocks[b].d = floatToFp16(d);
    blocks[b].s = floatToFp16(static_cast<float>(sum) * d);
  }
}

// Q8_K: d = (the value of largest magnitude) / -127 in fp32, q = min(127, round(x / d)), bsums per 16
void quantizeRowQ8_K(const float* x, BlockQ8_K* blocks, size_t n) {
  for (size_t b = 0; b < n / kQKK; b++, x += kQKK) {
    BlockQ8_K& block = blocks[b];
    float amax = 0.0f, extreme = 0.0f;
    for (size_t j = 0; j < kQKK; j++) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        extreme = x[j];
      }
    }
    if (amax == 0.0f) {
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
    default:
      return false;
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
    default:
      return false;
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
