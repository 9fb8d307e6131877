// AVX-512 (VNNI) matmuls over interleaved rows (Q4_0x128 against Q8_0 activations, Q4_Kx64 against Q8_K; layouts in
// quants.h).
//
// A vector's 16 lanes are 16 rows. vpdpbusd (u8 x s8 -> i32) of one line of a block's quants (4 levels of each row,
// unsigned) with 4 of the activation's values broadcast adds 4 products to every row's lane, so 8 of them sum a
// row's whole 32-value block (Q4_0, starting from -8 * the block's activation sum, the offset of its unsigned levels)
// or sub-block (Q4_K, scaled by its 6-bit scale in integers). Each (row, column) then adds its blocks' float terms in
// one order, exactly as scalar::matmulInterleaved does, so decode, prefill and the scalar reference agree to
// the bit.
//
// Decode streams each group of rows from start to end (one memory stream), each broadcast activation value serving
// all its rows (128 for Q4_0, 64 for Q4_K). Prefill unpacks the levels of a tile's rows for a chunk of blocks once and
// runs a register tile over them: 64 rows x 3 columns for Q4_0, 32 rows x 4 columns for Q4_K.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/quants.h"
#include "kernels/x86/x86_kernels.h"

#if defined(__x86_64__) || defined(_M_X64)

#define MN_X86_TARGET "avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,fma,f16c"
#include "kernels/x86/target_begin.h"

#include "kernels/x86/simd_common.h"

namespace mn {
namespace x86 {
namespace {

// Software prefetch distance of the decode stream, as the Q4_0 decode's (matmul_avx512.cc).
constexpr size_t kPrefetchBytes = 4608;
// Decode prepares the activations' offsets and scales for this many blocks at a time (4 KB of stack).
constexpr size_t kActChunkBlocks = 512;
// Prefill register tiles hold at most this many runs of 16 rows and columns; each layout picks its shape below.
constexpr int kTileRuns = 4;
constexpr int kTileCols = 4;
// Q4_0x128 prefill: 4 runs (64 rows, half a group) x 3 columns over 16 blocks unpacked at a time (36 KB of stack).
// Single thread, 64 columns, n = 4096: 1.89-2.03x the Q4_0 tile against 1.74-1.77x for 2 runs x 4 columns.
constexpr int kQ4_0TileRuns = 4, kQ4_0TileCols = 3;
constexpr size_t kLevelChunkBlocks = 16;

// The lanes of the run of 16 rows starting at row `first` that lie in [rowBegin, rowEnd)
MN_INLINE __mmask16 rowMask(size_t first, size_t rowBegin, size_t rowEnd) {
  if (rowEnd <= first || rowBegin >= first + 16) return 0;
  const unsigned lo = rowBegin > first ? unsigned(rowBegin - first) : 0u;
  const unsigned hi = rowEnd < first + 16 ? unsigned(rowEnd - first) : 16u;
  return static_cast<__mmask16>((0xFFFFu >> (16 - hi)) & (0xFFFFu << lo));
}

// -8 * the sum of a Q8_0 block's 32 values
MN_INLINE int32_t levelOffset(const BlockQ8_0& block) {
  const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block.qs));
  const __m256i sums = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(1), q);
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(sums), _mm256_extracti128_si256(sums, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return -8 * _mm_cvtsi128_si32(s);
}

// Blocks [b0, b0 + count) of one activation row -> their level offsets and scales
void prepareActivations(const uint8_t* x, size_t b0, size_t count, int32_t* offsets, float* scales) {
  const BlockQ8_0* blocks = reinterpret_cast<const BlockQ8_0*>(x) + b0;
  for (size_t i = 0; i < count; i++) {
    offsets[i] = levelOffset(blocks[i]);
    scales[i] = halfToFloat(blocks[i].d);
  }
}

// 4 activation values from q: the broadcast operand of one vpdpbusd
MN_INLINE __m512i broadcastFour(const int8_t* q) {
  return _mm512_set1_epi32(static_cast<int>(loadU32(reinterpret_cast<const uint8_t*>(q))));
}

// Prefetches the lines kPrefetchBytes past those of one block of a group (the decode stream)
MN_INLINE void prefetchAhead(const uint8_t* block, size_t blockBytes) {
  for (size_t line = 0; line < blockBytes; line += 64) {
    _mm_prefetch(reinterpret_cast<const char*>(block + kPrefetchBytes + line), _MM_HINT_T0);
  }
}

// ---- Q4_0x128: decode (one column) ----

// The activations' level offsets and scales for a chunk of blocks, prepared once per decode call
struct DecodeActivations {
  alignas(64) int32_t offsets[kActChunkBlocks];
  alignas(64) float scales[kActChunkBlocks];
};

constexpr int kQ4_0Runs = kQ4_0x128Rows / 16;

// acc[s] (one lane per row of run s) += `count` blocks of a group from `block` on . x from its block at `x` on, in
// block order
MN_INLINE void groupDot(const uint8_t* block, size_t count, const BlockQ8_0* x, const DecodeActivations& act,
                        __m512 (&acc)[kQ4_0Runs]) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  for (size_t i = 0; i < count; i++, block += kQ4_0x128BlockBytes) {
    prefetchAhead(block, kQ4_0x128BlockBytes);
    const BlockQ8_0& xb = x[i];
    // Per run, two chains of 4: low nibbles (values 0..15) from the offset, high nibbles (16..31) from zero.
    __m512i low[kQ4_0Runs], high[kQ4_0Runs];
    for (int s = 0; s < kQ4_0Runs; s++) {
      low[s] = _mm512_set1_epi32(act.offsets[i]);
      high[s] = _mm512_setzero_si512();
    }
    for (int k = 0; k < 4; k++) {
      const __m512i xLow = broadcastFour(xb.qs + 4 * k), xHigh = broadcastFour(xb.qs + 16 + 4 * k);
      for (int s = 0; s < kQ4_0Runs; s++) {
        const __m512i line = _mm512_load_si512(block + q4_0x128LineOffset(s, k));
        low[s] = _mm512_dpbusd_epi32(low[s], _mm512_and_si512(line, low4), xLow);
        high[s] = _mm512_dpbusd_epi32(high[s], _mm512_and_si512(_mm512_srli_epi16(line, 4), low4), xHigh);
      }
    }
    const __m512 dx = _mm512_set1_ps(act.scales[i]);
    for (int s = 0; s < kQ4_0Runs; s++) {
      const __m512 dw = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(block + q4_0x128ScaleOffset(s, 0))));
      acc[s] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(low[s], high[s])), _mm512_mul_ps(dw, dx), acc[s]);
    }
  }
}

