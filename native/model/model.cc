#include "model/model.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <sys/stat.h>

namespace mn {
namespace {

// Every matrix the forward pass multiplies must have a kernel; name the first one that does not.
Error checkMatmulTypes(const Hparams& hp, const ModelWeights& w) {
  auto check = [](const MatrixRef& m, const std::string& name) -> Error {
    if (m.data == nullptr || isMatmulSupported(m.type)) return Error::none();
    const GgmlTypeTraits traits = ggmlTypeTraits(m.type);
    return makeError("MODEL_UNSUPPORTED_TYPE", "tensor " + name + " has type " + (traits.name ? traits.name : "?") +
                                                   ", which this version cannot multiply");
  };
  auto checkExperts = [](const ExpertsRef& m, const std::string& name) -> Error {
    if (m.data[0] == nullptr || isMatmulSupported(m.type)) return Error::none();
    const GgmlTypeTraits traits = ggmlTypeTraits(m.type);
    return makeError("MODEL_UNSUPPORTED_TYPE", "tensor " + name + " has type " + (traits.name ? traits.name : "?") +
                                                   ", which this version cannot multiply");
  };
  Error e = check(w.output, "output.weight");
  if (!e.ok()) return e;
  e = check(w.tokenEmbd, "token_embd.weight");
  if (!e.ok()) return e;
  for (uint32_t l = 0; l < hp.nLayers; l++) {
    const LayerWeights& L = w.layers[l];
    const std::string p = "blk." + std::to_string(l) + ".";
    const std::pair<const MatrixRef*, const char*> matrices[] = {
        {&L.wq, "attn_q.weight"},     {&L.wk, "attn_k.weight"},     {&L.wv, "attn_v.weight"},
        {&L.wo, "attn_output.weight"}, {&L.ffnGate, "ffn_gate.weight"}, {&L.ffnUp, "ffn_up.weight"},
        {&L.ffnDown, "ffn_down.weight"}, {&L.ffnGateInp, "ffn_gate_inp.weight"}};
    for (const auto& [matrix, name] : matrices) {
      if (!(e = check(*matrix, p + name)).ok()) return e;
    }
    if (!(e = checkExperts(L.ffnGateExps, p + "ffn_gate_exps.weight")).ok()) return e;
    if (!(e = checkExperts(L.ffnUpExps, p + "ffn_up_exps.weight")).ok()) return e;
    if (!(e = checkExperts(L.ffnDownExps, p + "ffn_down_exps.weight")).ok()) return e;
  }
  return Error::none();
}

// Plans the load's long steps on control, one pass over the file each: the copy, the scan and the repack (which
// moves most of a Q4_0 file, and of a Q4_K_M file where the kernels have Q4_K's layout; what it does not move counts
// as done when the load ends). Copied weights must fit the memory available: OUT_OF_MEMORY up front
// rather than a process the system kills halfway through the read.
Error planLoad(const std::string& path, const ModelOptions& options, LoadControl& control) {
  struct stat status;
  if (stat(path.c_str(), &status) != 0) return Error::none();  // GgufFile::open names the problem
  const uint64_t fileBytes = uint64_t(status.st_size);
  const bool copy = options.weights == WeightMemory::Copied;
  const bool repack = options.weights == WeightMemory::Repacked;
  if (copy) {
    const uint64_t available = availableMemoryBytes();
    if (available > 0 && fileBytes > available) {
      return makeError("OUT_OF_MEMORY", "options.weights is \"copied\", but the file's " + std::to_string(fileBytes) +
                                            " bytes exceed the " + std::to_string(available) +
                                            " bytes of memory available");
    }
  }
  control.plan(fileBytes * (uint64_t(copy) + uint64_t(options.verifyTensorData) + uint64_t(repack)));
  return Error::none();
}

}  // namespace

Error Model::load(const std::string& path, const ModelOptions& options, LoadControl& control,
                  std::unique_ptr<Model>* out) {
  std::unique_ptr<Model> model(new Model());
  if (Error error = planLoad(path, options, control); !error.ok()) return error;
  GgufReadOptions readOptions;
  readOptions.verifyTensorData = options.verifyTensorData;
  readOptions.copyToMemory = options.weights == WeightMemory::Copied;
  readOptions.control = &control;
  Error error = GgufFile::open(path, readOptions, &model->file_);
  if (!error.ok()) return error;
  error = bindModel(*model->file_, &model->hparams_, &model->weights_);
  if (!error.ok()) return error;
  error = checkMatmulTypes(model->hparams_, model->weights_);
  if (!error.ok()) return error;

  Hparams& hp = model->hparams_;
  if (options.slidingWindow >= 0) hp.slidingWindow = static_cast<uint32_t>(options.slidingWindow);
  if (options.expertsPerToken > 0) {
    if (hp.nExperts == 0 || options.expertsPerToken > hp.nExperts) {
      return makeError("ERR_OUT_OF_RANGE", "options.expertsPerToken is " + std::to_string(options.expertsPerToken) +
                                               ", but the model has " + std::to_string(hp.nExperts) + " experts");
    }
    hp.nExpertsUsed = options.expertsPerToken;
  }
  model->pool_ = std::make_unique<ThreadPool>(std::max(1u, options.threads));
  model->weightMemory_ = readOptions.copyToMemory ? WeightMemory::Copied : WeightMemory::Mapped;
  // "repacked" moves the matrices whose layouts the active kernels have (kernels().interleaves); the others stay mapped
  if (options.weights == WeightMemory::Repacked) {
    error = repackWeights(model->hparams_, &model->weights_, *model->pool_, control, &model->repacked_);
    if (!error.ok()) return error;
    if (model->repacked_.data() != nullptr) model->weightMemory_ = WeightMemory::Repacked;
  }

  *out = std::move(model);
  return Error::none();
}

Session::Session(Model& model, const SessionOptions& options)
    : model_(model),
      hp_(model.hparams()),
      k_(kernels()),
      pool_(model.pool()),
      contextSize_(options.contextSize),
      batchSize_(std::max(1u, options.batchSize)),
      window_(model.hparams().slidingWindow),
      kvType_(options.kvType),
      nExpertsUsed_(model.hparams().nExpertsUsed) {
  // With a window W, slot p mod nSlots holds position p; W + batch - 1 slots keep every key a query of the
  // current chunk can see while the chunk's own keys are written, so memory is O(W) and positions unbounded.
  // (In 64 bits: a file's window can be up to 2^32 - 1.)
  nSlots_ = window_ > 0 ? size_t(window_) + batchSize_ - 1 : contextSize_;
  const size_t B = batchSize_;
  const size_t qDim = size_t(hp_.nHeads) * hp_.headDim, kvDim = size_t(hp_.nHeadsKv) * hp_.headDim;
  const size_t kvElementBytes = kvType_ == KvType::F16 ? 2 : 4;
  const size_t cacheBytes = size_t(hp_.nLayers) * kvDim * nSlots_ * kvElementBytes;
  bool allocated = kCache_.allocate(cacheBytes);
  allocated &= vCache_.allocate(cacheBytes);

  allocated &= x_.allocate(B * hp_.nEmbd);
  allocated &= xNorm_.allocate(B * hp_.nEmbd);
  allocated &= blockOut_.allocate(B * hp_.nEmbd);
  allocated &= q_.allocate(B * qDim);
  allocated &= attnOut_.allocate(B * qDim);
  allocated &= kNew_.allocate(B * kvDim);
  allocated &= vNew_.allocate(B * kvDim);
  const size_t headsPerKv = hp_.nHeads / hp_.nHeadsKv;
  allocated &= scores_.allocate(size_t(pool_.threadCount()) * headsPerKv * nSlots_);
  allocated &= qScratch_.allocate(size_t(pool_.threadCount()) * headsPerKv * hp_.headDim);
  allocated &=
      halfScratch_.allocate(size_t(pool_.threadCount()) * std::max<size_t>(nSlots_, headsPerKv * hp_.headDim));

  // Token-expert pairs of one chunk: setExpertsPerToken may lower k below the load-time value, never raise it.
  const size_t nExperts = hp_.nExperts;
  const size_t ffnRows = nExperts > 0 ? B * hp_.nExpertsUsed : B;
  // F32 activations are the widest form (4 bytes a value), so these bounds hold for every format.
  allocated &= actBuffers_[0].allocate(B * activationRowBytes(ActFormat::F32, hp_.nEmbd));
  allocated &= actBuffers_[1].allocate(B * activationRowBytes(ActFormat::F32, qDim));
  allocated &= actBuffers_[2].allocate(ffnRows * activationRowBytes(ActFormat::F32, hp_.nFf));
  allocated &= actBuffers_[3].allocate(B * activationRowBytes(ActFormat::F32, hp_.nEmbd));
  allocated &= gate_.allocate(ffnRows * hp_.nFf);
  allocated &= up_.allocate(ffnRows * hp_.nFf);
  allocated &= down_.allocate(ffnRows * hp_.nEmbd);
  if (nExperts > 0) {
    allocated &= routerLogits_.allocate(B * nExperts);
    allocated &= selectedExperts_.allocate(B * nExperts);
    allocated &= selectedWeights_.allocate(B * nExperts);
    allocated &= groupTokens_.allocate(ffnRows);
    allocated &= groupWeights_.allocate(ffnRows);
    groupStart_.resize(nExperts);
    groupCount_.resize(nExperts);
    allocated &= gathered_.allocate(2 * ffnRows * activationRowBytes(ActFormat::F32, hp_.nEmbd));
    routingCounts_.assign(size_t(hp_.nLayers) * nExperts, 0);
    chunkRoutingCounts_.assign(size_t(hp_.nLayers) * nExperts, 0);
    lastExperts_.assign(size_t(hp_.nLayers) * nExperts, -1);
    pendingLastExperts_.assign(size_t(hp_.nLayers) * nExperts, -1);
    lastExpertWeights_.assign(size_t(hp_.nLayers) * nExperts, 0.0f);
    pendingLastWeights_.assign(size_t(hp_.nLayers) * nExperts, 0.0f);
  }
  if (!allocated) {
    status_ = makeError("SESSION_OUT_OF_MEMORY",
                        "could not allocate the session: " + std::to_string(2 * cacheBytes) + " bytes of KV cache for " +
                            std::to_string(nSlots_) + " positions" +
                            (window_ > 0 ? " (sliding window + batchSize - 1)" : "") + ", plus scratch for batches of " +
                            std::to_string(B) + " tokens");
  }
}

uint64_t Session::maxRewind() const {
  if (window_ == 0 || writtenEnd_ <= nSlots_) return nPast_;
  // The buffer holds positions [writtenEnd - nSlots, writtenEnd). A chunk starting at position p needs keys from
  // p - W + 1 on, so p >= writtenEnd - nSlots + W - 1 = writtenEnd - batchSize.
  const uint64_t earliest = writtenEnd_ - batchSize_;
  return nPast_ > earliest ? nPast_ - earliest : 0;
}

bool Session::rewind(uint64_t n) {
  if (n > maxRewind()) return false;
  nPast_ -= n;
  return true;
}

void Session::reset() {
  nPast_ = 0;
  writtenEnd_ = 0;
  resetRouting();
}

void Session::resetRouting() {
  std::fill(routingCounts_.begin(), routingCounts_.end(), 0);
  std::fill(lastExperts_.begin(), lastExperts_.end(), -1);
  std::fill(lastExpertWeights_.begin(), lastExpertWeights_.end(), 0.0f);
}

}  // namespace mn
