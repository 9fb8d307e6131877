// AVX-512 (F, BW, VL, DQ, VNNI) matmul for the K-quants (Q2_K .. Q6_K x Q8_K) and the other 32-value block types
// (Q4_1, Q5_1 x Q8_1; Q5_0 x Q8_0), and their row dequantization.
//
// K-quants. A super-block of 256 weights is unpacked into four 64-byte vectors of unsigned levels (Q6_K as q + 32,
// Q3_K as q + 4) laid out so that every 32-bit lane stays inside one sub-block. vpdpbusd (VNNI) multiplies them with
// the activations into lane sums small enough for 16 bits (checked per type below), so vpmaddwd applies the 16-bit
// sub-block scales to them, two lanes per word pair after vpackssdw for the 16-value sub-blocks, or one lane and a
// zero scale for Q4_K and Q5_K, whose lanes sum a sub-block over several vectors first. That leaves 16 exact i32 lanes.
// The offsets of Q6_K and Q3_K come off those integers through the activations' per-16 sums (bsums):
// sum sc * (q + o) * x - o * sum sc * bsum. Then in float, per super-block:
//   acc += (d_w * d_x) * sumi;  acc += (dmin_w * m) * (-d_x * bsum)  (the second for the types with mins),
// where the factors of the min term are computed once per weight row and once per activation column, so a register
// tile of R rows x C columns pays two multiply-adds per pair and super-block. Activations are packed once per call
// (decode) or per column tile (prefill) in the element order each weight type unpacks to: natural for Q2_K, Q3_K,
// Q6_K; for Q4_K and Q5_K, vector k = quad-word k of sub-blocks 0, 2, 4, 6, then of 1, 3, 5, 7 (the lane order).
//
// Q4_1 / Q5_0 / Q5_1: one 32-value block per 256-bit VNNI dot product (vpdpbusd, unsigned levels x signed q_x).
//
// Summation order, shared by decode and prefill so a result never depends on the call's batching:
// K-quants: spans of 16 super-blocks (4096 values), one accumulator per span, lanes summed at the span's end and spans
// added in order. 32-value types: spans of 128 blocks with even and odd blocks in two accumulators (prefill: a pass
// each), as matmul_avx2.cc does for Q4_0.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/quants.h"
#include "kernels/scalar.h"
#include "kernels/x86/x86_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)

#define MN_X86_TARGET "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c"
#include "kernels/x86/target_begin.h"

#include "kernels/x86/simd_common.h"

namespace mn {
namespace x86 {
namespace {

// Software prefetch distance of the row stream (as matmul_avx512.cc's decode).
constexpr size_t kPrefetchBytes = 4608;

// ======================================================================================= K-quants

enum class KType { Q2_K, Q3_K, Q4_K, Q5_K, Q6_K };

template <KType T>
constexpr size_t kBlockBytes() {
  return T == KType::Q2_K   ? sizeof(BlockQ2_K)
         : T == KType::Q3_K ? sizeof(BlockQ3_K)
         : T == KType::Q4_K ? sizeof(BlockQ4_K)
         : T == KType::Q5_K ? sizeof(BlockQ5_K)
                            : sizeof(BlockQ6_K);
}

// Q4_K and Q5_K unpack to the lane order (a 32-bit lane keeps one sub-block through all four vectors), the others to
// element order.
template <KType T>
constexpr bool kLaneOrder() {
  return T == KType::Q4_K || T == KType::Q5_K;
}

// The types whose super-blocks carry mins (y = d * sc * q - dmin * m) rather than offset levels.
template <KType T>
constexpr bool kHasMins() {
  return kLaneOrder<T>() || T == KType::Q2_K;
}

// vpermt2q index: 128-bit chunk c of the first source, chunk c of the second, then chunks 2 + c of both
MN_INLINE __m512i laneOrderIndex(int c) {
  return _mm512_setr_epi64(2 * c, 2 * c + 1, 8 + 2 * c, 9 + 2 * c, 4 + 2 * c, 5 + 2 * c, 12 + 2 * c, 13 + 2 * c);
}

constexpr size_t kSpanBlocks = 16;   // super-blocks per summation span (4096 values)
constexpr size_t kPackBlocks = 64;   // super-blocks of activations packed per decode chunk (16384 values, 20 KB)

// One Q8_K super-block of activations as the kernels read it.
struct alignas(64) PackedK {
  __m512i q[4];        // the 256 q_x, in the weight type's element order
  __m512 minTerm;      // types with mins: -d_x * (sums of q_x per 32) for Q4_K / Q5_K (lanes 0..7), per 16 for Q2_K
  int16_t bsums[16];   // the others: sums of q_x per 16, element order
  float d;
  uint8_t pad[28];
};
static_assert(sizeof(PackedK) == 384, "a packed super-block is 6 lines");

// Q8_K super-blocks [0, count) of x -> out, in T's element order
template <KType T>
void packActivations(const BlockQ8_K* x, size_t count, PackedK* out) {
  for (size_t b = 0; b < count; b++) {
    const int8_t* qs = x[b].qs;
    const __m512i a0 = _mm512_loadu_si512(qs), a1 = _mm512_loadu_si512(qs + 64);
    const __m512i a2 = _mm512_loadu_si512(qs + 128), a3 = _mm512_loadu_si512(qs + 192);
    if (kLaneOrder<T>()) {
      // vector k = quad-word k of sub-blocks 0, 2, 4, 6, then of 1, 3, 5, 7; source a_i holds sub-blocks 2i, 2i + 1
      const __m512i lo01 = _mm512_unpacklo_epi64(a0, a1), hi01 = _mm512_unpackhi_epi64(a0, a1);
      const __m512i lo23 = _mm512_unpacklo_epi64(a2, a3), hi23 = _mm512_unpackhi_epi64(a2, a3);
      // lo01 / lo23 hold quad-word k (even k) of a0, a1 / a2, a3 at 128-bit chunk k / 2, of the odd sub-blocks at
      // chunk 2 + k / 2; hi01 / hi23 the same for odd k
      for (int k = 0; k < 4; k++) {
        const __m512i& first = k % 2 == 0 ? lo01 : hi01;
        const __m512i& second = k % 2 == 0 ? lo23 : hi23;
        out[b].q[k] = _mm512_permutex2var_epi64(first, laneOrderIndex(k / 2), second);
      }
    } else {
      out[b].q[0] = a0;
      out[b].q[1] = a1;
      out[b].q[2] = a2;
      out[b].q[3] = a3;
    }
    const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].bsums));
    if (kHasMins<T>()) {
      const __m512i sums = T == KType::Q2_K
                               ? _mm512_cvtepi16_epi32(bsums)
                               : _mm512_zextsi256_si512(_mm256_madd_epi16(bsums, _mm256_set1_epi16(1)));  // per 32
      out[b].minTerm = _mm512_mul_ps(_mm512_cvtepi32_ps(sums), _mm512_set1_ps(-x[b].d));
    } else {
      _mm256_store_si256(reinterpret_cast<__m256i*>(out[b].bsums), bsums);
    }
    out[b].d = x[b].d;
  }
}