// ---- Q4_0x128: prefill (several columns) ----

// A register tile's accumulators: zero for a chunk that starts the sums, else the partial sums stored after the last
template <int R, int C>
MN_INLINE void loadTile(const __mmask16 (&masks)[kTileRuns], float* const (&out)[kTileRuns], size_t ldy, bool first,
                        __m512 (&acc)[R][C]) {
  for (int r = 0; r < R; r++) {
    for (int c = 0; c < C; c++) acc[r][c] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(masks[r], out[r] + c * ldy);
  }
}

template <int R, int C>
MN_INLINE void storeTile(const __m512 (&acc)[R][C], const __mmask16 (&masks)[kTileRuns], float* const (&out)[kTileRuns],
                         size_t ldy) {
  for (int r = 0; r < R; r++) {
    for (int c = 0; c < C; c++) _mm512_mask_storeu_ps(out[r] + c * ldy, masks[r], acc[r][c]);
  }
}

// One block of a run of 16 rows, unpacked: vector k holds levels 4k..4k+3 of every row (lane j = row j), whose
// activations are always the block's qs[4k..4k+3] (levels 16.. are the high nibbles), and the rows' scales.
struct alignas(64) LevelBlock {
  __m512i levels[8];
  __m512 d;
};

// Blocks [b0, b0 + count) of run s of the group at `group`, unpacked
void unpackLevels(const uint8_t* group, int s, size_t b0, size_t count, LevelBlock* out) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const uint8_t* block = group + b0 * kQ4_0x128BlockBytes;
  for (size_t i = 0; i < count; i++, block += kQ4_0x128BlockBytes) {
    for (int k = 0; k < 4; k++) {
      const __m512i line = _mm512_load_si512(block + q4_0x128LineOffset(s, k));
      out[i].levels[k] = _mm512_and_si512(line, low4);
      out[i].levels[k + 4] = _mm512_and_si512(_mm512_srli_epi16(line, 4), low4);
    }
    out[i].d = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(block + q4_0x128ScaleOffset(s, 0))));
  }
}

