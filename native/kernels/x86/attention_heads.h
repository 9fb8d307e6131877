// The attention kernels' walk over query heads, shared by ops_avx2.cc and ops_avx512.cc. Each of them defines
// scoreHeads and accumulateHeads in its own vector types, then includes this after simd_common.h, under its target
// pragma: everything here has internal linkage, so each file compiles its own copy for its own ISA.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace mn {
namespace x86 {
namespace {

// Defined by the including file. scores_h[j] = scale * q_h (headDim,) . k_j (headDim,) for the H rows of q (headDim
// apart) and the count rows of K, scores_h scoresStride apart.
template <int H, bool kHalf, typename T>
void scoreHeads(const float* q, const T* k, size_t headDim, size_t count, float scale, float* scores,
                size_t scoresStride);
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

// Both kernels walk the cache a span of rows at a time: the next span is prefetched into L1 while this one is worked
// on (the hardware prefetcher alone leaves them waiting on memory), and every head block and pass over columns finds
// the span's rows there instead of reading them from memory again. A multiple of scoreHeads' keys per group.
constexpr size_t kSpanRows = 16;

// Prefetches the rows of the span after [j0, j0 + kSpanRows) of the count rows of rowBytes at rows.
MN_INLINE void prefetchNextSpan(const void* rows, size_t rowBytes, size_t j0, size_t count) {
  const size_t next = j0 + kSpanRows;
  if (next >= count) return;
  const size_t bytes = (count - next < kSpanRows ? count - next : kSpanRows) * rowBytes;
  const char* start = static_cast<const char*>(rows) + next * rowBytes;
  for (size_t b = 0; b < bytes; b += 64) _mm_prefetch(start + b, _MM_HINT_T0);
}

// scores_h (count,) = scale * K (count, headDim) @ q_h (headDim,) for each of `heads` rows of q
template <bool kHalf, typename T>
void attnScores(const float* q, size_t heads, const T* k, size_t headDim, size_t count, float scale, float* scores,
                size_t scoresStride) {
  for (size_t j0 = 0; j0 < count; j0 += kSpanRows) {
    prefetchNextSpan(k, headDim * sizeof(T), j0, count);
    const size_t rows = count - j0 < kSpanRows ? count - j0 : kSpanRows;
    forHeadBlocks(heads, [&](auto block, size_t h0) {
      scoreHeads<decltype(block)::value, kHalf>(q + h0 * headDim, k + j0 * headDim, headDim, rows, scale,
                                                scores + h0 * scoresStride + j0, scoresStride);
    });
  }
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
  for (size_t j0 = 0; j0 < count; j0 += kSpanRows) {
    prefetchNextSpan(v, headDim * sizeof(T), j0, count);
    const size_t rows = count - j0 < kSpanRows ? count - j0 : kSpanRows;
    forHeadBlocks(heads, [&](auto block, size_t h0) {
      accumulateHeads<decltype(block)::value, kHalf>(out + h0 * headDim, p + h0 * pStride + j0, pStride,
                                                     v + j0 * headDim, headDim, rows);
    });
  }
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