// A super-block of weights, unpacked: levels, per-pair scales, and what the offset or min term needs.
struct KWeights {
  __m512i w[4];     // unsigned levels, in the packed activations' order
  __m512i s[2];     // 16-bit scales: lane order one per lane (s[0]), element order one per packed word
  __m256i extra;    // 16-bit words: the scales (Q3_K, Q6_K: for the offset), the 16 mins (Q2_K), or the 8 mins then
                    // the 8 scales (Q4_K, Q5_K)
  __m512 d;         // broadcast
  __m512 mins;      // types with mins: dmin * the mins (Q4_K, Q5_K: lanes 0..7; Q2_K: 16)
};

// Element order: word w of scale vector k is scale index[k][w] of the 16. vpackssdw(a, b) puts lanes 4m..4m+3 of a,
// then of b, in 128-bit chunk m; a lane of vector k (elements 64k..64k+63) lies in sub-block 4k + lane / 4, so chunk m
// of the pair (0, 1) holds sub-blocks m and 4 + m, of (2, 3) sub-blocks 8 + m and 12 + m.
alignas(64) constexpr uint16_t kScaleIndexPacked[2][32] = {
    {0, 0, 0, 0, 4, 4, 4, 4, 1, 1, 1, 1, 5, 5, 5, 5, 2, 2, 2, 2, 6, 6, 6, 6, 3, 3, 3, 3, 7, 7, 7, 7},
    {8, 8, 8, 8, 12, 12, 12, 12, 9, 9, 9, 9, 13, 13, 13, 13,
     10, 10, 10, 10, 14, 14, 14, 14, 11, 11, 11, 11, 15, 15, 15, 15}};
// Q4_K / Q5_K: the scale of each 32-bit lane for its low word (a masked permute zeroes the high word); scale j is word
// 8 + j. Lanes 2i, 2i + 1 hold sub-block 2i, lanes 8 + 2i, 9 + 2i sub-block 2i + 1.
alignas(64) constexpr uint16_t kScaleIndexLanes[32] = {8,  0, 8,  0, 10, 0, 10, 0, 12, 0, 12, 0, 14, 0, 14, 0,
                                                        9,  0, 9,  0, 11, 0, 11, 0, 13, 0, 13, 0, 15, 0, 15, 0};

// Per-half right shifts (in 16-bit words) that bring the 2-bit field of the low and high 32 elements of a vector to
// bit 0: {0, 2} for the first vector of each 128, {4, 6} for the second.
MN_INLINE __m512i halfShifts(int low, int high) {
  return _mm512_inserti64x4(_mm512_set1_epi16(static_cast<short>(low)), _mm256_set1_epi16(static_cast<short>(high)), 1);
}

