// Block layouts of the quantized types (REFERENCE.md "ggml types") and the scalar reference converters.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/ggml_type.h"

namespace mn {

constexpr size_t kQK = 32;   // elements per block of the 32-element types
constexpr size_t kQKK = 256; // elements per K-quant super-block

#pragma pack(push, 1)
struct BlockQ4_0 {
  uint16_t d;           // fp16 scale
  uint8_t qs[kQK / 2];  // y[j] = ((qs[j] & 15) - 8) * d, y[j + 16] = ((qs[j] >> 4) - 8) * d
};
struct BlockQ8_0 {
  uint16_t d;        // fp16 scale
  int8_t qs[kQK];    // y = qs * d
};
struct BlockQ8_1 {
  uint16_t d;        // fp16 scale
  uint16_t s;        // fp16 of d * sum(qs), for the min term of Q4_1 / Q5_1 dot products
  int8_t qs[kQK];    // y = qs * d
};
struct BlockQ8_K {
  float d;                 // fp32 scale
  int8_t qs[kQKK];         // y = qs * d
  int16_t bsums[kQKK / 16];  // sum of each 16 qs, for the min term of K-quant dot products
};
#pragma pack(pop)
static_assert(sizeof(BlockQ4_0) == 18, "Q4_0 block is 18 bytes");
static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 block is 34 bytes");
static_assert(sizeof(BlockQ8_1) == 36, "Q8_1 block is 36 bytes");
static_assert(sizeof(BlockQ8_K) == 292, "Q8_K block is 292 bytes");

// x (n,) -> one row of `type`; n a multiple of the block size. Returns false for types it cannot write.
bool quantizeRow(GgmlType type, const float* x, uint8_t* dst, size_t n);
// One row of `type` (n values) -> out (n,). Returns false for types it cannot read.
bool dequantizeRowReference(GgmlType type, const uint8_t* row, float* out, size_t n);

// Activation rows (ggml's quantize_row_q8_1_ref / quantize_row_q8_K_ref); n a multiple of 32 / 256.
void quantizeRowQ8_1(const float* x, BlockQ8_1* blocks, size_t n);
void quantizeRowQ8_K(const float* x, BlockQ8_K* blocks, size_t n);

}  // namespace mn
