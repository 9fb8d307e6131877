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
struct BlockQ4_1 {
  uint16_t d;           // fp16 scale
  uint16_t m;           // fp16 offset
  uint8_t qs[kQK / 2];  // y[j] = (qs[j] & 15) * d + m, y[j + 16] = (qs[j] >> 4) * d + m
};
struct BlockQ5_0 {
  uint16_t d;           // fp16 scale
  uint8_t qh[4];        // bit j of the u32 is bit 4 of element j
  uint8_t qs[kQK / 2];  // low 4 bits as Q4_0's; y = (q - 16) * d
};
struct BlockQ5_1 {
  uint16_t d;           // fp16 scale
  uint16_t m;           // fp16 offset
  uint8_t qh[4];        // bit j of the u32 is bit 4 of element j
  uint8_t qs[kQK / 2];  // y = q * d + m
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
// K-quants: super-blocks of 256 (REFERENCE.md "ggml types"). Sub-block scales are small integers times d.
struct BlockQ2_K {
  uint8_t scales[kQKK / 16];  // sub-block of 16 j: scale (low 4 bits) * d, min (high 4 bits) * dmin
  uint8_t qs[kQKK / 4];       // element 128h + 32t + l: bits 2t..2t+1 of qs[32h + l]; y = d*sc*q - dmin*m
  uint16_t d;
  uint16_t dmin;
};
struct BlockQ3_K {
  uint8_t hmask[kQKK / 8];    // element e: bit e / 32 of hmask[e % 32] set means q >= 0 (else q - 4)
  uint8_t qs[kQKK / 4];       // low 2 bits as Q2_K's
  uint8_t scales[12];         // 16 6-bit scales, stored + 32 (see unpackQ3Scales)
  uint16_t d;                 // y = d * (sc - 32) * (q - 4 * !hbit)
};
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];         // 8 6-bit scales and 8 6-bit mins (see unpackQ4Scales)
  uint8_t qs[kQKK / 2];       // chunk c of 64: low nibbles of qs[32c..] then high nibbles; y = d*sc*q - dmin*m
};
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[kQKK / 8];       // bit 4 of element 64c + 32i + l is bit 2c + i of qh[l]
  uint8_t qs[kQKK / 2];
};
struct BlockQ6_K {
  uint8_t ql[kQKK / 2];       // low 4 bits: element 128h + 32t + l from ql[64h + 32(t % 2) + l], nibble t / 2
  uint8_t qh[kQKK / 4];       // high 2 bits: bits 2t..2t+1 of qh[32h + l]
  int8_t scales[kQKK / 16];   // y = d * sc * (q - 32)
  uint16_t d;
};
struct BlockQ8_K {
  float d;                 // fp32 scale
  int8_t qs[kQKK];         // y = qs * d
  int16_t bsums[kQKK / 16];  // sum of each 16 qs, for the min term of K-quant dot products
};
#pragma pack(pop)
static_assert(sizeof(BlockQ4_0) == 18, "Q4_0 block is 18 bytes");
static_assert(sizeof(BlockQ4_1) == 20, "Q4_1 block is 20 bytes");
static_assert(sizeof(BlockQ5_0) == 22, "Q5_0 block is 22 bytes");
static_assert(sizeof(BlockQ5_1) == 24, "Q5_1 block is 24 bytes");
static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 block is 34 bytes");
static_assert(sizeof(BlockQ2_K) == 84, "Q2_K block is 84 bytes");
static_assert(sizeof(BlockQ3_K) == 110, "Q3_K block is 110 bytes");
static_assert(sizeof(BlockQ4_K) == 144, "Q4_K block is 144 bytes");
static_assert(sizeof(BlockQ5_K) == 176, "Q5_K block is 176 bytes");
static_assert(sizeof(BlockQ6_K) == 210, "Q6_K block is 210 bytes");
static_assert(sizeof(BlockQ8_1) == 36, "Q8_1 block is 36 bytes");
static_assert(sizeof(BlockQ8_K) == 292, "Q8_K block is 292 bytes");

// x (n,) -> one row of `type`; n a multiple of the block size. Returns false for types it cannot write.
bool quantizeRow(GgmlType type, const float* x, uint8_t* dst, size_t n);
// One row of `type` (n values) -> out (n,). Returns false for types it cannot read.
bool dequantizeRowReference(GgmlType type, const uint8_t* row, float* out, size_t n);

// Rows [rowBegin, rowEnd) of src (srcType, rowLength values per row) -> the same rows of dst in dstType, through
// floats (the quantizer's step); scratch holds rowLength floats. False if either type has no converter.
bool convertRows(GgmlType srcType, const uint8_t* src, GgmlType dstType, uint8_t* dst, size_t rowLength,
                 size_t rowBegin, size_t rowEnd, float* scratch);

// The value of x (n,) of largest magnitude (the first of them, as ggml's reference quantizers pick it); 0 if all are.
float largestMagnitude(const float* x, size_t n);

// Activation rows (ggml's quantize_row_q8_1_ref / quantize_row_q8_K_ref); n a multiple of 32 / 256.
void quantizeRowQ8_1(const float* x, BlockQ8_1* blocks, size_t n);
void quantizeRowQ8_K(const float* x, BlockQ8_K* blocks, size_t n);