// One byte pattern for the low 32 bytes and another for the high 32
MN_INLINE __m512i halfBytes(int low, int high) {
  return _mm512_inserti64x4(_mm512_set1_epi8(static_cast<char>(low)), _mm256_set1_epi8(static_cast<char>(high)), 1);
}

// 32 bytes at p in both halves of a vector
MN_INLINE __m512i broadcast32(const uint8_t* p) {
  return _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// The 2-bit fields t0 (low 32 elements) and t0 + 1 (high 32) of 32 packed bytes, as levels 0..3
MN_INLINE __m512i twoBitLevels(__m512i packed, int t0) {
  return _mm512_and_si512(_mm512_srlv_epi16(packed, halfShifts(2 * t0, 2 * t0 + 2)), _mm512_set1_epi8(3));
}

// 16 words -> the two scale vectors of element order
MN_INLINE void spreadScales(__m256i words, __m512i (&s)[2]) {
  const __m512i table = _mm512_castsi256_si512(words);
  for (int k = 0; k < 2; k++) s[k] = _mm512_permutexvar_epi16(_mm512_load_si512(kScaleIndexPacked[k]), table);
}

// The 8 mins and 8 scales of Q4_K / Q5_K (12 bytes at p, 16 readable) as 16-bit words 0..7 and 8..15. In 32-bit
// words u0..u2 of the packing: scales 0..3 = u0 & 63 per byte, 4..7 = u2 & 15 | (u0 >> 6) << 4; mins 0..3 =
// u1 & 63, 4..7 = u2 >> 4 | (u1 >> 6) << 4.
MN_INLINE __m256i unpackScaleMin(const uint8_t* p) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i low = _mm_shuffle_epi32(packed, _MM_SHUFFLE(2, 0, 2, 1));   // u1, u2, u0, u2
  const __m128i high = _mm_shuffle_epi32(packed, _MM_SHUFFLE(0, 0, 1, 1));  // u1, u1, u0, u0
  const __m128i lowBits = _mm_and_si128(_mm_srlv_epi32(low, _mm_setr_epi32(0, 4, 0, 0)),
                                        _mm_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f));
  const __m128i highBits = _mm_and_si128(_mm_srli_epi32(high, 2), _mm_setr_epi32(0, 0x30303030, 0, 0x30303030));
  return _mm256_cvtepu8_epi16(_mm_or_si128(lowBits, highBits));
}

// The fp16 pair (d, dmin) at p, each broadcast
MN_INLINE void loadScalePair(const uint8_t* p, __m512& d, __m512& dmin) {
  const __m128 pair = _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(loadU32(p))));
  d = _mm512_broadcastss_ps(pair);
  dmin = _mm512_broadcastss_ps(_mm_movehdup_ps(pair));
}

// The fp16 d at p, broadcast
MN_INLINE __m512 loadScale(const uint8_t* p) {
  return _mm512_broadcastss_ps(_mm_cvtph_ps(_mm_cvtsi32_si128(loadU16(p))));
}

