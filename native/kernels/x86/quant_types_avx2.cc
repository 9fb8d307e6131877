// AVX2 (+FMA, F16C) matmul for the K-quants (Q2_K .. Q6_K x Q8_K) and the other 32-value block types (Q4_1, Q5_1 x
// Q8_1; Q5_0 x Q8_0), and their row dequantization. The AVX-512 file (quant_types_avx512.cc) explains the scheme;
// here a super-block is worked through in 8 pieces of 32 values (vpmaddubsw into 16-bit pairs, vpmaddwd with the
// pieces' 16-bit sub-block scales), in element order, into the super-block's exact integer sums, and every
// (row, column) adds its super-blocks in order as scalar::matmulInterleaved does for Q4_Kx64:
// acc = fma(sumi, d_w * d_x, acc), then acc = fma(summ, -(dmin_w * d_x), acc). Decode and prefill share those steps,
// and Q4_K prefill of 16 or more columns and Q6_K prefill of 32 or more run on copies of the rows with 8 rows in a
// vector's lanes (repacked_avx2.cc), with the same bits.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/quants.h"
#include "kernels/scalar.h"
#include "kernels/x86/x86_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)

#define MN_X86_TARGET "avx2,fma,f16c"
#include "kernels/x86/target_begin.h"

#include "kernels/x86/simd_common.h"

namespace mn {
namespace x86 {
namespace {

MN_INLINE __m256i load256(const void* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

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

constexpr size_t kPackBlocks = 64;  // super-blocks of activations packed per decode chunk (16384 values, 20 KB)

// One Q8_K super-block of activations, 32-byte aligned
struct alignas(32) PackedK {
  __m256i q[8];        // q_x in element order
  int16_t bsums[16];   // sums per 16
  int16_t sums32[8];   // sums per 32
  float d;
  uint8_t pad[12];
};
static_assert(sizeof(PackedK) == 320, "a packed super-block is 320 bytes");

void packActivations(const BlockQ8_K* x, size_t count, PackedK* out) {
  for (size_t b = 0; b < count; b++) {
    for (int p = 0; p < 8; p++) out[b].q[p] = load256(x[b].qs + 32 * p);
    const __m256i bsums = load256(x[b].bsums);
    _mm256_store_si256(reinterpret_cast<__m256i*>(out[b].bsums), bsums);
    const __m256i pairs = _mm256_madd_epi16(bsums, _mm256_set1_epi16(1));
    const __m128i packed = _mm_packs_epi32(_mm256_castsi256_si128(pairs), _mm256_extracti128_si256(pairs, 1));
    _mm_store_si128(reinterpret_cast<__m128i*>(out[b].sums32), packed);
    out[b].d = x[b].d;
  }
}

// A weight super-block ready to be read piece by piece: its bytes; its sub-block scales laid out for piece()'s one
// vpshufb: Q4_K's and Q5_K's 8 scales and 8 mins as bytes in each 128-bit half, the 16-scale types' scales as words,
// the even sub-blocks' in the low half and the odd ones' in the high half; the scales (Q3_K, Q6_K) or mins (Q2_K,
// Q4_K, Q5_K) as words in order; and d and dmin. Per piece, vpshufb with a constant control takes one uop where the
// vpermd it replaced took two and its index vectors spilled: in one process, alternating, the decode ran
// 1.32-1.44x (Q4_K) and 1.25x (Q6_K) as fast in L2, and 1.21-1.28x and 1.09-1.21x from memory on 2 threads.
struct KSuper {
  const uint8_t* block;
  __m256i scales;
  __m256i extra;
  __m128 dAndDmin;  // [d, dmin, 0, 0]
};

// The fp16 at p -> [value, 0, 0, 0]; the two at p -> [first, second, 0, 0]
MN_INLINE __m128 halfLanes(uint16_t h) { return _mm_cvtph_ps(_mm_cvtsi32_si128(h)); }
MN_INLINE __m128 halfLanes(uint32_t pair) { return _mm_cvtph_ps(_mm_cvtsi32_si128(static_cast<int>(pair))); }

template <KType T>
MN_INLINE KSuper prepare(const uint8_t* block) {
  KSuper k;
  k.block = block;
  if (T == KType::Q4_K || T == KType::Q5_K) {
    static_assert(offsetof(BlockQ4_K, scales) == offsetof(BlockQ5_K, scales), "one offset for both");
    const __m128i bytes = q4ScaleBytes(block + offsetof(BlockQ4_K, scales));
    k.scales = _mm256_broadcastsi128_si256(bytes);
    k.extra = _mm256_zextsi128_si256(_mm_cvtepu8_epi16(_mm_srli_si128(bytes, 8)));
    k.dAndDmin = halfLanes(loadU32(block));
  } else {
    __m128i bytes;  // 16 scales as signed bytes
    if (T == KType::Q6_K) {
      bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + offsetof(BlockQ6_K, scales)));
      k.dAndDmin = halfLanes(loadU16(block + offsetof(BlockQ6_K, d)));
    } else if (T == KType::Q3_K) {
      const uint8_t* p = block + offsetof(BlockQ3_K, scales);
      const uint32_t a0 = loadU32(p), a1 = loadU32(p + 4), a2 = loadU32(p + 8);
      const uint32_t s0 = (a0 & 0x0f0f0f0fu) | (a2 & 0x03030303u) << 4;
      const uint32_t s1 = (a1 & 0x0f0f0f0fu) | ((a2 >> 2) & 0x03030303u) << 4;
      const uint32_t s2 = ((a0 >> 4) & 0x0f0f0f0fu) | ((a2 >> 4) & 0x03030303u) << 4;
      const uint32_t s3 = ((a1 >> 4) & 0x0f0f0f0fu) | ((a2 >> 6) & 0x03030303u) << 4;
      bytes = _mm_sub_epi8(_mm_setr_epi32(static_cast<int>(s0), static_cast<int>(s1), static_cast<int>(s2),
                                          static_cast<int>(s3)), _mm_set1_epi8(32));
      k.dAndDmin = halfLanes(loadU16(block + offsetof(BlockQ3_K, d)));
    } else {  // Q2_K: scales in the low nibbles, mins in the high ones
      const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block));
      bytes = _mm_and_si128(packed, _mm_set1_epi8(0x0F));
      k.extra = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0x0F)));
      static_assert(offsetof(BlockQ2_K, dmin) == offsetof(BlockQ2_K, d) + 2, "d and dmin are one 32-bit load");
      k.dAndDmin = halfLanes(loadU32(block + offsetof(BlockQ2_K, d)));
    }
    const __m128i evenThenOdd =
        _mm_shuffle_epi8(bytes, _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15));
    k.scales = _mm256_cvtepi8_epi16(evenThenOdd);
    if (T != KType::Q2_K) k.extra = _mm256_cvtepi8_epi16(bytes);
  }
  return k;
}