// The K-quant writers and readers (kquants.cc); n a multiple of 256.
void quantizeRowQ2_K(const float* x, BlockQ2_K* blocks, size_t n);
void quantizeRowQ3_K(const float* x, BlockQ3_K* blocks, size_t n);
void quantizeRowQ4_K(const float* x, BlockQ4_K* blocks, size_t n);
void quantizeRowQ5_K(const float* x, BlockQ5_K* blocks, size_t n);
void quantizeRowQ6_K(const float* x, BlockQ6_K* blocks, size_t n);
void dequantizeRowQ2_K(const BlockQ2_K* blocks, float* out, size_t n);
void dequantizeRowQ3_K(const BlockQ3_K* blocks, float* out, size_t n);
void dequantizeRowQ4_K(const BlockQ4_K* blocks, float* out, size_t n);
void dequantizeRowQ5_K(const BlockQ5_K* blocks, float* out, size_t n);
void dequantizeRowQ6_K(const BlockQ6_K* blocks, float* out, size_t n);

// Rows repacked at load into interleaved groups (`weights: "repacked"`, docs/kernels.md), so that one 512-bit vector
// holds 4 quants of each of 16 rows (a "run"), a dot product sums every block of a row as one integer, and each
// activation value read serves the whole group. A group takes exactly the bytes of its rows, so row r's group starts
// (r / rows) * rows into the matrix.
//
// Q4_0x128: 128 rows, their blocks in order, 2304 bytes each (36 lines): the 128 rows' d (256 bytes), then for each run
// of 16 rows (row 16s + j) 4 lines, line k holding row j's qs[4k..4k+3] at bytes 4j..4j+3.
constexpr size_t kQ4_0x128Rows = 128;
constexpr size_t kQ4_0x128BlockBytes = kQ4_0x128Rows * 18;  // one block of every row of a group
// Offsets inside one block of a group: the d of row 16s + j, and line k of the quants of rows 16s .. 16s + 15
// (static: the AVX-512 kernels include them too, see scalar.h).
static constexpr size_t q4_0x128ScaleOffset(size_t s, size_t j) { return 32 * s + 2 * j; }
static constexpr size_t q4_0x128LineOffset(size_t s, size_t k) { return 256 + 256 * s + 64 * k; }

// Q4_Kx64: 64 rows, as Q4_0x128 but per 256-value super-block, 148 bytes a row (the file's 144, with the 6-bit scales
// and mins unpacked to bytes): the 64 rows' d (128 bytes), dmin (128), sub-block j's scale of every row (64 bytes at
// 256 + 64j), its min (at 768 + 64j), then per run of 16 rows 2048 bytes: per 64-value chunk c, 8 lines, line k
// holding row j's qs[32c + 4k .. 32c + 4k + 3] (low nibbles: sub-block 2c; high: 2c + 1). Its decode has no registers
// to spare for 8 runs, hence the smaller group.
constexpr size_t kQ4_Kx64Rows = 64;
constexpr size_t kQ4_Kx64BlockBytes = kQ4_Kx64Rows * 148;
static constexpr size_t q4_Kx64DOffset(size_t s) { return 32 * s; }
static constexpr size_t q4_Kx64DminOffset(size_t s) { return 128 + 32 * s; }
static constexpr size_t q4_Kx64ScaleOffset(size_t j, size_t s) { return 256 + 64 * j + 16 * s; }
static constexpr size_t q4_Kx64MinOffset(size_t j, size_t s) { return 768 + 64 * j + 16 * s; }
static constexpr size_t q4_Kx64LineOffset(size_t s, size_t c, size_t k) { return 1280 + 2048 * s + 512 * c + 64 * k; }

// The interleaved layouts by weight type (Q4_0 -> Q4_0x128, Q4_K -> Q4_Kx64): whether `type` has one, the rows of
// one group, the bytes of one group of rows of n values, and the repack of groups [groupBegin, groupEnd) of the matrix
// at src (rows of n values, srcRowBytes apart) into the same groups of the repacked matrix at dst.
bool hasInterleavedLayout(GgmlType type);
size_t interleavedGroupRows(GgmlType type);
size_t interleavedGroupBytes(GgmlType type, size_t n);
void repackInterleaved(GgmlType type, const uint8_t* src, size_t srcRowBytes, size_t n, size_t groupBegin,
                       size_t groupEnd, uint8_t* dst);
// Rows [0, rows) (at most 128) of src, Q4_0 blocks [0, nBlocks) of each, srcRowBytes apart -> one Q4_0x128 group of
// nBlocks blocks at dst, the rows past `rows` zero: the repack's step, and the AVX2 prefill's copy of rows as the file
// has them, a chunk of blocks at a time.
void packQ4_0x128Group(const uint8_t* src, size_t srcRowBytes, size_t rows, size_t nBlocks, uint8_t* dst);

// The packed sub-block scales of a K-quant super-block, as small integers.
// Q4_K / Q5_K: 8 scales and 8 mins of 6 bits from 12 bytes.
void unpackQ4Scales(const uint8_t* packed, uint8_t* scales, uint8_t* mins);
// Q3_K: 16 signed scales (stored value - 32) from 12 bytes.
void unpackQ3Scales(const uint8_t* packed, int8_t* scales);

}  // namespace mn
