// A promise settled by a worker: run() on libuv's pool (no N-API there), result() on the main thread.
#pragma once

#include <new>

#include <napi.h>

#include "addon/bindings.h"

namespace mn {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  explicit PromiseWorker(Napi::Env env) : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  virtual Error run() = 0;
  virtual Napi::Value result(Napi::Env env) = 0;

 private:
  void Execute() override {
    try {
      error_ = run();
    } catch (const std::bad_alloc&) {
      error_ = makeError("OUT_OF_MEMORY", "out of memory while reading the GGUF file");
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (!error_.ok()) {
      deferred_.Reject(toJsError(env, error_).Value());
      return;
    }
    try {
      deferred_.Resolve(result(env));
    } catch (const Napi::Error& error) {
      deferred_.Reject(error.Value());
    }
  }

  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

  Napi::Promise::Deferred deferred_;
  Error error_;
};

}  // namespace mn
