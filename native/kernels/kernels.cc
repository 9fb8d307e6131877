// ISA dispatch: one KernelTable per instruction set, assembled from the scalar reference (scalar.h) and the x86
// files' constant tables (x86/x86_kernels.h). Baseline x86-64 code only: the CPU is checked here before any
// AVX2 / AVX-512 function can be reached.
#include "kernels/kernels.h"

#include "kernels/quants.h"
#include "kernels/scalar.h"
#include "kernels/x86/x86_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)
#define MN_X86_KERNELS 1
#endif

namespace mn {
namespace {

KernelTable makeTable(Isa isa, const OpKernels& ops, decltype(KernelTable::quantizeActivations) quantizeActivations,
                      decltype(KernelTable::matmul) matmul, decltype(KernelTable::matmulInterleaved) matmulInterleaved,
                      decltype(KernelTable::interleaves) interleaves,
                      decltype(KernelTable::dequantizeRow) dequantizeRow) {
  KernelTable table;
  static_cast<OpKernels&>(table) = ops;
  table.isa = isa;
  table.quantizeActivations = quantizeActivations;
  table.matmul = matmul;
  table.matmulInterleaved = matmulInterleaved;
  table.interleaves = interleaves;
  table.dequantizeRow = dequantizeRow;
  return table;
}

const OpKernels kOpsScalar = {scalar::rmsNorm, scalar::rope, scalar::attnScoresF16, scalar::attnScoresF32,
                              scalar::attnAccumulateF16, scalar::attnAccumulateF32, scalar::softmax,
                              scalar::siluMul, scalar::axpy, scalar::sumWords};

KernelTable scalarTable() {
  return makeTable(Isa::Scalar, kOpsScalar, scalar::quantizeActivations, scalar::matmul, scalar::matmulInterleaved,
                   hasInterleavedLayout, scalar::dequantizeRow);
}

#if MN_X86_KERNELS
KernelTable x86Table(Isa isa, const x86::MatmulKernels& matmul, const OpKernels& ops,
                     x86::MatmulInterleavedFn matmulInterleaved, decltype(KernelTable::interleaves) interleaves) {
  return makeTable(isa, ops, matmul.quantizeActivations, matmul.matmul, matmulInterleaved, interleaves,
                   matmul.dequantizeRow);
}

// Q4_1, Q5_0, Q5_1 and the K-quants have their own files (quant_types_*.cc).
bool isQuantTypeKernel(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_1:
    case GgmlType::Q5_0:
    case GgmlType::Q5_1:
    case GgmlType::Q2_K:
    case GgmlType::Q3_K:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K: return true;
    default: return false;
  }
}

void matmulAvx2(GgmlType wType, const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin, size_t rowEnd,
                const uint8_t* x, size_t actRowBytes, size_t nCols, float* y, size_t ldy) {
  const x86::MatmulFn matmul = isQuantTypeKernel(wType) ? x86::kQuantTypesAvx2.matmul : x86::kMatmulAvx2.matmul;
  matmul(wType, w, wRowBytes, n, rowBegin, rowEnd, x, actRowBytes, nCols, y, ldy);
}

// Q8_0 weights add in the AVX2 kernel's order: 8 lanes of 4-product sums per block, block after block, as llama.cpp,
// so a Q8_0 model's logits match llama.cpp's to the last bit where 4-block groups would differ by an ulp, enough to
// flip a greedy choice at a near-tie (test 80). Decode streams on the AVX2 kernel itself (as fast as AVX-512 would:
// 21-26 GB/s against 21-24); the AVX-512 prefill runs the same arithmetic two columns per vector.
void matmulAvx512(GgmlType wType, const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin, size_t rowEnd,
                  const uint8_t* x, size_t actRowBytes, size_t nCols, float* y, size_t ldy) {
  const x86::MatmulFn matmul = isQuantTypeKernel(wType)                   ? x86::kQuantTypesAvx512.matmul
                               : wType == GgmlType::Q8_0 && nCols == 1 ? x86::kMatmulAvx2.matmul
                                                                          : x86::kMatmulAvx512.matmul;
  matmul(wType, w, wRowBytes, n, rowBegin, rowEnd, x, actRowBytes, nCols, y, ldy);
}

// The AVX-512 matmul with BF16 weights routed to the AVX512-BF16 kernel (selected only on CPUs that have it).
void matmulAvx512WithBf16(GgmlType wType, const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin,
                          size_t rowEnd, const uint8_t* x, size_t actRowBytes, size_t nCols, float* y, size_t ldy) {
  const x86::MatmulFn matmul = wType == GgmlType::BF16 ? x86::kMatmulBf16Avx512Bf16 : matmulAvx512;
  matmul(wType, w, wRowBytes, n, rowBegin, rowEnd, x, actRowBytes, nCols, y, ldy);
}

void dequantizeRowAvx2(GgmlType type, const uint8_t* row, float* out, size_t n) {
  (isQuantTypeKernel(type) ? x86::kQuantTypesAvx2.dequantizeRow : x86::kMatmulAvx2.dequantizeRow)(type, row, out, n);
}

void dequantizeRowAvx512(GgmlType type, const uint8_t* row, float* out, size_t n) {
  (isQuantTypeKernel(type) ? x86::kQuantTypesAvx512.dequantizeRow : x86::kMatmulAvx512.dequantizeRow)(type, row, out,
                                                                                                     n);
}
#endif

struct Tables {
  KernelTable byIsa[3];
  bool available[3];
};

const Tables& tables() {
  static const Tables all = [] {
    Tables t;
    t.byIsa[0] = t.byIsa[1] = t.byIsa[2] = scalarTable();
    t.available[0] = true;
    t.available[1] = t.available[2] = false;
#if MN_X86_KERNELS
    const CpuFeatures& cpu = detectedCpuFeatures();
    t.byIsa[1] = x86Table(Isa::Avx2, x86::kMatmulAvx2, x86::kOpsAvx2, x86::kMatmulInterleavedAvx2,
                          hasInterleavedLayout);
    t.byIsa[1].matmul = matmulAvx2;
    t.byIsa[1].dequantizeRow = dequantizeRowAvx2;
    t.byIsa[2] = x86Table(Isa::Avx512, x86::kMatmulAvx512, x86::kOpsAvx512, x86::kMatmulInterleavedAvx512,
                          hasInterleavedLayout);
    t.byIsa[2].matmul = cpu.avx512bf16 ? matmulAvx512WithBf16 : matmulAvx512;
    t.byIsa[2].dequantizeRow = dequantizeRowAvx512;
    t.available[1] = cpu.avx2;
    t.available[2] = cpu.avx512;
#endif
    return t;
  }();
  return all;
}

}  // namespace

