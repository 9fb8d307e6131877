// readGguf / inspectModel: parse (and bind) a GGUF file on a worker thread, build the JS result on the main one.
#include <cstring>
#include <map>
#include <new>

#include "addon/bindings.h"
#include "addon/promise_worker.h"
#include "gguf/gguf.h"
#include "model/weights.h"

namespace mn {
namespace {

// ============================================================================================== metadata to JS

template <class T>
Napi::Value typedArray(Napi::Env env, const GgufValue& array) {
  const size_t count = static_cast<size_t>(array.count);
  Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, count * sizeof(T));
  if (count > 0) std::memcpy(buffer.Data(), array.elements, count * sizeof(T));  // elements may be unaligned
  return Napi::TypedArrayOf<T>::New(env, count, buffer, 0);
}

Napi::Value arrayValue(Napi::Env env, const GgufValue& array) {
  switch (array.elementType) {
    case GgufValueType::UINT8: return typedArray<uint8_t>(env, array);
    case GgufValueType::INT8: return typedArray<int8_t>(env, array);
    case GgufValueType::UINT16: return typedArray<uint16_t>(env, array);
    case GgufValueType::INT16: return typedArray<int16_t>(env, array);
    case GgufValueType::UINT32: return typedArray<uint32_t>(env, array);
    case GgufValueType::INT32: return typedArray<int32_t>(env, array);
    case GgufValueType::FLOAT32: return typedArray<float>(env, array);
    case GgufValueType::FLOAT64: return typedArray<double>(env, array);
    case GgufValueType::UINT64: return typedArray<uint64_t>(env, array);
    case GgufValueType::INT64: return typedArray<int64_t>(env, array);
    default: break;
  }
  if (array.count > UINT32_MAX) {
    throw toJsError(env, makeError("GGUF_BAD_COUNT", "a metadata array of " + std::to_string(array.count) +
                                                         " elements is too long for a JS array"));
  }
  Napi::Array out = Napi::Array::New(env, static_cast<size_t>(array.count));
  for (uint32_t i = 0; i < array.count; i++) {
    if (array.elementType == GgufValueType::BOOL) {
      out.Set(i, Napi::Boolean::New(env, array.elements[i] != 0));
    } else if (array.elementType == GgufValueType::STRING) {
      out.Set(i, Napi::String::New(env, array.strings[i].data(), array.strings[i].size()));
    } else {
      out.Set(i, arrayValue(env, array.arrays[i]));
    }
  }
  return out;
}

Napi::Value metadataValue(Napi::Env env, const GgufValue& value) {
  switch (value.type) {
    case GgufValueType::UINT8: case GgufValueType::UINT16: case GgufValueType::UINT32:
      return Napi::Number::New(env, static_cast<double>(value.scalar.u64));
    case GgufValueType::INT8: case GgufValueType::INT16: case GgufValueType::INT32:
      return Napi::Number::New(env, static_cast<double>(value.scalar.i64));
    case GgufValueType::FLOAT32: case GgufValueType::FLOAT64: return Napi::Number::New(env, value.scalar.f64);
    case GgufValueType::UINT64: return Napi::BigInt::New(env, value.scalar.u64);
    case GgufValueType::INT64: return Napi::BigInt::New(env, value.scalar.i64);
    case GgufValueType::BOOL: return Napi::Boolean::New(env, value.scalar.b);
    case GgufValueType::STRING: return Napi::String::New(env, value.string.data(), value.string.size());
    case GgufValueType::ARRAY: return arrayValue(env, value);
  }
  return env.Undefined();
}

Napi::Number number(Napi::Env env, uint64_t value) { return Napi::Number::New(env, static_cast<double>(value)); }

// Work on one file: the (path, verifyTensorData) arguments both functions take.
class FileWorker : public PromiseWorker {
 public:
  FileWorker(Napi::Env env, std::string path, bool verifyTensorData)
      : PromiseWorker(env), path_(std::move(path)), verifyTensorData_(verifyTensorData) {}

 protected:
  GgufReadOptions readOptions() const {
    GgufReadOptions options;
    options.verifyTensorData = verifyTensorData_;
    return options;
  }

  std::string path_;
  bool verifyTensorData_;
};

// ============================================================================================== readGguf

class ReadGgufWorker : public FileWorker {
 public:
  using FileWorker::FileWorker;

 private:
  Error run() override { return GgufFile::open(path_, readOptions(), &file_); }