template <KType T>
MN_INLINE KWeights unpackWeights(const uint8_t* block) {
  KWeights u;
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  if (kLaneOrder<T>()) {
    // the 32 bytes of group g (quad-words 4g..4g+3) hold sub-block 2g in their low nibbles and 2g + 1 in their high
    // ones: vector k takes quad-word k of every group twice, low nibbles in the low half and high in the high half
    const uint8_t* qs = block + (T == KType::Q4_K ? offsetof(BlockQ4_K, qs) : offsetof(BlockQ5_K, qs));
    const __m512i a = _mm512_loadu_si512(qs), b = _mm512_loadu_si512(qs + 64);
    const __m512i nibbleShifts = halfShifts(0, 4);
    for (int k = 0; k < 4; k++) {
      const __m512i index = _mm512_setr_epi64(k, 4 + k, 8 + k, 12 + k, k, 4 + k, 8 + k, 12 + k);
      u.w[k] = _mm512_and_si512(_mm512_srlv_epi16(_mm512_permutex2var_epi64(a, index, b), nibbleShifts), low4);
    }
    if (T == KType::Q5_K) {
      // bit 4 of the level of byte i of sub-block j is bit j of qh[i]: vector k reads qh's quad-word k everywhere
      const uint8_t* qh = block + offsetof(BlockQ5_K, qh);
      const __m512i bits = _mm512_setr_epi64(0x0101010101010101LL, 0x0404040404040404LL, 0x1010101010101010LL,
                                             0x4040404040404040LL, 0x0202020202020202LL, 0x0808080808080808LL,
                                             0x2020202020202020LL, (long long)0x8080808080808080ULL);
      const __m512i sixteen = _mm512_set1_epi8(16);
      for (int k = 0; k < 4; k++) {
        long long word;
        std::memcpy(&word, qh + 8 * k, 8);
        const __m512i bytes = _mm512_set1_epi64(word);
        const __mmask64 high = _mm512_test_epi8_mask(bytes, bits);
        u.w[k] = _mm512_mask_add_epi8(u.w[k], high, u.w[k], sixteen);
      }
    }
    u.extra = unpackScaleMin(block + offsetof(BlockQ4_K, scales));
    u.s[0] = _mm512_maskz_permutexvar_epi16(0x55555555u, _mm512_load_si512(kScaleIndexLanes),
                                            _mm512_castsi256_si512(u.extra));
    __m512 dmin;
    loadScalePair(block, u.d, dmin);
    u.mins = _mm512_mul_ps(_mm512_maskz_cvtepi32_ps(0x00FF, _mm512_cvtepi16_epi32(u.extra)), dmin);
  } else if (T == KType::Q6_K) {
    const BlockQ6_K* b = reinterpret_cast<const BlockQ6_K*>(block);
    const __m512i ql0 = _mm512_loadu_si512(b->ql), ql1 = _mm512_loadu_si512(b->ql + 64);
    const __m512i qh[2] = {broadcast32(b->qh), broadcast32(b->qh + 32)};
    const __m512i top2 = _mm512_set1_epi8(0x30);
    const __m512i nibbles[4] = {_mm512_and_si512(ql0, low4), _mm512_and_si512(_mm512_srli_epi16(ql0, 4), low4),
                                _mm512_and_si512(ql1, low4), _mm512_and_si512(_mm512_srli_epi16(ql1, 4), low4)};
    for (int k = 0; k < 4; k++) {
      const __m512i shifted = _mm512_srlv_epi16(qh[k / 2], halfShifts(4 * (k % 2), 4 * (k % 2) + 2));
      u.w[k] = _mm512_or_si512(nibbles[k], _mm512_and_si512(_mm512_slli_epi16(shifted, 4), top2));
    }
    u.extra = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b->scales)));
    spreadScales(u.extra, u.s);
    u.d = loadScale(block + offsetof(BlockQ6_K, d));
  } else if (T == KType::Q3_K) {
    const BlockQ3_K* b = reinterpret_cast<const BlockQ3_K*>(block);
    const __m512i qs[2] = {broadcast32(b->qs), broadcast32(b->qs + 32)};
    const __m512i hmask = broadcast32(b->hmask);
    const __m512i four = _mm512_set1_epi8(4);
    for (int k = 0; k < 4; k++) {
      const int t0 = 2 * (k % 2), bit = 4 * (k / 2) + t0;
      const __mmask64 high = _mm512_test_epi8_mask(hmask, halfBytes(1 << bit, 1 << (bit + 1)));
      const __m512i low = twoBitLevels(qs[k / 2], t0);
      u.w[k] = _mm512_mask_add_epi8(low, high, low, four);
    }
    const uint32_t a0 = loadU32(b->scales), a1 = loadU32(b->scales + 4), a2 = loadU32(b->scales + 8);
    const uint32_t s0 = (a0 & 0x0f0f0f0fu) | (a2 & 0x03030303u) << 4;
    const uint32_t s1 = (a1 & 0x0f0f0f0fu) | ((a2 >> 2) & 0x03030303u) << 4;
    const uint32_t s2 = ((a0 >> 4) & 0x0f0f0f0fu) | ((a2 >> 4) & 0x03030303u) << 4;
    const uint32_t s3 = ((a1 >> 4) & 0x0f0f0f0fu) | ((a2 >> 6) & 0x03030303u) << 4;
    const __m128i stored = _mm_setr_epi32(static_cast<int>(s0), static_cast<int>(s1), static_cast<int>(s2),
                                          static_cast<int>(s3));
    u.extra = _mm256_sub_epi16(_mm256_cvtepu8_epi16(stored), _mm256_set1_epi16(32));
    spreadScales(u.extra, u.s);
    u.d = loadScale(block + offsetof(BlockQ3_K, d));
  } else {  // Q2_K
    const BlockQ2_K* b = reinterpret_cast<const BlockQ2_K*>(block);
    const __m512i qs[2] = {broadcast32(b->qs), broadcast32(b->qs + 32)};
    for (int k = 0; k < 4; k++) u.w[k] = twoBitLevels(qs[k / 2], 2 * (k % 2));
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b->scales));
    const __m128i nibble = _mm_set1_epi8(0x0F);
    spreadScales(_mm256_cvtepu8_epi16(_mm_and_si128(packed, nibble)), u.s);
    u.extra = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), nibble));
    __m512 dmin;
    loadScalePair(block + offsetof(BlockQ2_K, d), u.d, dmin);
    u.mins = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(u.extra)), dmin);
  }
  return u;
}

