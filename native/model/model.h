// A loaded model (the mmapped file, its validated weights and a thread pool) and the sessions that run it.
// Everything here is used from one thread at a time per object: the addon serialises calls on a session, and
// Model::computeMutex() serialises forward passes of different sessions on the shared pool.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "common/huge_pages.h"
#include "common/load_control.h"
#include "common/status.h"
#include "gguf/gguf.h"
#include "kernels/kernels.h"
#include "model/thread_pool.h"
#include "model/weights.h"

namespace mn {

// Where the weights live while the model runs (docs/performance.md, "Where the weights live").
enum class WeightMemory {
  Mapped,  // used in place from the file's mapping: no copy, pages shared with other processes
  Copied,  // read into anonymous memory in 2 MiB pages at load: decode no longer depends on the page cache's pages
  // Q4_0 and Q4_K matrices moved into anonymous memory in 2 MiB pages, rows interleaved (model/repack.cc), the
  // rest mapped; where the CPU has no kernels for those layouts (AVX2), or the model has no such matrix, Mapped.
  Repacked,
};

struct ModelOptions {
  unsigned threads = 1;
  WeightMemory weights = WeightMemory::Mapped;
  int64_t slidingWindow = -1;     // -1: from the file; 0: full attention; > 0: window W
  uint32_t expertsPerToken = 0;   // 0: from the file
  bool verifyTensorData = false;
};

class Model {
 public:
  // Opens, validates and binds path; control may abort the load (ABORT_ERR) and reports its progress.
  static Error load(const std::string& path, const ModelOptions& options, LoadControl& control,
                    std::unique_ptr<Model>* out);

  const Hparams& hparams() const { return hparams_; }
  const ModelWeights& weights() const { return weights_; }
  const GgufFile& file() const { return *file_; }
  WeightMemory weightMemory() const { return weightMemory_; }
  ThreadPool& pool() { return *pool_; }
  std::mutex& computeMutex() { return computeMutex_; }
  // Identifies the weights a session state belongs to (state.cc); computed on first use.
  uint64_t fingerprint() const;

 private:
  Model() = default;
  mutable std::once_flag fingerprintOnce_;
  mutable uint64_t fingerprint_ = 0;
  std::unique_ptr<GgufFile> file_;
  WeightMemory weightMemory_ = WeightMemory::Mapped;
  HugePages repacked_;  // the repacked matrices (WeightMemory::Repacked)
  Hparams hparams_;
  ModelWeights weights_;
  std::unique_ptr<ThreadPool> pool_;
  std::mutex computeMutex_;
};

enum class KvType { F16, F32 };

// A fixed-size array left uninitialised: large caches and scratch are allocated without touching their pages,
// so creating a session is instant and costs memory only as positions are filled.
template <typename T>
class Scratch {
 public:
  // False when the memory is not to be had (sizes come from options and file metadata: never throw on them).
  bool allocate(size_t n) {
    data_.reset(n > 0 && n <= SIZE_MAX / sizeof(T) ? new (std::nothrow) T[n] : nullptr);
    size_ = data_ ? n : 0;
    return n == 0 || data_ != nullptr;
  }
  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  size_t size() const { return size_; }
  T& operator[](size_t i) { return data_[i]; }

 private:
  std::unique_ptr<T[]> data_;
  size_t size_ = 0;
};

struct SessionOptions {
  uint32_t contextSize = 4096;  // positions kept without a window; ignored for the slot count with one
  uint32_t batchSize = 512;     // tokens per prefill chunk
  KvType kvType = KvType::F16;
};

class Session {
 public:
  Session(Model& model, const SessionOptions& options);

  // SESSION_OUT_OF_MEMORY when the cache or scratch could not be allocated; nothing else may be called then.
  const Error& status() const { return status_; }

  // Appends tokens to the cache and writes the logits after the last one to logits (nVocab floats).
  // Codes: CONTEXT_OVERFLOW, ABORT_ERR (abort was set: the cache is back where it was if it can be),
  // SESSION_BAD_TOKEN (a defensive check; lib/ validates ids first).
  Error eval(const int32_t* tokens, size_t count, float* logits, const std::atomic<bool>* abort);

  uint64_t position() const { return nPast_; }
  // Forgets the last n positions. False when a sliding-window cache has already overwritten what they need.
  bool rewind(uint64_t n);
  void reset();
  uint64_t maxRewind() const;

