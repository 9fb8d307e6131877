// AVX2 matmul over rows interleaved at load (Q4_0x128 against Q8_0 activations, Q4_Kx64 against Q8_K; layouts in
// quants.h), and the prefill of Q4_0, Q4_K and Q6_K rows as the file has them, which copies them into Q4_0x128,
// Q4_Kx64Bytes and Q6_Kx64Bytes groups first (the last two this file's own, a level a byte; repacked Q4_Kx64 rows are
// unpacked into Q4_Kx64Bytes for prefill too).
//
// Half a line of a block's quants holds 4 bytes (8 levels) of each of 8 rows, so a vector's eight 32-bit lanes are 8
// rows. Q4_0: vpmaddubsw of the low (high) nibbles with 4 of the activation's values broadcast adds 2 pair sums to
// every row's lane; eight of them sum a row's whole 32-value block, one vpmaddwd folds the pairs, and -8 * the block's
// activation sum cancels the levels' offset. Each (row, column) then adds its blocks in order,
// acc = fma(float(sum), d_w * d_x, acc), exactly as scalar::matmulInterleaved, the AVX2 file-layout decode and
// llama.cpp do: decode, prefill, the scalar reference and mapped weights agree to the bit. Q4_K does the same per
// 32-value sub-block with its 6-bit scale in the vpmaddwd, and adds each super-block's exact sums as
// scalar::matmulInterleaved does, which the AVX2 file-layout K-quant kernels do too (quant_types_avx2.cc); Q6_K the
// same per 16-value sub-block.
//
// Decode walks each group block by block (one memory stream: 2304 contiguous bytes a Q4_0x128 block, 9472 a Q4_Kx64
// one), keeping the sets of 8 rows' sums in L1, and prefetches each line's successor 1.5 KB ahead. Prefill takes a run
// of 16 rows (one line per 4 values) against 2 columns whose activations were broadcast once into memory: each vector
// loaded serves two vpmaddubsw, and every operand comes straight from a load, where broadcasting in the loop took the
// shuffle ports the multiplies need.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/quants.h"
#include "kernels/x86/x86_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)

#define MN_X86_TARGET "avx2,fma,f16c"
#include "kernels/x86/target_begin.h"

#include "kernels/x86/simd_common.h"

namespace mn {
namespace x86 {
namespace {

constexpr size_t kUnitRows = 8;                            // rows per vector: a unit
constexpr size_t kGroupUnits = kQ4_0x128Rows / kUnitRows;  // 16
constexpr size_t kActChunkBlocks = 512;                    // activation offsets and scales prepared at a time

// Decode prefetches, with each line of weights it loads, the line kDecodePrefetchBytes after it into L1. A kernel that
// computes a few instructions per line keeps too few lines in flight to stream at memory speed by itself: each
// prefetched block whole, 4.5-9 KB ahead, in a burst at its start, Q4_0x128 decode streamed 0.78-0.82 of a plain read
// of the same memory and Q4_Kx64 0.63-0.72 (though it computes 2-3x as fast in L2). Line by line, 1-2 KB ahead, they
// streamed 0.90-1.07 and 0.86-0.99; 3-32 KB ahead, 0.80-0.93. (2 threads, 2 MiB pages, both FFN shapes, median of
// 20-24 alternating passes, Zen 3.)
constexpr size_t kDecodePrefetchBytes = 1536;

// -8 * sum(q_x) of a Q8_0 block: the offset of Q4_0's unsigned levels
MN_INLINE int32_t levelOffset(const BlockQ8_0& block) {
  int32_t sum = 0;
  for (int8_t q : block.qs) sum += q;
  return -8 * sum;
}

// Blocks [b0, b0 + count) of one activation row -> their level offsets and scales
void prepareActivations(const uint8_t* x, size_t b0, size_t count, int32_t* offsets, float* scales) {
  const BlockQ8_0* blocks = reinterpret_cast<const BlockQ8_0*>(x) + b0;
  for (size_t i = 0; i < count; i++) {
    offsets[i] = levelOffset(blocks[i]);
    scales[i] = halfToFloat(blocks[i].d);
  }
}

// The unpacked levels of one block of 8 rows: low[k] holds each row's values 4k..4k+3, high[k] its 16+4k..16+4k+3
struct UnitLevels {
  __m256i low[4], high[4];
};

// Unit u (rows 8u .. 8u + 7 of the group) of the group block at `block` (and the lines kDecodePrefetchBytes after its
// lines prefetched when `prefetch`)
MN_INLINE UnitLevels unitLevels(const uint8_t* block, size_t u, bool prefetch) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const size_t s = u / 2, half = 32 * (u % 2);
  UnitLevels levels;
  for (size_t k = 0; k < 4; k++) {
    if (prefetch) {
      _mm_prefetch(reinterpret_cast<const char*>(block + q4_0x128LineOffset(s, k) + kDecodePrefetchBytes), _MM_HINT_T0);
    }
    const __m256i quants =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + q4_0x128LineOffset(s, k) + half));
    levels.low[k] = _mm256_and_si256(quants, low4);
    levels.high[k] = _mm256_and_si256(_mm256_srli_epi16(quants, 4), low4);
  }
  return levels;
}

// d_w of unit u's 8 rows in the group block at `block`
MN_INLINE __m256 unitScales(const uint8_t* block, size_t u) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2 * kUnitRows * u)));
}

// sum_j (q_w - 8) * q_x of each of the 8 rows' block against activation block xb (offset = -8 * sum(q_x))
MN_INLINE __m256i unitSums(const UnitLevels& w, const BlockQ8_0& xb, int32_t offset) {
  const uint8_t* xq = reinterpret_cast<const uint8_t*>(xb.qs);
  __m256i pairs = _mm256_setzero_si256();
  for (size_t k = 0; k < 4; k++) {
    const __m256i xLow = _mm256_set1_epi32(static_cast<int32_t>(loadU32(xq + 4 * k)));
    const __m256i xHigh = _mm256_set1_epi32(static_cast<int32_t>(loadU32(xq + 16 + 4 * k)));
    pairs = _mm256_add_epi16(pairs, _mm256_maddubs_epi16(w.low[k], xLow));
    pairs = _mm256_add_epi16(pairs, _mm256_maddubs_epi16(w.high[k], xHigh));
  }
  return _mm256_add_epi32(_mm256_madd_epi16(pairs, _mm256_set1_epi16(1)), _mm256_set1_epi32(offset));
}

// The rows of group g (of groupRows rows) in [rowBegin, rowEnd), unit by unit: rows [lo(u), hi(u)) of unit u (none
// when hi <= lo), and the unit's lanes of y loaded and stored
struct GroupRange {
  size_t groupRow, first, end;

