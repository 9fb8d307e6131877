// N-API glue for native/tokenizer: a Tokenizer handle over an immutable SpmVocabulary. lib/tokenizer has checked
// every argument; encodeAsync runs on a worker thread that shares the vocabulary and never touches N-API.
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "addon/bindings.h"
#include "tokenizer/spm.h"

namespace mn {
namespace {

// The UTF-8 bytes of a JS string. V8 writes a lone surrogate as U+FFFD, as llama.cpp's bindings receive it.
std::string_view readUtf8(Napi::Env env, Napi::Value value, SpmByteBuffer* buffer) {
  size_t utf16Length = 0;
  NAPI_THROW_IF_FAILED(env, napi_get_value_string_utf16(env, value, nullptr, 0, &utf16Length), std::string_view());
  // Each UTF-16 unit gives at most 3 bytes; +1 for the terminator V8 writes.
  char* bytes = reinterpret_cast<char*>(buffer->reserve(utf16Length * 3 + 1));
  size_t written = 0;
  NAPI_THROW_IF_FAILED(env, napi_get_value_string_utf8(env, value, bytes, utf16Length * 3 + 1, &written), std::string_view());
  return std::string_view(bytes, written);
}

Napi::Int32Array toInt32Array(Napi::Env env, const std::vector<int32_t>& ids) {
  Napi::Int32Array array = Napi::Int32Array::New(env, ids.size());
  if (!ids.empty()) std::memcpy(array.Data(), ids.data(), ids.size() * sizeof(int32_t));
  return array;
}

SpmEncodeRequest readRequest(const Napi::CallbackInfo& info, size_t first) {
  SpmEncodeRequest request;
  request.bosId = info[first].As<Napi::Number>().Int32Value();
  request.eosId = info[first + 1].As<Napi::Number>().Int32Value();
  request.parseSpecial = info[first + 2].As<Napi::Boolean>().Value();
  return request;
}

class EncodeWorker : public Napi::AsyncWorker {
 public:
  EncodeWorker(Napi::Env env, std::shared_ptr<const SpmVocabulary> vocabulary, SpmByteBuffer text, size_t textLength,
               SpmEncodeRequest request)
      : Napi::AsyncWorker(env, "mixtral-native:tokenizer.encode"),
        deferred_(Napi::Promise::Deferred::New(env)),
        vocabulary_(std::move(vocabulary)),
        text_(std::move(text)),
        textLength_(textLength),
        request_(request) {}

  Napi::Promise promise() const { return deferred_.Promise(); }

  void Execute() override {
    SpmScratch scratch;
    ids_.reserve(textLength_ / 2 + 16);
    const std::string_view text(reinterpret_cast<const char*>(text_.bytes.get()), textLength_);
    error_ = vocabulary_->encode(text, request_, &scratch, &ids_);
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (!error_.ok()) {
      deferred_.Reject(toJsError(env, error_).Value());
      return;
    }
    deferred_.Resolve(toInt32Array(env, ids_));
  }

  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<const SpmVocabulary> vocabulary_;
  SpmByteBuffer text_;  // the UTF-8 copy made on the JS thread
  size_t textLength_;
  SpmEncodeRequest request_;
  std::vector<int32_t> ids_;
  Error error_;
};

class TokenizerHandle : public Napi::ObjectWrap<TokenizerHandle> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "TokenizerHandle",
                       {
                           InstanceMethod<&TokenizerHandle::encode>("encode"),
                           InstanceMethod<&TokenizerHandle::encodeAsync>("encodeAsync"),
                       });
  }

  // new TokenizerHandle(texts: Uint8Array, offsets: Uint32Array (n + 1), scores: Float32Array, types: Int32Array,
  //                     unkId: number, addSpacePrefix: boolean)
  explicit TokenizerHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TokenizerHandle>(info) {
    Napi::Env env = info.Env();
    Napi::Uint8Array texts = info[0].As<Napi::Uint8Array>();
    Napi::Uint32Array offsets = info[1].As<Napi::Uint32Array>();
    Napi::Float32Array scores = info[2].As<Napi::Float32Array>();
    Napi::Int32Array types = info[3].As<Napi::Int32Array>();
    SpmVocabularyInput input;
    input.texts = texts.Data();
    input.offsets = offsets.Data();
    input.count = static_cast<uint32_t>(scores.ElementLength());
    input.scores = scores.Data();
    input.types = types.Data();
    input.unkId = info[4].As<Napi::Number>().Int32Value();
    input.addSpacePrefix = info[5].As<Napi::Boolean>().Value();
    if (offsets.ElementLength() != input.count + 1 || types.ElementLength() != input.count ||
        offsets.Data()[input.count] > texts.ByteLength()) {
      throw toJsError(env, makeError("TOKENIZER_BAD_VOCABULARY", "token arrays disagree in length"));
    }
    std::unique_ptr<SpmVocabulary> vocabulary;
    Error error = SpmVocabulary::build(input, &vocabulary);
    if (!error.ok()) throw toJsError(env, error);
    vocabulary_ = std::move(vocabulary);
  }

 private:
  // encode(text: string, bosId, eosId, parseSpecial) -> Int32Array (bosId/eosId -1: none)
  Napi::Value encode(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string_view text = readUtf8(env, info[0], &utf8_);
    const SpmEncodeRequest request = readRequest(info, 1);
    ids_.clear();
    ids_.reserve(text.size() / 2 + 16);
    Error error = vocabulary_->encode(text, request, &scratch_, &ids_);
    if (!error.ok()) throw toJsError(env, error);
    return toInt32Array(env, ids_);
  }

  // encodeAsync(text: string, bosId, eosId, parseSpecial) -> Promise<Int32Array>
  Napi::Value encodeAsync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    SpmByteBuffer buffer;
    const std::string_view text = readUtf8(env, info[0], &buffer);
    auto* worker = new EncodeWorker(env, vocabulary_, std::move(buffer), text.size(), readRequest(info, 1));
    Napi::Promise promise = worker->promise();
    worker->Queue();
    return promise;
  }

  std::shared_ptr<const SpmVocabulary> vocabulary_;
  // Used only by encode() on the JS thread, kept to reuse their capacity.
  SpmScratch scratch_;
  SpmByteBuffer utf8_;
  std::vector<int32_t> ids_;
};

}  // namespace

void registerTokenizerBinding(Napi::Env env, Napi::Object exports) {
  exports.Set("TokenizerHandle", TokenizerHandle::define(env));
}

}  // namespace mn
