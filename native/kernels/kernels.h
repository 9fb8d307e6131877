// The kernel interface the model calls. One KernelTable per ISA (scalar reference, AVX2, AVX-512); the model
// uses kernels() (the active ISA), tests compare kernelsFor(Isa::Scalar) against the others.
// Kernels are single-threaded and never allocate; callers split rows across threads and own all buffers.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/cpu.h"
#include "common/ggml_type.h"

namespace mn {

// The form an activation vector takes before it meets a weight type (REFERENCE.md: llama.cpp quantizes
// activations once per matmul: Q8_0 for Q4_0/Q5_0/Q8_0, Q8_1 for Q4_1/Q5_1, Q8_K for K-quants).
enum class ActFormat : uint8_t { F32, F16, BF16, Q8_0, Q8_1, Q8_K };

ActFormat activationFormatFor(GgmlType weightType);
// Bytes of one activation row of n values (n a multiple of 32 for Q8_0/Q8_1, 256 for Q8_K).
size_t activationRowBytes(ActFormat format, size_t n);
// Whether matmul has kernels for this weight type (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K .. Q6_K); n must
// be a multiple of its block.
bool isMatmulSupported(GgmlType weightType);

// The kernels beside the matrix products: norms, RoPE, attention, activations and the bandwidth read. Each ISA
// defines one as constant data (kernels.cc for the scalar reference, x86/ops_*.cc).
struct OpKernels {
  // out (n,) = x (n,) / sqrt(mean(x^2) + eps) * weight (n,)
  void (*rmsNorm)(float* out, const float* x, const float* weight, size_t n, float eps);

  // Adjacent-pair RoPE in place on nHeads heads of headDim at x; pairs (2i, 2i+1), i < ropeDim/2, rotated by
  // pos * freqBase^(-2i/ropeDim).
  void (*rope)(float* x, size_t nHeads, size_t headDim, size_t ropeDim, int64_t pos, float freqBase);

  // For the query heads that share one KV head, which read its keys and values once for all of them (q and out hold
  // `heads` rows of headDim; each head's sums run in the same order whatever `heads` is):
  // scores[h * scoresStride + j] = scale * q_h (headDim,) . k[j] (headDim,), j < count; k rows are headDim apart
  // (F16 or F32 cache)
  void (*attnScoresF16)(const float* q, size_t heads, const uint16_t* k, size_t headDim, size_t count, float scale, float* scores,
                        size_t scoresStride);
  void (*attnScoresF32)(const float* q, size_t heads, const float* k, size_t headDim, size_t count, float scale, float* scores,
                        size_t scoresStride);
  // out_h (headDim,) += sum_j p[h * pStride + j] * v[j] (headDim,), j < count
  void (*attnAccumulateF16)(float* out, size_t heads, const float* p, size_t pStride, const uint16_t* v, size_t headDim,
                            size_t count);
  void (*attnAccumulateF32)(float* out, size_t heads, const float* p, size_t pStride, const float* v, size_t headDim,
                            size_t count);

  // x (n,) <- softmax(x), max-subtracted; returns nothing, all-(-inf) input is the caller's bug
  void (*softmax)(float* x, size_t n);
  // gate (n,) <- silu(gate) * up, silu(z) = z / (1 + e^-z)
  void (*siluMul)(float* gate, const float* up, size_t n);
  // y (n,) += a * x (n,)
  void (*axpy)(float* y, float a, const float* x, size_t n);
  // The wrapping sum of count 64-bit words: a plain read of memory in this ISA's widest loads, with which the
  // decode roofline's read bandwidth is measured (bandwidth.cc).
  uint64_t (*sumWords)(const uint64_t* words, size_t count);
};

struct KernelTable : OpKernels {
  Isa isa;

  // x (n,) -> dst in `format` (activationRowBytes(format, n) bytes)
  void (*quantizeActivations)(ActFormat format, const float* x, void* dst, size_t n);

  // W (nRows, n) rows [rowBegin, rowEnd) @ X (nCols, n) -> Y[c * ldy + r]
  // W rows are wRowBytes apart in wType; X rows are actRowBytes apart in activationFormatFor(wType).
  void (*matmul)(GgmlType wType, const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin, size_t rowEnd,
                 const uint8_t* x, size_t actRowBytes, size_t nCols, float* y, size_t ldy);

  // W (nRows, n) wType rows interleaved (Q4_0x128 or Q4_Kx64, hasInterleavedLayout in quants.h), rows
  // [rowBegin, rowEnd) @ X (nCols, n) in activationFormatFor(wType) -> Y[c * ldy + r], any row range; w is the matrix's
  // first group. Only for the types `interleaves` accepts: the model keeps other matrices as the file has them.
  void (*matmulInterleaved)(GgmlType wType, const uint8_t* w, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x,
                            size_t actRowBytes, size_t nCols, float* y, size_t ldy);
  // Whether this ISA has a fast matmulInterleaved for `type`'s layout; true only for types with one
  // (hasInterleavedLayout): AVX2 Q4_0 only, scalar and AVX-512 Q4_0 and Q4_K
  bool (*interleaves)(GgmlType type);

  // One row of n values of `type` -> floats (token embedding lookup, tests, the TS reference).
  void (*dequantizeRow)(GgmlType type, const uint8_t* row, float* out, size_t n);
};

const KernelTable& kernels();            // the table for activeIsa()
const KernelTable* kernelsFor(Isa isa);  // nullptr if this CPU lacks isa

// Converts between floats and IEEE fp16 / bfloat16 for a whole KV cache row.
void floatsToFp16(const float* x, uint16_t* dst, size_t n);

}  // namespace mn