  GroupRange(size_t g, size_t groupRows, size_t rowBegin, size_t rowEnd)
      : groupRow(g * groupRows),
        first(rowBegin > groupRow ? rowBegin - groupRow : 0),
        end(rowEnd - groupRow < groupRows ? rowEnd - groupRow : groupRows) {}
  size_t lo(size_t u) const { return u * kUnitRows > first ? u * kUnitRows : first; }
  size_t hi(size_t u) const { return (u + 1) * kUnitRows < end ? (u + 1) * kUnitRows : end; }
  __m256 load(const float* y, size_t u) const {
    return hi(u) > lo(u) ? loadLanes(y + groupRow + lo(u), lo(u) - u * kUnitRows, hi(u) - lo(u)) : _mm256_setzero_ps();
  }
  void store(float* y, size_t u, __m256 v) const {
    if (hi(u) > lo(u)) storeLanes(y + groupRow + lo(u), v, lo(u) - u * kUnitRows, hi(u) - lo(u));
  }
};

// W rows [rowBegin, rowEnd) @ x (n,) -> y[r]: per chunk of activation blocks (prepared once), each group's units
// [u0, u1) walked block by block, their sums carried in y from one chunk to the next
void decode(const uint8_t* w, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x, float* y) {
  const size_t nBlocks = n / 32, groupBytes = nBlocks * kQ4_0x128BlockBytes;
  alignas(32) int32_t offsets[kActChunkBlocks];
  alignas(32) float scales[kActChunkBlocks];
  for (size_t b0 = 0; b0 < nBlocks; b0 += kActChunkBlocks) {
    const size_t count = nBlocks - b0 < kActChunkBlocks ? nBlocks - b0 : kActChunkBlocks;
    prepareActivations(x, b0, count, offsets, scales);
    const BlockQ8_0* xb = reinterpret_cast<const BlockQ8_0*>(x) + b0;
    for (size_t g = rowBegin / kQ4_0x128Rows; g * kQ4_0x128Rows < rowEnd; g++) {
      const GroupRange range(g, kQ4_0x128Rows, rowBegin, rowEnd);
      const size_t u0 = range.first / kUnitRows, u1 = (range.end + kUnitRows - 1) / kUnitRows;
      __m256 acc[kGroupUnits];
      for (size_t u = u0; u < u1; u++) acc[u] = b0 == 0 ? _mm256_setzero_ps() : range.load(y, u);
      for (size_t i = 0; i < count; i++) {
        const uint8_t* block = w + g * groupBytes + (b0 + i) * kQ4_0x128BlockBytes;
        for (size_t at = 0; at < q4_0x128LineOffset(0, 0); at += 64) {  // the scales' lines, as the units' lines
          _mm_prefetch(reinterpret_cast<const char*>(block + at + kDecodePrefetchBytes), _MM_HINT_T0);
        }
        const __m256 dx = _mm256_set1_ps(scales[i]);
        for (size_t u = u0; u < u1; u++) {  // a line once: with its first unit in the range
          const __m256i sums = unitSums(unitLevels(block, u, u % 2 == 0 || u == u0), xb[i], offsets[i]);
          acc[u] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_mul_ps(unitScales(block, u), dx), acc[u]);
        }
      }
      for (size_t u = u0; u < u1; u++) range.store(y, u, acc[u]);
    }
  }
}

// One column's activation block, prepared for prefill so that the kernel's loads need no broadcast: its values
// 4k..4k+3 (k < 4) and 16 + 4k..16 + 4k + 3 (4 + k) each broadcast to a whole vector, the level offsets, and d_x.
// vpmaddubsw puts values 4k, 4k + 1, 16 + 4k, 17 + 4k of every k into the first i16 of each lane and the other
// two of each four into the second, so `offset` holds -8 times each of those two sums, broadcast: starting each
// lane's i16 pairs there cancels the levels' offset inside the pairs, where no partial sum passes 16 * 8 * 128 = 16384.
struct alignas(32) PreparedBlock {
  __m256i x[8];
  __m256i offset;
  __m256 d;
};

constexpr size_t kPrefillCols = 2;  // columns per tile
constexpr size_t kRunRows = 16;

void prepareBlock(const BlockQ8_0& xb, PreparedBlock& out) {
  const uint8_t* q = reinterpret_cast<const uint8_t*>(xb.qs);
  for (size_t k = 0; k < 4; k++) {
    out.x[k] = _mm256_set1_epi32(static_cast<int32_t>(loadU32(q + 4 * k)));
    out.x[4 + k] = _mm256_set1_epi32(static_cast<int32_t>(loadU32(q + 16 + 4 * k)));
  }
  // pairs holds x[2i] + x[2i + 1] in i16 i: the even i16s of all 8 lanes sum to the first offset, the odd to the second
  const __m256i values = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q));
  const __m256i pairs = _mm256_maddubs_epi16(_mm256_set1_epi8(1), values);
  __m128i sums = _mm_add_epi16(_mm256_castsi256_si128(pairs), _mm256_extracti128_si256(pairs, 1));
  sums = _mm_add_epi16(sums, _mm_unpackhi_epi64(sums, sums));
  sums = _mm_add_epi16(sums, _mm_shuffle_epi32(sums, 1));
  out.offset = _mm256_broadcastd_epi32(_mm_mullo_epi16(sums, _mm_set1_epi16(-8)));
  out.d = _mm256_set1_ps(halfToFloat(xb.d));
}

// Q4_0x128 prefill: units 2s and 2s + 1 (rows 16s .. 16s + 15 of the group: the two halves of each of their lines)
// against C prepared columns (x[c * kChunkBlocks + i] is column c's block i), blocks [0, count) from the group block
// at `block`; acc[u][c] holds unit 2s + u's lanes for column c.
struct Q4_0Layout {
  using Activation = BlockQ8_0;
  using Prepared = PreparedBlock;
  static constexpr size_t kGroupRows = kQ4_0x128Rows;
  static constexpr size_t kBlockValues = 32;
  static constexpr size_t kGroupBlockBytes = kQ4_0x128BlockBytes;
  static constexpr size_t kFileBlockBytes = sizeof(BlockQ4_0);
  static constexpr size_t kChunkBlocks = 16;  // a chunk of a group is 37 KB; a tile's prepared activations 10 KB
  static constexpr size_t kPanelGroups = 1;   // groups sharing each column pair's prepared chunk
  static void prepare(const BlockQ8_0& xb, PreparedBlock& out) { prepareBlock(xb, out); }
  static void pack(const uint8_t* src, size_t srcRowBytes, size_t rows, size_t nBlocks, uint8_t* dst) {
    packQ4_0x128Group(src, srcRowBytes, rows, nBlocks, dst);
  }

