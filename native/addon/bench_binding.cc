// Measurements the benchmark needs from native code (bench/, docs/performance.md).
#include "addon/bindings.h"
#include "addon/promise_worker.h"
#include "kernels/bandwidth.h"

namespace mn {
namespace {

class BandwidthWorker : public PromiseWorker {
 public:
  BandwidthWorker(Napi::Env env, size_t bytes, unsigned threads, unsigned passes)
      : PromiseWorker(env), bytes_(bytes), threads_(threads), passes_(passes) {}

 private:
  Error run() override {
    gbPerSecond_ = measureReadBandwidth(bytes_, threads_, passes_);
    return Error::none();
  }
  Napi::Value result(Napi::Env env) override {
    Napi::Array rates = Napi::Array::New(env, gbPerSecond_.size());
    for (uint32_t i = 0; i < gbPerSecond_.size(); i++) rates.Set(i, Napi::Number::New(env, gbPerSecond_[i]));
    return rates;
  }

  size_t bytes_;
  unsigned threads_, passes_;
  std::vector<double> gbPerSecond_;
};

// measureReadBandwidth(bytes, threads, passes) -> Promise<GB/s of each pass>; the caller (bench/) passes positive
// integers.
Napi::Value measureReadBandwidthJs(const Napi::CallbackInfo& info) {
  auto* worker = new BandwidthWorker(info.Env(), size_t(info[0].As<Napi::Number>().Int64Value()),
                                     info[1].As<Napi::Number>().Uint32Value(), info[2].As<Napi::Number>().Uint32Value());
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

}  // namespace

void registerBenchBinding(Napi::Env env, Napi::Object exports) {
  exports.Set("measureReadBandwidth", Napi::Function::New(env, measureReadBandwidthJs));
}

}  // namespace mn
