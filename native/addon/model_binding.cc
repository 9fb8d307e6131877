// N-API glue for Model and Session: loading and evaluation run on libuv's thread pool; the JS thread only
// validates nothing (lib/ did), copies results and settles promises.
#include <node_api.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "addon/bindings.h"
#include "addon/promise_worker.h"
#include "model/model.h"

namespace mn {
namespace {

struct ModelClasses {
  Napi::FunctionReference model;
  Napi::FunctionReference session;
};

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "NativeModel",
                       {InstanceMethod<&ModelWrap::info>("info"), InstanceMethod<&ModelWrap::weights>("weights"),
                        InstanceMethod<&ModelWrap::dispose>("dispose")});
  }

  // new NativeModel(External<Model>): only loadModel() constructs it.
  explicit ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
    model_.reset(info[0].As<Napi::External<Model>>().Data());
  }

  Model* model() { return model_.get(); }
  void sessionOpened() { liveSessions_++; }
  void sessionClosed() { liveSessions_--; }

 private:
  Napi::Value info(const Napi::CallbackInfo& info) {
    if (!model_) throw toJsError(info.Env(), makeError("DISPOSED", "the model has been disposed"));
    return modelInfoToJs(info.Env(), model_->file(), model_->hparams());
  }

  Napi::Value weights(const Napi::CallbackInfo& info) {
    if (!model_) throw toJsError(info.Env(), makeError("DISPOSED", "the model has been disposed"));
    const WeightMemory memory = model_->weightMemory();
    return Napi::String::New(info.Env(), memory == WeightMemory::Copied     ? "copied"
                                         : memory == WeightMemory::Repacked ? "repacked"
                                                                            : "mapped");
  }

  Napi::Value dispose(const Napi::CallbackInfo& info) {
    if (liveSessions_ > 0) {
      throw toJsError(info.Env(), makeError("MODEL_BUSY", std::to_string(liveSessions_) + " sessions are still open"));
    }
    model_.reset();
    return info.Env().Undefined();
  }

  std::unique_ptr<Model> model_;
  unsigned liveSessions_ = 0;
};

// new NativeLoadControl(): passed to loadModel, it aborts the load (requestAbort) and reads its progress (progress).
class LoadControlWrap : public Napi::ObjectWrap<LoadControlWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "NativeLoadControl",
                       {InstanceMethod<&LoadControlWrap::requestAbort>("requestAbort"),
                        InstanceMethod<&LoadControlWrap::progress>("progress")});
  }

  explicit LoadControlWrap(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<LoadControlWrap>(info), control_(std::make_shared<LoadControl>()) {}

  // Shared with the load worker, which may outlive this object.
  std::shared_ptr<LoadControl> control() const { return control_; }

 private:
  Napi::Value requestAbort(const Napi::CallbackInfo& info) {
    control_->requestAbort();
    return info.Env().Undefined();
  }

  Napi::Value progress(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), control_->progress()); }

  std::shared_ptr<LoadControl> control_;
};

class LoadWorker : public PromiseWorker {
 public:
  LoadWorker(Napi::Env env, std::string path, ModelOptions options, std::shared_ptr<LoadControl> control)
      : PromiseWorker(env), path_(std::move(path)), options_(options), control_(std::move(control)) {}

 private:
  Error run() override { return Model::load(path_, options_, *control_, &model_); }

  Napi::Value result(Napi::Env env) override {
    ModelClasses* classes = env.GetInstanceData<ModelClasses>();
    return classes->model.New({Napi::External<Model>::New(env, model_.release())});
  }

  std::string path_;
  ModelOptions options_;
  std::shared_ptr<LoadControl> control_;
  std::unique_ptr<Model> model_;
};