  template <size_t C>
  static MN_INLINE void runTile(const uint8_t* block, size_t s, size_t count, const PreparedBlock* x,
                                __m256 (&acc)[2][C]) {
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    for (size_t i = 0; i < count; i++, block += kQ4_0x128BlockBytes) {
      __m256i pairs[2][C];
      for (size_t c = 0; c < C; c++) pairs[0][c] = pairs[1][c] = x[c * kChunkBlocks + i].offset;
      // Kept rolled: unrolled, GCC loads every k's operands first and spills them.
#pragma GCC unroll 1
      for (size_t k = 0; k < 4; k++) {
        const uint8_t* line = block + q4_0x128LineOffset(s, k);
        const __m256i q0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(line));
        const __m256i q1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(line + 32));
        const __m256i low[2] = {_mm256_and_si256(q0, low4), _mm256_and_si256(q1, low4)};
        const __m256i high[2] = {_mm256_and_si256(_mm256_srli_epi16(q0, 4), low4),
                                 _mm256_and_si256(_mm256_srli_epi16(q1, 4), low4)};
        for (size_t c = 0; c < C; c++) {
          const PreparedBlock& xb = x[c * kChunkBlocks + i];
          for (size_t u = 0; u < 2; u++) {
            pairs[u][c] = _mm256_add_epi16(pairs[u][c], _mm256_maddubs_epi16(low[u], xb.x[k]));
            pairs[u][c] = _mm256_add_epi16(pairs[u][c], _mm256_maddubs_epi16(high[u], xb.x[4 + k]));
          }
        }
      }
      for (size_t u = 0; u < 2; u++) {
        const __m256 dw = unitScales(block, 2 * s + u);
        for (size_t c = 0; c < C; c++) {
          const __m256i sums = _mm256_madd_epi16(pairs[u][c], _mm256_set1_epi16(1));
          const __m256 scale = _mm256_mul_ps(dw, x[c * kChunkBlocks + i].d);
          acc[u][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), scale, acc[u][c]);
        }
      }
    }
  }
};

// A Q8_K super-block's values 4k .. 4k + 3 (k < 64), each group broadcast to a whole vector: out[k]
void broadcastFours(const BlockQ8_K& xb, __m256i* out) {
  const uint8_t* q = reinterpret_cast<const uint8_t*>(xb.qs);
  for (size_t k = 0; k < 64; k++) out[k] = _mm256_set1_epi32(static_cast<int32_t>(loadU32(q + 4 * k)));
}

// A Q8_K super-block's sums of sub-blocks 2i and 2i + 1 as an i16 pair in every lane (sums[i], for the mins), and its
// d_x broadcast
struct alignas(32) SuperBlockSums {
  __m256i sums[4];
  __m256 d;
};

void prepareSums(const BlockQ8_K& xb, SuperBlockSums& out) {
  for (size_t i = 0; i < 4; i++) {
    const uint16_t even = static_cast<uint16_t>(xb.bsums[4 * i] + xb.bsums[4 * i + 1]);
    const uint16_t odd = static_cast<uint16_t>(xb.bsums[4 * i + 2] + xb.bsums[4 * i + 3]);
    out.sums[i] = _mm256_set1_epi32(static_cast<int32_t>(even | static_cast<uint32_t>(odd) << 16));
  }
  out.d = _mm256_set1_ps(xb.d);
}

// One column's Q8_K super-block prepared for the Q4_K tile: its sums, and x[8j + k] holding its values
// 32j + 4k .. 32j + 4k + 3 (sub-block j) broadcast.
struct alignas(32) PreparedSuperBlock : SuperBlockSums {
  __m256i x[64];
};

void prepareSuperBlock(const BlockQ8_K& xb, PreparedSuperBlock& out) {
  prepareSums(xb, out);
  broadcastFours(xb, out.x);
}

// Moves 8 rows' vectors of 8 words into 8 vectors of the 8 rows' words: word j of v[i] -> word i of v[j]
MN_INLINE void transposeWords8x8(__m256i (&v)[8]) {
  __m256i t[8], u[8];
  for (size_t i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_epi32(v[i], v[i + 1]);
    t[i + 1] = _mm256_unpackhi_epi32(v[i], v[i + 1]);
  }
  for (size_t i = 0; i < 8; i += 4) {
    u[i] = _mm256_unpacklo_epi64(t[i], t[i + 2]);
    u[i + 1] = _mm256_unpackhi_epi64(t[i], t[i + 2]);
    u[i + 2] = _mm256_unpacklo_epi64(t[i + 1], t[i + 3]);
    u[i + 3] = _mm256_unpackhi_epi64(t[i + 1], t[i + 3]);
  }
  for (size_t k = 0; k < 4; k++) {
    v[k] = _mm256_permute2x128_si256(u[k], u[4 + k], 0x20);
    v[4 + k] = _mm256_permute2x128_si256(u[k], u[4 + k], 0x31);
  }
}

// The prefill of K-quant rows as the file has them copies 64 rows a super-block at a time into this file's own
// layouts, with a level per byte, so the tiles read their operands as they are (no decode reads them). A group block
// starts with 4 runs of 16 rows, 64 lines each: line k holds values 4k .. 4k + 3 of unit 0's 8 rows, a row a 32-bit
// lane, then unit 1's. Each layout's scales and d follow the lines.
constexpr size_t kBytesGroupRows = 64;
constexpr size_t bytesLineOffset(size_t s, size_t k) { return 4096 * s + 64 * k; }
constexpr size_t kBytesLinesBytes = 16384;

// Q4_Kx64Bytes: then per run, 32-value sub-block and unit, the 8 rows' scales, each in both halves of its lane; per
// run, pair of sub-blocks 2i, 2i + 1 and unit, the 8 rows' two mins as an i16 pair; the 64 rows' fp16 d; their dmin.
constexpr size_t q4_KBytesScaleOffset(size_t s, size_t j) { return kBytesLinesBytes + 512 * s + 64 * j; }
constexpr size_t q4_KBytesMinOffset(size_t s, size_t i) { return kBytesLinesBytes + 2048 + 256 * s + 64 * i; }
constexpr size_t kQ4_KBytesDOffset = kBytesLinesBytes + 3072;
constexpr size_t kQ4_KBytesDminOffset = kQ4_KBytesDOffset + 2 * kBytesGroupRows;
constexpr size_t kQ4_KBytesBlockBytes = kQ4_KBytesDminOffset + 2 * kBytesGroupRows;

// Values 32p .. 32p + 31 (p < 8) of a Q4_K super-block: its 4-bit levels, one byte each in element order
MN_INLINE __m256i q4Levels(const uint8_t* block, int p) { return nibbleLevels(block + offsetof(BlockQ4_K, qs), p); }

// Rows [0, rows) (at most 64; the rest zero), super-blocks [0, nBlocks) of Block rows -> nBlocks group blocks of
// kBlockBytes: per unit of 8 rows, each 32 values' levels (levels(block, p), q4Levels or q6Levels) unpacked per row
// and moved as one 8 x 8 transpose of 32-bit words; then rest(block, unit, out) copies the unit's scales and d.
template <typename Block, size_t kBlockBytes, typename Levels, typename Rest>
MN_INLINE void packBytesGroup(const uint8_t* src, size_t srcRowBytes, size_t rows, size_t nBlocks, uint8_t* dst,
                              Levels levels, Rest rest) {
  alignas(32) static const uint8_t kZeroBlock[sizeof(Block)] = {};
  for (size_t b = 0; b < nBlocks; b++, dst += kBlockBytes) {
    for (size_t unit = 0; unit < kBytesGroupRows / kUnitRows; unit++) {
      const uint8_t* block[8];  // rows past `rows` read as zero
      for (size_t i = 0; i < 8; i++) {
        const size_t row = kUnitRows * unit + i;
        block[i] = row < rows ? src + row * srcRowBytes + b * sizeof(Block) : kZeroBlock;
      }
      __m256i v[8];
      for (int p = 0; p < 8; p++) {
        for (size_t i = 0; i < 8; i++) v[i] = levels(block[i], p);
        transposeWords8x8(v);
        for (size_t k = 0; k < 8; k++) {
          uint8_t* line = dst + bytesLineOffset(unit / 2, 8 * p + k) + 32 * (unit % 2);
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(line), v[k]);
        }
      }
      rest(block, unit, dst);
    }
  }
}