// acc += the super-block's contribution, lane-wise: d_w * d_x * sumi, minus d_x * dmin_w * (mins . sums of q_x) for
// the types with a min. The integers are exact; the min term is one multiply-add against factors computed once per
// weight row (u.mins) and once per activation column (x.minTerm), so a register tile pays it once per pair.
template <KType T>
MN_INLINE void accumulateSuperBlock(const KWeights& u, const PackedK& x, __m512& acc) {
  const __m512i zero = _mm512_setzero_si512();
  __m512i sumi;
  if (kLaneOrder<T>()) {
    // a lane sums 4 levels of one sub-block per vector; over all four (Q4_K: at most 16 * 15 * 128 < 2^15) or two
    // (Q5_K: 8 * 31 * 128) vectors that still fits the low 16-bit word, which vpmaddwd scales (the high word's scale
    // is 0)
    if (T == KType::Q4_K) {
      __m512i levels = zero;
      for (int k = 0; k < 4; k++) levels = _mm512_dpbusd_epi32(levels, u.w[k], x.q[k]);
      sumi = _mm512_madd_epi16(levels, u.s[0]);
    } else {
      const __m512i first = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, u.w[0], x.q[0]), u.w[1], x.q[1]);
      const __m512i second = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, u.w[2], x.q[2]), u.w[3], x.q[3]);
      sumi = _mm512_dpwssd_epi32(_mm512_madd_epi16(first, u.s[0]), second, u.s[0]);
    }
  } else {
    // a lane sums 4 levels of one sub-block (at most 4 * 63 * 128 < 2^15): pairs of vectors pack into 16-bit words
    __m512i levels[4];
    for (int k = 0; k < 4; k++) levels[k] = _mm512_dpbusd_epi32(zero, u.w[k], x.q[k]);
    sumi = _mm512_dpwssd_epi32(_mm512_madd_epi16(_mm512_packs_epi32(levels[0], levels[1]), u.s[0]),
                               _mm512_packs_epi32(levels[2], levels[3]), u.s[1]);
  }
  if (T == KType::Q6_K || T == KType::Q3_K) {
    // levels are q + 32 (Q6_K) or q + 4 (Q3_K): take offset * sum_j sc_j * bsum_j off the integers
    const __m256i bsums = _mm256_load_si256(reinterpret_cast<const __m256i*>(x.bsums));
    const __m256i scaled = _mm256_madd_epi16(u.extra, bsums);
    const __m256i offset = T == KType::Q6_K ? _mm256_slli_epi32(scaled, 5) : _mm256_slli_epi32(scaled, 2);
    sumi = _mm512_sub_epi32(sumi, _mm512_zextsi256_si512(offset));
  }
  acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_mul_ps(u.d, _mm512_set1_ps(x.d)), acc);
  if (kHasMins<T>()) acc = _mm512_fmadd_ps(u.mins, x.minTerm, acc);
}

// ---- decode: one row at a time against activations packed once per call ----

template <KType T>
MN_INLINE void prefetchBlock(const uint8_t* block) {
  for (size_t line = 0; line < kBlockBytes<T>(); line += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(block + kPrefetchBytes + line), _MM_HINT_T0);
  }
}

// W (nRows, n) rows [rowBegin, rowEnd) @ x (n,) Q8_K -> y[r]
template <KType T>
void decodeK(const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x,
             float* y) {
  constexpr size_t blockBytes = kBlockBytes<T>();
  static_assert(kPackBlocks % kSpanBlocks == 0, "a packed chunk holds whole spans");
  PackedK packed[kPackBlocks];
  const size_t nBlocks = n / kQKK;
  for (size_t b0 = 0; b0 < nBlocks; b0 += kPackBlocks) {
    const size_t count = nBlocks - b0 < kPackBlocks ? nBlocks - b0 : kPackBlocks;
    packActivations<T>(reinterpret_cast<const BlockQ8_K*>(x) + b0, count, packed);
    for (size_t r = rowBegin; r < rowEnd; r++) {
      const uint8_t* row = w + r * wRowBytes + b0 * blockBytes;
      float sum = b0 == 0 ? 0.0f : y[r];
      for (size_t s = 0; s < count; s += kSpanBlocks) {
        const size_t end = count - s < kSpanBlocks ? count : s + kSpanBlocks;
        __m512 acc = _mm512_setzero_ps();
        for (size_t b = s; b < end; b++) {
          prefetchBlock<T>(row + b * blockBytes);
          accumulateSuperBlock<T>(unpackWeights<T>(row + b * blockBytes), packed[b], acc);
        }
        const float partial = _mm512_reduce_add_ps(acc);
        sum = b0 + s == 0 ? partial : sum + partial;
      }
      y[r] = sum;
    }
  }
}

// ---- prefill: register tiles against activations packed per column tile and span ----

// Register tile shape, measured per type (single-thread prefill x64, bench/kernels.sh, docs/kernels.md): 2 x 6 for
// Q4_K (the unpacked row meets more columns; 4 x 4, 3 x 6, 2 x 8 and 3 x 4 lower), 4 x 4 for Q6_K (2 x 6 17% lower).
template <KType T>
constexpr size_t kPrefillRows() {
  return kHasMins<T>() ? 2 : 4;
}
template <KType T>
constexpr size_t kPrefillCols() {
  return kHasMins<T>() ? 6 : 4;
}
constexpr size_t kMaxPrefillCols = 6;
constexpr size_t kRowBlock = 64;  // rows whose weights stay in L2 while every column tile passes over them