  uint32_t expertsPerToken() const { return nExpertsUsed_; }
  // 1 <= k <= the load-time experts per token (scratch is sized for it); lib/ validates.
  void setExpertsPerToken(uint32_t k) { nExpertsUsed_ = k; }
  // Per layer, per expert: how many token-expert selections since the last resetRouting().
  const std::vector<uint64_t>& routingCounts() const { return routingCounts_; }
  void resetRouting();
  // The last evaluated token's selections: per layer, nExperts entries of which the first expertsPerToken
  // are used (ids, and their renormalised weights).
  const std::vector<int32_t>& lastExperts() const { return lastExperts_; }
  const std::vector<float>& lastExpertWeights() const { return lastExpertWeights_; }

  // Session state (state.cc): the cache rows, tokens and optionally the last logits in a versioned, checksummed
  // format. saveState writes exactly stateBytes(logits != nullptr) bytes; tokens holds position() ids.
  size_t stateBytes(bool withLogits) const;
  void saveState(const int32_t* tokens, const float* logits, uint8_t* out) const;
  // Validates the whole buffer before changing anything. Codes: STATE_CORRUPT, STATE_UNSUPPORTED_VERSION,
  // STATE_MODEL_MISMATCH, STATE_SESSION_MISMATCH. logits comes back empty when the state has none.
  Error loadState(const uint8_t* data, size_t size, std::vector<int32_t>* tokens, std::vector<float>* logits);

  uint32_t contextSize() const { return contextSize_; }
  uint32_t slidingWindow() const { return window_; }
  size_t kvBytes() const { return kCache_.size() + vCache_.size(); }

 private:
  // False when abort was seen between layers (nothing of the chunk is committed).
  bool forwardChunk(const int32_t* tokens, size_t count, float* logits, const std::atomic<bool>* abort);
  void embed(const int32_t* tokens, size_t count);
  void attentionBlock(size_t layer, size_t count);
  void feedForwardBlock(size_t layer, size_t count);
  void denseFeedForward(const LayerWeights& w, size_t count);
  void expertFeedForward(size_t layer, const LayerWeights& w, size_t count);
  void outputLogits(size_t count, float* logits);
  size_t stateRows() const;

  Model& model_;
  const Hparams& hp_;
  const KernelTable& k_;
  ThreadPool& pool_;
  uint32_t contextSize_;
  uint32_t batchSize_;
  uint32_t window_;    // 0: none
  size_t nSlots_;      // cache rows per kv head
  KvType kvType_;
  Error status_;
  uint64_t nPast_ = 0;
  // One past the highest position whose keys went into the cache, counting evaluations since rewound or
  // aborted: with a window, their slots no longer hold older positions, which bounds how far a rewind can go.
  uint64_t writtenEnd_ = 0;
  uint32_t nExpertsUsed_;

  Scratch<uint8_t> kCache_, vCache_;  // per layer [nHeadsKv][nSlots][headDim] of F16 or F32

  // Scratch sized once for batchSize tokens; nothing is allocated per eval.
  Scratch<float> x_, xNorm_, q_, kNew_, vNew_, attnOut_, blockOut_;
  Scratch<float> scores_;              // per thread: nSlots for each query head of one KV head
  Scratch<float> qScratch_;            // per thread: the queries of one KV head's heads, rounded to fp16
  Scratch<uint16_t> halfScratch_;      // per thread: values on their way through roundToFp16
  Scratch<uint8_t> actBuffers_[4];     // quantized activations: 0 layer input, 1 attention output, 2 ffn hidden, 3 spare
  Scratch<float> routerLogits_;        // batch * nExperts
  Scratch<int32_t> selectedExperts_;   // batch * expertsUsed
  Scratch<float> selectedWeights_;
  Scratch<int32_t> groupTokens_;       // (token, expert) pairs packed by expert
  Scratch<float> groupWeights_;
  std::vector<uint32_t> groupStart_, groupCount_;
  Scratch<float> gate_, up_, down_;    // (batch * expertsUsed) rows of nFf / nFf / nEmbd
  Scratch<uint8_t> gathered_;          // quantized ffn input rows in group order (two halves if gate and up differ)

  std::vector<uint64_t> routingCounts_, chunkRoutingCounts_;  // a chunk's counts land only when it completes
  std::vector<int32_t> lastExperts_, pendingLastExperts_;
  std::vector<float> lastExpertWeights_, pendingLastWeights_;
  WorkCounter work_;
};

}  // namespace mn