// Q4_K rows -> Q4_Kx64Bytes blocks (packBytesGroup), the scales and the pairs of mins moved as the levels are
void packQ4_KBytesGroupAvx2(const uint8_t* src, size_t srcRowBytes, size_t rows, size_t nBlocks, uint8_t* dst) {
  packBytesGroup<BlockQ4_K, kQ4_KBytesBlockBytes>(src, srcRowBytes, rows, nBlocks, dst, q4Levels,
                                                  [](const uint8_t* const (&block)[8], size_t unit, uint8_t* out) {
    const size_t s = unit / 2, half = unit % 2;
    __m128i bytes[8];  // each row's scales, then its mins
    for (size_t i = 0; i < 8; i++) {
      const size_t row = kUnitRows * unit + i;
      std::memcpy(out + kQ4_KBytesDOffset + 2 * row, block[i] + offsetof(BlockQ4_K, d), 2);
      std::memcpy(out + kQ4_KBytesDminOffset + 2 * row, block[i] + offsetof(BlockQ4_K, dmin), 2);
      bytes[i] = q4ScaleBytes(block[i] + offsetof(BlockQ4_K, scales));
    }
    __m256i v[8];
    for (size_t i = 0; i < 8; i++) v[i] = replicateWords(_mm256_cvtepu8_epi32(bytes[i]));
    transposeWords8x8(v);
    for (size_t j = 0; j < 8; j++) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + q4_KBytesScaleOffset(s, j) + 32 * half), v[j]);
    }
    // a row's 8 mins as words: its pairs of sub-blocks are 32-bit words 0..3 (4..7 are zero)
    for (size_t i = 0; i < 8; i++) v[i] = _mm256_cvtepu8_epi16(_mm_srli_si128(bytes[i], 8));
    transposeWords8x8(v);
    for (size_t i = 0; i < 4; i++) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + q4_KBytesMinOffset(s, i) + 32 * half), v[i]);
    }
  });
}

// Sub-block j of the byte-level layouts' run s (lines N j .. N j + N - 1) against C columns, whose broadcast values
// are xs[c][k] for line k: each row's i16 pairs start at start[c] and add the lines' vpmaddubsw, then vpmaddwd with
// the sub-block's scales (unit u's at scales + 32 u) adds them into sumi[u][c]. Unrolled, with each running sum held
// in a register (inRegister), which stops GCC adding the products as a tree and spilling them.
template <size_t N, size_t C>
MN_INLINE void addSubBlock(const uint8_t* block, size_t s, size_t j, const __m256i* const (&xs)[C],
                           const __m256i (&start)[C], const uint8_t* scales, __m256i (&sumi)[2][C]) {
  __m256i pairs[2][C];
  for (size_t c = 0; c < C; c++) pairs[0][c] = pairs[1][c] = start[c];
#pragma GCC unroll 8
  for (size_t i = 0; i < N; i++) {  // GCC unrolls this loop only with constant bounds
    const size_t k = N * j + i;
    const uint8_t* line = block + bytesLineOffset(s, k);
    const __m256i levels[2] = {inRegister(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(line))),
                               inRegister(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(line + 32)))};
    for (size_t c = 0; c < C; c++) {
      const __m256i xk = inRegister(xs[c][k]);
      for (size_t u = 0; u < 2; u++) {
        pairs[u][c] = inRegister(_mm256_add_epi16(pairs[u][c], _mm256_maddubs_epi16(levels[u], xk)));
      }
    }
  }
  for (size_t u = 0; u < 2; u++) {
    const __m256i unitScales = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(scales + 32 * u));
    for (size_t c = 0; c < C; c++) {
      sumi[u][c] = _mm256_add_epi32(sumi[u][c], _mm256_madd_epi16(pairs[u][c], unitScales));
    }
  }
}

// Q4_Kx64Bytes prefill: as Q4_0Layout's tile, per super-block. A row's i16 pairs sum one sub-block (16 pairs of at
// most 15 * 128 each: under 32768), then vpmaddwd applies the row's sub-block scale, and the mins meet the
// activations' sub-block sums two sub-blocks per vpmaddwd. Every (row, column) adds its super-blocks in order as
// scalar::matmulInterleaved does: acc = fma(sumi, d_w * d_x, acc), then acc = fma(summ, -(dmin_w * d_x), acc).
// The tile ran out of instructions the core could issue (about 5 a cycle), not of multipliers: levels stored a
// byte each need no masks or shifts, and addSubBlock is unrolled. 1823 -> 1107 instructions a super-block of 16 rows
// x 2 columns (callgrind); 1.18-1.70x the nibble tile's GFLOP/s in the same process.
struct Q4_KLayout {
  using Activation = BlockQ8_K;
  using Prepared = PreparedSuperBlock;
  static constexpr size_t kGroupRows = kBytesGroupRows;
  static constexpr size_t kBlockValues = kQKK;
  static constexpr size_t kGroupBlockBytes = kQ4_KBytesBlockBytes;
  static constexpr size_t kFileBlockBytes = sizeof(BlockQ4_K);
  // A group's super-block is 19 KB. Four groups (77 KB, in L2) share each prepared chunk, whose 64 broadcasts per
  // super-block and column took 12% of the time when they served one group. Chunks of two super-blocks (154 KB) ran
  // the tile at 0.94x.
  static constexpr size_t kChunkBlocks = 1;
  static constexpr size_t kPanelGroups = 4;
  static void prepare(const BlockQ8_K& xb, PreparedSuperBlock& out) { prepareSuperBlock(xb, out); }
  static void pack(const uint8_t* src, size_t srcRowBytes, size_t rows, size_t nBlocks, uint8_t* dst) {
    packQ4_KBytesGroupAvx2(src, srcRowBytes, rows, nBlocks, dst);
  }

