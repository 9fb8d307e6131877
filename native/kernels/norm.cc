// Scalar RMSNorm (REFERENCE.md "Forward pass": x / sqrt(mean(x^2) + eps), then times the norm weight).
#include <cmath>

#include "kernels/scalar.h"

namespace mn {
namespace scalar {

// out (n,) = x (n,) / sqrt(mean(x^2) + eps) * weight (n,); out may alias x
void rmsNorm(float* out, const float* x, const float* weight, size_t n, float eps) {
  double sumSquares = 0.0;  // ggml_compute_forward_rms_norm sums in ggml_float
  for (size_t i = 0; i < n; i++) sumSquares += static_cast<double>(x[i] * x[i]);
  const float mean = static_cast<float>(sumSquares / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (size_t i = 0; i < n; i++) out[i] = x[i] * scale * weight[i];
}

}  // namespace scalar
}  // namespace mn
