// Scalar attention pieces over one head: scores against the K cache, softmax, weighted sum of the V cache
// (REFERENCE.md "Forward pass": GQA, scale 1/sqrt(head_dim), causal; the caller picks rows and the kv head).
#include <cmath>

#include "common/half.h"
#include "kernels/scalar.h"

namespace mn {
namespace scalar {

// scores (count,) = scale * K (count, headDim) @ q (headDim,), K an F16 cache
void attnScoresF16(const float* q, const uint16_t* k, size_t headDim, size_t count, float scale, float* scores) {
  for (size_t j = 0; j < count; j++, k += headDim) {
    double dot = 0.0;
    for (size_t i = 0; i < headDim; i++) dot += static_cast<double>(q[i] * fp16ToFloat(k[i]));
    scores[j] = scale * static_cast<float>(dot);
  }
}

// scores (count,) = scale * K (count, headDim) @ q (headDim,), K an F32 cache
void attnScoresF32(const float* q, const float* k, size_t headDim, size_t count, float scale, float* scores) {
  for (size_t j = 0; j < count; j++, k += headDim) {
    double dot = 0.0;
    for (size_t i = 0; i < headDim; i++) dot += static_cast<double>(q[i] * k[i]);
    scores[j] = scale * static_cast<float>(dot);
  }
}

// out (headDim,) += p (count,) @ V (count, headDim), V an F16 cache
void attnAccumulateF16(float* out, const float* p, const uint16_t* v, size_t headDim, size_t count) {
  for (size_t j = 0; j < count; j++, v += headDim) {
    for (size_t i = 0; i < headDim; i++) out[i] += p[j] * fp16ToFloat(v[i]);
  }
}

// out (headDim,) += p (count,) @ V (count, headDim), V an F32 cache
void attnAccumulateF32(float* out, const float* p, const float* v, size_t headDim, size_t count) {
  for (size_t j = 0; j < count; j++, v += headDim) {
    for (size_t i = 0; i < headDim; i++) out[i] += p[j] * v[i];
  }
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