  template <size_t C>
  static MN_INLINE void runTile(const uint8_t* block, size_t s, size_t count, const PreparedSuperBlock* x,
                                __m256 (&acc)[2][C]) {
    for (size_t i = 0; i < count; i++, block += kQ4_KBytesBlockBytes) {
      const __m256i* broadcasts[C];
      __m256i start[C], sumi[2][C];
      for (size_t c = 0; c < C; c++) {
        broadcasts[c] = x[c * kChunkBlocks + i].x;
        start[c] = sumi[0][c] = sumi[1][c] = _mm256_setzero_si256();
      }
      for (size_t j = 0; j < 8; j++) {
        addSubBlock<8, C>(block, s, j, broadcasts, start, block + q4_KBytesScaleOffset(s, j), sumi);
      }
      for (size_t u = 0; u < 2; u++) {
        __m256i mins[4];  // the mins of sub-blocks 2i and 2i + 1 as each row's i16 pair
        for (size_t i2 = 0; i2 < 4; i2++) {
          mins[i2] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + q4_KBytesMinOffset(s, i2) + 32 * u));
        }
        const size_t row = kRunRows * s + kUnitRows * u;
        const __m256 dw =
            _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + kQ4_KBytesDOffset + 2 * row)));
        const __m256 dminw =
            _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + kQ4_KBytesDminOffset + 2 * row)));
        for (size_t c = 0; c < C; c++) {
          const PreparedSuperBlock& xs = x[c * kChunkBlocks + i];
          __m256i summ = _mm256_madd_epi16(mins[0], xs.sums[0]);
          for (size_t i2 = 1; i2 < 4; i2++) summ = _mm256_add_epi32(summ, _mm256_madd_epi16(mins[i2], xs.sums[i2]));
          acc[u][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[u][c]), _mm256_mul_ps(dw, xs.d), acc[u][c]);
          acc[u][c] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(summ), _mm256_mul_ps(dminw, xs.d), acc[u][c]);
        }
      }
    }
  }
};

// Q6_Kx64Bytes: then per run, sub-block of 16 values and unit, the 8 rows' scales, each in both halves of its lane;
// then the 64 rows' fp16 d. (Q6_K has no repacked mode.)
constexpr size_t q6_KBytesScaleOffset(size_t s, size_t j) { return kBytesLinesBytes + 1024 * s + 64 * j; }
constexpr size_t kQ6_KBytesDOffset = kBytesLinesBytes + 4096;
constexpr size_t kQ6_KBytesBlockBytes = kQ6_KBytesDOffset + 2 * kBytesGroupRows;

// One column's Q8_K super-block prepared for the Q6_K tile: x[k] holds its values 4k .. 4k + 3 broadcast; offset[j]
// the start of sub-block j's i16 pairs, -32 times the sums of its values 4k, 4k + 1 and of 4k + 2, 4k + 3 (every k
// of the sub-block) in every lane, which cancels the levels' offset of 32 inside the pairs; and d its d_x.
struct alignas(32) PreparedQ6SuperBlock {
  __m256i x[64];
  __m256i offset[16];
  __m256 d;
};

void prepareQ6SuperBlock(const BlockQ8_K& xb, PreparedQ6SuperBlock& out) {
  broadcastFours(xb, out.x);
  const uint8_t* q = reinterpret_cast<const uint8_t*>(xb.qs);
  for (size_t j = 0; j < 16; j += 2) {
    // lane k of pairs: (q[4k] + q[4k + 1], q[4k + 2] + q[4k + 3]) of sub-blocks j (lanes 0..3) and j + 1 (4..7)
    const __m256i pairs = _mm256_maddubs_epi16(_mm256_set1_epi8(1),
                                               _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 16 * j)));
    __m256i sums = _mm256_add_epi16(pairs, _mm256_shuffle_epi32(pairs, 0x4E));
    sums = _mm256_add_epi16(sums, _mm256_shuffle_epi32(sums, 0xB1));
    const __m256i offsets = _mm256_mullo_epi16(sums, _mm256_set1_epi16(-32));
    out.offset[j] = _mm256_permutevar8x32_epi32(offsets, _mm256_setzero_si256());
    out.offset[j + 1] = _mm256_permutevar8x32_epi32(offsets, _mm256_set1_epi32(4));
  }
  out.d = _mm256_set1_ps(xb.d);
}

// Q6_K rows -> Q6_Kx64Bytes blocks (packBytesGroup), the 16 scales moved as the levels are
void packQ6_KBytesGroupAvx2(const uint8_t* src, size_t srcRowBytes, size_t rows, size_t nBlocks, uint8_t* dst) {
  packBytesGroup<BlockQ6_K, kQ6_KBytesBlockBytes>(src, srcRowBytes, rows, nBlocks, dst, q6Levels,
                                                  [](const uint8_t* const (&block)[8], size_t unit, uint8_t* out) {
    for (size_t i = 0; i < 8; i++) {
      std::memcpy(out + kQ6_KBytesDOffset + 2 * (kUnitRows * unit + i), block[i] + offsetof(BlockQ6_K, d), 2);
    }
    __m256i v[8];
    for (size_t h = 0; h < 2; h++) {  // sub-blocks 8h .. 8h + 7
      for (size_t i = 0; i < 8; i++) {
        const __m128i scales =
            _mm_loadl_epi64(reinterpret_cast<const __m128i*>(block[i] + offsetof(BlockQ6_K, scales) + 8 * h));
        v[i] = replicateWords(_mm256_cvtepi8_epi32(scales));
      }
      transposeWords8x8(v);
      for (size_t j = 0; j < 8; j++) {
        uint8_t* scalesOut = out + q6_KBytesScaleOffset(unit / 2, 8 * h + j) + 32 * (unit % 2);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(scalesOut), v[j]);
      }
    }
  });
}

// Q6_Kx64Bytes prefill: as Q4_0Layout's tile, per 16-value sub-block. Each row's i16 pair starts at the prepared
// offset and adds 8 products each: every partial sum is 8 terms of (q - 32) * x or -32 * x, at most 32 * 127 apart
// from zero (Q8_K's values lie in [-127, 127]), so it stays within 8 * 4064 = 32512. vpmaddwd applies the row's
// scale, and each (row, column) adds its super-block's exact sum as the AVX2 file-layout Q6_K kernel does:
// acc = fma(sumi, d_w * d_x, acc).
struct Q6_KLayout {
  using Activation = BlockQ8_K;
  using Prepared = PreparedQ6SuperBlock;
  static constexpr size_t kGroupRows = kBytesGroupRows;
  static constexpr size_t kBlockValues = kQKK;
  static constexpr size_t kGroupBlockBytes = kQ6_KBytesBlockBytes;
  static constexpr size_t kFileBlockBytes = sizeof(BlockQ6_K);
  // A group's super-block is 20 KB. Four groups (80 KB, in L2) share each prepared chunk, whose broadcasts took 9% of
  // the time with two; with four the kernel's best of 6 alternating runs went from 104 to 107-117 GFLOP/s.
  static constexpr size_t kChunkBlocks = 1;
  static constexpr size_t kPanelGroups = 4;
  static void prepare(const BlockQ8_K& xb, PreparedQ6SuperBlock& out) { prepareQ6SuperBlock(xb, out); }
  static void pack(const uint8_t* src, size_t srcRowBytes, size_t rows, size_t nBlocks, uint8_t* dst) {
    packQ6_KBytesGroupAvx2(src, srcRowBytes, rows, nBlocks, dst);
  }

