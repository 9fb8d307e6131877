// bindModel: the model-level checks on top of the GGUF reader (REFERENCE.md "Mixtral in GGUF"). The reader has
// already proven every tensor lies inside the mapping with a known type and a whole number of blocks per row;
// here the hyperparameters are checked against each other and every tensor the forward pass reads against them.
#include "model/weights.h"

#include <cmath>
#include <cstring>
#include <initializer_list>
#include <string>
#include <string_view>

#include "gguf/gguf.h"
#include "gguf/message.h"

namespace mn {
namespace {

constexpr char kArchitecture[] = "llama";

// ============================================================================================== metadata

Error missingKey(std::string_view key) { return makeError("MODEL_MISSING_KEY", cat("metadata key ", key, " is missing")); }

Error requireU32(const GgufFile& file, std::string_view key, uint32_t* out) {
  Error error;
  if (file.getU32(key, out, &error)) return Error::none();
  return error.ok() ? missingKey(key) : error;
}

// Leaves *out at its default when the key is absent.
Error optionalU32(const GgufFile& file, std::string_view key, uint32_t* out) {
  Error error;
  file.getU32(key, out, &error);
  return error;
}

Error optionalF32(const GgufFile& file, std::string_view key, float* out) {
  Error error;
  file.getF32(key, out, &error);
  return error;
}

Error badHparam(std::string_view key, double value, const std::string& rule) {
  return makeError("MODEL_BAD_HPARAM", cat("metadata ", key, " = ", value, ": ", rule));
}

Error readHparams(const GgufFile& file, Hparams* hp) {
  std::string_view architecture;
  Error error;
  if (!file.getString("general.architecture", &architecture, &error)) {
    return error.ok() ? missingKey("general.architecture") : error;
  }
  if (architecture != kArchitecture) {
    return makeError("MODEL_UNSUPPORTED_ARCH", cat("general.architecture is ", quoted(architecture), "; only \"",
                                                   kArchitecture, "\" (Mixtral, Mistral, Llama) is supported"));
  }
  hp->architecture = std::string(architecture);

  const struct {
    const char* key;
    uint32_t* out;
  } required[] = {
      {"llama.context_length", &hp->contextLength}, {"llama.embedding_length", &hp->nEmbd},
      {"llama.block_count", &hp->nLayers},          {"llama.feed_forward_length", &hp->nFf},
      {"llama.attention.head_count", &hp->nHeads},
  };
  for (const auto& field : required) {
    if (Error e = requireU32(file, field.key, field.out); !e.ok()) return e;
    if (*field.out == 0) return badHparam(field.key, 0, "must be at least 1");
  }

  hp->nHeadsKv = hp->nHeads;  // llama.cpp's default: no grouped-query attention
  if (Error e = optionalU32(file, "llama.attention.head_count_kv", &hp->nHeadsKv); !e.ok()) return e;
  if (hp->nHeadsKv == 0 || hp->nHeads % hp->nHeadsKv != 0) {
    return makeError("MODEL_BAD_HEAD_COUNT", cat("llama.attention.head_count = ", hp->nHeads,
                                                 " is not a multiple of llama.attention.head_count_kv = ", hp->nHeadsKv));
  }
  if (hp->nEmbd % hp->nHeads != 0) {
    return makeError("MODEL_BAD_HEAD_COUNT", cat("llama.embedding_length = ", hp->nEmbd,
                                                 " is not a multiple of llama.attention.head_count = ", hp->nHeads));
  }
  hp->headDim = hp->nEmbd / hp->nHeads;

  hp->ropeDim = hp->headDim;
  if (Error e = optionalU32(file, "llama.rope.dimension_count", &hp->ropeDim); !e.ok()) return e;
  if (hp->ropeDim == 0 || hp->ropeDim % 2 != 0 || hp->ropeDim > hp->headDim) {
    return badHparam("llama.rope.dimension_count", hp->ropeDim,
                     cat("must be even and between 2 and the head dimension ", hp->headDim));
  }
  hp->ropeFreqBase = 10000.0f;
  if (Error e = optionalF32(file, "llama.rope.freq_base", &hp->ropeFreqBase); !e.ok()) return e;
  if (!(std::isfinite(hp->ropeFreqBase) && hp->ropeFreqBase > 0)) {
    return badHparam("llama.rope.freq_base", hp->ropeFreqBase, "must be finite and positive");
  }
  hp->rmsEps = 1e-5f;
  if (Error e = optionalF32(file, "llama.attention.layer_norm_rms_epsilon", &hp->rmsEps); !e.ok()) return e;
  if (!(std::isfinite(hp->rmsEps) && hp->rmsEps > 0)) {
    return badHparam("llama.attention.layer_norm_rms_epsilon", hp->rmsEps, "must be finite and positive");
  }

  hp->nExperts = 0;
  hp->nExpertsUsed = 0;
  if (Error e = optionalU32(file, "llama.expert_count", &hp->nExperts); !e.ok()) return e;
  if (hp->nExperts > 0) {
    if (Error e = requireU32(file, "llama.expert_used_count", &hp->nExpertsUsed); !e.ok()) return e;
  } else if (Error e = optionalU32(file, "llama.expert_used_count", &hp->nExpertsUsed); !e.ok()) {
    return e;
  }
  const bool moe = hp->nExperts > 0;
  if (moe ? !(hp->nExpertsUsed >= 1 && hp->nExpertsUsed <= hp->nExperts && hp->nExperts <= kMaxExperts)
          : hp->nExpertsUsed != 0) {
    return makeError("MODEL_BAD_EXPERT_COUNT",
                     cat("llama.expert_used_count = ", hp->nExpertsUsed, " and llama.expert_count = ", hp->nExperts,
                         ": need 1 <= expert_used_count <= expert_count <= ", kMaxExperts));
  }

  hp->slidingWindow = 0;
  if (Error e = optionalU32(file, "llama.attention.sliding_window", &hp->slidingWindow); !e.ok()) return e;
  uint32_t fileType = 0;
  Error fileTypeError;
  if (file.getU32("general.file_type", &fileType, &fileTypeError)) hp->fileType = fileType;
  return fileTypeError;
}

// ============================================================================================== vocabulary

// A metadata array of one element type, or an error naming what it is instead.
Error findArray(const GgufFile& file, std::string_view key, GgufValueType elementType, const GgufKv** out) {
  *out = file.findKv(key);
  if (*out == nullptr) return Error::none();
  const GgufValue& value = (*out)->value;
  if (value.type != GgufValueType::ARRAY || value.elementType != elementType) {
    const std::string actual = value.type == GgufValueType::ARRAY
                                   ? cat("ARRAY of ", ggufValueTypeName(value.elementType))
                                   : std::string(ggufValueTypeName(value.type));
    return makeError("GGUF_WRONG_TYPE", cat("metadata ", key, " is ", actual, "; expected ARRAY of ",
                                            ggufValueTypeName(elementType)));
  }
  return Error::none();
}

Error checkVocabulary(const GgufFile& file, Hparams* hp) {
  const GgufKv *tokens = nullptr, *scores = nullptr, *tokenTypes = nullptr;
  if (Error e = findArray(file, "tokenizer.ggml.tokens", GgufValueType::STRING, &tokens); !e.ok()) return e;
  if (tokens == nullptr) return missingKey("tokenizer.ggml.tokens");
  const uint64_t nVocab = tokens->value.count;
  if (nVocab == 0 || nVocab > static_cast<uint64_t>(INT32_MAX)) {
    return makeError("MODEL_BAD_VOCAB", cat("tokenizer.ggml.tokens has ", nVocab, " tokens; need 1 to 2^31 - 1"));
  }
  hp->nVocab = static_cast<uint32_t>(nVocab);

  if (Error e = findArray(file, "tokenizer.ggml.scores", GgufValueType::FLOAT32, &scores); !e.ok()) return e;
  if (Error e = findArray(file, "tokenizer.ggml.token_type", GgufValueType::INT32, &tokenTypes); !e.ok()) return e;
  for (const GgufKv* array : {scores, tokenTypes}) {
    if (array != nullptr && array->value.count != nVocab) {
      return makeError("MODEL_BAD_VOCAB", cat("metadata ", array->key, " has ", array->value.count,
                                              " elements but tokenizer.ggml.tokens has ", nVocab));
    }
  }
  if (tokenTypes != nullptr) {
    for (uint64_t i = 0; i < nVocab; i++) {
      int32_t tokenType;
      std::memcpy(&tokenType, tokenTypes->value.elements + 4 * i, 4);
      if (tokenType < 0 || tokenType > 6) {  // undefined, normal, unknown, control, user-defined, unused, byte
        return makeError("MODEL_BAD_VOCAB", cat("tokenizer.ggml.token_type of token ", i, " is ", tokenType,
                                                "; known types are 0 to 6"));
      }
    }
  }

  uint32_t declared = hp->nVocab;
  if (Error e = optionalU32(file, "llama.vocab_size", &declared); !e.ok()) return e;
  if (declared != hp->nVocab) {
    return makeError("MODEL_BAD_VOCAB", cat("llama.vocab_size = ", declared, " but tokenizer.ggml.tokens has ",
                                            hp->nVocab, " tokens"));
  }

  for (const char* key : {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id",
                          "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id"}) {
    int64_t id = 0;
    Error error;
    if (!file.getI64(key, &id, &error)) {
      if (!error.ok()) return error;
      continue;
    }
    if (id < 0 || id >= static_cast<int64_t>(hp->nVocab)) {
      return makeError("MODEL_BAD_TOKEN_ID", cat("metadata ", key, " = ", id, " is outside the vocabulary of ",
                                                 hp->nVocab, " tokens"));
    }
  }
  return Error::none();
}

// ============================================================================================== tensors

std::string blockName(uint32_t layer, const char* suffix) { return cat("blk.", layer, ".", suffix); }

class Binder {
 public:
  explicit Binder(const GgufFile& file) : file_(file) {}