// W rows (R) super-blocks [0, count) from w @ packed X (C columns, kSpanBlocks apart) -> y[c * ldy + r] (added when
// accumulate)
template <KType T, int R, int C>
void prefillTile(const uint8_t* w, size_t wRowBytes, size_t count, const PackedK* packed, float* y, size_t ldy,
                 bool accumulate) {
  constexpr size_t blockBytes = kBlockBytes<T>();
  __m512 acc[R][C];
  for (int r = 0; r < R; r++)
    for (int c = 0; c < C; c++) acc[r][c] = _mm512_setzero_ps();
  for (size_t b = 0; b < count; b++) {
    for (int r = 0; r < R; r++) {
      const KWeights u = unpackWeights<T>(w + r * wRowBytes + b * blockBytes);
      for (int c = 0; c < C; c++) {
        accumulateSuperBlock<T>(u, packed[c * kSpanBlocks + b], acc[r][c]);
      }
    }
  }
  for (int r = 0; r < R; r++) {
    for (int c = 0; c < C; c++) {
      const float sum = _mm512_reduce_add_ps(acc[r][c]);
      y[c * ldy + r] = accumulate ? y[c * ldy + r] + sum : sum;
    }
  }
}

template <KType T, int C>
void prefillTileRows(size_t rows, const uint8_t* w, size_t wRowBytes, size_t count, const PackedK* packed, float* y,
                     size_t ldy, bool accumulate) {
  switch (rows) {
    case 4: prefillTile<T, 4, C>(w, wRowBytes, count, packed, y, ldy, accumulate); return;
    case 3: prefillTile<T, 3, C>(w, wRowBytes, count, packed, y, ldy, accumulate); return;
    case 2: prefillTile<T, 2, C>(w, wRowBytes, count, packed, y, ldy, accumulate); return;
    default: prefillTile<T, 1, C>(w, wRowBytes, count, packed, y, ldy, accumulate); return;
  }
}

using KTileFn = void (*)(size_t rows, const uint8_t* w, size_t wRowBytes, size_t count, const PackedK* packed,
                         float* y, size_t ldy, bool accumulate);

// W (nRows, n) rows [rowBegin, rowEnd) @ X (nCols, n) Q8_K -> Y[c * ldy + r]
template <KType T>
void prefillK(const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x,
              size_t actRowBytes, size_t nCols, float* y, size_t ldy) {
  constexpr size_t blockBytes = kBlockBytes<T>();
  constexpr size_t tileRows = kPrefillRows<T>(), tileCols = kPrefillCols<T>();
  PackedK packed[kMaxPrefillCols * kSpanBlocks];
  const size_t nBlocks = n / kQKK;
  for (size_t blockBegin = rowBegin; blockBegin < rowEnd; blockBegin += kRowBlock) {
    const size_t blockEnd = rowEnd - blockBegin < kRowBlock ? rowEnd : blockBegin + kRowBlock;
    for (size_t c0 = 0; c0 < nCols; c0 += tileCols) {
      const size_t cols = nCols - c0 < tileCols ? nCols - c0 : tileCols;
      const KTileFn tile = cols == 6   ? prefillTileRows<T, 6>
                           : cols == 5 ? prefillTileRows<T, 5>
                           : cols == 4 ? prefillTileRows<T, 4>
                           : cols == 3 ? prefillTileRows<T, 3>
                           : cols == 2 ? prefillTileRows<T, 2>
                                       : prefillTileRows<T, 1>;
      for (size_t b0 = 0; b0 < nBlocks; b0 += kSpanBlocks) {
        const size_t count = nBlocks - b0 < kSpanBlocks ? nBlocks - b0 : kSpanBlocks;
        for (size_t c = 0; c < cols; c++) {
          const BlockQ8_K* column = reinterpret_cast<const BlockQ8_K*>(x + (c0 + c) * actRowBytes) + b0;
          packActivations<T>(column, count, packed + c * kSpanBlocks);
        }
        for (size_t r = blockBegin; r < blockEnd; r += tileRows) {
          const size_t rows = blockEnd - r < tileRows ? blockEnd - r : tileRows;
          tile(rows, w + r * wRowBytes + b0 * blockBytes, wRowBytes, count, packed, y + c0 * ldy + r, ldy, b0 != 0);
        }
      }
    }
  }
}

template <KType T>
void matmulK(const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x,
             size_t actRowBytes, size_t nCols, float* y, size_t ldy) {
  if (nCols == 1) {
    decodeK<T>(w, wRowBytes, n, rowBegin, rowEnd, x, y);
  } else {
    prefillK<T>(w, wRowBytes, n, rowBegin, rowEnd, x, actRowBytes, nCols, y, ldy);
  }
}

// ======================================================================================= Q4_1, Q5_0, Q5_1

