// The forward pass (REFERENCE.md "Forward pass"): per chunk of tokens, embed, then per layer
//   h   = x + Wo · Attn(RoPE(Wq·n), RoPE(Wk·n), Wv·n),  n = RMSNorm(x) · attn_norm
//   out = h + FFN(RMSNorm(h) · ffn_norm)  (dense SwiGLU, or the router's top-k experts),
// then RMSNorm · output_norm and the output matrix for the chunk's last token.
// Activations are quantized once per matrix input and shared by every matrix (and expert) that reads it; a
// chunk's tokens are grouped by expert so each selected expert runs once as matrix × matrix.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/half.h"
#include "kernels/quants.h"
#include "model/model.h"

namespace mn {
namespace {

struct MatmulJob {
  GgmlType type;
  RowLayout layout;
  const uint8_t* w;
  uint64_t wRowBytes;
  size_t n;        // row length
  size_t rows;     // output rows
  const uint8_t* x;
  size_t xRowBytes;
  size_t nCols;    // activation rows
  float* y;        // y[c * ldy + r]
  size_t ldy;
};

constexpr size_t kMaxJobs = 3 + 2 * kMaxExperts;

// Splits every job's output rows across the pool in dynamically claimed chunks that shrink towards the end (a
// decode matmul is a few hundred microseconds, and a thread left waiting for the other's last chunk cost 2% of it).
void runMatmuls(ThreadPool& pool, WorkCounter& work, const KernelTable& k, const MatmulJob* jobs, size_t jobCount) {
  // Prefill tiles pack their activations once per call, which a 64-row chunk amortizes and a 16-row one does not;
  // a chunk boundary inside an interleaved group would make two threads compute it.
  size_t totalRows = 0, grain = 16;
  for (size_t j = 0; j < jobCount; j++) {
    totalRows += jobs[j].rows;
    if (jobs[j].nCols > 1) grain = std::max<size_t>(grain, 64);
    if (jobs[j].layout == RowLayout::Interleaved) grain = std::max(grain, interleavedGroupRows(jobs[j].type));
  }
  if (totalRows == 0) return;
  const size_t parts = 2 * size_t(pool.threadCount());
  work.reset();
  pool.parallel([&](unsigned, unsigned) {
    size_t begin, end;
    while (work.claimGuided(totalRows, grain, parts, &begin, &end)) {
      size_t base = 0;
      for (size_t j = 0; j < jobCount && begin < end; base += jobs[j].rows, j++) {
        const MatmulJob& job = jobs[j];
        if (begin >= base + job.rows) continue;
        const size_t r0 = begin - base, r1 = std::min(end - base, job.rows);
        if (job.layout == RowLayout::Interleaved) {
          k.matmulInterleaved(job.type, job.w, job.n, r0, r1, job.x, job.xRowBytes, job.nCols, job.y, job.ldy);
        } else {
          k.matmul(job.type, job.w, job.wRowBytes, job.n, r0, r1, job.x, job.xRowBytes, job.nCols, job.y, job.ldy);
        }
        begin = base + r1;
      }
    }
  });
}

MatmulJob matrixJob(const MatrixRef& m, const uint8_t* x, size_t xRowBytes, size_t nCols, float* y, size_t ldy) {
  return MatmulJob{m.type, m.layout, m.data, m.rowBytes, m.nIn, m.nOut, x, xRowBytes, nCols, y, ldy};
}

// out (n,) = fp16(x) as floats, through the active ISA's converters; x may equal out; half holds n values
void roundToFp16(const KernelTable& k, const float* x, float* out, uint16_t* half, size_t n) {
  k.quantizeActivations(ActFormat::F16, x, half, n);
  k.dequantizeRow(GgmlType::F16, reinterpret_cast<const uint8_t*>(half), out, n);
}

// Runs fn(i) for i < count, across the pool when there is more than one item.
template <typename Fn>
void forEachRow(ThreadPool& pool, size_t count, Fn&& fn) {
  if (count == 1) {
    fn(size_t(0));
    return;
  }
  pool.parallel([&](unsigned t, unsigned n) {
    for (size_t i = t; i < count; i += n) fn(i);
  });
}

struct Acts {
  const uint8_t* data;
  size_t rowBytes;
};

// x (count, n) -> rows in `format` inside buffer (F32 needs no conversion and points at x itself).
Acts quantizeActs(ThreadPool& pool, const KernelTable& k, ActFormat format, const float* x, size_t n, size_t count,
                  Scratch<uint8_t>& buffer) {
  if (format == ActFormat::F32) return Acts{reinterpret_cast<const uint8_t*>(x), n * sizeof(float)};
  const size_t rowBytes = activationRowBytes(format, n);
  uint8_t* out = buffer.data();
  forEachRow(pool, count, [&](size_t i) { k.quantizeActivations(format, x + i * n, out + i * rowBytes, n); });
  return Acts{out, rowBytes};
}

}  // namespace

Error Session::eval(const int32_t* tokens, size_t count, float* logits, const std::atomic<bool>* abort) {
  for (size_t i = 0; i < count; i++) {
    if (tokens[i] < 0 || uint32_t(tokens[i]) >= hp_.nVocab) {
      return makeError("SESSION_BAD_TOKEN", "token " + std::to_string(tokens[i]) + " at position " + std::to_string(i) +
                                                " is outside [0, " + std::to_string(hp_.nVocab) + ")");
    }
  }
  if (window_ == 0 && nPast_ + count > contextSize_) {
    return makeError("CONTEXT_OVERFLOW", std::to_string(nPast_) + " cached + " + std::to_string(count) +
                                             " new tokens exceed the context size " + std::to_string(contextSize_));
  }
  std::lock_guard<std::mutex> lock(model_.computeMutex());
  const uint64_t start = nPast_;
  for (size_t offset = 0; offset < count; offset += batchSize_) {
    const size_t n = std::min<size_t>(batchSize_, count - offset);
    const bool last = offset + n == count;
    writtenEnd_ = std::max<uint64_t>(writtenEnd_, nPast_ + n);
    if (!forwardChunk(tokens + offset, n, last ? logits : nullptr, abort)) {
      rewind(nPast_ - start);  // back to where the call began, unless a window has already overwritten that
      return makeError("ABORT_ERR", "evaluation aborted after " + std::to_string(nPast_ - start) + " of " +
                                        std::to_string(count) + " tokens");
    }
    nPast_ += n;
  }
  return Error::none();
}

bool Session::forwardChunk(const int32_t* tokens, size_t count, float* logits, const std::atomic<bool>* abort) {
  embed(tokens, count);
  std::fill(chunkRoutingCounts_.begin(), chunkRoutingCounts_.end(), 0);
  for (size_t layer = 0; layer < hp_.nLayers; layer++) {
    if (abort != nullptr && abort->load(std::memory_order_relaxed)) return false;
    attentionBlock(layer, count);
    feedForwardBlock(layer, count);
  }
  if (hp_.nExperts > 0) {
    for (size_t i = 0; i < chunkRoutingCounts_.size(); i++) routingCounts_[i] += chunkRoutingCounts_[i];
    std::fill(chunkRoutingCounts_.begin(), chunkRoutingCounts_.end(), 0);
    lastExperts_ = pendingLastExperts_;
    lastExpertWeights_ = pendingLastWeights_;
  }
  if (logits != nullptr) outputLogits(count, logits);
  return true;
}

// x (count, nEmbd) <- rows of token_embd
void Session::embed(const int32_t* tokens, size_t count) {
  const MatrixRef& embd = model_.weights().tokenEmbd;
  for (size_t i = 0; i < count; i++) {
    k_.dequantizeRow(embd.type, embd.data + uint64_t(tokens[i]) * embd.rowBytes, x_.data() + i * hp_.nEmbd, hp_.nEmbd);
  }
}

void Session::attentionBlock(size_t layer, size_t count) {
  const LayerWeights& w = model_.weights().layers[layer];
  const size_t nEmbd = hp_.nEmbd, headDim = hp_.headDim;
  const size_t qDim = size_t(hp_.nHeads) * headDim, kvDim = size_t(hp_.nHeadsKv) * headDim;

  forEachRow(pool_, count, [&](size_t i) {
    k_.rmsNorm(xNorm_.data() + i * nEmbd, x_.data() + i * nEmbd, w.attnNorm, nEmbd, hp_.rmsEps);
  });

  // q, k, v = Wq·n, Wk·n, Wv·n, sharing one quantized n when their types ask for the same format
  const ActFormat fq = activationFormatFor(w.wq.type), fk = activationFormatFor(w.wk.type),
                  fv = activationFormatFor(w.wv.type);
  const Acts aq = quantizeActs(pool_, k_, fq, xNorm_.data(), nEmbd, count, actBuffers_[0]);
  const Acts ak = fk == fq ? aq : quantizeActs(pool_, k_, fk, xNorm_.data(), nEmbd, count, actBuffers_[3]);
  const Acts av = fv == fq ? aq : fv == fk ? ak : quantizeActs(pool_, k_, fv, xNorm_.data(), nEmbd, count, actBuffers_[1]);
  const MatmulJob qkv[3] = {matrixJob(w.wq, aq.data, aq.rowBytes, count, q_.data(), qDim),
                            matrixJob(w.wk, ak.data, ak.rowBytes, count, kNew_.data(), kvDim),
                            matrixJob(w.wv, av.data, av.rowBytes, count, vNew_.data(), kvDim)};
  runMatmuls(pool_, work_, k_, qkv, 3);

  // RoPE, then the chunk's keys and values go into their slots before any query reads the cache.
  const size_t layerOffset = size_t(layer) * kvDim * nSlots_;
  for (size_t i = 0; i < count; i++) {
    const int64_t pos = int64_t(nPast_ + i);
    k_.rope(q_.data() + i * qDim, hp_.nHeads, headDim, hp_.ropeDim, pos, hp_.ropeFreqBase);
    k_.rope(kNew_.data() + i * kvDim, hp_.nHeadsKv, headDim, hp_.ropeDim, pos, hp_.ropeFreqBase);
    const size_t slot = size_t(uint64_t(pos) % nSlots_);
    for (size_t g = 0; g < hp_.nHeadsKv; g++) {
      const size_t at = layerOffset + (g * nSlots_ + slot) * headDim;
      const float* kSrc = kNew_.data() + i * kvDim + g * headDim;
      const float* vSrc = vNew_.data() + i * kvDim + g * headDim;
      if (kvType_ == KvType::F16) {
        floatsToFp16(kSrc, reinterpret_cast<uint16_t*>(kCache_.data()) + at, headDim);
        floatsToFp16(vSrc, reinterpret_cast<uint16_t*>(vCache_.data()) + at, headDim);
      } else {
        std::memcpy(reinterpret_cast<float*>(kCache_.data()) + at, kSrc, headDim * sizeof(float));
        std::memcpy(reinterpret_cast<float*>(vCache_.data()) + at, vSrc, headDim * sizeof(float));
      }
    }
  }

  // Per (token, KV head): for each of its query heads, softmax(q·K / sqrt(d)) · V over positions (p - W, p], in at
  // most two slot ranges. The query heads of one KV head go through the kernels together, so its K and V rows are
  // read and converted once for all of them; items are claimed dynamically because later tokens of a chunk attend
  // further back.
  const float scale = 1.0f / std::sqrt(float(headDim));
  const size_t headsPerKv = hp_.nHeads / hp_.nHeadsKv;
  const size_t groupDim = headsPerKv * headDim;
  const size_t items = count * hp_.nHeadsKv;
  work_.reset();
  pool_.parallel([&](unsigned t, unsigned) {
    float* scores = scores_.data() + size_t(t) * headsPerKv * nSlots_;
    uint16_t* half = halfScratch_.data() + size_t(t) * std::max<size_t>(nSlots_, groupDim);
    size_t begin, end;
    while (work_.claim(items, 1, &begin, &end)) {
      const size_t i = begin / hp_.nHeadsKv, g = begin % hp_.nHeadsKv;
      const uint64_t pos = nPast_ + i;
      const uint64_t first = window_ > 0 && pos + 1 > window_ ? pos + 1 - window_ : 0;
      const size_t span = size_t(pos - first + 1);
      const size_t slot0 = size_t(first % nSlots_);
      const size_t n1 = std::min(span, nSlots_ - slot0), n2 = span - n1;
      const float* q = q_.data() + i * qDim + g * groupDim;
      float* out = attnOut_.data() + i * qDim + g * groupDim;
      std::fill(out, out + groupDim, 0.0f);
      const size_t head = layerOffset + g * nSlots_ * headDim;
      if (kvType_ == KvType::F16) {
        // An F16 cache means F16 attention, as llama.cpp computes it: q and the softmax weights are rounded to
        // fp16 before they meet K and V. Matching it keeps quantized models' activations on the same side of
        // every rounding boundary, which is what holds the KL against llama.cpp down (measured 1e-3 -> 1e-4).
        float* qRounded = qScratch_.data() + size_t(t) * groupDim;
        roundToFp16(k_, q, qRounded, half, groupDim);
        const uint16_t* kHead = reinterpret_cast<const uint16_t*>(kCache_.data()) + head;
        const uint16_t* vHead = reinterpret_cast<const uint16_t*>(vCache_.data()) + head;
        k_.attnScoresF16(qRounded, headsPerKv, kHead + slot0 * headDim, headDim, n1, scale, scores, nSlots_);
        if (n2 > 0) k_.attnScoresF16(qRounded, headsPerKv, kHead, headDim, n2, scale, scores + n1, nSlots_);
        for (size_t h = 0; h < headsPerKv; h++) {
          float* headScores = scores + h * nSlots_;
          k_.softmax(headScores, span);
          roundToFp16(k_, headScores, headScores, half, span);
        }
        k_.attnAccumulateF16(out, headsPerKv, scores, nSlots_, vHead + slot0 * headDim, headDim, n1);
        if (n2 > 0) k_.attnAccumulateF16(out, headsPerKv, scores + n1, nSlots_, vHead, headDim, n2);
      } else {
        const float* kHead = reinterpret_cast<const float*>(kCache_.data()) + head;
        const float* vHead = reinterpret_cast<const float*>(vCache_.data()) + head;
        k_.attnScoresF32(q, headsPerKv, kHead + slot0 * headDim, headDim, n1, scale, scores, nSlots_);
        if (n2 > 0) k_.attnScoresF32(q, headsPerKv, kHead, headDim, n2, scale, scores + n1, nSlots_);
        for (size_t h = 0; h < headsPerKv; h++) k_.softmax(scores + h * nSlots_, span);
        k_.attnAccumulateF32(out, headsPerKv, scores, nSlots_, vHead + slot0 * headDim, headDim, n1);
        if (n2 > 0) k_.attnAccumulateF32(out, headsPerKv, scores + n1, nSlots_, vHead, headDim, n2);
      }
    }
  });

  // x += Wo · attn
  const Acts ao = quantizeActs(pool_, k_, activationFormatFor(w.wo.type), attnOut_.data(), qDim, count, actBuffers_[1]);
  const MatmulJob wo = matrixJob(w.wo, ao.data, ao.rowBytes, count, blockOut_.data(), nEmbd);
  runMatmuls(pool_, work_, k_, &wo, 1);
  for (size_t i = 0; i < count * nEmbd; i++) x_[i] += blockOut_[i];
}

void Session::feedForwardBlock(size_t layer, size_t count) {
  const LayerWeights& w = model_.weights().layers[layer];
  const size_t nEmbd = hp_.nEmbd;
  forEachRow(pool_, count, [&](size_t i) {
    k_.rmsNorm(xNorm_.data() + i * nEmbd, x_.data() + i * nEmbd, w.ffnNorm, nEmbd, hp_.rmsEps);
  });
  if (hp_.nExperts == 0) {
    denseFeedForward(w, count);
  } else {
    expertFeedForward(layer, w, count);
  }
}

// x += W_down · (silu(W_gate · n) ⊙ W_up · n)
void Session::denseFeedForward(const LayerWeights& w, size_t count) {
  const size_t nEmbd = hp_.nEmbd, nFf = hp_.nFf;
  const ActFormat fg = activationFormatFor(w.ffnGate.type), fu = activationFormatFor(w.ffnUp.type);
  const Acts ag = quantizeActs(pool_, k_, fg, xNorm_.data(), nEmbd, count, actBuffers_[0]);
  const Acts au = fu == fg ? ag : quantizeActs(pool_, k_, fu, xNorm_.data(), nEmbd, count, actBuffers_[3]);
  const MatmulJob gateUp[2] = {matrixJob(w.ffnGate, ag.data, ag.rowBytes, count, gate_.data(), nFf),
                               matrixJob(w.ffnUp, au.data, au.rowBytes, count, up_.data(), nFf)};
  runMatmuls(pool_, work_, k_, gateUp, 2);
  forEachRow(pool_, count, [&](size_t i) { k_.siluMul(gate_.data() + i * nFf, up_.data() + i * nFf, nFf); });
  const Acts ah = quantizeActs(pool_, k_, activationFormatFor(w.ffnDown.type), gate_.data(), nFf, count, actBuffers_[2]);
  const MatmulJob down = matrixJob(w.ffnDown, ah.data, ah.rowBytes, count, blockOut_.data(), nEmbd);
  runMatmuls(pool_, work_, k_, &down, 1);
  for (size_t i = 0; i < count * nEmbd; i++) x_[i] += blockOut_[i];
}

// Router: p = softmax(W_gate_inp · n) over all experts, keep the top k, renormalise; then each selected expert
// runs once over the tokens routed to it: x[t] += Σ w · W_down_e(silu(W_gate_e · n) ⊙ W_up_e · n).
void Session::expertFeedForward(size_t layer, const LayerWeights& w, size_t count) {
  const size_t nEmbd = hp_.nEmbd, nFf = hp_.nFf, nExperts = hp_.nExperts, k = nExpertsUsed_;

  const Acts ar = quantizeActs(pool_, k_, activationFormatFor(w.ffnGateInp.type), xNorm_.data(), nEmbd, count, actBuffers_[3]);
  const MatmulJob router = matrixJob(w.ffnGateInp, ar.data, ar.rowBytes, count, routerLogits_.data(), nExperts);
  runMatmuls(pool_, work_, k_, &router, 1);

  std::fill(groupCount_.begin(), groupCount_.end(), 0);
  for (size_t i = 0; i < count; i++) {
    float* probs = routerLogits_.data() + i * nExperts;
    k_.softmax(probs, nExperts);
    int32_t* chosen = selectedExperts_.data() + i * k;
    float* weights = selectedWeights_.data() + i * k;
    float sum = 0.0f;
    for (size_t j = 0; j < k; j++) {
      int32_t best = -1;
      for (size_t e = 0; e < nExperts; e++) {
        bool taken = false;
        for (size_t m = 0; m < j; m++) taken = taken || chosen[m] == int32_t(e);
        if (!taken && (best < 0 || probs[e] > probs[best])) best = int32_t(e);
      }
      chosen[j] = best;
      weights[j] = probs[best];
      sum += probs[best];
      groupCount_[best]++;
    }
    for (size_t j = 0; j < k; j++) weights[j] /= sum;
  }
  uint64_t* layerCounts = chunkRoutingCounts_.data() + layer * nExperts;
  for (size_t e = 0; e < nExperts; e++) layerCounts[e] += groupCount_[e];
  std::copy(selectedExperts_.data() + (count - 1) * k, selectedExperts_.data() + count * k,
            pendingLastExperts_.data() + layer * nExperts);
  std::copy(selectedWeights_.data() + (count - 1) * k, selectedWeights_.data() + count * k,
            pendingLastWeights_.data() + layer * nExperts);

  // Group the chunk's (token, expert) pairs by expert.
  uint32_t running = 0;
  for (size_t e = 0; e < nExperts; e++) {
    groupStart_[e] = running;
    running += groupCount_[e];
    groupCount_[e] = 0;
  }
  for (size_t i = 0; i < count; i++) {
    for (size_t j = 0; j < k; j++) {
      const int32_t e = selectedExperts_[i * k + j];
      const uint32_t at = groupStart_[e] + groupCount_[e]++;
      groupTokens_[at] = int32_t(i);
      groupWeights_[at] = selectedWeights_[i * k + j];
    }
  }
  const size_t pairs = count * k;

  // n is quantized once, then its rows are gathered in group order for the gate and up matrices.
  const ActFormat fg = activationFormatFor(w.ffnGateExps.type), fu = activationFormatFor(w.ffnUpExps.type);
  const Acts ag = quantizeActs(pool_, k_, fg, xNorm_.data(), nEmbd, count, actBuffers_[0]);
  const Acts au = fu == fg ? ag : quantizeActs(pool_, k_, fu, xNorm_.data(), nEmbd, count, actBuffers_[3]);
  uint8_t* gatheredGate = gathered_.data();
  uint8_t* gatheredUp = fu == fg ? gatheredGate : gathered_.data() + gathered_.size() / 2;
  for (size_t j = 0; j < pairs; j++) {
    std::memcpy(gatheredGate + j * ag.rowBytes, ag.data + size_t(groupTokens_[j]) * ag.rowBytes, ag.rowBytes);
    if (fu != fg) std::memcpy(gatheredUp + j * au.rowBytes, au.data + size_t(groupTokens_[j]) * au.rowBytes, au.rowBytes);
  }

  MatmulJob jobs[kMaxJobs];
  size_t jobCount = 0;
  for (size_t e = 0; e < nExperts; e++) {
    if (groupCount_[e] == 0) continue;
    const size_t s = groupStart_[e], c = groupCount_[e];
    const ExpertsRef& g = w.ffnGateExps;
    const ExpertsRef& u = w.ffnUpExps;
    jobs[jobCount++] = MatmulJob{g.type, g.layout, g.data[e], g.rowBytes, g.nIn, g.nOut, gatheredGate + s * ag.rowBytes, ag.rowBytes, c, gate_.data() + s * nFf, nFf};
    jobs[jobCount++] = MatmulJob{u.type, u.layout, u.data[e], u.rowBytes, u.nIn, u.nOut, gatheredUp + s * au.rowBytes, au.rowBytes, c, up_.data() + s * nFf, nFf};
  }
  runMatmuls(pool_, work_, k_, jobs, jobCount);

  forEachRow(pool_, pairs, [&](size_t j) { k_.siluMul(gate_.data() + j * nFf, up_.data() + j * nFf, nFf); });
  const Acts ah = quantizeActs(pool_, k_, activationFormatFor(w.ffnDownExps.type), gate_.data(), nFf, pairs, actBuffers_[2]);

  jobCount = 0;
  for (size_t e = 0; e < nExperts; e++) {
    if (groupCount_[e] == 0) continue;
    const size_t s = groupStart_[e], c = groupCount_[e];
    const ExpertsRef& d = w.ffnDownExps;
    jobs[jobCount++] = MatmulJob{d.type, d.layout, d.data[e], d.rowBytes, d.nIn, d.nOut, ah.data + s * ah.rowBytes, ah.rowBytes, c, down_.data() + s * nEmbd, nEmbd};
  }
  runMatmuls(pool_, work_, k_, jobs, jobCount);

  for (size_t j = 0; j < pairs; j++) {
    k_.axpy(x_.data() + size_t(groupTokens_[j]) * nEmbd, groupWeights_[j], down_.data() + j * nEmbd, nEmbd);
  }
}

// logits (nVocab,) = output · (RMSNorm(x_last) · output_norm)
void Session::outputLogits(size_t count, float* logits) {
  const ModelWeights& weights = model_.weights();
  const size_t nEmbd = hp_.nEmbd;
  k_.rmsNorm(xNorm_.data(), x_.data() + (count - 1) * nEmbd, weights.outputNorm, nEmbd, hp_.rmsEps);
  const Acts a = quantizeActs(pool_, k_, activationFormatFor(weights.output.type), xNorm_.data(), nEmbd, 1, actBuffers_[0]);
  const MatmulJob job = matrixJob(weights.output, a.data, a.rowBytes, 1, logits, hp_.nVocab);
  runMatmuls(pool_, work_, k_, &job, 1);
}

}  // namespace mn
