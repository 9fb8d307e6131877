#include "common/cpu.h"

#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(_M_X64)
#if defined(_MSC_VER)
#include <intrin.h>
#else
#include <cpuid.h>
#endif
#define MN_X86 1
#endif

namespace mn {
namespace {

#if MN_X86
void cpuid(unsigned leaf, unsigned subleaf, unsigned regs[4]) {
#if defined(_MSC_VER)
  int out[4];
  __cpuidex(out, static_cast<int>(leaf), static_cast<int>(subleaf));
  for (int i = 0; i < 4; i++) regs[i] = static_cast<unsigned>(out[i]);
#else
  __cpuid_count(leaf, subleaf, regs[0], regs[1], regs[2], regs[3]);
#endif
}

unsigned long long xgetbv0() {
#if defined(_MSC_VER)
  return _xgetbv(0);
#else
  unsigned eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
#endif
}
#endif

CpuFeatures detect() {
  CpuFeatures features;
#if MN_X86
  unsigned r[4];
  cpuid(0, 0, r);
  const unsigned maxLeaf = r[0];
  if (maxLeaf < 7) return features;
  cpuid(1, 0, r);
  const bool osxsave = (r[2] >> 27) & 1, fma = (r[2] >> 12) & 1, f16c = (r[2] >> 29) & 1, avx = (r[2] >> 28) & 1;
  if (!osxsave || !avx) return features;
  const unsigned long long xcr0 = xgetbv0();
  const bool osYmm = (xcr0 & 0x6) == 0x6;
  const bool osZmm = (xcr0 & 0xE6) == 0xE6;
  cpuid(7, 0, r);
  const unsigned ebx = r[1], ecx = r[2];
  const bool avx2 = (ebx >> 5) & 1;
  const bool f = (ebx >> 16) & 1, dq = (ebx >> 17) & 1, bw = (ebx >> 30) & 1, vl = (ebx >> 31) & 1;
  const bool vnni = (ecx >> 11) & 1;
  features.avx2 = osYmm && avx2 && fma && f16c;
  features.avx512 = features.avx2 && osZmm && f && dq && bw && vl && vnni;
  cpuid(7, 1, r);
  features.avx512bf16 = features.avx512 && ((r[0] >> 5) & 1);
#endif
  return features;
}

Isa detectedIsa() {
  const CpuFeatures& f = detectedCpuFeatures();
  if (f.avx512) return Isa::Avx512;
  if (f.avx2) return Isa::Avx2;
  return Isa::Scalar;
}

Isa requestedCap() {
  const char* env = std::getenv("MIXTRAL_NATIVE_ISA");
  if (env == nullptr || *env == '\0') return Isa::Avx512;
  if (std::strcmp(env, "scalar") == 0) return Isa::Scalar;
  if (std::strcmp(env, "avx2") == 0) return Isa::Avx2;
  return Isa::Avx512;  // "avx512" or unknown: no cap; lib/ validates the value before the addon loads
}

}  // namespace

const CpuFeatures& detectedCpuFeatures() {
  static const CpuFeatures features = detect();
  return features;
}

Isa activeIsa() {
  static const Isa isa = [] {
    const Isa detected = detectedIsa(), cap = requestedCap();
    return static_cast<int>(cap) < static_cast<int>(detected) ? cap : detected;
  }();
  return isa;
}

const char* isaName(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    default: return "scalar";
  }
}

}  // namespace mn