// The activations of a column tile over one chunk of blocks
struct TileActivations {
  const BlockQ8_0* blocks[kTileCols];  // each column's block b0
  int32_t offsets[kTileCols][kLevelChunkBlocks];
  float scales[kTileCols][kLevelChunkBlocks];
};

// Y (C columns of R runs' rows) = (or +=, unless first) the chunk's count blocks of R unpacked runs . C columns
template <int R, int C>
void tile(const LevelBlock* const (&levels)[kTileRuns], const int (&)[kTileRuns], size_t count,
          const TileActivations& act, const __mmask16 (&masks)[kTileRuns], float* const (&out)[kTileRuns], size_t ldy,
          bool first) {
  __m512 acc[R][C];
  loadTile(masks, out, ldy, first, acc);
  for (size_t i = 0; i < count; i++) {
    __m512i sums[R][C];
    for (int c = 0; c < C; c++) {
      const __m512i offset = _mm512_set1_epi32(act.offsets[c][i]);
      for (int r = 0; r < R; r++) sums[r][c] = offset;
    }
    for (int k = 0; k < 8; k++) {
      __m512i w[R];
      for (int r = 0; r < R; r++) w[r] = _mm512_load_si512(&levels[r][i].levels[k]);
      for (int c = 0; c < C; c++) {
        const __m512i four = broadcastFour(act.blocks[c][i].qs + 4 * k);
        for (int r = 0; r < R; r++) sums[r][c] = _mm512_dpbusd_epi32(sums[r][c], w[r], four);
      }
    }
    for (int c = 0; c < C; c++) {
      const __m512 dx = _mm512_set1_ps(act.scales[c][i]);
      for (int r = 0; r < R; r++) {
        acc[r][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums[r][c]), _mm512_mul_ps(levels[r][i].d, dx), acc[r][c]);
      }
    }
  }
  storeTile(acc, masks, out, ldy);
}

// ---- Q4_Kx64 ----

constexpr int kQ4_KRuns = kQ4_Kx64Rows / 16;
constexpr size_t kKActChunkBlocks = 64;   // decode: super-blocks of activation sums and scales per chunk (2.3 KB)
// Q4_Kx64 prefill: 2 runs x 4 columns (a tile's integer sums take twice the registers) over 3 super-blocks unpacked at a
// time (25 KB of stack)
constexpr int kQ4_KTileRuns = 2, kQ4_KTileCols = 4;
constexpr size_t kKLevelChunkBlocks = 3;

// One super-block of a Q8_K activation row: the sums of its 8 sub-blocks (for the mins) and its scale
struct KActivation {
  int32_t subSums[8];
  float d;
};

void prepareKActivations(const uint8_t* x, size_t b0, size_t count, KActivation* out) {
  const BlockQ8_K* blocks = reinterpret_cast<const BlockQ8_K*>(x) + b0;
  for (size_t i = 0; i < count; i++) {
    for (int j = 0; j < 8; j++) out[i].subSums[j] = blocks[i].bsums[2 * j] + blocks[i].bsums[2 * j + 1];
    out[i].d = blocks[i].d;
  }
}

// Sub-block j's scales (or mins) of run s, one row per lane
MN_INLINE __m512i loadKScales(const uint8_t* block, size_t offset) {
  return _mm512_cvtepu8_epi32(_mm_load_si128(reinterpret_cast<const __m128i*>(block + offset)));
}

