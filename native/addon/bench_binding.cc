// Measurements the benchmark needs from native code (bench/, docs/performance.md).
#include "addon/bindings.h"
#include "addon/promise_worker.h"
#include "kernels/bandwidth.h"

namespace mn {
namespace {

class BandwidthWorker : public PromiseWorker {
 public:
  BandwidthWorker(Napi::Env env, size_t bytes, unsigned threads) : PromiseWorker(env), bytes_(bytes), threads_(threads) {}

 private:
  Error run() override {
    gbPerSecond_ = measureReadBandwidth(bytes_, threads_, 5);
    return Error::none();
  }
  Napi::Value result(Napi::Env env) override { return Napi::Number::New(env, gbPerSecond_); }

  size_t bytes_;
  unsigned threads_;
  double gbPerSecond_ = 0.0;
};

// measureReadBandwidth(bytes, threads) -> Promise<GB/s>; lib/ checked the arguments.
Napi::Value measureReadBandwidthJs(const Napi::CallbackInfo& info) {
  auto* worker = new BandwidthWorker(info.Env(), size_t(info[0].As<Napi::Number>().Int64Value()),
                                     info[1].As<Napi::Number>().Uint32Value());
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

}  // namespace

void registerBenchBinding(Napi::Env env, Napi::Object exports) {
  exports.Set("measureReadBandwidth", Napi::Function::New(env, measureReadBandwidthJs));
}

}  // namespace mn
