// Kernel bindings: the scalar row converters (quantizeRows / dequantizeRows), kernelIsas(), and `kernelTesting`,
// which runs ONE chosen ISA's kernel on JS typed arrays for the tests. lib/ has checked every argument (types,
// lengths, ranges; see lib/kernels/testing.ts); this file only unpacks them. Read-only inputs of the testing
// functions are copied next to inaccessible pages, so a kernel reading past either end crashes the test run
// instead of passing; outputs are written in place so the tests' sentinels after them catch stray writes.
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#if !defined(_WIN32)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include "addon/bindings.h"
#include "common/cpu.h"
#include "common/ggml_type.h"
#include "kernels/kernels.h"
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
    if (!quantizeRow(static_cast<GgmlType>(type), values.Data() + r * rowLength, out.Data() + r * rowBytes,
        rowLength)) {
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
    if (!dequantizeRowReference(static_cast<GgmlType>(type), bytes.Data() + r * rowBytes, out.Data() + r * rowLength,
        rowLength)) {
      throw Napi::RangeError::New(env, std::string("cannot dequantize ") + (traits.name ? traits.name : "this type"));
    }
  }
  return out;
}

const Isa kIsas[] = {Isa::Scalar, Isa::Avx2, Isa::Avx512};

// kernelIsas() -> the ISA names this CPU can run, scalar first
Napi::Value kernelIsas(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Array names = Napi::Array::New(env);
  uint32_t count = 0;
  for (Isa isa : kIsas) {
    if (kernelsFor(isa) != nullptr) names.Set(count++, isaName(isa));
  }
  return names;
}

// A copy of some bytes whose last byte sits just before an inaccessible page, with another one before the first
// byte (plain heap memory where pages cannot be protected).
class GuardedCopy {
 public:
  GuardedCopy(const void* data, size_t size) {
#if !defined(_WIN32)
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t dataPages = (size + page - 1) / page;
    mappedBytes_ = (dataPages + 2) * page;
    void* mapped = mmap(nullptr, mappedBytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mapped != MAP_FAILED) {
      mapping_ = static_cast<uint8_t*>(mapped);
      mprotect(mapping_, page, PROT_NONE);
      mprotect(mapping_ + (dataPages + 1) * page, page, PROT_NONE);
      data_ = mapping_ + (dataPages + 1) * page - size;
    }
#endif
    if (data_ == nullptr) {
      heap_.resize(size + 1);
      data_ = heap_.data();
    }
    if (size != 0) std::memcpy(data_, data, size);
  }
  ~GuardedCopy() {
#if !defined(_WIN32)
    if (mapping_ != nullptr) munmap(mapping_, mappedBytes_);
#endif
  }
  GuardedCopy(const GuardedCopy&) = delete;
  GuardedCopy& operator=(const GuardedCopy&) = delete;

  uint8_t* data() { return data_; }
  template <typename T>
  const T* as() {
    return reinterpret_cast<const T*>(data_);
  }

 private:
  uint8_t* mapping_ = nullptr;
  size_t mappedBytes_ = 0;
  uint8_t* data_ = nullptr;
  std::vector<uint8_t> heap_;
};

GuardedCopy guarded(const Napi::TypedArray& array) {
  return GuardedCopy(static_cast<const uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset(), array.ByteLength());
}

// info[0]: an ISA name, or "active" for the table the engine uses (activeIsa(), capped by MIXTRAL_NATIVE_ISA)
const KernelTable& tableArg(const Napi::CallbackInfo& info) {
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  if (name == "active") return kernels();
  for (Isa isa : kIsas) {
    if (name == isaName(isa) && kernelsFor(isa) != nullptr) return *kernelsFor(isa);
  }
  throw Napi::RangeError::New(info.Env(), "this CPU cannot run the kernels of ISA " + name);
}

size_t sizeArg(const Napi::CallbackInfo& info, size_t index) {
  return static_cast<size_t>(info[index].As<Napi::Number>().Int64Value());
}

float floatArg(const Napi::CallbackInfo& info, size_t index) { return info[index].As<Napi::Number>().FloatValue(); }

