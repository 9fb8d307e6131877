// ggml tensor types as GGUF stores them (REFERENCE.md "ggml types"): id, elements per block, bytes per block.
#pragma once

#include <cstdint>

namespace mn {

enum class GgmlType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15, BF16 = 30,
};

struct GgmlTypeTraits {
  const char* name;      // nullptr for ids this project does not know
  uint32_t blockSize;    // elements per block
  uint32_t blockBytes;   // bytes per block
};

// Traits for a raw type id from a file; name == nullptr when the id is unknown.
inline GgmlTypeTraits ggmlTypeTraits(uint32_t id) {
  switch (id) {
    case 0: return {"F32", 1, 4};
    case 1: return {"F16", 1, 2};
    case 2: return {"Q4_0", 32, 18};
    case 3: return {"Q4_1", 32, 20};
    case 6: return {"Q5_0", 32, 22};
    case 7: return {"Q5_1", 32, 24};
    case 8: return {"Q8_0", 32, 34};
    case 9: return {"Q8_1", 32, 36};
    case 10: return {"Q2_K", 256, 84};
    case 11: return {"Q3_K", 256, 110};
    case 12: return {"Q4_K", 256, 144};
    case 13: return {"Q5_K", 256, 176};
    case 14: return {"Q6_K", 256, 210};
    case 15: return {"Q8_K", 256, 292};
    case 30: return {"BF16", 1, 2};
    default: return {nullptr, 0, 0};
  }
}

inline GgmlTypeTraits ggmlTypeTraits(GgmlType type) { return ggmlTypeTraits(static_cast<uint32_t>(type)); }

// Bytes of one row of n elements; n must be a multiple of the block size.
inline uint64_t ggmlRowBytes(GgmlType type, uint64_t n) {
  const GgmlTypeTraits t = ggmlTypeTraits(type);
  return n / t.blockSize * t.blockBytes;
}

}  // namespace mn
