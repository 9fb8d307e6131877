// The scalar reference kernels, one file per family (quants.cc, matmul.cc, norm.cc, rope.cc, attention.cc,
// activation.cc, bandwidth.cc). kernels.cc puts them in the scalar KernelTable; the SIMD tables call them for the
// formats they do not speed up. Declarations only: nothing here may be inlined into ISA-specific code.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/kernels.h"

namespace mn {
namespace scalar {

void quantizeActivations(ActFormat format, const float* x, void* dst, size_t n);
void matmul(GgmlType wType, const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin, size_t rowEnd,
            const uint8_t* x, size_t actRowBytes, size_t nCols, float* y, size_t ldy);
void matmulInterleaved(GgmlType wType, const uint8_t* w, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x,
                       size_t actRowBytes, size_t nCols, float* y, size_t ldy);  // matmul.cc
void dequantizeRow(GgmlType type, const uint8_t* row, float* out, size_t n);
void rmsNorm(float* out, const float* x, const float* weight, size_t n, float eps);
void rope(float* x, size_t nHeads, size_t headDim, size_t ropeDim, int64_t pos, float freqBase);
void attnScoresF16(const float* q, size_t heads, const uint16_t* k, size_t headDim, size_t count, float scale, float* scores,
                        size_t scoresStride);
void attnScoresF32(const float* q, size_t heads, const float* k, size_t headDim, size_t count, float scale, float* scores,
                        size_t scoresStride);
void attnAccumulateF16(float* out, size_t heads, const float* p, size_t pStride, const uint16_t* v, size_t headDim,
                            size_t count);
void attnAccumulateF32(float* out, size_t heads, const float* p, size_t pStride, const float* v, size_t headDim,
                            size_t count);
void softmax(float* x, size_t n);
void siluMul(float* gate, const float* up, size_t n);
void axpy(float* y, float a, const float* x, size_t n);
uint64_t sumWords(const uint64_t* words, size_t count);  // bandwidth.cc

// cos and sin of pos * freqBase^(-2i/ropeDim) for i < ropeDim/2, angle in double (REFERENCE.md "Forward pass").
void ropeAngles(int64_t pos, float freqBase, size_t ropeDim, size_t begin, size_t end, float* cosOut, float* sinOut);

}  // namespace scalar
}  // namespace mn