// Piece p (values 32p .. 32p + 31) of the super-block: unsigned levels and the 16-bit scale of each element pair
template <KType T>
MN_INLINE void piece(const KSuper& k, int p, __m256i& w, __m256i& s) {
  if (T == KType::Q4_K || T == KType::Q5_K) {
    w = nibbleLevels(k.block + (T == KType::Q4_K ? offsetof(BlockQ4_K, qs) : offsetof(BlockQ5_K, qs)), p);
    if (T == KType::Q5_K) {  // bit 4 of piece p's levels is bit p of qh
      const __m256i qh = load256(k.block + offsetof(BlockQ5_K, qh));
      const __m256i high = _mm256_slli_epi16(_mm256_srli_epi16(qh, p), 4);
      w = _mm256_or_si256(w, _mm256_and_si256(high, _mm256_set1_epi8(0x10)));
    }
    s = _mm256_shuffle_epi8(k.scales, _mm256_set1_epi16(static_cast<int16_t>(0x8000 | p)));  // [scale p, 0]
    return;
  }
  const int h = p / 4, t = p % 4;
  if (T == KType::Q6_K) {
    w = q6Levels(k.block, p);
  } else {
    const uint8_t* qs = k.block + (T == KType::Q3_K ? offsetof(BlockQ3_K, qs) : offsetof(BlockQ2_K, qs));
    w = _mm256_and_si256(_mm256_srli_epi16(load256(qs + 32 * h), 2 * t), _mm256_set1_epi8(3));
    if (T == KType::Q3_K) {  // q + 4: bit 2 set where hmask's bit 4h + t is
      const __m256i high = _mm256_slli_epi16(_mm256_srli_epi16(load256(k.block), 4 * h + t), 2);
      w = _mm256_or_si256(w, _mm256_and_si256(high, _mm256_set1_epi8(4)));
    }
  }
  // scales 2p (low 128 bits) and 2p + 1 (high 128 bits): word p of each half
  s = _mm256_shuffle_epi8(k.scales, _mm256_set1_epi16(static_cast<int16_t>((2 * p + 1) << 8 | 2 * p)));
}