// acc[s] += one super-block's float terms of each run s from its integer sums
MN_INLINE void addKTerms(const uint8_t* block, int s, __m512i sumi, __m512i summ, float dx, __m512& acc) {
  const __m512 scale = _mm512_set1_ps(dx);
  const __m512 d = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(block + q4_Kx64DOffset(s))));
  const __m512 dmin = _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(block + q4_Kx64DminOffset(s))));
  acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi), _mm512_mul_ps(d, scale), acc);
  acc = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(summ), _mm512_mul_ps(dmin, scale), acc);
}

// sum_j m_j * (activation sum of sub-block j), one row of run s per lane
MN_INLINE __m512i minTerm(const uint8_t* block, int s, const KActivation& a) {
  __m512i summ = _mm512_setzero_si512();
  for (int j = 0; j < 8; j++) {
    summ = _mm512_add_epi32(summ, _mm512_mullo_epi32(loadKScales(block, q4_Kx64MinOffset(j, s)), _mm512_set1_epi32(a.subSums[j])));
  }
  return summ;
}

// The activations' sub-block sums and scales for a chunk of super-blocks, prepared once per decode call
struct KDecodeActivations {
  KActivation act[kKActChunkBlocks];
};

// acc[s] (one lane per row of run s) += `count` super-blocks of a group from `block` on . x from its super-block at `x`
// on, in order
MN_INLINE void kGroupDot(const uint8_t* block, size_t count, const BlockQ8_K* x, const KDecodeActivations& act,
                         __m512 (&acc)[kQ4_KRuns]) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  for (size_t i = 0; i < count; i++, block += kQ4_Kx64BlockBytes) {
    prefetchAhead(block, kQ4_Kx64BlockBytes);
    const int8_t* q = x[i].qs;
    __m512i sumi[kQ4_KRuns];
    for (int s = 0; s < kQ4_KRuns; s++) sumi[s] = _mm512_setzero_si512();
    for (int c = 0; c < 4; c++) {
      __m512i low[kQ4_KRuns], high[kQ4_KRuns];
      for (int s = 0; s < kQ4_KRuns; s++) low[s] = high[s] = _mm512_setzero_si512();
      for (int k = 0; k < 8; k++) {
        const __m512i xLow = broadcastFour(q + 64 * c + 4 * k), xHigh = broadcastFour(q + 64 * c + 32 + 4 * k);
        for (int s = 0; s < kQ4_KRuns; s++) {
          const __m512i line = _mm512_load_si512(block + q4_Kx64LineOffset(s, c, k));
          low[s] = _mm512_dpbusd_epi32(low[s], _mm512_and_si512(line, low4), xLow);
          high[s] = _mm512_dpbusd_epi32(high[s], _mm512_and_si512(_mm512_srli_epi16(line, 4), low4), xHigh);
        }
      }
      for (int s = 0; s < kQ4_KRuns; s++) {
        sumi[s] = _mm512_add_epi32(sumi[s], _mm512_mullo_epi32(low[s], loadKScales(block, q4_Kx64ScaleOffset(2 * c, s))));
        sumi[s] = _mm512_add_epi32(sumi[s], _mm512_mullo_epi32(high[s], loadKScales(block, q4_Kx64ScaleOffset(2 * c + 1, s))));
      }
    }
    const KActivation& a = act.act[i];
    for (int s = 0; s < kQ4_KRuns; s++) addKTerms(block, s, sumi[s], minTerm(block, s, a), a.d, acc[s]);
  }
}

// One super-block of a run of 16 rows, unpacked: levels[j][k] holds levels 4k..4k+3 of sub-block j of every row (lane
// = row), whose activations are the super-block's qs[32j + 4k .. 32j + 4k + 3]. The scales, mins and d stay in the
// packed group, which `block` points at.
struct alignas(64) KLevelBlock {
  __m512i levels[8][8];
  const uint8_t* block;
};

void unpackKLevels(const uint8_t* group, int s, size_t b0, size_t count, KLevelBlock* out) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const uint8_t* block = group + b0 * kQ4_Kx64BlockBytes;
  for (size_t i = 0; i < count; i++, block += kQ4_Kx64BlockBytes) {
    for (int c = 0; c < 4; c++) {
      for (int k = 0; k < 8; k++) {
        const __m512i line = _mm512_load_si512(block + q4_Kx64LineOffset(s, c, k));
        out[i].levels[2 * c][k] = _mm512_and_si512(line, low4);
        out[i].levels[2 * c + 1][k] = _mm512_and_si512(_mm512_srli_epi16(line, 4), low4);
      }
    }
    out[i].block = block;
  }
}

