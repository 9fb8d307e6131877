// Scalar element-wise kernels of the feed-forward block and the residual/expert mix.
#include <cmath>

#include "kernels/scalar.h"

namespace mn {
namespace scalar {

// gate (n,) <- silu(gate) * up (n,), silu(z) = z / (1 + e^-z) (REFERENCE.md "Router", ggml_silu_f32)
void siluMul(float* gate, const float* up, size_t n) {
  for (size_t i = 0; i < n; i++) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

// y (n,) += a * x (n,)
void axpy(float* y, float a, const float* x, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] += a * x[i];
}

}  // namespace scalar
}  // namespace mn
