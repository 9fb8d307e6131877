// For the sanitizer driver and the fuzzer: read the first and last byte of everything the reader and bindModel
// hand out (metadata strings and arrays, tensor data, bound weights), as the addon and the forward pass will.
// With the file in a heap buffer of its exact size, ASan reports any view that reaches past the file.
#pragma once

#include "gguf/gguf.h"
#include "model/weights.h"

namespace mn::testing {

inline volatile uint8_t touchSink;

inline void touchBytes(const void* data, uint64_t size) {
  if (size == 0) return;
  touchSink = static_cast<const uint8_t*>(data)[0];
  touchSink = static_cast<const uint8_t*>(data)[size - 1];
}

inline void touchValue(const GgufValue& value) {
  touchBytes(value.string.data(), value.string.size());
  if (value.type != GgufValueType::ARRAY) return;
  if (value.elementType == GgufValueType::STRING) {
    for (std::string_view s : value.strings) touchBytes(s.data(), s.size());
  } else if (value.elementType == GgufValueType::ARRAY) {
    for (const GgufValue& inner : value.arrays) touchValue(inner);
  } else {
    touchBytes(value.elements, value.count * ggufFixedValueBytes(value.elementType));
  }
}

inline void touchFile(const GgufFile& file) {
  for (const GgufKv& kv : file.metadata()) {
    touchBytes(kv.key.data(), kv.key.size());
    touchValue(kv.value);
  }
  for (const GgufTensorInfo& tensor : file.tensors()) touchBytes(file.tensorData(tensor), tensor.nBytes);
}

inline void touchWeights(const Hparams& hp, const ModelWeights& w) {
  const auto matrix = [](const MatrixRef& m) { touchBytes(m.data, m.rowBytes * m.nOut); };
  const auto experts = [&](const ExpertsRef& x) {
    for (uint32_t e = 0; e < hp.nExperts; e++) touchBytes(x.data[e], x.rowBytes * x.nOut);
  };
  const auto norm = [&](const float* values) { touchBytes(values, sizeof(float) * hp.nEmbd); };
  matrix(w.tokenEmbd);
  matrix(w.output);
  norm(w.outputNorm);
  for (const LayerWeights& layer : w.layers) {
    norm(layer.attnNorm);
    norm(layer.ffnNorm);
    for (const MatrixRef* m : {&layer.wq, &layer.wk, &layer.wv, &layer.wo}) matrix(*m);
    if (hp.nExperts == 0) {
      for (const MatrixRef* m : {&layer.ffnGate, &layer.ffnUp, &layer.ffnDown}) matrix(*m);
    } else {
      matrix(layer.ffnGateInp);
      for (const ExpertsRef* x : {&layer.ffnGateExps, &layer.ffnUpExps, &layer.ffnDownExps}) experts(*x);
    }
  }
}

}  // namespace mn::testing