// loadModel(path, { threads, weights, slidingWindow, expertsPerToken, verifyTensorData }, NativeLoadControl)
//   -> Promise<NativeModel>
Napi::Value loadModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = info[1].As<Napi::Object>();
  ModelOptions options;
  options.threads = o.Get("threads").As<Napi::Number>().Uint32Value();
  const std::string weights = o.Get("weights").As<Napi::String>().Utf8Value();
  options.weights = weights == "copied" ? WeightMemory::Copied : weights == "repacked" ? WeightMemory::Repacked : WeightMemory::Mapped;
  options.slidingWindow = o.Get("slidingWindow").As<Napi::Number>().Int64Value();
  options.expertsPerToken = o.Get("expertsPerToken").As<Napi::Number>().Uint32Value();
  options.verifyTensorData = o.Get("verifyTensorData").As<Napi::Boolean>().Value();
  auto* worker = new LoadWorker(env, info[0].As<Napi::String>().Utf8Value(), options,
                                LoadControlWrap::Unwrap(info[2].As<Napi::Object>())->control());
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

// One per session, created once: eval queues the same async work again and again, so a decode step allocates
// nothing in native code. The JS object is held strongly only while work is in flight.
class SessionWrap : public Napi::ObjectWrap<SessionWrap> {
 public:
  static Napi::Function define(Napi::Env env) {
    return DefineClass(env, "NativeSession",
                       {InstanceMethod<&SessionWrap::eval>("eval"),
                        InstanceMethod<&SessionWrap::requestAbort>("requestAbort"),
                        InstanceMethod<&SessionWrap::rewind>("rewind"),
                        InstanceMethod<&SessionWrap::reset>("reset"),
                        InstanceMethod<&SessionWrap::position>("position"),
                        InstanceMethod<&SessionWrap::maxRewind>("maxRewind"),
                        InstanceMethod<&SessionWrap::routingCounts>("routingCounts"),
                        InstanceMethod<&SessionWrap::resetRouting>("resetRouting"),
                        InstanceMethod<&SessionWrap::lastRouting>("lastRouting"),
                        InstanceMethod<&SessionWrap::setExpertsPerToken>("setExpertsPerToken"),
                        InstanceMethod<&SessionWrap::stats>("stats"),
                        InstanceMethod<&SessionWrap::saveState>("saveState"),
                        InstanceMethod<&SessionWrap::loadState>("loadState"),
                        InstanceMethod<&SessionWrap::dispose>("dispose")});
  }

  // new NativeSession(model, { contextSize, batchSize, kvType }, logits: Float32Array(nVocab))
  explicit SessionWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SessionWrap>(info) {
    Napi::Env env = info.Env();
    owner_ = ModelWrap::Unwrap(info[0].As<Napi::Object>());
    if (owner_->model() == nullptr) throw toJsError(env, makeError("DISPOSED", "the model has been disposed"));
    ownerRef_ = Napi::Persistent(info[0].As<Napi::Object>());
    Napi::Object o = info[1].As<Napi::Object>();
    SessionOptions options;
    options.contextSize = o.Get("contextSize").As<Napi::Number>().Uint32Value();
    options.batchSize = o.Get("batchSize").As<Napi::Number>().Uint32Value();
    options.kvType = o.Get("kvType").As<Napi::String>().Utf8Value() == "f32" ? KvType::F32 : KvType::F16;
    logitsRef_ = Napi::Persistent(info[2].As<Napi::Float32Array>());
    session_ = std::make_unique<Session>(*owner_->model(), options);
    if (!session_->status().ok()) {
      const Error error = session_->status();
      session_.reset();
      throw toJsError(env, error);
    }
    logits_.resize(owner_->model()->hparams().nVocab);
    owner_->sessionOpened();
    napi_value resourceName;
    napi_create_string_utf8(env, "mixtral-native:eval", NAPI_AUTO_LENGTH, &resourceName);
    napi_create_async_work(env, nullptr, resourceName, &SessionWrap::executeEval, &SessionWrap::completeEval, this, &work_);
  }

  ~SessionWrap() override {
    if (work_ != nullptr) napi_delete_async_work(Env(), work_);
    release();
  }

 private:
  void release() {
    if (session_) {
      session_.reset();
      owner_->sessionClosed();
    }
  }

  void checkUsable(Napi::Env env) {
    if (!session_ || disposeRequested_) throw toJsError(env, makeError("DISPOSED", "the session has been disposed"));
    if (busy_) throw toJsError(env, makeError("SESSION_BUSY", "the session is evaluating; await the pending call"));
  }