  // The tensor `name` with exactly this shape (ne order; missing trailing dimensions are 1).
  Error tensor(const std::string& name, std::initializer_list<uint64_t> shape, const GgufTensorInfo** out) const {
    const GgufTensorInfo* tensor = file_.findTensor(name);
    if (tensor == nullptr) return makeError("MODEL_MISSING_TENSOR", cat("tensor ", name, " is missing"));
    const uint64_t* expected = shape.begin();
    for (size_t d = 0; d < 4; d++) {
      if (tensor->ne[d] != (d < shape.size() ? expected[d] : 1)) {
        return makeError("MODEL_SHAPE_MISMATCH", cat("tensor ", name, " has shape ", dimsText(tensor->ne, tensor->nDims),
                                                     "; expected ", dimsText(expected, shape.size())));
      }
    }
    *out = tensor;
    return Error::none();
  }

  // W (nOut, nIn) stored as ne = [nIn, nOut].
  Error matrix(const std::string& name, uint32_t nIn, uint32_t nOut, MatrixRef* out) const {
    const GgufTensorInfo* tensor = nullptr;
    if (Error e = this->tensor(name, {nIn, nOut}, &tensor); !e.ok()) return e;
    *out = {tensor->type, RowLayout::AsFile, file_.tensorData(*tensor), ggmlRowBytes(tensor->type, nIn), nIn, nOut};
    return Error::none();
  }