// [sum of a's lanes, ...], [a's, b's, ...] and [a's, b's, c's, d's]: exact, whatever the order, as no partial sum
// overflows. The one- and two-vector reductions, on decode's path, use shuffles and adds of one uop each where vphaddd
// takes 3 or 4; the four-vector one, for prefill tiles, takes three vphaddd.
MN_INLINE __m128i laneTotals(__m256i a) {
  __m128i v = _mm_add_epi32(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
  v = _mm_add_epi32(v, _mm_unpackhi_epi64(v, v));
  return _mm_add_epi32(v, _mm_shuffle_epi32(v, 1));
}

MN_INLINE __m128i laneTotals(__m256i a, __m256i b) {
  const __m256i ab = _mm256_add_epi32(_mm256_unpacklo_epi32(a, b), _mm256_unpackhi_epi32(a, b));
  const __m128i v = _mm_add_epi32(_mm256_castsi256_si128(ab), _mm256_extracti128_si256(ab, 1));
  return _mm_add_epi32(v, _mm_unpackhi_epi64(v, v));
}

MN_INLINE __m128i laneTotals(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i abcd = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
  return _mm_add_epi32(_mm256_castsi256_si128(abcd), _mm256_extracti128_si256(abcd, 1));
}

template <KType T>
constexpr bool kHasMins = T == KType::Q2_K || T == KType::Q4_K || T == KType::Q5_K;

// sumi[c] and, for the types with mins, summ[c] <- 8 lanes that add up to the super-block k's exact integer sums
// against packed activation column c (x[c * stride]): sum sc * q_w . q_x and sum m * (sum of q_x)
template <KType T, int C>
MN_INLINE void integerSums(const KSuper& k, const PackedK* x, size_t stride, __m256i* sumi, __m256i* summ) {
  for (int c = 0; c < C; c++) sumi[c] = _mm256_setzero_si256();
#pragma GCC unroll 8
  for (int p = 0; p < 8; p++) {
    __m256i w, s;
    piece<T>(k, p, w, s);
    for (int c = 0; c < C; c++) {
      sumi[c] = _mm256_add_epi32(sumi[c], _mm256_madd_epi16(_mm256_maddubs_epi16(w, x[c * stride].q[p]), s));
    }
  }
  for (int c = 0; c < C; c++) {
    const PackedK& xc = x[c * stride];
    const __m256i bsums = _mm256_load_si256(reinterpret_cast<const __m256i*>(xc.bsums));
    if (T == KType::Q6_K || T == KType::Q3_K) {  // the levels' offset: 32 (Q6_K) or 4 (Q3_K) times sum sc * bsum
      const __m256i scaled = _mm256_madd_epi16(k.extra, bsums);
      sumi[c] = _mm256_sub_epi32(sumi[c], _mm256_slli_epi32(scaled, T == KType::Q6_K ? 5 : 2));
    }
    if (kHasMins<T>) {
      const __m256i sums = T == KType::Q2_K ? bsums
                                            : _mm256_zextsi128_si256(_mm_load_si128(
                                                  reinterpret_cast<const __m128i*>(xc.sums32)));
      summ[c] = _mm256_madd_epi16(k.extra, sums);
    }
  }
}

// Lane i < L of acc += its super-block's terms, from the integer sums' lanes sumi[i] and summ[i] (zero past L) and its
// factors dd = d_w * d_x and dm = dmin_w * d_x: acc = fma(sumi, dd, acc), then acc = fma(summ, -dm, acc) for the types
// with mins (scalar::matmulInterleaved's steps for Q4_Kx64).
template <KType T, int L>
MN_INLINE void addTerms(const __m256i (&sumi)[4], const __m256i (&summ)[4], __m128 dd, __m128 dm, __m128& acc) {
  static_assert(L >= 1 && L <= 4, "four lanes");
  if (!kHasMins<T>) {
    const __m128i sums = L == 1   ? laneTotals(sumi[0])
                         : L == 2 ? laneTotals(sumi[0], sumi[1])
                                  : laneTotals(sumi[0], sumi[1], sumi[2], sumi[3]);
    acc = _mm_fmadd_ps(_mm_cvtepi32_ps(sums), dd, acc);
  } else if (L == 1) {  // one reduction gives both: [sumi, summ, ...]
    const __m128 both = _mm_cvtepi32_ps(laneTotals(sumi[0], summ[0]));
    acc = _mm_fmadd_ps(both, dd, acc);
    acc = _mm_fnmadd_ps(_mm_movehdup_ps(both), dm, acc);
  } else if (L == 2) {  // [sumi 0, sumi 1, summ 0, summ 1]
    const __m128 both = _mm_cvtepi32_ps(laneTotals(sumi[0], sumi[1], summ[0], summ[1]));
    acc = _mm_fmadd_ps(both, dd, acc);
    acc = _mm_fnmadd_ps(_mm_movehl_ps(both, both), dm, acc);
  } else {
    acc = _mm_fmadd_ps(_mm_cvtepi32_ps(laneTotals(sumi[0], sumi[1], sumi[2], sumi[3])), dd, acc);
    acc = _mm_fnmadd_ps(_mm_cvtepi32_ps(laneTotals(summ[0], summ[1], summ[2], summ[3])), dm, acc);
  }
}

// Lane c of acc (C <= 4) += one weight super-block . packed activation column c (x[c * stride])
template <KType T, int C>
MN_INLINE void superBlockDots(const uint8_t* block, const PackedK* x, size_t stride, __m128& acc) {
  const KSuper k = prepare<T>(block);
  const __m256i zero = _mm256_setzero_si256();
  __m256i sumi[4] = {zero, zero, zero, zero}, summ[4] = {zero, zero, zero, zero};
  integerSums<T, C>(k, x, stride, sumi, summ);
  if (C == 1) {  // [d_w * d_x, dmin_w * d_x, 0, 0] in one multiply
    const __m128 factors = _mm_mul_ps(k.dAndDmin, _mm_set1_ps(x[0].d));
    addTerms<T, 1>(sumi, summ, factors, _mm_movehdup_ps(factors), acc);
    return;
  }
  const __m128 dx = _mm_setr_ps(x[0].d, C > 1 ? x[stride].d : 0.0f, C > 2 ? x[2 * stride].d : 0.0f,
                                C > 3 ? x[3 * stride].d : 0.0f);
  addTerms<T, C>(sumi, summ, _mm_mul_ps(_mm_shuffle_ps(k.dAndDmin, k.dAndDmin, 0x00), dx),
                 _mm_mul_ps(_mm_shuffle_ps(k.dAndDmin, k.dAndDmin, 0x55), dx), acc);
}

// W (nRows, n) rows [rowBegin, rowEnd) @ x (n,) Q8_K -> y[r], one row streamed at a time
template <KType T>
void decodeK(const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x,
             float* y) {
  constexpr size_t blockBytes = kBlockBytes<T>();
  PackedK packed[kPackBlocks];
  const size_t nBlocks = n / kQKK;
  for (size_t b0 = 0; b0 < nBlocks; b0 += kPackBlocks) {
    const size_t count = nBlocks - b0 < kPackBlocks ? nBlocks - b0 : kPackBlocks;
    packActivations(reinterpret_cast<const BlockQ8_K*>(x) + b0, count, packed);
    for (size_t r = rowBegin; r < rowEnd; r++) {
      const uint8_t* row = w + r * wRowBytes + b0 * blockBytes;
      __m128 acc = _mm_set_ss(b0 == 0 ? 0.0f : y[r]);
      for (size_t b = 0; b < count; b++) {
        for (size_t line = 0; line < blockBytes; line += 64) {
          _mm_prefetch(reinterpret_cast<const char*>(row + b * blockBytes + kPrefetchBytes + line), _MM_HINT_T0);
        }
        superBlockDots<T, 1>(row + b * blockBytes, packed + b, 0, acc);
      }
      y[r] = _mm_cvtss_f32(acc);
    }
  }
}

// Columns per prefill tile, one row at a time: 1 x 4 ran the Q4_K prefill at 76-93 GFLOP/s where 2 x 3 ran at 52-73
// (one thread, 128 columns, W = 14336 x 4096, Zen 3, alternating runs; docs/kernels.md): two rows' accumulators
// and integer sums did not fit the 16 registers.
constexpr size_t kPrefillCols = 4;
constexpr size_t kRowBlock = 64;
constexpr size_t kChunkBlocks = 16;  // super-blocks of activations packed per column and row block

// W row super-blocks [0, count) @ packed X (C columns, kChunkBlocks apart) -> y[c * ldy] (carried on when accumulate)
template <KType T, int C>
void prefillTile(const uint8_t* row, size_t count, const PackedK* packed, float* y, size_t ldy, bool accumulate) {
  constexpr size_t blockBytes = kBlockBytes<T>();
  alignas(16) float sums[4] = {};
  for (int c = 0; c < C && accumulate; c++) sums[c] = y[c * ldy];
  __m128 acc = _mm_load_ps(sums);
  for (size_t b = 0; b < count; b++) superBlockDots<T, C>(row + b * blockBytes, packed + b, kChunkBlocks, acc);
  _mm_store_ps(sums, acc);
  for (int c = 0; c < C; c++) y[c * ldy] = sums[c];
}

using KTileFn = void (*)(const uint8_t* row, size_t count, const PackedK* packed, float* y, size_t ldy,
                         bool accumulate);

// W (nRows, n) rows [rowBegin, rowEnd) @ X (nCols, n) Q8_K -> Y[c * ldy + r]
template <KType T>
void prefillK(const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x,
              size_t actRowBytes, size_t nCols, float* y, size_t ldy) {
  constexpr size_t blockBytes = kBlockBytes<T>();
  static_assert(kPrefillCols == 4, "one tile function per column count below");
  PackedK packed[kPrefillCols * kChunkBlocks];
  const size_t nBlocks = n / kQKK;
  for (size_t blockBegin = rowBegin; blockBegin < rowEnd; blockBegin += kRowBlock) {
    const size_t blockEnd = rowEnd - blockBegin < kRowBlock ? rowEnd : blockBegin + kRowBlock;
    for (size_t c0 = 0; c0 < nCols; c0 += kPrefillCols) {
      const size_t cols = nCols - c0 < kPrefillCols ? nCols - c0 : kPrefillCols;
      const KTileFn tile = cols == 4   ? prefillTile<T, 4>
                           : cols == 3 ? prefillTile<T, 3>
                           : cols == 2 ? prefillTile<T, 2>
                                       : prefillTile<T, 1>;
      for (size_t b0 = 0; b0 < nBlocks; b0 += kChunkBlocks) {
        const size_t count = nBlocks - b0 < kChunkBlocks ? nBlocks - b0 : kChunkBlocks;
        for (size_t c = 0; c < cols; c++) {
          const BlockQ8_K* column = reinterpret_cast<const BlockQ8_K*>(x + (c0 + c) * actRowBytes) + b0;
          packActivations(column, count, packed + c * kChunkBlocks);
        }
        for (size_t r = blockBegin; r < blockEnd; r++) {
          tile(w + r * wRowBytes + b0 * blockBytes, count, packed, y + c0 * ldy + r, ldy, b0 != 0);
        }
      }
    }
  }
}

// From this many columns, Q4_K prefill copies the rows into groups with a level a byte and multiplies them there
// (kQ4_KPrefillAvx2, repacked_avx2.cc), with the same bits. The copy unpacks every level: at 8 columns the 1 x 4 tile's
// best of 4 alternating runs was 88 GFLOP/s against the copy's 70, at 12 they were even, and at 16 the copy's was
// 96-98 against 80-89 (bench/kernels.sh --cols, Zen 3).
constexpr size_t kQ4_KPackedPrefillCols = 16;
// The same for Q6_K (kQ6_KPrefillAvx2), whose copy unpacks every level to a byte: at 128 columns its best of 5-6
// alternating runs was 124-136 GFLOP/s on both FFN shapes, where the 1 x 4 tile's was 86-90 (W = 14336 x 4096) and
// 63-70 (4096 x 14336). The copy costs about as much as 15 columns: at 8-24 columns it ran 0.6-0.8x the tile on the
// first shape (1.0-1.3x on the second), and the two broke even at 32 (bench/kernels.sh, Zen 3).
constexpr size_t kQ6_KPackedPrefillCols = 32;

template <KType T>
void matmulK(const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x,
             size_t actRowBytes, size_t nCols, float* y, size_t ldy) {
  if (nCols == 1) {
    decodeK<T>(w, wRowBytes, n, rowBegin, rowEnd, x, y);
  } else if (T == KType::Q4_K && nCols >= kQ4_KPackedPrefillCols) {
    kQ4_KPrefillAvx2(w, wRowBytes, n, rowBegin, rowEnd, x, actRowBytes, nCols, y, ldy);
  } else if (T == KType::Q6_K && nCols >= kQ6_KPackedPrefillCols) {
    kQ6_KPrefillAvx2(w, wRowBytes, n, rowBegin, rowEnd, x, actRowBytes, nCols, y, ldy);
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

template <BType T>
constexpr size_t bActBytes() {
  return T == BType::Q5_0 ? sizeof(BlockQ8_0) : sizeof(BlockQ8_1);
}

constexpr size_t kSpan32 = 128;  // 32-value blocks per summation span (4096 values)

struct BWeights {
  __m256i q;  // unsigned levels, element order
  float d, m;
};

// The 32 bits of qh as bytes 0x10 (bit set) or 0
MN_INLINE __m256i fifthBits(uint32_t qh) {
  const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(qh)),
                                             _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202,
                                                                0x0303030303030303));
  const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ull));
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(16));
}

