#include <napi.h>

#include "addon/bindings.h"
#include "common/cpu.h"

namespace mn {

void registerCpuBinding(Napi::Env env, Napi::Object exports) {
  exports.Set("cpuInfo", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const CpuFeatures& features = detectedCpuFeatures();
    Napi::Object result = Napi::Object::New(env);
    result.Set("isa", isaName(activeIsa()));
    result.Set("avx2", features.avx2);
    result.Set("avx512", features.avx512);
    result.Set("avx512bf16", features.avx512bf16);
    return result;
  }));
}

}  // namespace mn

static Napi::Object initAddon(Napi::Env env, Napi::Object exports) {
  mn::registerCpuBinding(env, exports);
  mn::registerKernelsBinding(env, exports);
  mn::registerGgufBinding(env, exports);
  mn::registerTokenizerBinding(env, exports);
  mn::registerModelBinding(env, exports);
  mn::registerBenchBinding(env, exports);
  mn::registerQuantizeBinding(env, exports);
  return exports;
}

NODE_API_MODULE(mixtral_native, initAddon)
