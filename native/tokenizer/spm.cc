#include "tokenizer/spm.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace mn {
namespace {

constexpr uint8_t kSpaceMark[3] = {0xE2, 0x96, 0x81};  // U+2581, SentencePiece's visible space
// Segments up to this many characters merge by rescanning their pairs; longer ones use the priority queue.
// Both give the same merges (see mergeByScan); the scan is faster on word-sized segments.
constexpr uint32_t kScanLimit = 40;
// Segments up to this many bytes go through the per-scratch cache (words and their leading U+2581).
constexpr uint32_t kCachedSegmentBytes = 64;
// The cache starts small (worker calls make a fresh one), doubles while half full, and is emptied at the maximum.
constexpr uint32_t kCacheFirstSlots = 1u << 12;
constexpr uint32_t kCacheMaxSlots = 1u << 17;

// Bytes of the UTF-8 character a lead byte starts, as llama.cpp's unicode_len_utf8 counts them.
inline uint32_t utf8Length(uint8_t lead) {
  static constexpr uint8_t kLengths[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return kLengths[lead >> 4];
}

inline bool isSpaceMark(const uint8_t* p, size_t left) {
  return left >= 3 && p[0] == kSpaceMark[0] && p[1] == kSpaceMark[1] && p[2] == kSpaceMark[2];
}

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBull;
  x ^= x >> 31;
  return x;
}

inline uint64_t hashBytes(const uint8_t* p, size_t n) {
  uint64_t h = 0x9E3779B97F4A7C15ull ^ (static_cast<uint64_t>(n) * 0xFF51AFD7ED558CCDull);
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    h = (h ^ word) * 0xBF58476D1CE4E5B9ull;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  uint64_t tail = 0;
  std::memcpy(&tail, p, n);
  return mix64(h ^ tail);
}

// A character of 1..4 bytes packed little-endian; with the length implied by the lead byte this is unique.
inline uint32_t packChar(const uint8_t* p, uint32_t length) {
  uint32_t key = 0;
  std::memcpy(&key, p, length);
  return key;
}

inline uint64_t pairKey(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

uint64_t tableSizeFor(size_t entries) {
  uint64_t size = 16;
  while (size < entries * 2 + 1) size <<= 1;
  return size;
}

template <typename Key>
bool findKey(const std::vector<Key>& keys, uint64_t mask, Key key, uint64_t hash, uint64_t* slot) {
  for (uint64_t i = hash & mask;; i = (i + 1) & mask) {
    if (keys[i] == key) {
      *slot = i;
      return true;
    }
    if (keys[i] == Key(0)) {
      *slot = i;
      return false;
    }
  }
}

inline uint64_t hashChar(uint32_t key) { return mix64(key); }

}  // namespace

Error SpmVocabulary::build(const SpmVocabularyInput& input, std::unique_ptr<SpmVocabulary>* out) {
  if (input.count == 0) return makeError("TOKENIZER_BAD_VOCABULARY", "the vocabulary has no tokens");
  if (input.count >= (1u << 31)) return makeError("TOKENIZER_BAD_VOCABULARY", "the vocabulary has too many tokens");
  for (uint32_t i = 0; i < input.count; i++) {
    if (input.offsets[i + 1] < input.offsets[i]) {
      return makeError("TOKENIZER_BAD_VOCABULARY", "token " + std::to_string(i) + ": text offsets out of order");
    }
    if (std::isnan(input.scores[i])) {
      return makeError("TOKENIZER_BAD_VOCABULARY", "token " + std::to_string(i) + ": score is NaN");
    }
  }
  if (input.unkId >= static_cast<int64_t>(input.count)) {
    return makeError("TOKENIZER_BAD_VOCABULARY", "unknown token id " + std::to_string(input.unkId) + " is out of range");
  }

  std::unique_ptr<SpmVocabulary> vocab(new SpmVocabulary());
  const uint32_t n = input.count;
  vocab->count_ = n;
  vocab->addSpacePrefix_ = input.addSpacePrefix;
  vocab->texts_.assign(input.texts, input.texts + input.offsets[n]);
  vocab->offsets_.assign(input.offsets, input.offsets + n + 1);
  vocab->scores_.assign(input.scores, input.scores + n);

  // text -> id
  vocab->textSlots_.assign(tableSizeFor(n), -1);
  vocab->textMask_ = vocab->textSlots_.size() - 1;
  for (uint32_t id = 0; id < n; id++) {
    const std::string_view text = vocab->tokenText(static_cast<int32_t>(id));
    uint64_t i = hashBytes(reinterpret_cast<const uint8_t*>(text.data()), text.size()) & vocab->textMask_;
    for (;; i = (i + 1) & vocab->textMask_) {
      const int32_t other = vocab->textSlots_[i];
      if (other < 0) {
        vocab->textSlots_[i] = static_cast<int32_t>(id);
        break;
      }
      if (vocab->tokenText(other) == text) {
        return makeError("TOKENIZER_BAD_VOCABULARY",
                         "tokens " + std::to_string(other) + " and " + std::to_string(id) + " have the same text");
      }
    }
  }

  // One-character tokens.
  std::fill(std::begin(vocab->asciiToken_), std::end(vocab->asciiToken_), -1);
  std::vector<std::pair<uint32_t, int32_t>> chars;
  for (uint32_t id = 0; id < n; id++) {
    const std::string_view text = vocab->tokenText(static_cast<int32_t>(id));
    if (text.empty()) continue;
    const uint8_t* p = reinterpret_cast<const uint8_t*>(text.data());
    if (text.size() != utf8Length(p[0])) continue;
    if (p[0] < 0x80) vocab->asciiToken_[p[0]] = static_cast<int32_t>(id);
    else chars.emplace_back(packChar(p, static_cast<uint32_t>(text.size())), static_cast<int32_t>(id));
  }
  vocab->charKeys_.assign(tableSizeFor(chars.size()), 0);
  vocab->charValues_.assign(vocab->charKeys_.size(), -1);
  vocab->charMask_ = vocab->charKeys_.size() - 1;
  for (const auto& [key, id] : chars) {
    uint64_t slot;
    findKey<uint32_t>(vocab->charKeys_, vocab->charMask_, key, hashChar(key), &slot);
    vocab->charKeys_[slot] = key;
    vocab->charValues_[slot] = id;
  }

  // Pairs of tokens whose concatenation is a token: every split of every token into two tokens.
  std::vector<std::pair<uint64_t, int32_t>> pairs;
  for (uint32_t id = 0; id < n; id++) {
    const std::string_view text = vocab->tokenText(static_cast<int32_t>(id));
    for (size_t split = 1; split < text.size(); split++) {
      const int32_t left = vocab->findToken(text.substr(0, split));
      if (left < 0) continue;
      const int32_t right = vocab->findToken(text.substr(split));
      if (right < 0) continue;
      pairs.emplace_back(pairKey(left, right), static_cast<int32_t>(id));
    }
  }
  vocab->pairSlots_.assign(tableSizeFor(pairs.size()), PairSlot{0, 0, -1});
  vocab->pairMask_ = vocab->pairSlots_.size() - 1;
  for (const auto& [key, id] : pairs) {
    uint64_t slot = mix64(key) & vocab->pairMask_;
    while (vocab->pairSlots_[slot].merged >= 0) slot = (slot + 1) & vocab->pairMask_;
    vocab->pairSlots_[slot] = PairSlot{static_cast<int32_t>(key >> 32), static_cast<int32_t>(key & 0xFFFFFFFFu), id};
  }

  // Characters that precede a U+2581 inside some token.
  std::fill(std::begin(vocab->asciiBeforeSpace_), std::end(vocab->asciiBeforeSpace_), false);
  std::vector<uint32_t> beforeSpace;
  for (uint32_t id = 0; id < n; id++) {
    const std::string_view text = vocab->tokenText(static_cast<int32_t>(id));
    const uint8_t* p = reinterpret_cast<const uint8_t*>(text.data());
    size_t previous = 0, previousLength = 0;
    for (size_t at = 0; at < text.size();) {
      const size_t length = std::min<size_t>(utf8Length(p[at]), text.size() - at);
      if (at > 0 && isSpaceMark(p + at, text.size() - at)) {
        if (p[previous] < 0x80 && previousLength == 1) vocab->asciiBeforeSpace_[p[previous]] = true;
        else beforeSpace.push_back(packChar(p + previous, static_cast<uint32_t>(previousLength)));
      }
      previous = at;
      previousLength = length;
      at += length;
    }
  }
  vocab->beforeSpaceKeys_.assign(tableSizeFor(beforeSpace.size()), 0);
  vocab->beforeSpaceMask_ = vocab->beforeSpaceKeys_.size() - 1;
  for (uint32_t key : beforeSpace) {
    uint64_t slot;
    findKey<uint32_t>(vocab->beforeSpaceKeys_, vocab->beforeSpaceMask_, key, hashChar(key), &slot);
    vocab->beforeSpaceKeys_[slot] = key;
  }

  // Byte fallback, as llama_vocab::byte_to_token: "<0xXX>" (uppercase hex), else the byte itself as a token.
  static const char kHex[] = "0123456789ABCDEF";
  for (int b = 0; b < 256; b++) {
    const char name[6] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>'};
    int32_t id = vocab->findToken(std::string_view(name, 6));
    if (id < 0) {
      const char single = static_cast<char>(b);
      id = vocab->findToken(std::string_view(&single, 1));
    }
    vocab->byteToken_[b] = id >= 0 ? id : input.unkId;
  }

  // Special tokens, ordered exactly as llama.cpp orders cache_special_tokens (same comparator, same std::sort).
  for (uint32_t id = 0; id < n; id++) {
    const auto type = static_cast<SpmTokenType>(input.types[id]);
    if (type == SpmTokenType::Control || type == SpmTokenType::UserDefined || type == SpmTokenType::Unknown) {
      vocab->specialAll_.push_back(static_cast<int32_t>(id));
    }
  }
  const SpmVocabulary* self = vocab.get();
  std::sort(vocab->specialAll_.begin(), vocab->specialAll_.end(), [self](int32_t a, int32_t b) {
    return self->tokenText(a).size() > self->tokenText(b).size();
  });
  for (int32_t id : vocab->specialAll_) {
    if (static_cast<SpmTokenType>(input.types[id]) == SpmTokenType::UserDefined) vocab->specialUserDefined_.push_back(id);
  }

  *out = std::move(vocab);
  return Error::none();
}

int32_t SpmVocabulary::findToken(std::string_view text) const {
  const uint8_t* p = reinterpret_cast<const uint8_t*>(text.data());
  for (uint64_t i = hashBytes(p, text.size()) & textMask_;; i = (i + 1) & textMask_) {
    const int32_t id = textSlots_[i];
    if (id < 0) return -1;
    if (tokenText(id) == text) return id;
  }
}

int32_t SpmVocabulary::findPair(int32_t left, int32_t right) const {
  for (uint64_t i = mix64(pairKey(left, right)) & pairMask_;; i = (i + 1) & pairMask_) {
    const PairSlot& slot = pairSlots_[i];
    if (slot.merged < 0) return -1;
    if (slot.left == left && slot.right == right) return slot.merged;
  }
}

int32_t SpmVocabulary::charToken(const uint8_t* bytes, uint32_t length) const {
  if (length != utf8Length(bytes[0])) {
    return findToken(std::string_view(reinterpret_cast<const char*>(bytes), length));  // cut short by the text's end
  }
  if (bytes[0] < 0x80) return asciiToken_[bytes[0]];
  const uint32_t key = packChar(bytes, length);
  uint64_t slot;
  return findKey<uint32_t>(charKeys_, charMask_, key, hashChar(key), &slot) ? charValues_[slot] : -1;
}

bool SpmVocabulary::charPrecedesSpaceInToken(const uint8_t* bytes, uint32_t length) const {
  if (length == 1 && bytes[0] < 0x80) return asciiBeforeSpace_[bytes[0]];
  const uint32_t key = packChar(bytes, length);
  uint64_t slot;
  return findKey<uint32_t>(beforeSpaceKeys_, beforeSpaceMask_, key, hashChar(key), &slot);
}

Error SpmVocabulary::encode(std::string_view text, const SpmEncodeRequest& request, SpmScratch* scratch,
                            std::vector<int32_t>* out) const {
  if (request.bosId >= 0) out->push_back(request.bosId);
  if (!text.empty()) {
    partition(text, request.parseSpecial, scratch);
    // llama.cpp prefixes a space to the first text fragment and to every fragment that follows a special token.
    bool afterSpecial = true;
    const uint8_t* base = reinterpret_cast<const uint8_t*>(text.data());
    for (const SpmScratch::Fragment& fragment : scratch->fragments) {
      if (fragment.token >= 0) {
        out->push_back(fragment.token);
        afterSpecial = true;
        continue;
      }
      Error error = encodeFragment(base + fragment.offset, fragment.length, addSpacePrefix_ && afterSpecial, scratch, out);
      if (!error.ok()) return error;
      afterSpecial = false;
    }
  }
  if (request.eosId >= 0) out->push_back(request.eosId);
  return Error::none();
}

// tokenizer_st_partition: each special token in turn (longest first) splits every raw fragment at each of its
// occurrences, left to right.
void SpmVocabulary::partition(std::string_view text, bool parseSpecial, SpmScratch* scratch) const {
  auto& fragments = scratch->fragments;
  fragments.clear();
  fragments.push_back({0, static_cast<uint32_t>(text.size()), -1});
  const std::vector<int32_t>& specials = parseSpecial ? specialAll_ : specialUserDefined_;
  for (int32_t special : specials) {
    const std::string_view needle = tokenText(special);
    if (needle.empty()) continue;
    auto& next = scratch->fragmentsNext;
    next.clear();
    bool split = false;
    for (const SpmScratch::Fragment& fragment : fragments) {
      if (fragment.token >= 0) {
        next.push_back(fragment);
        continue;
      }
      uint32_t begin = fragment.offset;
      const uint32_t end = fragment.offset + fragment.length;
      const std::string_view window = text.substr(0, end);
      for (;;) {
        const size_t match = window.find(needle, begin);
        if (match == std::string_view::npos) break;
        split = true;
        if (match > begin) next.push_back({begin, static_cast<uint32_t>(match - begin), -1});
        next.push_back({static_cast<uint32_t>(match), static_cast<uint32_t>(needle.size()), special});
        begin = static_cast<uint32_t>(match + needle.size());
      }
      if (begin < end) next.push_back({begin, end - begin, -1});
    }
    if (split) fragments.swap(next);
  }
}

Error SpmVocabulary::encodeFragment(const uint8_t* text, size_t length, bool spacePrefix, SpmScratch* scratch,
                                    std::vector<int32_t>* out) const {
  // llama_escape_whitespace after the optional prefix: every ' ' becomes U+2581.
  uint8_t* const start = scratch->escaped.reserve(length * 3 + 3);
  uint8_t* w = start;
  if (spacePrefix) {
    std::memcpy(w, kSpaceMark, 3);
    w += 3;
  }
  for (size_t i = 0; i < length; i++) {
    const uint8_t c = text[i];
    if (c == ' ') {
      std::memcpy(w, kSpaceMark, 3);
      w += 3;
    } else {
      *w++ = c;
    }
  }
  const uint32_t total = static_cast<uint32_t>(w - start);

  // No token spans a U+2581 whose left neighbour never precedes one inside a token: cut the text there.
  uint32_t segmentBegin = 0;
  uint32_t previous = 0, previousLength = 0;
  for (uint32_t at = 0; at < total;) {
    if (start[at] < 0x80) {
      previous = at++;
      previousLength = 1;
      continue;
    }
    const uint32_t charLength = std::min<uint32_t>(utf8Length(start[at]), total - at);
    if (at > 0 && isSpaceMark(start + at, total - at) && !charPrecedesSpaceInToken(start + previous, previousLength)) {
      Error error = encodeSegment(start, segmentBegin, at, scratch, out);
      if (!error.ok()) return error;
      segmentBegin = at;
    }
    previous = at;
    previousLength = charLength;
    at += charLength;
  }
  return encodeSegment(start, segmentBegin, total, scratch, out);
}

// Doubles the slot table, re-placing every entry.
static void growCache(SpmScratch::SegmentCache* cache) {
  std::vector<SpmScratch::SegmentCache::Entry> grown(cache->slots.size() * 2);
  const uint32_t mask = static_cast<uint32_t>(grown.size() - 1);
  for (const SpmScratch::SegmentCache::Entry& entry : cache->slots) {
    if (entry.hash == 0) continue;
    uint32_t slot = static_cast<uint32_t>(entry.hash >> 20) & mask;
    while (grown[slot].hash != 0) slot = (slot + 1) & mask;
    grown[slot] = entry;
  }
  cache->slots.swap(grown);
}

Error SpmVocabulary::encodeSegment(const uint8_t* text, uint32_t begin, uint32_t end, SpmScratch* scratch,
                                   std::vector<int32_t>* out) const {
  const uint32_t length = end - begin;
  if (length > kCachedSegmentBytes) return encodeSegmentUncached(text, begin, end, scratch, out);
  SpmScratch::SegmentCache& cache = scratch->cache;
  if (cache.owner != this) {
    cache.slots.assign(kCacheFirstSlots, SpmScratch::SegmentCache::Entry{});
    cache.keys.clear();
    cache.ids.clear();
    cache.used = 0;
    cache.owner = this;
  } else if (cache.used * 2 >= cache.slots.size()) {
    if (cache.slots.size() < kCacheMaxSlots) {
      growCache(&cache);
    } else {
      std::fill(cache.slots.begin(), cache.slots.end(), SpmScratch::SegmentCache::Entry{});
      cache.keys.clear();
      cache.ids.clear();
      cache.used = 0;
    }
  }
  const uint32_t mask = static_cast<uint32_t>(cache.slots.size() - 1);
  const uint8_t* key = text + begin;
  const uint64_t hash = hashBytes(key, length) | 1;  // never 0, the empty mark
  uint32_t slot = static_cast<uint32_t>(hash >> 20) & mask;
  for (;; slot = (slot + 1) & mask) {
    const SpmScratch::SegmentCache::Entry& entry = cache.slots[slot];
    if (entry.hash == 0) break;
    if (entry.hash == hash && entry.keyLength == length && std::memcmp(cache.keys.data() + entry.keyOffset, key, length) == 0) {
      out->insert(out->end(), cache.ids.begin() + entry.idsOffset, cache.ids.begin() + entry.idsOffset + entry.idCount);
      return Error::none();
    }
  }
  const size_t first = out->size();
  Error error = encodeSegmentUncached(text, begin, end, scratch, out);
  if (!error.ok()) return error;
  SpmScratch::SegmentCache::Entry& entry = cache.slots[slot];
  entry.hash = hash;
  entry.keyOffset = static_cast<uint32_t>(cache.keys.size());
  entry.keyLength = static_cast<uint16_t>(length);
  entry.idsOffset = static_cast<uint32_t>(cache.ids.size());
  entry.idCount = static_cast<uint16_t>(out->size() - first);
  cache.keys.insert(cache.keys.end(), key, key + length);
  cache.ids.insert(cache.ids.end(), out->begin() + first, out->end());
  cache.used++;
  return Error::none();
}

Error SpmVocabulary::encodeSegmentUncached(const uint8_t* text, uint32_t begin, uint32_t end, SpmScratch* scratch,
                                           std::vector<int32_t>* out) const {
  auto& starts = scratch->symbolStart;
  auto& lengths = scratch->symbolLength;
  auto& tokens = scratch->symbolToken;
  starts.clear();
  lengths.clear();
  tokens.clear();
  for (uint32_t at = begin; at < end;) {
    const uint32_t length = std::min<uint32_t>(utf8Length(text[at]), end - at);
    starts.push_back(at);
    lengths.push_back(length);
    tokens.push_back(charToken(text + at, length));
    at += length;
  }
  const uint32_t count = static_cast<uint32_t>(starts.size());
  if (count == 0) return Error::none();

  if (count <= kScanLimit) {
    mergeByScan(text, scratch, count);
    for (uint32_t i = 0; i < starts.size(); i++) {
      Error error = emitSymbol(text, starts[i], lengths[i], tokens[i], out);
      if (!error.ok()) return error;
    }
  } else {
    mergeByHeap(text, scratch, count);
    for (int32_t i = 0; i != -1; i = scratch->symbolNext[i]) {
      Error error = emitSymbol(text, starts[i], lengths[i], tokens[i], out);
      if (!error.ok()) return error;
    }
  }
  return Error::none();
}

// The token made by joining symbols left and right (adjacent), or -1.
int32_t SpmVocabulary::mergedToken(const uint8_t* text, const SpmScratch& scratch, uint32_t left, uint32_t right) const {
  const int32_t a = scratch.symbolToken[left];
  const int32_t b = scratch.symbolToken[right];
  if (a >= 0 && b >= 0) return findPair(a, b);
  const uint32_t start = scratch.symbolStart[left];
  const uint32_t length = scratch.symbolLength[left] + scratch.symbolLength[right];
  return findToken(std::string_view(reinterpret_cast<const char*>(text) + start, length));
}

// At every step llama.cpp's queue yields, among the adjacent pairs that form a token, the one whose token scores
// highest, the leftmost on ties (its stale entries are skipped). Rescanning the current pairs picks the same one.
void SpmVocabulary::mergeByScan(const uint8_t* text, SpmScratch* scratch, uint32_t count) const {
  auto& starts = scratch->symbolStart;
  auto& lengths = scratch->symbolLength;
  auto& tokens = scratch->symbolToken;
  auto& pairToken = scratch->pairToken;
  auto& pairScore = scratch->pairScore;
  pairToken.resize(count);
  pairScore.resize(count);
  for (uint32_t i = 0; i + 1 < count; i++) {
    pairToken[i] = mergedToken(text, *scratch, i, i + 1);
    pairScore[i] = pairToken[i] >= 0 ? scores_[pairToken[i]] : 0.0f;
  }
  uint32_t n = count;
  while (n > 1) {
    int32_t best = -1;
    float bestScore = 0.0f;
    for (uint32_t i = 0; i + 1 < n; i++) {
      if (pairToken[i] >= 0 && (best < 0 || pairScore[i] > bestScore)) {
        best = static_cast<int32_t>(i);
        bestScore = pairScore[i];
      }
    }
    if (best < 0) break;
    const uint32_t b = static_cast<uint32_t>(best);
    lengths[b] += lengths[b + 1];
    tokens[b] = pairToken[b];
    // Drop symbol b + 1 and pair b (consumed); pair b + 1 becomes pair b.
    for (uint32_t i = b + 1; i + 1 < n; i++) {
      starts[i] = starts[i + 1];
      lengths[i] = lengths[i + 1];
      tokens[i] = tokens[i + 1];
    }
    for (uint32_t i = b; i + 2 < n; i++) {
      pairToken[i] = pairToken[i + 1];
      pairScore[i] = pairScore[i + 1];
    }
    n--;
    if (b > 0) {
      pairToken[b - 1] = mergedToken(text, *scratch, b - 1, b);
      pairScore[b - 1] = pairToken[b - 1] >= 0 ? scores_[pairToken[b - 1]] : 0.0f;
    }
    if (b + 1 < n) {
      pairToken[b] = mergedToken(text, *scratch, b, b + 1);
      pairScore[b] = pairToken[b] >= 0 ? scores_[pairToken[b]] : 0.0f;
    }
  }
  starts.resize(n);
  lengths.resize(n);
  tokens.resize(n);
}

// llm_tokenizer_spm_session::tokenize: a max-queue of (score, leftmost) bigrams over a linked list of symbols.
void SpmVocabulary::mergeByHeap(const uint8_t* text, SpmScratch* scratch, uint32_t count) const {
  auto& lengths = scratch->symbolLength;
  auto& tokens = scratch->symbolToken;
  auto& prev = scratch->symbolPrev;
  auto& next = scratch->symbolNext;
  auto& heap = scratch->heap;
  prev.resize(count);
  next.resize(count);
  for (uint32_t i = 0; i < count; i++) {
    prev[i] = static_cast<int32_t>(i) - 1;
    next[i] = i + 1 < count ? static_cast<int32_t>(i + 1) : -1;
  }
  // std::priority_queue's order: `lower` ranks below.
  const auto lower = [](const SpmScratch::Bigram& l, const SpmScratch::Bigram& r) {
    return l.score < r.score || (l.score == r.score && l.left > r.left);
  };
  heap.clear();
  const auto tryAdd = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const int32_t token = mergedToken(text, *scratch, static_cast<uint32_t>(left), static_cast<uint32_t>(right));
    if (token < 0) return;
    heap.push_back({scores_[token], left, right, token, lengths[left] + lengths[right]});
    std::push_heap(heap.begin(), heap.end(), lower);
  };
  for (uint32_t i = 1; i < count; i++) tryAdd(static_cast<int32_t>(i - 1), static_cast<int32_t>(i));

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), lower);
    const SpmScratch::Bigram bigram = heap.back();
    heap.pop_back();
    const uint32_t leftLength = lengths[bigram.left];
    const uint32_t rightLength = lengths[bigram.right];
    if (leftLength == 0 || rightLength == 0 || leftLength + rightLength != bigram.length) continue;
    lengths[bigram.left] = leftLength + rightLength;
    lengths[bigram.right] = 0;
    tokens[bigram.left] = bigram.token;
    next[bigram.left] = next[bigram.right];
    if (next[bigram.right] >= 0) prev[next[bigram.right]] = bigram.left;
    tryAdd(prev[bigram.left], bigram.left);
    tryAdd(bigram.left, next[bigram.left]);
  }
}

Error SpmVocabulary::emitSymbol(const uint8_t* text, uint32_t start, uint32_t length, int32_t token,
                                std::vector<int32_t>* out) const {
  if (token >= 0) {
    out->push_back(token);
    return Error::none();
  }
  // A character that is no token (and merged with nothing) goes out as one token per UTF-8 byte.
  for (uint32_t i = 0; i < length; i++) {
    const uint8_t byte = text[start + i];
    const int32_t id = byteToken_[byte];
    if (id < 0) {
      static const char kHex[] = "0123456789ABCDEF";
      return makeError("TOKENIZER_NO_BYTE_TOKEN", std::string("the vocabulary has no token for byte 0x") + kHex[byte >> 4] +
                                                      kHex[byte & 15] + " (no <0xXX> token, no unknown token)");
    }
    out->push_back(id);
  }
  return Error::none();
}

}  // namespace mn