  // A (n,) F32 vector the forward pass reads as float*.
  Error norm(const std::string& name, uint32_t n, const float** out) const {
    const GgufTensorInfo* tensor = nullptr;
    if (Error e = this->tensor(name, {n}, &tensor); !e.ok()) return e;
    if (tensor->type != GgmlType::F32) {
      return makeError("MODEL_BAD_TENSOR_TYPE", cat("tensor ", name, " has type ", ggmlTypeTraits(tensor->type).name,
                                                    "; norm weights must be F32"));
    }
    const uint8_t* data = file_.tensorData(*tensor);
    if ((file_.dataOffset() + tensor->offset) % alignof(float) != 0) {
      return makeError("GGUF_BAD_ALIGNMENT", cat("tensor ", name, " starts at file offset ",
                                                 file_.dataOffset() + tensor->offset, ", not a multiple of 4"));
    }
    *out = reinterpret_cast<const float*>(data);
    return Error::none();
  }

  // ne = [nIn, nOut, nExperts]: expert e's matrix follows expert e-1's.
  Error mergedExperts(const std::string& name, uint32_t nIn, uint32_t nOut, uint32_t nExperts, ExpertsRef* out) const {
    const GgufTensorInfo* tensor = nullptr;
    if (Error e = this->tensor(name, {nIn, nOut, nExperts}, &tensor); !e.ok()) return e;
    fillExperts(*tensor, nIn, nOut, out);
    const uint8_t* base = file_.tensorData(*tensor);
    for (uint32_t e = 0; e < nExperts; e++) out->data[e] = base + uint64_t{e} * nOut * out->rowBytes;
    return Error::none();
  }

  // One tensor per expert, `prefix`.E.weight, all of one type.
  Error legacyExperts(const std::string& prefix, uint32_t nIn, uint32_t nOut, uint32_t nExperts, ExpertsRef* out) const {
    const GgufTensorInfo* first = nullptr;
    for (uint32_t e = 0; e < nExperts; e++) {
      const std::string name = cat(prefix, ".", e, ".weight");
      const GgufTensorInfo* tensor = nullptr;
      if (Error error = this->tensor(name, {nIn, nOut}, &tensor); !error.ok()) return error;
      if (first == nullptr) {
        first = tensor;
        fillExperts(*tensor, nIn, nOut, out);
      } else if (tensor->type != first->type) {
        return makeError("MODEL_BAD_TENSOR_TYPE", cat("tensor ", name, " has type ", ggmlTypeTraits(tensor->type).name,
                                                      " but ", first->name, " has ", ggmlTypeTraits(first->type).name,
                                                      "; the experts of one layer must share a type"));
      }
      out->data[e] = file_.tensorData(*tensor);
    }
    return Error::none();
  }

