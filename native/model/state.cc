// Session state: the KV cache rows, the tokens they hold and (optionally) the logits after the last one, in a
// versioned, checksummed, little-endian format that names the model it belongs to.
//
//   offset  size          field
//   0       8             magic "MXNSTATE"
//   8       4             version (kStateVersion)
//   12      4             flags: bit 0 = logits follow the tokens
//   16      8             model fingerprint (Model::fingerprint)
//   24      4 x 10        nLayers, nEmbd, nHeads, nHeadsKv, headDim, nFf, nExperts, nVocab, ropeDim, sliding window
//   64      4             KV element type: 0 F16, 1 F32
//   68      4             reserved, 0
//   72      8             positions (= token count)
//   80      8             first position with KV rows (rows cover [first, positions))
//   88      4 x positions token ids
//           4 x nVocab    logits (flag bit 0)
//           per layer: K then V, each [nHeadsKv][rows][headDim] of the element type
//   end-8   8             checksum of every byte before it
//
// Loading checks the size, magic, version and checksum before reading anything else, then every count against
// the bytes present; the session changes only once the whole buffer has been validated.
#include <algorithm>
#include <cstring>
#include <mutex>
#include <string>

#include "common/half.h"
#include "model/model.h"

namespace mn {
namespace {

constexpr char kStateMagic[8] = {'M', 'X', 'N', 'S', 'T', 'A', 'T', 'E'};
constexpr uint32_t kStateVersion = 1;
constexpr size_t kHeaderBytes = 88;
constexpr size_t kChecksumBytes = 8;
constexpr uint32_t kFlagLogits = 1;
constexpr size_t kHparamCount = 10;

// 64-bit FNV-1a over 8-byte words (then the tail bytes): every single-word change changes the result, at about
// one multiply per 8 bytes, so checking a state costs a fraction of copying it.
uint64_t hashBytes(const uint8_t* p, size_t n, uint64_t h = 0xcbf29ce484222325ull) {
  constexpr uint64_t kPrime = 0x100000001b3ull;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t word;
    std::memcpy(&word, p + i, 8);
    h = (h ^ word) * kPrime;
    h ^= h >> 29;
  }
  for (; i < n; i++) h = (h ^ p[i]) * kPrime;
  return h;
}

uint64_t hashU64(uint64_t h, uint64_t value) {
  uint8_t bytes[8];
  for (int i = 0; i < 8; i++) bytes[i] = uint8_t(value >> (8 * i));
  return hashBytes(bytes, 8, h);
}

void putU32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = uint8_t(v >> (8 * i));
}
void putU64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = uint8_t(v >> (8 * i));
}
uint32_t getU32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v |= uint32_t(p[i]) << (8 * i);
  return v;
}
uint64_t getU64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= uint64_t(p[i]) << (8 * i);
  return v;
}

// *acc += a * b; false on overflow.
bool addProduct(uint64_t* acc, uint64_t a, uint64_t b) {
  uint64_t product;
  return !__builtin_mul_overflow(a, b, &product) && !__builtin_add_overflow(*acc, product, acc);
}

const char* kHparamNames[kHparamCount] = {"nLayers", "nEmbd", "nHeads", "nHeadsKv", "headDim", "nFf", "nExperts", "nVocab", "ropeDim", "slidingWindow"};

}  // namespace

// Hyperparameters as the file states them (load options that change nExpertsUsed or the window are left out:
// they change how the weights are used, not which weights), every tensor's name, type and shape, and the first
// bytes of every tensor, so two fine-tunes of one architecture differ. Reads one page per tensor, once.
uint64_t Model::fingerprint() const {
  std::call_once(fingerprintOnce_, [this] {
    const Hparams& hp = hparams_;
    uint64_t h = hashBytes(reinterpret_cast<const uint8_t*>("mixtral-native model"), 20);
    const uint64_t values[] = {hp.nVocab, hp.nEmbd, hp.nLayers, hp.nFf, hp.nHeads, hp.nHeadsKv, hp.headDim, hp.ropeDim,
                               floatToBits(hp.ropeFreqBase), floatToBits(hp.rmsEps), hp.nExperts};
    for (uint64_t v : values) h = hashU64(h, v);
    constexpr uint64_t kSampleBytes = 256;
    for (const GgufTensorInfo& tensor : file_->tensors()) {
      h = hashBytes(reinterpret_cast<const uint8_t*>(tensor.name.data()), tensor.name.size(), h);
      h = hashU64(h, uint64_t(tensor.type));
      for (uint64_t extent : tensor.ne) h = hashU64(h, extent);
      h = hashBytes(file_->tensorData(tensor), size_t(std::min(tensor.nBytes, kSampleBytes)), h);
    }
    fingerprint_ = h;
  });
  return fingerprint_;
}