  // eval(tokens: Int32Array) -> Promise<void>; the logits land in the Float32Array given at construction.
  Napi::Value eval(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    checkUsable(env);
    Napi::Int32Array tokens = info[0].As<Napi::Int32Array>();
    pendingTokens_.assign(tokens.Data(), tokens.Data() + tokens.ElementLength());
    abort_.store(false);
    busy_ = true;
    deferred_.emplace(env);
    Ref();
    napi_queue_async_work(env, work_);
    return deferred_->Promise();
  }

  static void executeEval(napi_env, void* data) {
    SessionWrap* self = static_cast<SessionWrap*>(data);
    self->evalError_ = self->session_->eval(self->pendingTokens_.data(), self->pendingTokens_.size(),
                                            self->logits_.data(), &self->abort_);
  }

  static void completeEval(napi_env rawEnv, napi_status status, void* data) {
    SessionWrap* self = static_cast<SessionWrap*>(data);
    Napi::Env env(rawEnv);
    Napi::HandleScope scope(env);
    self->busy_ = false;
    Napi::Promise::Deferred deferred = *self->deferred_;
    self->deferred_.reset();
    if (status != napi_ok) {
      deferred.Reject(toJsError(env, makeError("SESSION_FAILED", "evaluation was cancelled")).Value());
    } else if (!self->evalError_.ok()) {
      deferred.Reject(toJsError(env, self->evalError_).Value());
    } else {
      Napi::Float32Array target = self->logitsRef_.Value();
      if (target.ElementLength() == self->logits_.size()) {
        std::memcpy(target.Data(), self->logits_.data(), self->logits_.size() * sizeof(float));
        deferred.Resolve(env.Undefined());
      } else {
        deferred.Reject(toJsError(env, makeError("SESSION_FAILED", "the logits buffer was detached")).Value());
      }
    }
    if (self->disposeRequested_) self->release();
    self->Unref();
  }

  Napi::Value requestAbort(const Napi::CallbackInfo& info) {
    abort_.store(true);
    return info.Env().Undefined();
  }

  Napi::Value rewind(const Napi::CallbackInfo& info) {
    checkUsable(info.Env());
    return Napi::Boolean::New(info.Env(), session_->rewind(uint64_t(info[0].As<Napi::Number>().Int64Value())));
  }

  Napi::Value reset(const Napi::CallbackInfo& info) {
    checkUsable(info.Env());
    session_->reset();
    return info.Env().Undefined();
  }

  Napi::Value position(const Napi::CallbackInfo& info) {
    checkUsable(info.Env());
    return Napi::Number::New(info.Env(), double(session_->position()));
  }

  Napi::Value maxRewind(const Napi::CallbackInfo& info) {
    checkUsable(info.Env());
    return Napi::Number::New(info.Env(), double(session_->maxRewind()));
  }

  // Float64Array(nLayers * nExperts): selections per layer and expert since the last reset.
  Napi::Value routingCounts(const Napi::CallbackInfo& info) {
    checkUsable(info.Env());
    const std::vector<uint64_t>& counts = session_->routingCounts();
    Napi::Float64Array out = Napi::Float64Array::New(info.Env(), counts.size());
    for (size_t i = 0; i < counts.size(); i++) out[i] = double(counts[i]);
    return out;
  }

  Napi::Value resetRouting(const Napi::CallbackInfo& info) {
    checkUsable(info.Env());
    session_->resetRouting();
    return info.Env().Undefined();
  }

  // { experts: Int32Array, weights: Float32Array }, per layer nExperts entries (the first expertsPerToken used).
  Napi::Value lastRouting(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    checkUsable(env);
    const std::vector<int32_t>& experts = session_->lastExperts();
    const std::vector<float>& weights = session_->lastExpertWeights();
    Napi::Int32Array e = Napi::Int32Array::New(env, experts.size());
    Napi::Float32Array w = Napi::Float32Array::New(env, weights.size());
    std::memcpy(e.Data(), experts.data(), experts.size() * sizeof(int32_t));
    std::memcpy(w.Data(), weights.data(), weights.size() * sizeof(float));
    Napi::Object out = Napi::Object::New(env);
    out.Set("experts", e);
    out.Set("weights", w);
    return out;
  }

