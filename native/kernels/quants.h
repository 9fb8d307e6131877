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
#pragma pack(pop)
static_assert(sizeof(BlockQ4_0) == 18, "Q4_0 block is 18 bytes");
static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 block is 34 bytes");

// x (n,) -> one row of `type`; n a multiple of the block size. Returns false for types it cannot write.
bool quantizeRow(GgmlType type, const float* x, uint8_t* dst, size_t n);
// One row of `type` (n values) -> out (n,). Returns false for types it cannot read.
bool dequantizeRowReference(GgmlType type, const uint8_t* row, float* out, size_t n);

}  // namespace mn