enum class BType { Q4_1, Q5_0, Q5_1 };

template <BType T>
constexpr size_t bBlockBytes() {
  return T == BType::Q4_1 ? sizeof(BlockQ4_1) : T == BType::Q5_0 ? sizeof(BlockQ5_0) : sizeof(BlockQ5_1);
}

// Activation block bytes: Q8_1 for the types with a min, Q8_0 for Q5_0
template <BType T>
constexpr size_t bActBytes() {
  return T == BType::Q5_0 ? sizeof(BlockQ8_0) : sizeof(BlockQ8_1);
}

constexpr size_t kSpan32 = 128;  // 32-value blocks per summation span (4096 values)

// One weight block, unpacked: 32 unsigned levels in element order, d and (for Q4_1 / Q5_1) m
struct BWeights {
  __m256i q;
  float d, m;
};

template <BType T>
MN_INLINE BWeights unpackBlock(const uint8_t* block) {
  const uint8_t* qs = block + (T == BType::Q4_1 ? 4 : T == BType::Q5_0 ? 6 : 8);
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i low4 = _mm_set1_epi8(0x0F);
  BWeights u;
  u.q = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(packed, 4), low4), _mm_and_si128(packed, low4));
  if (T != BType::Q4_1) {
    const __mmask32 high = _cvtu32_mask32(loadU32(block + (T == BType::Q5_0 ? 2 : 4)));
    u.q = _mm256_mask_add_epi8(u.q, high, u.q, _mm256_set1_epi8(16));
  }
  u.d = halfToFloat(loadU16(block));
  u.m = T == BType::Q5_0 ? 0.0f : halfToFloat(loadU16(block + 2));
  return u;
}

// acc + this block's contribution: d_w * d_x * sum(q_w * q_x) lane-wise (Q5_0: q_w - 16), plus m_w * s_x in lane 0
template <BType T>
MN_INLINE __m256 blockDot(const BWeights& u, const uint8_t* xBlock, __m256 acc) {
  const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xBlock + (T == BType::Q5_0 ? 2 : 4)));
  __m256i init = _mm256_setzero_si256();
  if (T == BType::Q5_0) init = _mm256_sub_epi32(init, _mm256_dpbusd_epi32(init, _mm256_set1_epi8(16), xq));
  const __m256 dot = _mm256_cvtepi32_ps(_mm256_dpbusd_epi32(init, u.q, xq));
  const float scale = u.d * halfToFloat(loadU16(xBlock));
  if (T == BType::Q5_0) return _mm256_fmadd_ps(dot, _mm256_set1_ps(scale), acc);
  const __m256 minTerm = _mm256_zextps128_ps256(_mm_set_ss(u.m * halfToFloat(loadU16(xBlock + 2))));
  return _mm256_add_ps(acc, _mm256_fmadd_ps(dot, _mm256_set1_ps(scale), minTerm));
}

// One row . one activation column over all nBlocks blocks, in the span order (decode)
template <BType T>
float rowDotBlocks(const uint8_t* row, const uint8_t* x, size_t nBlocks) {
  constexpr size_t blockBytes = bBlockBytes<T>(), actBytes = bActBytes<T>();
  float sum = 0.0f;
  for (size_t b0 = 0; b0 < nBlocks; b0 += kSpan32) {
    const size_t end = nBlocks - b0 < kSpan32 ? nBlocks : b0 + kSpan32;
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    size_t b = b0;
    for (; b + 2 <= end; b += 2) {
      _mm_prefetch(reinterpret_cast<const char*>(row + b * blockBytes + kPrefetchBytes), _MM_HINT_T0);
      acc[0] = blockDot<T>(unpackBlock<T>(row + b * blockBytes), x + b * actBytes, acc[0]);
      acc[1] = blockDot<T>(unpackBlock<T>(row + (b + 1) * blockBytes), x + (b + 1) * actBytes, acc[1]);
    }
    if (b < end) acc[0] = blockDot<T>(unpackBlock<T>(row + b * blockBytes), x + b * actBytes, acc[0]);
    const float partial = horizontalSum(_mm256_add_ps(acc[0], acc[1]));
    sum = b0 == 0 ? partial : sum + partial;
  }
  return sum;
}

// acc[r][c] += blocks first, first + 2, ... < end of W rows (R) . X columns (C)
template <BType T, int R, int C>
MN_INLINE void blockPass(const uint8_t* w, size_t wRowBytes, size_t first, size_t end, const uint8_t* x,
                         size_t actRowBytes, __m256 (&acc)[R][C]) {
  constexpr size_t blockBytes = bBlockBytes<T>(), actBytes = bActBytes<T>();
  for (size_t b = first; b < end; b += 2) {
    for (int r = 0; r < R; r++) {
      const BWeights u = unpackBlock<T>(w + r * wRowBytes + b * blockBytes);
      for (int c = 0; c < C; c++) acc[r][c] = blockDot<T>(u, x + c * actRowBytes + b * actBytes, acc[r][c]);
    }
  }
}

