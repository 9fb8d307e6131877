// ModelOptions::weights == Repacked: the Q4_0 and Q4_K matrices move at load into anonymous memory in 2 MiB pages,
// rows interleaved (Q4_0x128 and Q4_Kx64, kernels/quants.h), where each lane sums whole blocks of one row
// (docs/performance.md, "Repacked weights"). Every other tensor stays mapped from the file.
#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "common/huge_pages.h"
#include "common/load_control.h"
#include "kernels/kernels.h"
#include "kernels/quants.h"
#include "model/thread_pool.h"
#include "model/weights.h"

namespace mn {
namespace {

// One matrix to move: where it is, and the pointer and layout to update once it has moved.
struct Move {
  GgmlType type;
  const uint8_t* source;
  uint64_t rowBytes;
  uint32_t nIn, nOut;
  const uint8_t** data;
  RowLayout* layout;

  uint64_t sourceBytes() const { return rowBytes * nOut; }
  uint64_t repackedBytes() const {
    return uint64_t(interleavedGroupBytes(type, nIn)) * (nOut / interleavedGroupRows(type));
  }
  // The bytes it takes in the buffer: each copy starts on a 4 KiB boundary.
  uint64_t slotBytes() const { return (repackedBytes() + 4095) / 4096 * 4096; }
};

bool canRepack(GgmlType type, uint32_t nOut) {
  return kernels().interleaves(type) && nOut % interleavedGroupRows(type) == 0;
}

void addMatrix(MatrixRef& m, std::vector<Move>& moves) {
  if (m.data == nullptr || !canRepack(m.type, m.nOut)) return;
  moves.push_back(Move{m.type, m.data, m.rowBytes, m.nIn, m.nOut, &m.data, &m.layout});
}

void addExperts(ExpertsRef& m, uint32_t nExperts, std::vector<Move>& moves) {
  if (m.data[0] == nullptr || !canRepack(m.type, m.nOut)) return;
  for (uint32_t e = 0; e < nExperts; e++) {
    moves.push_back(Move{m.type, m.data[e], m.rowBytes, m.nIn, m.nOut, &m.data[e], &m.layout});
  }
}

// Gives back this process's pages of [begin, begin + bytes) of a read-only file mapping (whole pages inside it
// only; a later read maps them again from the page cache).
void releaseMappedPages(const uint8_t* begin, uint64_t bytes) {
  const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
  const uintptr_t first = (reinterpret_cast<uintptr_t>(begin) + page - 1) & ~(page - 1);
  const uintptr_t last = (reinterpret_cast<uintptr_t>(begin) + bytes) & ~(page - 1);
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

}  // namespace

Error repackWeights(const Hparams& hp, ModelWeights* weights, ThreadPool& pool, LoadControl& control,
                    HugePages* memory) {
  std::vector<Move> moves;
  for (LayerWeights& layer : weights->layers) {
    for (MatrixRef* m : {&layer.wq, &layer.wk, &layer.wv, &layer.wo, &layer.ffnGate, &layer.ffnUp, &layer.ffnDown,
                         &layer.ffnGateInp}) {
      addMatrix(*m, moves);
    }
    for (ExpertsRef* m : {&layer.ffnGateExps, &layer.ffnUpExps, &layer.ffnDownExps}) addExperts(*m, hp.nExperts, moves);
  }
  addMatrix(weights->output, moves);
  if (moves.empty()) return Error::none();

  uint64_t total = 0;
  for (const Move& move : moves) total += move.slotBytes();
  const uint64_t available = availableMemoryBytes();
  if (available > 0 && total > available) {
    return makeError("OUT_OF_MEMORY", "options.weights is \"repacked\", but the " + std::to_string(total) +
                                          " bytes of Q4_0 and Q4_K matrices exceed the " + std::to_string(available) +
                                          " bytes of memory available");
  }
  if (!memory->allocate(size_t(total))) {
    return makeError("OUT_OF_MEMORY", "options.weights is \"repacked\", but " + std::to_string(total) +
                                          " bytes of memory for the Q4_0 and Q4_K matrices could not be allocated");
  }
  uint8_t* next = memory->data();
  for (const Move& move : moves) {
    const size_t groups = move.nOut / interleavedGroupRows(move.type);
    uint8_t* const destination = next;
    pool.parallel([&](unsigned t, unsigned n) {
      repackInterleaved(move.type, move.source, size_t(move.rowBytes), move.nIn, groups * t / n, groups * (t + 1) / n,
                        destination);
    });
    releaseMappedPages(move.source, move.sourceBytes());
    *move.data = destination;
    *move.layout = RowLayout::Interleaved;
    next += move.slotBytes();
    if (Error error = control.step(move.sourceBytes()); !error.ok()) return error;
  }
  return Error::none();
}

}  // namespace mn
