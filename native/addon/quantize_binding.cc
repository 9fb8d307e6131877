// The quantizer's one native step: convertRows(srcType, src: Uint8Array, dstType, rowLength, threads) resolves with
// a new Uint8Array of the same rows in dstType, converted on `threads` threads off the main thread. lib/quantize/
// has checked every argument (known types with converters, whole rows, rowLength a multiple of both block sizes).
#include <atomic>
#include <cstdint>
#include <system_error>
#include <thread>
#include <vector>

#include "addon/bindings.h"
#include "addon/promise_worker.h"
#include "common/ggml_type.h"
#include "kernels/quants.h"

namespace mn {
namespace {

constexpr size_t kRowsPerClaim = 16;  // small enough that a thread slowed by another process holds no one up

class ConvertRowsWorker : public PromiseWorker {
 public:
  ConvertRowsWorker(Napi::Env env, GgmlType srcType, Napi::Uint8Array src, GgmlType dstType, Napi::Uint8Array dst,
                    size_t rowLength, size_t rows, unsigned threads)
      : PromiseWorker(env), srcType_(srcType), dstType_(dstType), srcBytes_(src.Data()), dstBytes_(dst.Data()),
        rowLength_(rowLength), rows_(rows), threads_(threads) {
    srcRef_ = Napi::Persistent(src);
    dstRef_ = Napi::Persistent(dst);
  }

 protected:
  Error run() override {
    std::atomic<size_t> nextRow{0};
    std::atomic<bool> failed{false};
    const auto work = [&]() {
      std::vector<float> scratch(rowLength_);
      for (;;) {
        const size_t begin = nextRow.fetch_add(kRowsPerClaim, std::memory_order_relaxed);
        if (begin >= rows_) return;
        const size_t end = begin + kRowsPerClaim < rows_ ? begin + kRowsPerClaim : rows_;
        if (!convertRows(srcType_, srcBytes_, dstType_, dstBytes_, rowLength_, begin, end, scratch.data())) {
          failed.store(true);
          return;
        }
      }
    };
    std::vector<std::thread> helpers;
    const size_t useful = (rows_ + kRowsPerClaim - 1) / kRowsPerClaim;
    const unsigned count = threads_ < useful ? threads_ : static_cast<unsigned>(useful);
    try {
      for (unsigned t = 1; t < count; t++) helpers.emplace_back(work);
    } catch (const std::system_error&) {
      // fewer helpers than asked: the rows still all get claimed
    }
    work();
    for (std::thread& helper : helpers) helper.join();
    if (failed.load()) return makeError("QUANTIZE_UNSUPPORTED_TYPE", "no converter between these tensor types");
    return Error();
  }

  Napi::Value result(Napi::Env) override { return dstRef_.Value(); }

 private:
  GgmlType srcType_, dstType_;
  const uint8_t* srcBytes_;
  uint8_t* dstBytes_;
  size_t rowLength_, rows_;
  unsigned threads_;
  Napi::Reference<Napi::Uint8Array> srcRef_, dstRef_;
};

Napi::Value convertRowsAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint32_t srcType = info[0].As<Napi::Number>().Uint32Value();
  Napi::Uint8Array src = info[1].As<Napi::Uint8Array>();
  const uint32_t dstType = info[2].As<Napi::Number>().Uint32Value();
  const size_t rowLength = info[3].As<Napi::Number>().Int64Value();
  const unsigned threads = info[4].As<Napi::Number>().Uint32Value();
  const size_t rows = src.ByteLength() / ggmlRowBytes(static_cast<GgmlType>(srcType), rowLength);
  Napi::Uint8Array dst = Napi::Uint8Array::New(env, rows * ggmlRowBytes(static_cast<GgmlType>(dstType), rowLength));
  auto* worker = new ConvertRowsWorker(env, static_cast<GgmlType>(srcType), src, static_cast<GgmlType>(dstType), dst,
                                       rowLength, rows, threads);
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

}  // namespace

void registerQuantizeBinding(Napi::Env env, Napi::Object exports) {
  exports.Set("convertRows", Napi::Function::New(env, convertRowsAsync));
}

}  // namespace mn