// matmul(isa, type, weights: Uint8Array, n, x: Float32Array, nCols, rowBegin, rowEnd, out: Float32Array, ldy,
//        repacked: boolean)
// quantizes x (nCols rows of n) with that ISA's quantizeActivations, then out[c * ldy + r] = W row r . x column c;
// with `repacked`, Q4_0 or Q4_K weights (rows a multiple of interleavedGroupRows) are repacked to their interleaved
// layout and go through matmulInterleaved.
Napi::Value testMatmul(const Napi::CallbackInfo& info) {
  const KernelTable& k = tableArg(info);
  const GgmlType type = static_cast<GgmlType>(info[1].As<Napi::Number>().Uint32Value());
  const size_t n = sizeArg(info, 3);
  const bool repacked = info[10].As<Napi::Boolean>().Value();
  if (repacked && !k.interleaves(type)) {
    throw Napi::RangeError::New(info.Env(), std::string("ISA ") + isaName(k.isa) + " has no kernels for repacked " +
                                                ggmlTypeTraits(type).name + " rows");
  }
  Napi::Uint8Array input = info[2].As<Napi::Uint8Array>();
  std::vector<uint8_t> repackedRows;
  if (repacked) {
    const size_t rowBytes = ggmlRowBytes(type, n), groups = input.ByteLength() / rowBytes / interleavedGroupRows(type);
    repackedRows.resize(groups * interleavedGroupBytes(type, n));
    repackInterleaved(type, input.Data(), rowBytes, n, 0, groups, repackedRows.data());
  }
  GuardedCopy weights = repacked ? GuardedCopy(repackedRows.data(), repackedRows.size()) : guarded(input);
  Napi::Float32Array x = info[4].As<Napi::Float32Array>();
  const size_t nCols = sizeArg(info, 5), rowBegin = sizeArg(info, 6), rowEnd = sizeArg(info, 7);
  Napi::Float32Array out = info[8].As<Napi::Float32Array>();
  const size_t ldy = sizeArg(info, 9);
  const ActFormat format = activationFormatFor(type);
  const size_t actRowBytes = activationRowBytes(format, n);
  std::vector<uint8_t> quantized(actRowBytes * nCols);
  for (size_t c = 0; c < nCols; c++) k.quantizeActivations(format, x.Data() + c * n,
      quantized.data() + c * actRowBytes, n);
  GuardedCopy activations(quantized.data(), quantized.size());
  if (repacked) {
    k.matmulInterleaved(type, weights.data(), n, rowBegin, rowEnd, activations.data(), actRowBytes, nCols, out.Data(), ldy);
  } else {
    k.matmul(type, weights.data(), ggmlRowBytes(type, n), n, rowBegin, rowEnd, activations.data(), actRowBytes, nCols,
             out.Data(), ldy);
  }
  return info.Env().Undefined();
}

// quantizeActivations(isa, format, x: Float32Array, out: Uint8Array)
Napi::Value testQuantizeActivations(const Napi::CallbackInfo& info) {
  const KernelTable& k = tableArg(info);
  const ActFormat format = static_cast<ActFormat>(info[1].As<Napi::Number>().Uint32Value());
  Napi::Float32Array x = info[2].As<Napi::Float32Array>();
  GuardedCopy input = guarded(x);
  k.quantizeActivations(format, input.as<float>(), info[3].As<Napi::Uint8Array>().Data(), x.ElementLength());
  return info.Env().Undefined();
}

// dequantizeRow(isa, type, row: Uint8Array, n, out: Float32Array)
Napi::Value testDequantizeRow(const Napi::CallbackInfo& info) {
  const KernelTable& k = tableArg(info);
  const GgmlType type = static_cast<GgmlType>(info[1].As<Napi::Number>().Uint32Value());
  GuardedCopy row = guarded(info[2].As<Napi::Uint8Array>());
  k.dequantizeRow(type, row.data(), info[4].As<Napi::Float32Array>().Data(), sizeArg(info, 3));
  return info.Env().Undefined();
}

