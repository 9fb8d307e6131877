// Scalar attention pieces over the query heads of one KV head: scores against the K cache, softmax, weighted sum of
// the V cache (REFERENCE.md "Forward pass": GQA, scale 1/sqrt(head_dim), causal; the caller picks rows and the kv
// head).
#include <cmath>

#include "common/half.h"
#include "kernels/scalar.h"

namespace mn {
namespace scalar {

namespace {

float toFloat(uint16_t half) { return fp16ToFloat(half); }
float toFloat(float value) { return value; }

// scores_h (count,) = scale * K (count, headDim) @ q_h (headDim,) for each of `heads` rows of q
template <typename T>
void attnScores(const float* q, size_t heads, const T* k, size_t headDim, size_t count, float scale, float* scores,
                size_t scoresStride) {
  for (size_t h = 0; h < heads; h++, q += headDim, scores += scoresStride) {
    for (size_t j = 0; j < count; j++) {
      double dot = 0.0;
      for (size_t i = 0; i < headDim; i++) dot += static_cast<double>(q[i] * toFloat(k[j * headDim + i]));
      scores[j] = scale * static_cast<float>(dot);
    }
  }
}

// out_h (headDim,) += p_h (count,) @ V (count, headDim) for each of `heads` rows of out
template <typename T>
void attnAccumulate(float* out, size_t heads, const float* p, size_t pStride, const T* v, size_t headDim,
                    size_t count) {
  for (size_t h = 0; h < heads; h++, out += headDim, p += pStride) {
    for (size_t j = 0; j < count; j++) {
      for (size_t i = 0; i < headDim; i++) out[i] += p[j] * toFloat(v[j * headDim + i]);
    }
  }
}

}  // namespace

void attnScoresF16(const float* q, size_t heads, const uint16_t* k, size_t headDim, size_t count, float scale,
                   float* scores, size_t scoresStride) {
  attnScores(q, heads, k, headDim, count, scale, scores, scoresStride);
}

void attnScoresF32(const float* q, size_t heads, const float* k, size_t headDim, size_t count, float scale,
                   float* scores, size_t scoresStride) {
  attnScores(q, heads, k, headDim, count, scale, scores, scoresStride);
}

void attnAccumulateF16(float* out, size_t heads, const float* p, size_t pStride, const uint16_t* v, size_t headDim,
                       size_t count) {
  attnAccumulate(out, heads, p, pStride, v, headDim, count);
}

void attnAccumulateF32(float* out, size_t heads, const float* p, size_t pStride, const float* v, size_t headDim,
                       size_t count) {
  attnAccumulate(out, heads, p, pStride, v, headDim, count);
}

// x (n,) <- exp(x - max) / sum, the sum in double as ggml_vec_soft_max_f32; -inf entries become 0
void softmax(float* x, size_t n) {
  float max = -INFINITY;
  for (size_t i = 0; i < n; i++) max = x[i] > max ? x[i] : max;
  double sum = 0.0;
  for (size_t i = 0; i < n; i++) {
    x[i] = std::exp(x[i] - max);
    sum += static_cast<double>(x[i]);
  }
  const float inverse = static_cast<float>(1.0 / sum);
  for (size_t i = 0; i < n; i++) x[i] *= inverse;
}

}  // namespace scalar
}  // namespace mn