size_t Session::stateRows() const { return size_t(std::min<uint64_t>(nPast_, nSlots_)); }

size_t Session::stateBytes(bool withLogits) const {
  const size_t elementBytes = kvType_ == KvType::F16 ? 2 : 4;
  const size_t kvRowBytes = size_t(hp_.headDim) * elementBytes;
  return kHeaderBytes + size_t(nPast_) * 4 + (withLogits ? size_t(hp_.nVocab) * 4 : 0) +
         size_t(hp_.nLayers) * 2 * hp_.nHeadsKv * stateRows() * kvRowBytes + kChecksumBytes;
}

void Session::saveState(const int32_t* tokens, const float* logits, uint8_t* out) const {
  const size_t elementBytes = kvType_ == KvType::F16 ? 2 : 4;
  const size_t rowBytes = size_t(hp_.headDim) * elementBytes;
  const size_t kvDim = size_t(hp_.nHeadsKv) * hp_.headDim;
  const uint64_t rows = stateRows();
  const uint64_t first = nPast_ - rows;

  std::memcpy(out, kStateMagic, 8);
  putU32(out + 8, kStateVersion);
  putU32(out + 12, logits != nullptr ? kFlagLogits : 0);
  putU64(out + 16, model_.fingerprint());
  const uint32_t hparams[kHparamCount] = {hp_.nLayers, hp_.nEmbd, hp_.nHeads, hp_.nHeadsKv, hp_.headDim,
                                          hp_.nFf,     hp_.nExperts, hp_.nVocab, hp_.ropeDim, window_};
  for (size_t i = 0; i < kHparamCount; i++) putU32(out + 24 + 4 * i, hparams[i]);
  putU32(out + 64, kvType_ == KvType::F16 ? 0 : 1);
  putU32(out + 68, 0);
  putU64(out + 72, nPast_);
  putU64(out + 80, first);
  uint8_t* at = out + kHeaderBytes;
  // Token ids, logits and cache rows are copied as they lie in memory: x86-64 is little-endian, as the format.
  std::memcpy(at, tokens, size_t(nPast_) * 4);
  at += size_t(nPast_) * 4;
  if (logits != nullptr) {
    std::memcpy(at, logits, size_t(hp_.nVocab) * 4);
    at += size_t(hp_.nVocab) * 4;
  }
  for (size_t layer = 0; layer < hp_.nLayers; layer++) {
    for (const Scratch<uint8_t>* cache : {&kCache_, &vCache_}) {
      const uint8_t* base = cache->data() + layer * kvDim * nSlots_ * elementBytes;
      for (size_t g = 0; g < hp_.nHeadsKv; g++) {
        for (uint64_t p = first; p < nPast_; p++) {
          std::memcpy(at, base + (g * nSlots_ + size_t(p % nSlots_)) * rowBytes, rowBytes);
          at += rowBytes;
        }
      }
    }
  }
  putU64(at, hashBytes(out, size_t(at - out)));
}

