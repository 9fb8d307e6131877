// Scalar reference quantizers (the algorithms of ggml's quantize_row_*_ref) and dequantizers.
#include "kernels/quants.h"

#include <cmath>
#include <cstring>

#include "common/half.h"

namespace mn {
namespace {

// Q8_0: d = max|x| / 127, q = round(x / d)
void quantizeQ8_0(const float* x, BlockQ8_0* blocks, size_t n) {
  for (size_t b = 0; b < n / kQK; b++, x += kQK) {
    float amax = 0.0f;
    for (size_t j = 0; j < kQK; j++) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    blocks[b].d = floatToFp16(d);
    for (size_t j = 0; j < kQK; j++) blocks[b].qs[j] = static_cast<int8_t>(std::lround(x[j] * id));
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

}  // namespace mn