ActFormat activationFormatFor(GgmlType weightType) {
  switch (weightType) {
    case GgmlType::F16: return ActFormat::F16;
    case GgmlType::BF16: return ActFormat::BF16;
    case GgmlType::Q4_0:
    case GgmlType::Q5_0:
    case GgmlType::Q8_0: return ActFormat::Q8_0;
    case GgmlType::Q4_1:
    case GgmlType::Q5_1: return ActFormat::Q8_1;
    case GgmlType::Q2_K:
    case GgmlType::Q3_K:
    case GgmlType::Q4_K:
    case GgmlType::Q5_K:
    case GgmlType::Q6_K: return ActFormat::Q8_K;
    default: return ActFormat::F32;
  }
}

size_t activationRowBytes(ActFormat format, size_t n) {
  switch (format) {
    case ActFormat::F32: return n * 4;
    case ActFormat::F16:
    case ActFormat::BF16: return n * 2;
    case ActFormat::Q8_0: return n / 32 * 34;
    case ActFormat::Q8_1: return n / 32 * 36;
    case ActFormat::Q8_K: return n / 256 * 292;
  }
  return 0;
}

bool isMatmulSupported(GgmlType weightType) {
  switch (weightType) {
    case GgmlType::F32:
    case GgmlType::F16:
    case GgmlType::BF16:
    case GgmlType::Q8_0:
    case GgmlType::Q4_0: return true;
    default: return isQuantTypeKernel(weightType);
  }
}

const KernelTable& kernels() { return tables().byIsa[static_cast<int>(activeIsa())]; }

const KernelTable* kernelsFor(Isa isa) {
  const int index = static_cast<int>(isa);
  if (index < 0 || index > 2 || !tables().available[index]) return nullptr;
  return &tables().byIsa[index];
}

// The F16 activation format is exactly a row of IEEE fp16, so the active ISA's converter does it.
void floatsToFp16(const float* x, uint16_t* dst, size_t n) { kernels().quantizeActivations(ActFormat::F16, x, dst, n); }

}  // namespace mn