// rmsNorm(isa, x: Float32Array, weight: Float32Array, eps, out: Float32Array)
Napi::Value testRmsNorm(const Napi::CallbackInfo& info) {
  const KernelTable& k = tableArg(info);
  Napi::Float32Array x = info[1].As<Napi::Float32Array>();
  GuardedCopy input = guarded(x), weight = guarded(info[2].As<Napi::Float32Array>());
  k.rmsNorm(info[4].As<Napi::Float32Array>().Data(), input.as<float>(), weight.as<float>(), x.ElementLength(),
            floatArg(info, 3));
  return info.Env().Undefined();
}

// rope(isa, x: Float32Array in place, nHeads, headDim, ropeDim, pos, freqBase)
Napi::Value testRope(const Napi::CallbackInfo& info) {
  const KernelTable& k = tableArg(info);
  k.rope(info[1].As<Napi::Float32Array>().Data(), sizeArg(info, 2), sizeArg(info, 3), sizeArg(info, 4),
         info[5].As<Napi::Number>().Int64Value(), floatArg(info, 6));
  return info.Env().Undefined();
}

// attnScores(isa, q: Float32Array (heads, headDim), k: Uint16Array (F16) | Float32Array, headDim, count, scale,
// out: Float32Array (heads, count)); lib/kernels/testing.ts checks the lengths
Napi::Value testAttnScores(const Napi::CallbackInfo& info) {
  const KernelTable& k = tableArg(info);
  Napi::TypedArray cache = info[2].As<Napi::TypedArray>();
  GuardedCopy q = guarded(info[1].As<Napi::Float32Array>()), keys = guarded(cache);
  const size_t headDim = sizeArg(info, 3), count = sizeArg(info, 4);
  const size_t heads = info[1].As<Napi::Float32Array>().ElementLength() / headDim;
  float* out = info[6].As<Napi::Float32Array>().Data();
  if (cache.TypedArrayType() == napi_uint16_array) {
    k.attnScoresF16(q.as<float>(), heads, keys.as<uint16_t>(), headDim, count, floatArg(info, 5), out, count);
  } else {
    k.attnScoresF32(q.as<float>(), heads, keys.as<float>(), headDim, count, floatArg(info, 5), out, count);
  }
  return info.Env().Undefined();
}

// attnAccumulate(isa, out: Float32Array (heads, headDim) in place, p: Float32Array (heads, count),
// v: Uint16Array (F16) | Float32Array, headDim, count, heads)
Napi::Value testAttnAccumulate(const Napi::CallbackInfo& info) {
  const KernelTable& k = tableArg(info);
  Napi::TypedArray cache = info[3].As<Napi::TypedArray>();
  GuardedCopy p = guarded(info[2].As<Napi::Float32Array>()), values = guarded(cache);
  float* out = info[1].As<Napi::Float32Array>().Data();
  const size_t headDim = sizeArg(info, 4), count = sizeArg(info, 5), heads = sizeArg(info, 6);
  if (cache.TypedArrayType() == napi_uint16_array) {
    k.attnAccumulateF16(out, heads, p.as<float>(), count, values.as<uint16_t>(), headDim, count);
  } else {
    k.attnAccumulateF32(out, heads, p.as<float>(), count, values.as<float>(), headDim, count);
  }
  return info.Env().Undefined();
}

// softmax(isa, x: Float32Array in place, n)
Napi::Value testSoftmax(const Napi::CallbackInfo& info) {
  tableArg(info).softmax(info[1].As<Napi::Float32Array>().Data(), sizeArg(info, 2));
  return info.Env().Undefined();
}

// siluMul(isa, gate: Float32Array in place, up: Float32Array, n)
Napi::Value testSiluMul(const Napi::CallbackInfo& info) {
  const KernelTable& k = tableArg(info);
  GuardedCopy up = guarded(info[2].As<Napi::Float32Array>());
  k.siluMul(info[1].As<Napi::Float32Array>().Data(), up.as<float>(), sizeArg(info, 3));
  return info.Env().Undefined();
}

// axpy(isa, y: Float32Array in place, a, x: Float32Array, n)
Napi::Value testAxpy(const Napi::CallbackInfo& info) {
  const KernelTable& k = tableArg(info);
  GuardedCopy x = guarded(info[3].As<Napi::Float32Array>());
  k.axpy(info[1].As<Napi::Float32Array>().Data(), floatArg(info, 2), x.as<float>(), sizeArg(info, 4));
  return info.Env().Undefined();
}