template <BType T>
MN_INLINE BWeights unpackBlock(const uint8_t* block) {
  const uint8_t* qs = block + (T == BType::Q4_1 ? 4 : T == BType::Q5_0 ? 6 : 8);
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i low4 = _mm_set1_epi8(0x0F);
  BWeights u;
  u.q = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(packed, 4), low4), _mm_and_si128(packed, low4));
  if (T != BType::Q4_1) u.q = _mm256_or_si256(u.q, fifthBits(loadU32(block + (T == BType::Q5_0 ? 2 : 4))));
  u.d = halfToFloat(loadU16(block));
  u.m = T == BType::Q5_0 ? 0.0f : halfToFloat(loadU16(block + 2));
  return u;
}

// acc + this block's contribution: d_w * d_x * sum(q_w * q_x) lane-wise (Q5_0: q_w - 16), plus m_w * s_x in lane 0
template <BType T>
MN_INLINE __m256 blockDot(const BWeights& u, const uint8_t* xBlock, __m256 acc) {
  const __m256i xq = load256(xBlock + (T == BType::Q5_0 ? 2 : 4));
  __m256i pairs = _mm256_maddubs_epi16(u.q, xq);
  if (T == BType::Q5_0) pairs = _mm256_sub_epi16(pairs, _mm256_maddubs_epi16(_mm256_set1_epi8(16), xq));
  const __m256 dot = _mm256_cvtepi32_ps(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
  const float scale = u.d * halfToFloat(loadU16(xBlock));
  if (T == BType::Q5_0) return _mm256_fmadd_ps(dot, _mm256_set1_ps(scale), acc);
  const __m256 minTerm = _mm256_zextps128_ps256(_mm_set_ss(u.m * halfToFloat(loadU16(xBlock + 2))));
  return _mm256_add_ps(acc, _mm256_fmadd_ps(dot, _mm256_set1_ps(scale), minTerm));
}

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
  if (rows == 2) tileBlocks<T, 2, C>(w, wRowBytes, nBlocks, x, actRowBytes, y, ldy);
  else tileBlocks<T, 1, C>(w, wRowBytes, nBlocks, x, actRowBytes, y, ldy);
}

using BTileFn = void (*)(size_t rows, const uint8_t* w, size_t wRowBytes, size_t nBlocks, const uint8_t* x,
                         size_t actRowBytes, float* y, size_t ldy);

template <BType T>
void matmulBlocks(const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x,
                  size_t actRowBytes, size_t nCols, float* y, size_t ldy) {
  const size_t nBlocks = n / kQK;
  if (nCols == 1) {
    for (size_t r = rowBegin; r < rowEnd; r++) y[r] = rowDotBlocks<T>(w + r * wRowBytes, x, nBlocks);
    return;
  }
  constexpr size_t kRows = 2, kCols = 3;
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
extern const QuantTypeKernels kQuantTypesAvx2 = {matmul, dequantizeRow};
}  // namespace x86
}  // namespace mn

#endif  // x86-64
