// The attention kernels' walk over query heads, shared by ops_avx2.cc and ops_avx512.cc. Each of them defines
// dotHeads and accumulateHeads in its own vector types, then includes this after simd_common.h, under its target
// pragma: everything here has internal linkage, so each file compiles its own copy for its own ISA.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace mn {
namespace x86 {
namespace {

// Defined by the including file. dots[h] = q_h (headDim,) . k (headDim,) for the H rows of q (headDim apart).
template <int H, bool kHalf, typename T>
MN_INLINE void dotHeads(const float* q, const T* k, size_t headDim, float* dots);
// Defined by the including file. out_h (headDim,) += p_h (count,) @ V (count, headDim) for the H rows of out.
template <int H, bool kHalf, typename T>
void accumulateHeads(float* out, const float* p, size_t pStride, const T* v, size_t headDim, size_t count);

// The query heads that share one KV head go in blocks of up to kHeadBlock, each block one pass over the keys or
// values: fn(std::integral_constant<int, H>(), h0) runs the block of H heads from head h0.
constexpr size_t kHeadBlock = 4;

template <typename Fn>
MN_INLINE void forHeadBlocks(size_t heads, Fn&& fn) {
  for (size_t h0 = 0; h0 < heads; h0 += kHeadBlock) {
    switch (heads - h0 < kHeadBlock ? heads - h0 : kHeadBlock) {
      case 4: fn(std::integral_constant<int, 4>(), h0); break;
      case 3: fn(std::integral_constant<int, 3>(), h0); break;
      case 2: fn(std::integral_constant<int, 2>(), h0); break;
      default: fn(std::integral_constant<int, 1>(), h0); break;
    }
  }
}

template <int H, bool kHalf, typename T>
void scoreHeads(const float* q, const T* k, size_t headDim, size_t count, float scale, float* scores,
                size_t scoresStride) {
  for (size_t j = 0; j < count; j++) {
    float dots[H];
    dotHeads<H, kHalf>(q, k + j * headDim, headDim, dots);
#pragma GCC unroll 32
    for (int h = 0; h < H; h++) scores[h * scoresStride + j] = scale * dots[h];
  }
}

// scores_h (count,) = scale * K (count, headDim) @ q_h (headDim,) for each of `heads` rows of q
template <bool kHalf, typename T>
void attnScores(const float* q, size_t heads, const T* k, size_t headDim, size_t count, float scale, float* scores,
                size_t scoresStride) {
  forHeadBlocks(heads, [&](auto block, size_t h0) {
    scoreHeads<decltype(block)::value, kHalf>(q + h0 * headDim, k, headDim, count, scale, scores + h0 * scoresStride,
                                              scoresStride);
  });
}

void attnScoresF16(const float* q, size_t heads, const uint16_t* k, size_t headDim, size_t count, float scale,
                   float* scores, size_t scoresStride) {
  attnScores<true>(q, heads, k, headDim, count, scale, scores, scoresStride);
}

void attnScoresF32(const float* q, size_t heads, const float* k, size_t headDim, size_t count, float scale,
                   float* scores, size_t scoresStride) {
  attnScores<false>(q, heads, k, headDim, count, scale, scores, scoresStride);
}

// out_h (headDim,) += p_h (count,) @ V (count, headDim) for each of `heads` rows of out and p
template <bool kHalf, typename T>
void attnAccumulate(float* out, size_t heads, const float* p, size_t pStride, const T* v, size_t headDim,
                    size_t count) {
  forHeadBlocks(heads, [&](auto block, size_t h0) {
    accumulateHeads<decltype(block)::value, kHalf>(out + h0 * headDim, p + h0 * pStride, pStride, v, headDim, count);
  });
}

void attnAccumulateF16(float* out, size_t heads, const float* p, size_t pStride, const uint16_t* v, size_t headDim,
                       size_t count) {
  attnAccumulate<true>(out, heads, p, pStride, v, headDim, count);
}

void attnAccumulateF32(float* out, size_t heads, const float* p, size_t pStride, const float* v, size_t headDim,
                       size_t count) {
  attnAccumulate<false>(out, heads, p, pStride, v, headDim, count);
}

}  // namespace
}  // namespace x86
}  // namespace mn