// sumWords(isa, words: BigUint64Array, n) -> bigint
Napi::Value testSumWords(const Napi::CallbackInfo& info) {
  const KernelTable& k = tableArg(info);
  GuardedCopy words = guarded(info[1].As<Napi::TypedArray>());
  return Napi::BigInt::New(info.Env(), k.sumWords(words.as<uint64_t>(), sizeArg(info, 2)));
}

// activationRowBytes(format, n), activationFormatFor(type), isMatmulSupported(type)
Napi::Value testActivationRowBytes(const Napi::CallbackInfo& info) {
  const ActFormat format = static_cast<ActFormat>(info[0].As<Napi::Number>().Uint32Value());
  return Napi::Number::New(info.Env(), static_cast<double>(activationRowBytes(format, sizeArg(info, 1))));
}

Napi::Value testActivationFormatFor(const Napi::CallbackInfo& info) {
  const GgmlType type = static_cast<GgmlType>(info[0].As<Napi::Number>().Uint32Value());
  return Napi::Number::New(info.Env(), static_cast<double>(activationFormatFor(type)));
}

// hasRepackedKernels(isa, type): whether that ISA's table multiplies type's interleaved rows (Q4_0x128, Q4_Kx64)
Napi::Value testHasRepackedKernels(const Napi::CallbackInfo& info) {
  const KernelTable& k = tableArg(info);
  const GgmlType type = static_cast<GgmlType>(info[1].As<Napi::Number>().Uint32Value());
  return Napi::Boolean::New(info.Env(), k.interleaves(type));
}

// interleavedGroupRows(type): the rows of one group of the type's interleaved layout, 0 when it has none
Napi::Value testInterleavedGroupRows(const Napi::CallbackInfo& info) {
  const GgmlType type = static_cast<GgmlType>(info[0].As<Napi::Number>().Uint32Value());
  return Napi::Number::New(info.Env(), hasInterleavedLayout(type) ? double(interleavedGroupRows(type)) : 0.0);
}

Napi::Value testIsMatmulSupported(const Napi::CallbackInfo& info) {
  const GgmlType type = static_cast<GgmlType>(info[0].As<Napi::Number>().Uint32Value());
  return Napi::Boolean::New(info.Env(), isMatmulSupported(type));
}

}  // namespace

void registerKernelsBinding(Napi::Env env, Napi::Object exports) {
  exports.Set("quantizeRows", Napi::Function::New(env, quantizeRows));
  exports.Set("dequantizeRows", Napi::Function::New(env, dequantizeRows));
  exports.Set("kernelIsas", Napi::Function::New(env, kernelIsas));
  Napi::Object testing = Napi::Object::New(env);
  testing.Set("matmul", Napi::Function::New(env, testMatmul));
  testing.Set("quantizeActivations", Napi::Function::New(env, testQuantizeActivations));
  testing.Set("dequantizeRow", Napi::Function::New(env, testDequantizeRow));
  testing.Set("rmsNorm", Napi::Function::New(env, testRmsNorm));
  testing.Set("rope", Napi::Function::New(env, testRope));
  testing.Set("attnScores", Napi::Function::New(env, testAttnScores));
  testing.Set("attnAccumulate", Napi::Function::New(env, testAttnAccumulate));
  testing.Set("softmax", Napi::Function::New(env, testSoftmax));
  testing.Set("siluMul", Napi::Function::New(env, testSiluMul));
  testing.Set("axpy", Napi::Function::New(env, testAxpy));
  testing.Set("sumWords", Napi::Function::New(env, testSumWords));
  testing.Set("activationRowBytes", Napi::Function::New(env, testActivationRowBytes));
  testing.Set("activationFormatFor", Napi::Function::New(env, testActivationFormatFor));
  testing.Set("isMatmulSupported", Napi::Function::New(env, testIsMatmulSupported));
  testing.Set("hasRepackedKernels", Napi::Function::New(env, testHasRepackedKernels));
  testing.Set("interleavedGroupRows", Napi::Function::New(env, testInterleavedGroupRows));
  exports.Set("kernelTesting", testing);
}

}  // namespace mn
