// Each binding file adds its functions and classes to the addon's exports. N-API glue only: no arithmetic here.
#pragma once

#include <napi.h>

#include "common/status.h"
#include "gguf/gguf.h"
#include "model/weights.h"

namespace mn {

void registerCpuBinding(Napi::Env env, Napi::Object exports);
void registerGgufBinding(Napi::Env env, Napi::Object exports);
void registerKernelsBinding(Napi::Env env, Napi::Object exports);
void registerTokenizerBinding(Napi::Env env, Napi::Object exports);
void registerModelBinding(Napi::Env env, Napi::Object exports);
void registerBenchBinding(Napi::Env env, Napi::Object exports);
void registerQuantizeBinding(Napi::Env env, Napi::Object exports);

// The object lib/gguf/inspect.ts turns into ModelInfo (inspectModel and model.info share it).
Napi::Object modelInfoToJs(Napi::Env env, const GgufFile& file, const Hparams& hparams);

// A JS Error carrying error.code; lib/errors.ts turns it into the matching typed class.
inline Napi::Error toJsError(Napi::Env env, const Error& error) {
  Napi::Error jsError = Napi::Error::New(env, error.message);
  jsError.Value().Set("code", Napi::String::New(env, error.code));
  return jsError;
}

}  // namespace mn