// W rows (R) @ X (C columns) -> y[c * ldy + r], per span a pass over the even blocks and one over the odd blocks
template <BType T, int R, int C>
void tileBlocks(const uint8_t* w, size_t wRowBytes, size_t nBlocks, const uint8_t* x, size_t actRowBytes, float* y,
                size_t ldy) {
  sumTileSpans<R, C>(nBlocks, kSpan32, y, ldy, [&](size_t first, size_t end, __m256 (&acc)[R][C]) {
    blockPass<T, R, C>(w, wRowBytes, first, end, x, actRowBytes, acc);
  });
}

template <BType T, int C>
void tileBlocksRows(size_t rows, const uint8_t* w, size_t wRowBytes, size_t nBlocks, const uint8_t* x,
                    size_t actRowBytes, float* y, size_t ldy) {
  switch (rows) {
    case 4: tileBlocks<T, 4, C>(w, wRowBytes, nBlocks, x, actRowBytes, y, ldy); return;
    case 3: tileBlocks<T, 3, C>(w, wRowBytes, nBlocks, x, actRowBytes, y, ldy); return;
    case 2: tileBlocks<T, 2, C>(w, wRowBytes, nBlocks, x, actRowBytes, y, ldy); return;
    default: tileBlocks<T, 1, C>(w, wRowBytes, nBlocks, x, actRowBytes, y, ldy); return;
  }
}

using BTileFn = void (*)(size_t rows, const uint8_t* w, size_t wRowBytes, size_t nBlocks, const uint8_t* x,
                         size_t actRowBytes, float* y, size_t ldy);

// W (nRows, n) rows [rowBegin, rowEnd) Q4_1/Q5_0/Q5_1 @ X (nCols, n) Q8_1/Q8_0 -> Y[c * ldy + r]
template <BType T>
void matmulBlocks(const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x,
                  size_t actRowBytes, size_t nCols, float* y, size_t ldy) {
  const size_t nBlocks = n / kQK;
  if (nCols == 1) {
    for (size_t r = rowBegin; r < rowEnd; r++) y[r] = rowDotBlocks<T>(w + r * wRowBytes, x, nBlocks);
    return;
  }
  constexpr size_t kRows = 4, kCols = 3;
  for (size_t r = rowBegin; r < rowEnd; r += kRows) {
    const size_t rows = rowEnd - r < kRows ? rowEnd - r : kRows;
    for (size_t c = 0; c < nCols; c += kCols) {
      const size_t cols = nCols - c < kCols ? nCols - c : kCols;
      const BTileFn tile = cols == 3 ? tileBlocksRows<T, 3> : cols == 2 ? tileBlocksRows<T, 2> : tileBlocksRows<T, 1>;
      tile(rows, w + r * wRowBytes, wRowBytes, nBlocks, x + c * actRowBytes, actRowBytes, y + c * ldy + r, ldy);
    }
  }
}

// ======================================================================================= dispatch

using TypedMatmulFn = void (*)(const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin, size_t rowEnd,
                              const uint8_t* x, size_t actRowBytes, size_t nCols, float* y, size_t ldy);

// W (nRows, n) rows [rowBegin, rowEnd) @ X (nCols, n) -> Y[c * ldy + r]; other types leave Y untouched
void matmul(GgmlType wType, const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin, size_t rowEnd,
            const uint8_t* x, size_t actRowBytes, size_t nCols, float* y, size_t ldy) {
  TypedMatmulFn kernel = nullptr;
  switch (wType) {
    case GgmlType::Q2_K: kernel = matmulK<KType::Q2_K>; break;
    case GgmlType::Q3_K: kernel = matmulK<KType::Q3_K>; break;
    case GgmlType::Q4_K: kernel = matmulK<KType::Q4_K>; break;
    case GgmlType::Q5_K: kernel = matmulK<KType::Q5_K>; break;
    case GgmlType::Q6_K: kernel = matmulK<KType::Q6_K>; break;
    case GgmlType::Q4_1: kernel = matmulBlocks<BType::Q4_1>; break;
    case GgmlType::Q5_0: kernel = matmulBlocks<BType::Q5_0>; break;
    case GgmlType::Q5_1: kernel = matmulBlocks<BType::Q5_1>; break;
    default: return;
  }
  kernel(w, wRowBytes, n, rowBegin, rowEnd, x, actRowBytes, nCols, y, ldy);
}

// One row of n values of `type` -> out (n,), by the scalar reference (only token embedding lookups use it)
void dequantizeRow(GgmlType type, const uint8_t* row, float* out, size_t n) {
  scalar::dequantizeRow(type, row, out, n);
}

}  // namespace
}  // namespace x86
}  // namespace mn

#include "kernels/x86/target_end.h"

namespace mn {
namespace x86 {
extern const QuantTypeKernels kQuantTypesAvx512 = {matmul, dequantizeRow};
}  // namespace x86
}  // namespace mn

#endif  // x86-64