  Napi::Value result(Napi::Env env) override {
    // Property names made once: 100k-entry files would otherwise create a million key strings.
    const Napi::String kKey = Napi::String::New(env, "key"), kType = Napi::String::New(env, "type"),
                       kElementType = Napi::String::New(env, "elementType"), kValue = Napi::String::New(env, "value"),
                       kName = Napi::String::New(env, "name"), kShape = Napi::String::New(env, "shape"),
                       kOffset = Napi::String::New(env, "offset"), kByteLength = Napi::String::New(env, "byteLength");
    Napi::Array metadata = Napi::Array::New(env, file_->metadata().size());
    uint32_t index = 0;
    for (const GgufKv& kv : file_->metadata()) {
      Napi::Object entry = Napi::Object::New(env);
      entry.Set(kKey, Napi::String::New(env, kv.key.data(), kv.key.size()));
      entry.Set(kType, Napi::Number::New(env, static_cast<uint32_t>(kv.value.type)));
      if (kv.value.type == GgufValueType::ARRAY) {
        entry.Set(kElementType, Napi::Number::New(env, static_cast<uint32_t>(kv.value.elementType)));
      }
      entry.Set(kValue, metadataValue(env, kv.value));
      metadata.Set(index++, entry);
    }
    Napi::Array tensors = Napi::Array::New(env, file_->tensors().size());
    index = 0;
    for (const GgufTensorInfo& tensor : file_->tensors()) {
      Napi::Object entry = Napi::Object::New(env);
      entry.Set(kName, Napi::String::New(env, tensor.name.data(), tensor.name.size()));
      entry.Set(kType, Napi::Number::New(env, static_cast<uint32_t>(tensor.type)));
      Napi::Array shape = Napi::Array::New(env, tensor.nDims);
      for (uint32_t d = 0; d < tensor.nDims; d++) shape.Set(d, number(env, tensor.ne[d]));
      entry.Set(kShape, shape);
      entry.Set(kOffset, number(env, file_->dataOffset() + tensor.offset));
      entry.Set(kByteLength, number(env, tensor.nBytes));
      tensors.Set(index++, entry);
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("version", file_->version());
    out.Set("alignment", file_->alignment());
    out.Set("dataOffset", number(env, file_->dataOffset()));
    out.Set("fileSize", number(env, file_->fileSize()));
    out.Set("metadata", metadata);
    out.Set("tensors", tensors);
    file_.reset();  // unmaps now rather than when the worker is collected
    return out;
  }

  std::unique_ptr<GgufFile> file_;
};

// ============================================================================================== inspectModel

class InspectModelWorker : public FileWorker {
 public:
  using FileWorker::FileWorker;

 private:
  Error run() override {
    // open() scans every tensor when asked, so bindModel need not scan again
    if (Error e = GgufFile::open(path_, readOptions(), &file_); !e.ok()) return e;
    ModelWeights weights;
    if (Error e = bindModel(*file_, &hparams_, &weights); !e.ok()) {
      e.message = path_ + ": " + e.message;
      return e;
    }
    return Error::none();
  }

  Napi::Value result(Napi::Env env) override { return modelInfoToJs(env, *file_, hparams_); }

  std::unique_ptr<GgufFile> file_;
  Hparams hparams_;
};

// Arguments are validated in lib/gguf; this only guards against misuse of the raw addon.
template <class Worker>
Napi::Value startWorker(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsBoolean()) {
    throw Napi::TypeError::New(env, "expected (path: string, verifyTensorData: boolean)");
  }
  auto* worker = new Worker(env, info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::Boolean>().Value());
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

}  // namespace

Napi::Object modelInfoToJs(Napi::Env env, const GgufFile& file, const Hparams& hp) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("architecture", hp.architecture);
  out.Set("nVocab", hp.nVocab);
  out.Set("contextLength", hp.contextLength);
  out.Set("nEmbd", hp.nEmbd);
  out.Set("nLayers", hp.nLayers);
  out.Set("nFf", hp.nFf);
  out.Set("nHeads", hp.nHeads);
  out.Set("nHeadsKv", hp.nHeadsKv);
  out.Set("headDim", hp.headDim);
  out.Set("ropeDim", hp.ropeDim);
  out.Set("ropeFreqBase", hp.ropeFreqBase);
  out.Set("rmsEps", hp.rmsEps);
  out.Set("nExperts", hp.nExperts);
  out.Set("nExpertsUsed", hp.nExpertsUsed);
  out.Set("slidingWindow", hp.slidingWindow);
  out.Set("fileType", static_cast<double>(hp.fileType));
  out.Set("legacyExpertLayout", hp.legacyExpertLayout);
  out.Set("tensorCount", number(env, file.tensors().size()));
  out.Set("fileSize", number(env, file.fileSize()));
  std::map<uint32_t, uint64_t> typeCounts;  // by ggml type id
  for (const GgufTensorInfo& tensor : file.tensors()) typeCounts[static_cast<uint32_t>(tensor.type)]++;
  Napi::Object histogram = Napi::Object::New(env);  // type names are not integer-like: insertion order holds
  for (const auto& [typeId, count] : typeCounts) histogram.Set(ggmlTypeTraits(typeId).name, number(env, count));
  out.Set("tensorTypes", histogram);
  return out;
}

void registerGgufBinding(Napi::Env env, Napi::Object exports) {
  exports.Set("readGguf", Napi::Function::New(env, startWorker<ReadGgufWorker>, "readGguf"));
  exports.Set("inspectModel", Napi::Function::New(env, startWorker<InspectModelWorker>, "inspectModel"));
}

}  // namespace mn