Error Session::loadState(const uint8_t* data, size_t size, std::vector<int32_t>* tokens, std::vector<float>* logits) {
  auto corrupt = [](const std::string& why) { return makeError("STATE_CORRUPT", "the session state is corrupt: " + why); };
  if (size < kHeaderBytes + kChecksumBytes) {
    return corrupt("it is " + std::to_string(size) + " bytes, shorter than the " + std::to_string(kHeaderBytes + kChecksumBytes) + "-byte header");
  }
  if (std::memcmp(data, kStateMagic, 8) != 0) return corrupt("it does not start with the mixtral-native state magic");
  const uint32_t version = getU32(data + 8);
  if (version != kStateVersion) {
    return makeError("STATE_UNSUPPORTED_VERSION", "the session state has format version " + std::to_string(version) +
                                                      "; this version of mixtral-native reads version " + std::to_string(kStateVersion));
  }
  if (hashBytes(data, size - kChecksumBytes) != getU64(data + size - kChecksumBytes)) {
    return corrupt("its checksum does not match (truncated or altered)");
  }

  const uint32_t expected[kHparamCount] = {hp_.nLayers, hp_.nEmbd, hp_.nHeads, hp_.nHeadsKv, hp_.headDim,
                                           hp_.nFf,     hp_.nExperts, hp_.nVocab, hp_.ropeDim, window_};
  for (size_t i = 0; i < kHparamCount - 1; i++) {
    const uint32_t stored = getU32(data + 24 + 4 * i);
    if (stored != expected[i]) {
      return makeError("STATE_MODEL_MISMATCH", std::string("the session state belongs to another model: its ") + kHparamNames[i] +
                                                   " is " + std::to_string(stored) + ", this model's is " + std::to_string(expected[i]));
    }
  }
  if (getU64(data + 16) != model_.fingerprint()) {
    return makeError("STATE_MODEL_MISMATCH", "the session state belongs to another model: same shape, different weights");
  }
  const uint32_t flags = getU32(data + 12);
  if ((flags & ~kFlagLogits) != 0 || getU32(data + 68) != 0) return corrupt("unknown flags are set");
  const uint32_t storedWindow = getU32(data + 24 + 4 * (kHparamCount - 1));
  if (storedWindow != window_) {
    return makeError("STATE_SESSION_MISMATCH", "the session state was saved with sliding window " + std::to_string(storedWindow) +
                                                   ", this session uses " + std::to_string(window_) + " (0: none)");
  }
  const uint32_t storedType = getU32(data + 64);
  if (storedType > 1) return corrupt("KV element type " + std::to_string(storedType) + " is unknown");
  const KvType type = storedType == 0 ? KvType::F16 : KvType::F32;
  if (type != kvType_) {
    return makeError("STATE_SESSION_MISMATCH", std::string("the session state holds an ") + (type == KvType::F16 ? "f16" : "f32") +
                                                   " KV cache; create the session with that kvCacheType");
  }

  const uint64_t positions = getU64(data + 72);
  const uint64_t first = getU64(data + 80);
  if (first > positions) return corrupt("its first cached position is past its last");
  const uint64_t rows = positions - first;
  if (window_ == 0 ? first != 0 : rows < std::min<uint64_t>(positions, window_)) {
    return corrupt("it holds too few cache rows for its positions");
  }
  const bool hasLogits = (flags & kFlagLogits) != 0;
  const size_t elementBytes = kvType_ == KvType::F16 ? 2 : 4;
  const uint64_t rowBytes = uint64_t(hp_.headDim) * elementBytes;
  uint64_t needed = kHeaderBytes + kChecksumBytes;
  if (!addProduct(&needed, positions, 4) || !addProduct(&needed, hasLogits ? hp_.nVocab : 0, 4) ||
      !addProduct(&needed, uint64_t(hp_.nLayers) * 2 * hp_.nHeadsKv * rowBytes, rows) || needed != size) {
    return corrupt("its size does not match the positions it declares");
  }
  if (window_ == 0 && positions > contextSize_) {
    return makeError("STATE_SESSION_MISMATCH", "the session state holds " + std::to_string(positions) +
                                                   " positions; this session's context size is " + std::to_string(contextSize_));
  }

  const uint8_t* storedTokens = data + kHeaderBytes;
  for (uint64_t i = 0; i < positions; i++) {
    const uint32_t id = getU32(storedTokens + 4 * i);
    if (id >= hp_.nVocab) return corrupt("token " + std::to_string(i) + " is " + std::to_string(id) + ", outside the vocabulary");
  }

  // Valid: copy. With a window, only the newest rows this session has slots for are kept.
  const uint64_t keep = std::min<uint64_t>(rows, nSlots_);
  const uint8_t* at = data + kHeaderBytes;
  tokens->resize(size_t(positions));
  std::memcpy(tokens->data(), at, size_t(positions) * 4);
  at += size_t(positions) * 4;
  logits->clear();
  if (hasLogits) {
    logits->resize(hp_.nVocab);
    std::memcpy(logits->data(), at, size_t(hp_.nVocab) * 4);
    at += size_t(hp_.nVocab) * 4;
  }
  const size_t kvDim = size_t(hp_.nHeadsKv) * hp_.headDim;
  for (size_t layer = 0; layer < hp_.nLayers; layer++) {
    for (Scratch<uint8_t>* cache : {&kCache_, &vCache_}) {
      uint8_t* base = cache->data() + layer * kvDim * nSlots_ * elementBytes;
      for (size_t g = 0; g < hp_.nHeadsKv; g++) {
        for (uint64_t p = first; p < positions; p++, at += rowBytes) {
          if (positions - p > keep) continue;
          std::memcpy(base + (g * nSlots_ + size_t(p % nSlots_)) * rowBytes, at, size_t(rowBytes));
        }
      }
    }
  }
  nPast_ = positions;
  return Error::none();
}

}  // namespace mn