  Napi::Value setExpertsPerToken(const Napi::CallbackInfo& info) {
    checkUsable(info.Env());
    session_->setExpertsPerToken(info[0].As<Napi::Number>().Uint32Value());
    return info.Env().Undefined();
  }

  Napi::Value stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    checkUsable(env);
    Napi::Object out = Napi::Object::New(env);
    out.Set("kvBytes", double(session_->kvBytes()));
    out.Set("slidingWindow", session_->slidingWindow());
    out.Set("contextSize", session_->contextSize());
    out.Set("expertsPerToken", session_->expertsPerToken());
    return out;
  }

  // saveState(tokens: Int32Array(position), logits: Float32Array(nVocab) | null) -> Uint8Array, written in place.
  Napi::Value saveState(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    checkUsable(env);
    Napi::Int32Array tokens = info[0].As<Napi::Int32Array>();
    if (tokens.ElementLength() != session_->position()) {
      throw toJsError(env, makeError("SESSION_FAILED", "the token list does not match the cache"));
    }
    const float* logits = info[1].IsNull() ? nullptr : info[1].As<Napi::Float32Array>().Data();
    const size_t size = session_->stateBytes(logits != nullptr);
    Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, size);
    session_->saveState(tokens.Data(), logits, static_cast<uint8_t*>(buffer.Data()));
    return Napi::Uint8Array::New(env, size, buffer, 0);
  }

  // loadState(bytes: Uint8Array) -> { tokens: Int32Array, logits: Float32Array | null }; throws STATE_* errors.
  Napi::Value loadState(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    checkUsable(env);
    Napi::Uint8Array bytes = info[0].As<Napi::Uint8Array>();
    std::vector<int32_t> tokens;
    std::vector<float> logits;
    Error error = session_->loadState(bytes.Data(), bytes.ByteLength(), &tokens, &logits);
    if (!error.ok()) throw toJsError(env, error);
    Napi::Int32Array tokenArray = Napi::Int32Array::New(env, tokens.size());
    if (!tokens.empty()) std::memcpy(tokenArray.Data(), tokens.data(), tokens.size() * sizeof(int32_t));
    Napi::Object out = Napi::Object::New(env);
    out.Set("tokens", tokenArray);
    if (logits.empty()) {
      out.Set("logits", env.Null());
    } else {
      Napi::Float32Array logitArray = Napi::Float32Array::New(env, logits.size());
      std::memcpy(logitArray.Data(), logits.data(), logits.size() * sizeof(float));
      out.Set("logits", logitArray);
    }
    return out;
  }

  // Frees the session now, or as soon as the evaluation in flight stops.
  Napi::Value dispose(const Napi::CallbackInfo& info) {
    disposeRequested_ = true;
    if (busy_) {
      abort_.store(true);  // the evaluation in flight stops at its next layer and frees the session when it settles
    } else {
      release();
    }
    return info.Env().Undefined();
  }

  ModelWrap* owner_ = nullptr;
  Napi::ObjectReference ownerRef_;
  Napi::Reference<Napi::Float32Array> logitsRef_;
  std::unique_ptr<Session> session_;
  std::vector<float> logits_;
  std::vector<int32_t> pendingTokens_;
  std::atomic<bool> abort_{false};
  bool busy_ = false;
  bool disposeRequested_ = false;
  napi_async_work work_ = nullptr;
  std::optional<Napi::Promise::Deferred> deferred_;
  Error evalError_;
};

}  // namespace

void registerModelBinding(Napi::Env env, Napi::Object exports) {
  auto* classes = new ModelClasses();
  Napi::Function model = ModelWrap::define(env);
  Napi::Function session = SessionWrap::define(env);
  classes->model = Napi::Persistent(model);
  classes->session = Napi::Persistent(session);
  env.SetInstanceData<ModelClasses>(classes);
  exports.Set("NativeModel", model);
  exports.Set("NativeSession", session);
  exports.Set("NativeLoadControl", LoadControlWrap::define(env));
  exports.Set("loadModel", Napi::Function::New(env, loadModel));
}

}  // namespace mn
