// A Mixtral / Mistral / Llama model as the forward pass sees it: validated hyperparameters and pointers into the
// mmapped GGUF file. Built by bindModel() (weights.cc), which checks every tensor the forward pass will read.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/ggml_type.h"
#include "common/status.h"

namespace mn {

class GgufFile;

constexpr uint32_t kMaxExperts = 256;

struct Hparams {
  std::string architecture;   // "llama"
  uint32_t nVocab = 0;
  uint32_t contextLength = 0;  // llama.context_length
  uint32_t nEmbd = 0;
  uint32_t nLayers = 0;
  uint32_t nFf = 0;            // per expert for MoE
  uint32_t nHeads = 0;
  uint32_t nHeadsKv = 0;
  uint32_t headDim = 0;        // nEmbd / nHeads
  uint32_t ropeDim = 0;        // llama.rope.dimension_count, default headDim
  float ropeFreqBase = 10000.0f;
  float rmsEps = 1e-5f;
  uint32_t nExperts = 0;       // 0: dense FFN
  uint32_t nExpertsUsed = 0;
  uint32_t slidingWindow = 0;  // 0: full attention
  int64_t fileType = -1;       // general.file_type, -1 when absent
  bool legacyExpertLayout = false;  // blk.N.ffn_gate.E.weight instead of ffn_gate_exps
};

// How a matrix's rows are laid out in memory.
enum class RowLayout : uint8_t {
  AsFile,       // row r holds nIn values of `type`, rowBytes apart
  Interleaved,  // rows repacked in groups, Q4_0x128 or Q4_Kx64 by type (kernels/quants.h; model/repack.cc)
};

// One weight matrix W (nOut, nIn) of `type`, starting at data.
struct MatrixRef {
  GgmlType type = GgmlType::F32;
  RowLayout layout = RowLayout::AsFile;
  const uint8_t* data = nullptr;
  uint64_t rowBytes = 0;
  uint32_t nIn = 0;   // ne[0]
  uint32_t nOut = 0;  // ne[1]
};

// nExperts matrices of one shape, type and layout; merged files give evenly spaced pointers, legacy files arbitrary
// ones.
struct ExpertsRef {
  GgmlType type = GgmlType::F32;
  RowLayout layout = RowLayout::AsFile;
  const uint8_t* data[kMaxExperts] = {};
  uint64_t rowBytes = 0;
  uint32_t nIn = 0;
  uint32_t nOut = 0;
};

struct LayerWeights {
  const float* attnNorm = nullptr;  // (nEmbd,) F32
  MatrixRef wq, wk, wv, wo;         // (nEmbd -> nHeads*headDim), (-> nHeadsKv*headDim) x2, (nHeads*headDim -> nEmbd)
  const float* ffnNorm = nullptr;   // (nEmbd,) F32
  // Dense layers:
  MatrixRef ffnGate, ffnUp, ffnDown;  // (nEmbd -> nFf) x2, (nFf -> nEmbd)
  // MoE layers:
  MatrixRef ffnGateInp;                      // router (nEmbd -> nExperts)
  ExpertsRef ffnGateExps, ffnUpExps, ffnDownExps;
};

struct ModelWeights {
  MatrixRef tokenEmbd;     // (nVocab rows of nEmbd)
  const float* outputNorm = nullptr;
  MatrixRef output;        // (nEmbd -> nVocab); token_embd when the file has no output.weight
  std::vector<LayerWeights> layers;
};

// Validates the hyperparameters and every tensor against them (REFERENCE.md "Mixtral in GGUF", "Hostile files")
// and fills hparams and weights with pointers into file's mapping. Codes: MODEL_* (see docs/gguf.md).
Error bindModel(const GgufFile& file, Hparams* hparams, ModelWeights* weights);

class HugePages;
class LoadControl;
class ThreadPool;

// Moves every Q4_0 and Q4_K matrix the forward pass multiplies by (rows a multiple of the layout's group) into `memory`
// in their interleaved layouts and points weights at the copies; the file's pages they came from are released from
// this process. `memory` stays empty when no matrix moved. OUT_OF_MEMORY when the copies would not fit the memory
// available; ABORT_ERR, checked after each matrix, when control asks (repack.cc).
Error repackWeights(const Hparams& hp, ModelWeights* weights, ThreadPool& pool, LoadControl& control,
                    HugePages* memory);

}  // namespace mn