  template <size_t C>
  static MN_INLINE void runTile(const uint8_t* block, size_t s, size_t count, const PreparedQ6SuperBlock* x,
                                __m256 (&acc)[2][C]) {
    for (size_t i = 0; i < count; i++, block += kQ6_KBytesBlockBytes) {
      const __m256i* broadcasts[C];
      __m256i start[C], sumi[2][C];
      for (size_t c = 0; c < C; c++) {
        broadcasts[c] = x[c * kChunkBlocks + i].x;
        sumi[0][c] = sumi[1][c] = _mm256_setzero_si256();
      }
      for (size_t j = 0; j < 16; j++) {
        for (size_t c = 0; c < C; c++) start[c] = x[c * kChunkBlocks + i].offset[j];
        addSubBlock<4, C>(block, s, j, broadcasts, start, block + q6_KBytesScaleOffset(s, j), sumi);
      }
      for (size_t u = 0; u < 2; u++) {
        const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(
            reinterpret_cast<const __m128i*>(block + kQ6_KBytesDOffset + 2 * (kRunRows * s + kUnitRows * u))));
        for (size_t c = 0; c < C; c++) {
          const __m256 scale = _mm256_mul_ps(dw, x[c * kChunkBlocks + i].d);
          acc[u][c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[u][c]), scale, acc[u][c]);
        }
      }
    }
  }
};

// Runs [sBegin, sEnd) of a panel whose first row is panelRow, rows [rowBegin, rowEnd) of them, @ C prepared columns:
// the panel's groups' chunks of blocks start at `blocks`, groupStride apart; each run carries its sums in Y from one
// chunk to the next (first: this is the first chunk). Kept out of line: once GCC inlined Q4_K's into prefillChunk, the
// Q4_K_M slice prefilled 79-83 t/s where it had prefilled 90-111 (3 alternating pairs each).
template <typename L, size_t C>
MN_NOINLINE void prefillRuns(const uint8_t* blocks, size_t groupStride, size_t panelRow, size_t sBegin, size_t sEnd,
                 size_t rowBegin, size_t rowEnd, bool first, size_t count, const typename L::Prepared* x, float* y,
                 size_t ldy) {
  constexpr size_t kGroupRuns = L::kGroupRows / kRunRows;
  for (size_t s = sBegin; s < sEnd; s++) {
    size_t unitRow[2], lo[2], hi[2];  // rows [lo, hi) of each unit are in the range
    for (size_t u = 0; u < 2; u++) {
      unitRow[u] = panelRow + kRunRows * s + kUnitRows * u;
      lo[u] = unitRow[u] > rowBegin ? unitRow[u] : rowBegin;
      hi[u] = unitRow[u] + kUnitRows < rowEnd ? unitRow[u] + kUnitRows : rowEnd;
      if (hi[u] < lo[u]) hi[u] = lo[u];
    }
    __m256 acc[2][C];
    for (size_t u = 0; u < 2; u++) {
      for (size_t c = 0; c < C; c++) {
        acc[u][c] = first || hi[u] == lo[u] ? _mm256_setzero_ps()
                                            : loadLanes(y + c * ldy + lo[u], lo[u] - unitRow[u], hi[u] - lo[u]);
      }
    }
    L::template runTile<C>(blocks + s / kGroupRuns * groupStride, s % kGroupRuns, count, x, acc);
    for (size_t u = 0; u < 2; u++) {
      if (hi[u] == lo[u]) continue;
      for (size_t c = 0; c < C; c++) storeLanes(y + c * ldy + lo[u], acc[u][c], lo[u] - unitRow[u], hi[u] - lo[u]);
    }
  }
}

// Rows [rowBegin, rowEnd) of one panel (first row panelRow; its groups' chunks of blocks [b0, b0 + count) at
// `blocks`, groupStride apart) @ every column, 2 at a time, each pair's activations prepared once for the panel's runs
template <typename L>
void prefillChunk(const uint8_t* blocks, size_t groupStride, size_t panelRow, size_t rowBegin, size_t rowEnd,
                  size_t b0, size_t count, const uint8_t* x, size_t actRowBytes, size_t nCols, float* y, size_t ldy) {
  const size_t sBegin = (rowBegin - panelRow) / kRunRows, sEnd = (rowEnd - panelRow + kRunRows - 1) / kRunRows;
  typename L::Prepared prepared[kPrefillCols * L::kChunkBlocks];
  for (size_t c0 = 0; c0 < nCols; c0 += kPrefillCols) {
    const size_t cols = nCols - c0 < kPrefillCols ? nCols - c0 : kPrefillCols;
    for (size_t c = 0; c < cols; c++) {
      const typename L::Activation* xb = reinterpret_cast<const typename L::Activation*>(x + (c0 + c) * actRowBytes);
      for (size_t i = 0; i < count; i++) L::prepare(xb[b0 + i], prepared[c * L::kChunkBlocks + i]);
    }
    if (cols == 2) {
      prefillRuns<L, 2>(blocks, groupStride, panelRow, sBegin, sEnd, rowBegin, rowEnd, b0 == 0, count, prepared,
                        y + c0 * ldy, ldy);
    } else {
      prefillRuns<L, 1>(blocks, groupStride, panelRow, sBegin, sEnd, rowBegin, rowEnd, b0 == 0, count, prepared,
                        y + c0 * ldy, ldy);
    }
  }
}

// Prefill takes a panel of groups at a time, and per chunk of its blocks every pair of columns: the chunks (37-80 KB)
// stay in cache while they pass. One pass over all the rows per tile of columns, as before, streamed the matrix from
// memory once per tile and ran at half the speed (bench/kernels.sh). This walks them:
// chunk(panelRow, r0, r1, b0, count) for each panel of up to L::kPanelGroups groups that rows [rowBegin, rowEnd) touch
// (its first row panelRow; rows [r0, r1) of it in the range) and each chunk [b0, b0 + count) of its blocks
template <typename L, typename Chunk>
void forEachPanelChunk(size_t nBlocks, size_t rowBegin, size_t rowEnd, Chunk chunk) {
  constexpr size_t kPanelRows = L::kPanelGroups * L::kGroupRows;
  for (size_t r0 = rowBegin; r0 < rowEnd;) {
    const size_t panelRow = r0 / kPanelRows * kPanelRows;
    const size_t r1 = panelRow + kPanelRows < rowEnd ? panelRow + kPanelRows : rowEnd;
    for (size_t b0 = 0; b0 < nBlocks; b0 += L::kChunkBlocks) {
      chunk(panelRow, r0, r1, b0, nBlocks - b0 < L::kChunkBlocks ? nBlocks - b0 : L::kChunkBlocks);
    }
    r0 = r1;
  }
}

template <typename L>
void prefill(const uint8_t* w, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x, size_t actRowBytes,
             size_t nCols, float* y, size_t ldy) {
  const size_t nBlocks = n / L::kBlockValues, groupBytes = nBlocks * L::kGroupBlockBytes;
  forEachPanelChunk<L>(nBlocks, rowBegin, rowEnd, [&](size_t panelRow, size_t r0, size_t r1, size_t b0, size_t count) {
    const uint8_t* panel = w + panelRow / L::kGroupRows * groupBytes;
    prefillChunk<L>(panel + b0 * L::kGroupBlockBytes, groupBytes, panelRow, r0, r1, b0, count, x, actRowBytes, nCols,
                    y, ldy);
  });
}