struct KTileActivations {
  const BlockQ8_K* blocks[kTileCols];  // each column's super-block b0
  KActivation act[kTileCols][kKLevelChunkBlocks];
};

template <int R, int C>
void tileK(const KLevelBlock* const (&levels)[kTileRuns], const int (&runs)[kTileRuns], size_t count,
           const KTileActivations& act, const __mmask16 (&masks)[kTileRuns], float* const (&out)[kTileRuns], size_t ldy,
           bool first) {
  __m512 acc[R][C];
  loadTile(masks, out, ldy, first, acc);
  for (size_t i = 0; i < count; i++) {
    __m512i sumi[R][C];
    for (int r = 0; r < R; r++) {
      for (int c = 0; c < C; c++) sumi[r][c] = _mm512_setzero_si512();
    }
    for (int j = 0; j < 8; j++) {
      __m512i dot[R][C];
      for (int r = 0; r < R; r++) {
        for (int c = 0; c < C; c++) dot[r][c] = _mm512_setzero_si512();
      }
      for (int k = 0; k < 8; k++) {
        __m512i w[R];
        for (int r = 0; r < R; r++) w[r] = _mm512_load_si512(&levels[r][i].levels[j][k]);
        for (int c = 0; c < C; c++) {
          const __m512i four = broadcastFour(act.blocks[c][i].qs + 32 * j + 4 * k);
          for (int r = 0; r < R; r++) dot[r][c] = _mm512_dpbusd_epi32(dot[r][c], w[r], four);
        }
      }
      for (int r = 0; r < R; r++) {
        const __m512i scale = loadKScales(levels[r][i].block, q4_Kx64ScaleOffset(j, runs[r]));
        for (int c = 0; c < C; c++) sumi[r][c] = _mm512_add_epi32(sumi[r][c], _mm512_mullo_epi32(dot[r][c], scale));
      }
    }
    for (int r = 0; r < R; r++) {
      for (int c = 0; c < C; c++) {
        const KActivation& a = act.act[c][i];
        addKTerms(levels[r][i].block, runs[r], sumi[r][c], minTerm(levels[r][i].block, runs[r], a), a.d, acc[r][c]);
      }
    }
  }
  storeTile(acc, masks, out, ldy);
}

// ---- the decode and prefill drivers of both layouts ----

// What the drivers need of a layout: its group of runs, block and activation types, decode's prepared activations and
// group dot product, prefill's unpacked block, column tile activations, unpacking and tile.
struct Q4_0Format {
  using Levels = LevelBlock;
  using Activations = TileActivations;
  static constexpr int kRuns = kQ4_0Runs;
  static constexpr size_t kBlockValues = kQK, kBlockBytes = kQ4_0x128BlockBytes, kChunkBlocks = kLevelChunkBlocks;
  static constexpr int kRunsPerTile = kQ4_0TileRuns, kColsPerTile = kQ4_0TileCols;
  using Activation = BlockQ8_0;
  using DecodeActivations = x86::DecodeActivations;
  static constexpr size_t kDecodeChunkBlocks = kActChunkBlocks;
  static void prepareDecode(const uint8_t* x, size_t b0, size_t count, DecodeActivations& act) {
    prepareActivations(x, b0, count, act.offsets, act.scales);
  }
  static void groupDot(const uint8_t* block, size_t count, const Activation* x, const DecodeActivations& act,
                       __m512 (&acc)[kRuns]) {
    x86::groupDot(block, count, x, act, acc);
  }
  static void unpack(const uint8_t* group, int s, size_t b0, size_t count, Levels* out) {
    unpackLevels(group, s, b0, count, out);
  }
  static void prepare(const uint8_t* column, size_t b0, size_t count, size_t c, Activations& act) {
    act.blocks[c] = reinterpret_cast<const BlockQ8_0*>(column) + b0;
    prepareActivations(column, b0, count, act.offsets[c], act.scales[c]);
  }
  template <int R, int C>
  static constexpr auto kTile = tile<R, C>;
};

