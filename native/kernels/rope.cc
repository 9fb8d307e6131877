// Scalar RoPE, "normal" (adjacent-pair) style as GGUF llama weights need (REFERENCE.md "Forward pass").
// The angle pos * base^(-2i/d) is formed and reduced in double: at pos 32768 a float angle is off by ~4e-3 rad.
#include <cmath>

#include "kernels/scalar.h"

namespace mn {
namespace scalar {

// cos/sin (end - begin,) of pos * freqBase^(-2i/ropeDim), i in [begin, end)
void ropeAngles(int64_t pos, float freqBase, size_t ropeDim, size_t begin, size_t end, float* cosOut, float* sinOut) {
  const double base = static_cast<double>(freqBase), dims = static_cast<double>(ropeDim);
  for (size_t i = begin; i < end; i++) {
    const double theta = static_cast<double>(pos) * std::pow(base, -2.0 * static_cast<double>(i) / dims);
    cosOut[i - begin] = static_cast<float>(std::cos(theta));
    sinOut[i - begin] = static_cast<float>(std::sin(theta));
  }
}

// x (nHeads, headDim) in place: (x[2i], x[2i+1]) of every head rotated by angle i, i < ropeDim/2
void rope(float* x, size_t nHeads, size_t headDim, size_t ropeDim, int64_t pos, float freqBase) {
  for (size_t i = 0; i < ropeDim / 2; i++) {
    float c, s;
    ropeAngles(pos, freqBase, ropeDim, i, i + 1, &c, &s);
    for (size_t h = 0; h < nHeads; h++) {
      float* pair = x + h * headDim + 2 * i;
      const float x0 = pair[0], x1 = pair[1];
      pair[0] = x0 * c - x1 * s;
      pair[1] = x0 * s + x1 * c;
    }
  }
}

}  // namespace scalar
}  // namespace mn