// Rows [rowBegin, rowEnd) as the file has them: each panel of up to kPanelGroups groups' rows, a chunk of blocks at a
// time, is first copied into groups (L::pack, rows past the panel zero) and then multiplied as the repacked layout
// is. The copy costs a few percent of a prefill of 16 or more columns.
template <typename L>
void prefillFileLayout(const uint8_t* w, size_t wRowBytes, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x,
                       size_t actRowBytes, size_t nCols, float* y, size_t ldy) {
  constexpr size_t kChunkBytes = L::kChunkBlocks * L::kGroupBlockBytes;
  alignas(64) uint8_t groups[L::kPanelGroups * kChunkBytes];
  const size_t nBlocks = n / L::kBlockValues;
  for (size_t r0 = rowBegin; r0 < rowEnd; r0 += L::kPanelGroups * L::kGroupRows) {
    const size_t r1 = rowEnd - r0 < L::kPanelGroups * L::kGroupRows ? rowEnd : r0 + L::kPanelGroups * L::kGroupRows;
    for (size_t b0 = 0; b0 < nBlocks; b0 += L::kChunkBlocks) {
      const size_t count = nBlocks - b0 < L::kChunkBlocks ? nBlocks - b0 : L::kChunkBlocks;
      for (size_t g = 0; r0 + g * L::kGroupRows < r1; g++) {
        const size_t first = r0 + g * L::kGroupRows, rows = r1 - first < L::kGroupRows ? r1 - first : L::kGroupRows;
        L::pack(w + first * wRowBytes + b0 * L::kFileBlockBytes, wRowBytes, rows, count, groups + g * kChunkBytes);
      }
      prefillChunk<L>(groups, kChunkBytes, r0, r0, r1, b0, count, x, actRowBytes, nCols, y, ldy);
    }
  }
}

// ======================================================================================= Q4_Kx64 (repacked Q4_K)

// Sub-block j's scales of run s's unit u (8 rows; bytes in quants.h's Q4_Kx64 order), each in both halves of its lane
MN_INLINE __m256i q4_Kx64UnitScales(const uint8_t* block, size_t j, size_t s, size_t u) {
  // lane i of each 128-bit half (row 4h + i): bytes [4h + i, 0, 4h + i, 0] of the 8 scales broadcast
  const __m256i control = _mm256_setr_epi8(0, -1, 0, -1, 1, -1, 1, -1, 2, -1, 2, -1, 3, -1, 3, -1,  //
                                           4, -1, 4, -1, 5, -1, 5, -1, 6, -1, 6, -1, 7, -1, 7, -1);
  int64_t scales;
  std::memcpy(&scales, block + q4_Kx64ScaleOffset(j, s) + kUnitRows * u, sizeof(scales));
  return _mm256_shuffle_epi8(_mm256_set1_epi64x(scales), control);
}

// The mins of sub-blocks 2i and 2i + 1 of run s's units as each row's i16 pair: pairs[u] for unit u
MN_INLINE void q4_Kx64MinPairs(const uint8_t* block, size_t i, size_t s, __m256i (&pairs)[2]) {
  const __m128i even = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + q4_Kx64MinOffset(2 * i, s)));
  const __m128i odd = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + q4_Kx64MinOffset(2 * i + 1, s)));
  pairs[0] = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(even, odd));
  pairs[1] = _mm256_cvtepu8_epi16(_mm_unpackhi_epi8(even, odd));
}

constexpr size_t kQ4_KDecodeChunkBlocks = 64;  // activation super-blocks prepared at a time: each group one stream
constexpr size_t kQ4_Kx64Runs = kQ4_Kx64Rows / kRunRows;

// Run s (rows 16s .. 16s + 15, units 2s and 2s + 1) of a Q4_Kx64 group block against activation super-block xb
// (its sums in x): acc[u] += each row's terms, acc = fma(sumi, d_w * d_x, acc), then
// acc = fma(summ, -(dmin_w * d_x), acc). A line holds 4 quants of each of the run's rows; its low nibbles are values
// of sub-block 2c and its high ones of 2c + 1, so each of its halves (a unit) serves two vpmaddubsw, and a row's i16
// pairs sum one sub-block (16 products of at most 15 * 128: under 32768) before vpmaddwd applies the row's scale.
MN_INLINE void q4_Kx64RunDot(const uint8_t* block, size_t s, const BlockQ8_K& xb, const SuperBlockSums& x,
                              __m256 (&acc)[2]) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  __m256i sumi[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
  for (size_t c = 0; c < 4; c++) {
    __m256i pairs[2][2];  // [unit][sub-block 2c + h]
    for (size_t u = 0; u < 2; u++) pairs[u][0] = pairs[u][1] = _mm256_setzero_si256();
#pragma GCC unroll 8
    for (size_t k = 0; k < 8; k++) {
      const uint8_t* line = block + q4_Kx64LineOffset(s, c, k);
      _mm_prefetch(reinterpret_cast<const char*>(line + kDecodePrefetchBytes), _MM_HINT_T0);
      const uint8_t* q = reinterpret_cast<const uint8_t*>(xb.qs) + 64 * c + 4 * k;
      const __m256i xLow = _mm256_set1_epi32(static_cast<int32_t>(loadU32(q)));
      const __m256i xHigh = _mm256_set1_epi32(static_cast<int32_t>(loadU32(q + 32)));
      for (size_t u = 0; u < 2; u++) {
        const __m256i quants = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(line + 32 * u));
        const __m256i low = _mm256_and_si256(quants, low4);
        const __m256i high = _mm256_and_si256(_mm256_srli_epi16(quants, 4), low4);
        pairs[u][0] = inRegister(_mm256_add_epi16(pairs[u][0], _mm256_maddubs_epi16(low, xLow)));
        pairs[u][1] = inRegister(_mm256_add_epi16(pairs[u][1], _mm256_maddubs_epi16(high, xHigh)));
      }
    }
    for (size_t u = 0; u < 2; u++) {
      for (size_t h = 0; h < 2; h++) {
        const __m256i scales = q4_Kx64UnitScales(block, 2 * c + h, s, u);
        sumi[u] = _mm256_add_epi32(sumi[u], _mm256_madd_epi16(pairs[u][h], scales));
      }
    }
  }
  __m256i summ[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
  for (size_t i = 0; i < 4; i++) {
    __m256i mins[2];
    q4_Kx64MinPairs(block, i, s, mins);
    for (size_t u = 0; u < 2; u++) summ[u] = _mm256_add_epi32(summ[u], _mm256_madd_epi16(mins[u], x.sums[i]));
  }
  for (size_t u = 0; u < 2; u++) {
    const uint8_t* d = block + q4_Kx64DOffset(s) + 2 * kUnitRows * u;
    const uint8_t* dmin = block + q4_Kx64DminOffset(s) + 2 * kUnitRows * u;
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(d)));
    const __m256 dminw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(dmin)));
    acc[u] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sumi[u]), _mm256_mul_ps(dw, x.d), acc[u]);
    acc[u] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(summ[u]), _mm256_mul_ps(dminw, x.d), acc[u]);
  }
}

