// Which SIMD level this process uses. Detected once from CPUID/XGETBV and capped by MIXTRAL_NATIVE_ISA
// ("scalar", "avx2", "avx512"), so one binary runs on any x86-64 and the scalar path can be forced for tests.
#pragma once

namespace mn {

enum class Isa { Scalar = 0, Avx2 = 1, Avx512 = 2 };

struct CpuFeatures {
  bool avx2 = false;        // with FMA and F16C
  bool avx512 = false;      // F, BW, VL, DQ and VNNI, with the OS saving ZMM state
  bool avx512bf16 = false;
};

const CpuFeatures& detectedCpuFeatures();
Isa activeIsa();  // min(detected, MIXTRAL_NATIVE_ISA)
const char* isaName(Isa isa);

}  // namespace mn