struct Q4_KFormat {
  using Levels = KLevelBlock;
  using Activations = KTileActivations;
  static constexpr int kRuns = kQ4_KRuns;
  static constexpr size_t kBlockValues = kQKK, kBlockBytes = kQ4_Kx64BlockBytes, kChunkBlocks = kKLevelChunkBlocks;
  static constexpr int kRunsPerTile = kQ4_KTileRuns, kColsPerTile = kQ4_KTileCols;
  using Activation = BlockQ8_K;
  using DecodeActivations = KDecodeActivations;
  static constexpr size_t kDecodeChunkBlocks = kKActChunkBlocks;
  static void prepareDecode(const uint8_t* x, size_t b0, size_t count, DecodeActivations& act) {
    prepareKActivations(x, b0, count, act.act);
  }
  static void groupDot(const uint8_t* block, size_t count, const Activation* x, const DecodeActivations& act,
                       __m512 (&acc)[kRuns]) {
    kGroupDot(block, count, x, act, acc);
  }
  static void unpack(const uint8_t* group, int s, size_t b0, size_t count, Levels* out) {
    unpackKLevels(group, s, b0, count, out);
  }
  static void prepare(const uint8_t* column, size_t b0, size_t count, size_t c, Activations& act) {
    act.blocks[c] = reinterpret_cast<const BlockQ8_K*>(column) + b0;
    prepareKActivations(column, b0, count, act.act[c]);
  }
  template <int R, int C>
  static constexpr auto kTile = tileK<R, C>;
};

template <typename F>
using TileFn = void (*)(const typename F::Levels* const (&levels)[kTileRuns], const int (&runs)[kTileRuns], size_t count,
                        const typename F::Activations& act, const __mmask16 (&masks)[kTileRuns],
                        float* const (&out)[kTileRuns], size_t ldy, bool first);

// The tile of R runs and `cols` columns (C down to 1)
template <typename F, int R, int C = F::kColsPerTile>
TileFn<F> tileFor(size_t cols) {
  static_assert(R <= kTileRuns && C <= kTileCols, "the tile's arrays hold it");
  if constexpr (C == 1) {
    return F::template kTile<R, 1>;
  } else {
    return cols == size_t(C) ? F::template kTile<R, C> : tileFor<F, R, C - 1>(cols);
  }
}

// The tile of `runs` runs (R down to 1) and `cols` columns
template <typename F, int R = F::kRunsPerTile>
TileFn<F> tileFor(int runs, size_t cols) {
  if constexpr (R == 1) {
    return tileFor<F, 1>(cols);
  } else {
    return runs == R ? tileFor<F, R>(cols) : tileFor<F, R - 1>(runs, cols);
  }
}

// Runs of 16 rows, numbered across groups (run u is run u % F::kRuns of group u / F::kRuns), F::kRunsPerTile at a
// time, over chunks of blocks unpacked once for every column tile
template <typename F>
void prefill(const uint8_t* w, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x, size_t actRowBytes,
             size_t nCols, float* y, size_t ldy) {
  const size_t nBlocks = n / F::kBlockValues, groupBytes = nBlocks * F::kBlockBytes;
  const size_t uBegin = rowBegin / 16, uEnd = (rowEnd + 15) / 16;
  constexpr int kRunsPerTile = F::kRunsPerTile, kColsPerTile = F::kColsPerTile;
  typename F::Levels unpacked[kRunsPerTile][F::kChunkBlocks];
  const typename F::Levels* levels[kTileRuns] = {};
  for (int r = 0; r < kRunsPerTile; r++) levels[r] = unpacked[r];
  typename F::Activations act;
  for (size_t u0 = uBegin; u0 < uEnd; u0 += kRunsPerTile) {
    const int runCount = uEnd - u0 < size_t(kRunsPerTile) ? int(uEnd - u0) : kRunsPerTile;
    __mmask16 masks[kTileRuns] = {};
    int runs[kTileRuns] = {};
    for (int r = 0; r < runCount; r++) {
      masks[r] = rowMask(16 * (u0 + r), rowBegin, rowEnd);
      runs[r] = int((u0 + r) % F::kRuns);
    }
    for (size_t b0 = 0; b0 < nBlocks; b0 += F::kChunkBlocks) {
      const size_t count = nBlocks - b0 < F::kChunkBlocks ? nBlocks - b0 : F::kChunkBlocks;
      for (int r = 0; r < runCount; r++) F::unpack(w + (u0 + r) / F::kRuns * groupBytes, runs[r], b0, count, unpacked[r]);
      for (size_t c0 = 0; c0 < nCols; c0 += kColsPerTile) {
        const size_t cols = nCols - c0 < size_t(kColsPerTile) ? nCols - c0 : size_t(kColsPerTile);
        for (size_t c = 0; c < cols; c++) F::prepare(x + (c0 + c) * actRowBytes, b0, count, c, act);
        float* out[kTileRuns] = {};
        for (int r = 0; r < runCount; r++) out[r] = y + c0 * ldy + 16 * (u0 + r);
        tileFor<F>(runCount, cols)(levels, runs, count, act, masks, out, ldy, b0 == 0);
      }
    }
  }
}

