// Ends the instruction sets target_begin.h turned on: what follows compiles for the baseline again.
#if defined(__clang__)
#pragma clang attribute pop
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif
#undef MN_X86_TARGET
