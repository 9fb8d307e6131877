// The AVX2 and AVX-512 kernel tables, each defined as constant data after its file's target pragma is popped, so
// nothing compiled for those ISAs can run before kernels.cc has checked the CPU. Declarations only.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/kernels.h"

namespace mn {
namespace x86 {

using QuantizeActivationsFn = void (*)(ActFormat format, const float* x, void* dst, size_t n);
using MatmulFn = void (*)(GgmlType wType, const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin,
                          size_t rowEnd, const uint8_t* x, size_t actRowBytes, size_t nCols, float* y, size_t ldy);
using DequantizeRowFn = void (*)(GgmlType type, const uint8_t* row, float* out, size_t n);

// matmul_*.cc: activation quantization, matmul and row dequantization.
struct MatmulKernels {
  QuantizeActivationsFn quantizeActivations;
  MatmulFn matmul;
  DequantizeRowFn dequantizeRow;
};

// quant_types_*.cc: matmul and row dequantization for Q4_1, Q5_0, Q5_1 and the K-quants (Q2_K .. Q6_K).
struct QuantTypeKernels {
  MatmulFn matmul;
  DequantizeRowFn dequantizeRow;
};

extern const MatmulKernels kMatmulAvx2;
extern const MatmulKernels kMatmulAvx512;
extern const OpKernels kOpsAvx2;    // ops_avx2.cc
extern const OpKernels kOpsAvx512;  // ops_avx512.cc
extern const QuantTypeKernels kQuantTypesAvx2;
extern const QuantTypeKernels kQuantTypesAvx512;
// Q4_0x128 x Q8_0 and Q4_Kx64 x Q8_K (quants.h), decode and prefill in one order, with VNNI (repacked_avx512.cc) and
// with AVX2 (repacked_avx2.cc).
using MatmulInterleavedFn = decltype(KernelTable::matmulInterleaved);
extern const MatmulInterleavedFn kMatmulInterleavedAvx512;
extern const MatmulInterleavedFn kMatmulInterleavedAvx2;
// Q4_0 x Q8_0, Q4_K x Q8_K and Q6_K x Q8_K prefill (several columns) of rows as the file has them, through the
// Q4_0x128, Q4_Kx64 and Q6_Kx64 prefill kernels (repacked_avx2.cc); the AVX2 Q4_0, Q4_K and Q6_K matmuls
// (matmul_avx2.cc, quant_types_avx2.cc) call them.
using FileLayoutPrefillFn = void (*)(const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin, size_t rowEnd,
                                     const uint8_t* x, size_t actRowBytes, size_t nCols, float* y, size_t ldy);
extern const FileLayoutPrefillFn kQ4_0PrefillAvx2;
extern const FileLayoutPrefillFn kQ4_KPrefillAvx2;
extern const FileLayoutPrefillFn kQ6_KPrefillAvx2;
// BF16 weights x BF16 activations with AVX512-BF16 dot products (vdpbf16ps); only when cpu reports avx512bf16.
extern const MatmulFn kMatmulBf16Avx512Bf16;

}  // namespace x86
}  // namespace mn