// W (Q4_Kx64) rows [rowBegin, rowEnd) @ x (n,) Q8_K -> y[r]: per chunk of activation super-blocks (their sums
// prepared), each group's runs walked super-block by super-block, their sums carried in y from one chunk to the next.
// The activations' fours are broadcast straight from x, which stays in L1 (prepared, they take 2 KB a super-block).
void decodeQ4_Kx64(const uint8_t* w, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x, float* y) {
  const size_t nBlocks = n / kQKK, groupBytes = nBlocks * kQ4_Kx64BlockBytes;
  const BlockQ8_K* xb = reinterpret_cast<const BlockQ8_K*>(x);
  SuperBlockSums prepared[kQ4_KDecodeChunkBlocks];
  for (size_t b0 = 0; b0 < nBlocks; b0 += kQ4_KDecodeChunkBlocks) {
    const size_t count = nBlocks - b0 < kQ4_KDecodeChunkBlocks ? nBlocks - b0 : kQ4_KDecodeChunkBlocks;
    for (size_t i = 0; i < count; i++) prepareSums(xb[b0 + i], prepared[i]);
    for (size_t g = rowBegin / kQ4_Kx64Rows; g * kQ4_Kx64Rows < rowEnd; g++) {
      const GroupRange range(g, kQ4_Kx64Rows, rowBegin, rowEnd);
      const size_t s0 = range.first / kRunRows, s1 = (range.end + kRunRows - 1) / kRunRows;
      __m256 acc[kQ4_Kx64Runs][2];
      for (size_t s = s0; s < s1; s++) {
        for (size_t v = 0; v < 2; v++) acc[s][v] = b0 == 0 ? _mm256_setzero_ps() : range.load(y, 2 * s + v);
      }
      const uint8_t* block = w + g * groupBytes + b0 * kQ4_Kx64BlockBytes;
      for (size_t i = 0; i < count; i++, block += kQ4_Kx64BlockBytes) {
        for (size_t at = 0; at < q4_Kx64LineOffset(0, 0, 0); at += 64) {  // the scales' lines, as the runs' lines
          _mm_prefetch(reinterpret_cast<const char*>(block + kDecodePrefetchBytes + at), _MM_HINT_T0);
        }
        for (size_t s = s0; s < s1; s++) q4_Kx64RunDot(block, s, xb[b0 + i], prepared[i], acc[s]);
      }
      for (size_t s = s0; s < s1; s++) {
        for (size_t v = 0; v < 2; v++) range.store(y, 2 * s + v, acc[s][v]);
      }
    }
  }
}

// One Q4_Kx64 group block -> the same rows' Q4_Kx64Bytes block: each line's low and high nibbles become the lines of
// its two sub-blocks (no transpose: both layouts keep a row in a 32-bit lane), the scales and pairs of mins move as
// the decode reads them, and d and dmin keep their order.
void unpackQ4_Kx64Block(const uint8_t* block, uint8_t* out) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  for (size_t s = 0; s < kQ4_Kx64Runs; s++) {
    for (size_t c = 0; c < 4; c++) {
      for (size_t k = 0; k < 8; k++) {
        for (size_t u = 0; u < 2; u++) {
          const __m256i quants =
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + q4_Kx64LineOffset(s, c, k) + 32 * u));
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + bytesLineOffset(s, 16 * c + k) + 32 * u),
                              _mm256_and_si256(quants, low4));
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + bytesLineOffset(s, 16 * c + 8 + k) + 32 * u),
                              _mm256_and_si256(_mm256_srli_epi16(quants, 4), low4));
        }
      }
    }
    for (size_t u = 0; u < 2; u++) {
      for (size_t j = 0; j < 8; j++) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + q4_KBytesScaleOffset(s, j) + 32 * u),
                            q4_Kx64UnitScales(block, j, s, u));
      }
    }
    for (size_t i = 0; i < 4; i++) {
      __m256i mins[2];
      q4_Kx64MinPairs(block, i, s, mins);
      for (size_t u = 0; u < 2; u++) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + q4_KBytesMinOffset(s, i) + 32 * u), mins[u]);
      }
    }
  }
  static_assert(q4_Kx64DminOffset(0) == q4_Kx64DOffset(0) + 2 * kQ4_Kx64Rows, "d, then dmin, each in row order");
  static_assert(kQ4_KBytesDminOffset == kQ4_KBytesDOffset + 2 * kBytesGroupRows, "the same here");
  std::memcpy(out + kQ4_KBytesDOffset, block + q4_Kx64DOffset(0), 4 * kQ4_Kx64Rows);
}

// Q4_Kx64 prefill: each panel of up to Q4_KLayout::kPanelGroups groups, a super-block at a time, unpacked into
// Q4_Kx64Bytes blocks and multiplied there as the file layout's copies are (prefillChunk)
void prefillQ4_Kx64(const uint8_t* w, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x, size_t actRowBytes,
                    size_t nCols, float* y, size_t ldy) {
  using L = Q4_KLayout;
  static_assert(L::kGroupRows == kQ4_Kx64Rows && L::kChunkBlocks == 1, "a group block unpacks into one group block");
  alignas(64) uint8_t groups[L::kPanelGroups * L::kGroupBlockBytes];
  const size_t nBlocks = n / kQKK, groupBytes = nBlocks * kQ4_Kx64BlockBytes;
  forEachPanelChunk<L>(nBlocks, rowBegin, rowEnd, [&](size_t panelRow, size_t r0, size_t r1, size_t b, size_t) {
    for (size_t g = r0 / kQ4_Kx64Rows; g * kQ4_Kx64Rows < r1; g++) {
      unpackQ4_Kx64Block(w + g * groupBytes + b * kQ4_Kx64BlockBytes,
                         groups + (g - panelRow / kQ4_Kx64Rows) * L::kGroupBlockBytes);
    }
    prefillChunk<L>(groups, L::kGroupBlockBytes, panelRow, r0, r1, b, 1, x, actRowBytes, nCols, y, ldy);
  });
}

void matmulInterleaved(GgmlType wType, const uint8_t* w, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x,
                       size_t actRowBytes, size_t nCols, float* y, size_t ldy) {
  if (rowBegin >= rowEnd) return;
  if (wType == GgmlType::Q4_K) {
    if (nCols == 1) {
      decodeQ4_Kx64(w, n, rowBegin, rowEnd, x, y);
    } else {
      prefillQ4_Kx64(w, n, rowBegin, rowEnd, x, actRowBytes, nCols, y, ldy);
    }
  } else if (wType == GgmlType::Q4_0) {
    if (nCols == 1) {
      decode(w, n, rowBegin, rowEnd, x, y);
    } else {
      prefill<Q4_0Layout>(w, n, rowBegin, rowEnd, x, actRowBytes, nCols, y, ldy);
    }
  }
}

}  // namespace
}  // namespace x86
}  // namespace mn

#include "kernels/x86/target_end.h"

namespace mn {
namespace x86 {
extern const MatmulInterleavedFn kMatmulInterleavedAvx2 = matmulInterleaved;
extern const FileLayoutPrefillFn kQ4_0PrefillAvx2 = prefillFileLayout<Q4_0Layout>;
extern const FileLayoutPrefillFn kQ4_KPrefillAvx2 = prefillFileLayout<Q4_KLayout>;
extern const FileLayoutPrefillFn kQ6_KPrefillAvx2 = prefillFileLayout<Q6_KLayout>;
}  // namespace x86
}  // namespace mn

#endif