// Decode (one column): each group of rows streamed from start to end per chunk of prepared activations; a group
// cut by the row range is computed whole and stored through lane masks.
template <typename F>
void decode(const uint8_t* w, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x, float* y) {
  const size_t nBlocks = n / F::kBlockValues, groupBytes = nBlocks * F::kBlockBytes;
  constexpr size_t kGroupRows = 16 * F::kRuns;
  const size_t gBegin = rowBegin / kGroupRows, gEnd = (rowEnd + kGroupRows - 1) / kGroupRows;
  const typename F::Activation* activations = reinterpret_cast<const typename F::Activation*>(x);
  typename F::DecodeActivations act;
  for (size_t b0 = 0; b0 < nBlocks; b0 += F::kDecodeChunkBlocks) {
    const size_t count = nBlocks - b0 < F::kDecodeChunkBlocks ? nBlocks - b0 : F::kDecodeChunkBlocks;
    F::prepareDecode(x, b0, count, act);
    for (size_t g = gBegin; g < gEnd; g++) {
      __mmask16 masks[F::kRuns];
      __m512 acc[F::kRuns];
      for (int s = 0; s < F::kRuns; s++) {
        masks[s] = rowMask(g * kGroupRows + 16 * s, rowBegin, rowEnd);
        acc[s] = b0 == 0 ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(masks[s], y + g * kGroupRows + 16 * s);
      }
      F::groupDot(w + g * groupBytes + b0 * F::kBlockBytes, count, activations + b0, act, acc);
      for (int s = 0; s < F::kRuns; s++) _mm512_mask_storeu_ps(y + g * kGroupRows + 16 * s, masks[s], acc[s]);
    }
  }
}

template <typename F>
void matmulLayout(const uint8_t* w, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x, size_t actRowBytes,
                  size_t nCols, float* y, size_t ldy) {
  if (rowBegin >= rowEnd) return;
  if (nCols == 1) {
    decode<F>(w, n, rowBegin, rowEnd, x, y);
  } else {
    prefill<F>(w, n, rowBegin, rowEnd, x, actRowBytes, nCols, y, ldy);
  }
}

void matmulInterleaved(GgmlType wType, const uint8_t* w, size_t n, size_t rowBegin, size_t rowEnd, const uint8_t* x,
                       size_t actRowBytes, size_t nCols, float* y, size_t ldy) {
  const auto matmul = wType == GgmlType::Q4_K ? matmulLayout<Q4_KFormat> : matmulLayout<Q4_0Format>;
  matmul(w, n, rowBegin, rowEnd, x, actRowBytes, nCols, y, ldy);
}

}  // namespace
}  // namespace x86
}  // namespace mn

#include "kernels/x86/target_end.h"

namespace mn {
namespace x86 {
extern const MatmulInterleavedFn kMatmulInterleavedAvx512 = matmulInterleaved;
}  // namespace x86
}  // namespace mn

#endif
