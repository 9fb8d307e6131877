// Compiles the rest of an x86 kernel file, up to its target_end.h, for the instruction sets named by MN_X86_TARGET
// (a string the file defines just before including this), and brings in the intrinsics. The baseline x86-64 build
// dispatches to such code at run time (kernels.cc). Included once per file, so no include guard.
#ifndef MN_X86_TARGET
#error "define MN_X86_TARGET (e.g. \"avx2,fma,f16c\") before including target_begin.h"
#endif

#define MN_X86_PRAGMA(...) _Pragma(#__VA_ARGS__)
#if defined(__clang__)
#define MN_X86_TARGET_PUSH(isas) MN_X86_PRAGMA(clang attribute push(__attribute__((target(isas))), apply_to = function))
MN_X86_TARGET_PUSH(MN_X86_TARGET)
#elif defined(__GNUC__)
#define MN_X86_TARGET_PUSH(isas) MN_X86_PRAGMA(GCC target(isas))
#pragma GCC push_options
MN_X86_TARGET_PUSH(MN_X86_TARGET)
// GCC 12 warns about the intrinsics' own `__Y = __Y` placeholders once inlined here (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#undef MN_X86_TARGET_PUSH
#undef MN_X86_PRAGMA
#include <immintrin.h>