 private:
  static void fillExperts(const GgufTensorInfo& tensor, uint32_t nIn, uint32_t nOut, ExpertsRef* out) {
    out->type = tensor.type;
    out->rowBytes = ggmlRowBytes(tensor.type, nIn);
    out->nIn = nIn;
    out->nOut = nOut;
  }

  const GgufFile& file_;
};

Error bindLayer(const Binder& bind, const Hparams& hp, uint32_t layer, LayerWeights* w) {
  const uint32_t nEmbd = hp.nEmbd, nQ = hp.nHeads * hp.headDim, nKv = hp.nHeadsKv * hp.headDim;
  const auto name = [layer](const char* suffix) { return blockName(layer, suffix); };
  if (Error e = bind.norm(name("attn_norm.weight"), nEmbd, &w->attnNorm); !e.ok()) return e;
  if (Error e = bind.matrix(name("attn_q.weight"), nEmbd, nQ, &w->wq); !e.ok()) return e;
  if (Error e = bind.matrix(name("attn_k.weight"), nEmbd, nKv, &w->wk); !e.ok()) return e;
  if (Error e = bind.matrix(name("attn_v.weight"), nEmbd, nKv, &w->wv); !e.ok()) return e;
  if (Error e = bind.matrix(name("attn_output.weight"), nQ, nEmbd, &w->wo); !e.ok()) return e;
  if (Error e = bind.norm(name("ffn_norm.weight"), nEmbd, &w->ffnNorm); !e.ok()) return e;

  if (hp.nExperts == 0) {
    if (Error e = bind.matrix(name("ffn_gate.weight"), nEmbd, hp.nFf, &w->ffnGate); !e.ok()) return e;
    if (Error e = bind.matrix(name("ffn_up.weight"), nEmbd, hp.nFf, &w->ffnUp); !e.ok()) return e;
    return bind.matrix(name("ffn_down.weight"), hp.nFf, nEmbd, &w->ffnDown);
  }
  if (Error e = bind.matrix(name("ffn_gate_inp.weight"), nEmbd, hp.nExperts, &w->ffnGateInp); !e.ok()) return e;
  if (hp.legacyExpertLayout) {
    if (Error e = bind.legacyExperts(name("ffn_gate"), nEmbd, hp.nFf, hp.nExperts, &w->ffnGateExps); !e.ok()) return e;
    if (Error e = bind.legacyExperts(name("ffn_up"), nEmbd, hp.nFf, hp.nExperts, &w->ffnUpExps); !e.ok()) return e;
    return bind.legacyExperts(name("ffn_down"), hp.nFf, nEmbd, hp.nExperts, &w->ffnDownExps);
  }
  if (Error e = bind.mergedExperts(name("ffn_gate_exps.weight"), nEmbd, hp.nFf, hp.nExperts, &w->ffnGateExps); !e.ok()) {
    return e;
  }
  if (Error e = bind.mergedExperts(name("ffn_up_exps.weight"), nEmbd, hp.nFf, hp.nExperts, &w->ffnUpExps); !e.ok()) {
    return e;
  }
  return bind.mergedExperts(name("ffn_down_exps.weight"), hp.nFf, nEmbd, hp.nExperts, &w->ffnDownExps);
}

}  // namespace

Error bindModel(const GgufFile& file, Hparams* hparams, ModelWeights* weights) {
  Hparams hp;
  if (Error e = readHparams(file, &hp); !e.ok()) return e;
  if (Error e = checkVocabulary(file, &hp); !e.ok()) return e;
  // Legacy files name each expert; merged is the default so that a file with neither reports the current name.
  hp.legacyExpertLayout = hp.nExperts > 0 && file.findTensor(blockName(0, "ffn_gate_exps.weight")) == nullptr &&
                          file.findTensor(blockName(0, "ffn_gate.0.weight")) != nullptr;

  const Binder bind(file);
  ModelWeights w;
  if (Error e = bind.matrix("token_embd.weight", hp.nEmbd, hp.nVocab, &w.tokenEmbd); !e.ok()) return e;
  if (Error e = bind.norm("output_norm.weight", hp.nEmbd, &w.outputNorm); !e.ok()) return e;
  if (file.findTensor("output.weight") != nullptr) {
    if (Error e = bind.matrix("output.weight", hp.nEmbd, hp.nVocab, &w.output); !e.ok()) return e;
  } else {
    w.output = w.tokenEmbd;  // tied embeddings
  }
  // Grown layer by layer so that a huge block_count costs memory only for layers the file really has.
  for (uint32_t layer = 0; layer < hp.nLayers; layer++) {
    w.layers.emplace_back();
    if (Error e = bindLayer(bind, hp, layer, &w.layers.back()); !e.ok()) return e;
  }
  *hparams = std::move(hp);
  *weights = std::move(w);
  return Error::none();
}

}  // namespace mn
