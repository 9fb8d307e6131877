// IEEE fp16 and bfloat16 conversions, bit-exact with ggml's scalar versions (round to nearest even, NaN kept).
#pragma once

#include <cstdint>
#include <cstring>

namespace mn {

inline float bitsToFloat(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline uint32_t floatToBits(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  return bits;
}

inline float fp16ToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exponent = (h >> 10) & 0x1f;
  uint32_t mantissa = h & 0x3ff;
  if (exponent == 0x1f) return bitsToFloat(sign | 0x7f800000u | (mantissa << 13));
  if (exponent != 0) return bitsToFloat(sign | ((exponent + 112) << 23) | (mantissa << 13));
  if (mantissa == 0) return bitsToFloat(sign);
  int shift = 0;  // subnormal: normalise the mantissa
  while ((mantissa & 0x400) == 0) {
    mantissa <<= 1;
    shift++;
  }
  return bitsToFloat(sign | static_cast<uint32_t>(113 - shift) << 23 | ((mantissa & 0x3ff) << 13));
}

inline uint16_t floatToFp16(float f) {
  const uint32_t bits = floatToBits(f);
  const uint32_t sign = (bits >> 16) & 0x8000;
  const uint32_t absBits = bits & 0x7fffffffu;
  if (absBits > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00 | ((absBits >> 13) & 0x3ff));  // NaN
  if (absBits >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00);  // rounds to infinity
  if (absBits < 0x38800000u) {                                               // subnormal or zero
    if (absBits < 0x33000000u) return static_cast<uint16_t>(sign);
    const uint32_t exponent = absBits >> 23;
    const uint32_t mantissa = (absBits & 0x7fffff) | 0x800000;
    const uint32_t shift = 126 - exponent;  // 14..24
    uint32_t half = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1), halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (half & 1))) half++;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = ((absBits >> 13) - (112u << 10));
  const uint32_t rest = absBits & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (half & 1))) half++;
  return static_cast<uint16_t>(sign | half);
}

inline float bf16ToFloat(uint16_t b) { return bitsToFloat(static_cast<uint32_t>(b) << 16); }

inline uint16_t floatToBf16(float f) {
  const uint32_t bits = floatToBits(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 64);  // quiet NaN
  return static_cast<uint16_t>((bits + (0x7fff + ((bits >> 16) & 1))) >> 16);
}

}  // namespace mn
