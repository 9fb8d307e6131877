#include <cstdint>
#include <string>
#include <vector>

#include "addon/bindings.h"
#include "common/ggml_type.h"
#include "kernels/quants.h"

namespace mn {
namespace {

// quantizeRows(type, values: Float32Array, rowLength) -> Uint8Array; lib/ has checked every argument.
Napi::Value quantizeRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint32_t type = info[0].As<Napi::Number>().Uint32Value();
  Napi::Float32Array values = info[1].As<Napi::Float32Array>();
  const size_t rowLength = info[2].As<Napi::Number>().Int64Value();
  const GgmlTypeTraits traits = ggmlTypeTraits(type);
  const size_t rows = values.ElementLength() / rowLength;
  const size_t rowBytes = rowLength / traits.blockSize * traits.blockBytes;
  Napi::Uint8Array out = Napi::Uint8Array::New(env, rows * rowBytes);
  for (size_t r = 0; r < rows; r++) {
    if (!quantizeRow(static_cast<GgmlType>(type), values.Data() + r * rowLength, out.Data() + r * rowBytes, rowLength)) {
      throw Napi::RangeError::New(env, std::string("cannot quantize to ") + (traits.name ? traits.name : "this type"));
    }
  }
  return out;
}

// dequantizeRows(type, bytes: Uint8Array, rowLength) -> Float32Array
Napi::Value dequantizeRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint32_t type = info[0].As<Napi::Number>().Uint32Value();
  Napi::Uint8Array bytes = info[1].As<Napi::Uint8Array>();
  const size_t rowLength = info[2].As<Napi::Number>().Int64Value();
  const GgmlTypeTraits traits = ggmlTypeTraits(type);
  const size_t rowBytes = rowLength / traits.blockSize * traits.blockBytes;
  const size_t rows = bytes.ByteLength() / rowBytes;
  Napi::Float32Array out = Napi::Float32Array::New(env, rows * rowLength);
  for (size_t r = 0; r < rows; r++) {
    if (!dequantizeRowReference(static_cast<GgmlType>(type), bytes.Data() + r * rowBytes, out.Data() + r * rowLength, rowLength)) {
      throw Napi::RangeError::New(env, std::string("cannot dequantize ") + (traits.name ? traits.name : "this type"));
    }
  }
  return out;
}

}  // namespace

void registerKernelsBinding(Napi::Env env, Napi::Object exports) {
  exports.Set("quantizeRows", Napi::Function::New(env, quantizeRows));
  exports.Set("dequantizeRows", Napi::Function::New(env, dequantizeRows));
}

}  // namespace mn
