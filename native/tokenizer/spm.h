// SentencePiece BPE (GGUF tokenizer.ggml.model = "llama") giving llama.cpp's ids exactly: the special-token
// partition, space prefix and whitespace escape of llama_vocab::impl::tokenize, and the score-ordered merges and
// byte fallback of llm_tokenizer_spm_session (REFERENCE.md "SentencePiece BPE tokenizer").
//
// A vocabulary is immutable once built, so the JS thread and worker threads can encode with it at the same time;
// each caller brings its own SpmScratch. Nothing here allocates per symbol: scratch buffers grow once and stay.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace mn {

// GGUF tokenizer.ggml.token_type values. Anything else is treated as Undefined, as llama.cpp does.
enum class SpmTokenType : int32_t {
  Undefined = 0,
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
};

struct SpmVocabularyInput {
  // Token i is the UTF-8 bytes [offsets[i], offsets[i + 1]) of `texts`; offsets has count + 1 entries.
  const uint8_t* texts = nullptr;
  const uint32_t* offsets = nullptr;
  uint32_t count = 0;
  const float* scores = nullptr;    // count values, none NaN
  const int32_t* types = nullptr;   // count values (SpmTokenType)
  int32_t unkId = -1;               // -1: none; used only when a byte has no <0xXX> token
  bool addSpacePrefix = true;
};

struct SpmEncodeRequest {
  int32_t bosId = -1;  // prepended when >= 0
  int32_t eosId = -1;  // appended when >= 0
  // llama.cpp's parse_special: control and unknown tokens written in the text become their ids.
  // User-defined tokens are split out either way, as in llama.cpp.
  bool parseSpecial = false;
};

// A byte buffer that grows without zero-filling (it is always written before it is read).
struct SpmByteBuffer {
  std::unique_ptr<uint8_t[]> bytes;
  size_t capacity = 0;

  uint8_t* reserve(size_t size) {
    if (size > capacity) {
      bytes.reset(new uint8_t[size]);
      capacity = size;
    }
    return bytes.get();
  }
};

// Working memory of one encode call at a time. Reuse one per thread to avoid regrowing buffers.
struct SpmScratch {
  SpmByteBuffer escaped;               // one fragment with the space prefix and ' ' -> U+2581
  std::vector<uint32_t> symbolStart;   // per symbol of the current segment: byte offset in `escaped`
  std::vector<uint32_t> symbolLength;  // bytes; 0 once merged into its left neighbour (heap path)
  std::vector<int32_t> symbolToken;    // token id of the symbol's text, or -1 (then it falls back to bytes)
  std::vector<int32_t> symbolPrev;     // heap path: linked list over the surviving symbols
  std::vector<int32_t> symbolNext;
  std::vector<int32_t> pairToken;      // scan path: token made by merging symbol i and i + 1, or -1
  std::vector<float> pairScore;
  struct Bigram {
    float score;
    int32_t left;
    int32_t right;
    int32_t token;
    uint32_t length;  // bytes of left + right when queued; a mismatch later means one side changed
  };
  std::vector<Bigram> heap;
  struct Fragment {
    uint32_t offset;
    uint32_t length;
    int32_t token;  // >= 0: a special token; -1: raw text
  };
  std::vector<Fragment> fragments;
  std::vector<Fragment> fragmentsNext;

  // Ids of recently seen short segments (a segment's ids depend only on its bytes). Belongs to one vocabulary:
  // `owner` is checked on every call and the cache emptied when it changes. Cleared whole when full.
  struct SegmentCache {
    struct Entry {
      uint64_t hash;  // 0: empty slot
      uint32_t keyOffset;
      uint32_t idsOffset;
      uint16_t keyLength;
      uint16_t idCount;
    };
    const void* owner = nullptr;
    std::vector<Entry> slots;
    std::vector<uint8_t> keys;
    std::vector<int32_t> ids;
    uint32_t used = 0;
  };
  SegmentCache cache;
};

class SpmVocabulary {
 public:
  // Validates and indexes the vocabulary. Codes: TOKENIZER_BAD_VOCABULARY (empty, duplicate token, offsets out
  // of order, NaN score).
  static Error build(const SpmVocabularyInput& input, std::unique_ptr<SpmVocabulary>* out);

  // Appends the ids of UTF-8 `text` to *out. Code TOKENIZER_NO_BYTE_TOKEN when a byte needs a fallback token the
  // vocabulary lacks (no <0xXX>, no one-byte token, no unknown token).
  Error encode(std::string_view text, const SpmEncodeRequest& request, SpmScratch* scratch,
               std::vector<int32_t>* out) const;

  // The id of the token whose text is exactly `text`, or -1.
  int32_t findToken(std::string_view text) const;
  uint32_t size() const { return count_; }

 private:
  SpmVocabulary() = default;

  std::string_view tokenText(int32_t id) const {
    return std::string_view(reinterpret_cast<const char*>(texts_.data()) + offsets_[id], offsets_[id + 1] - offsets_[id]);
  }
  int32_t findPair(int32_t left, int32_t right) const;
  int32_t charToken(const uint8_t* bytes, uint32_t length) const;
  bool charPrecedesSpaceInToken(const uint8_t* bytes, uint32_t length) const;

  Error encodeFragment(const uint8_t* text, size_t length, bool spacePrefix, SpmScratch* scratch,
                       std::vector<int32_t>* out) const;
  Error encodeSegment(const uint8_t* text, uint32_t begin, uint32_t end, SpmScratch* scratch,
                      std::vector<int32_t>* out) const;
  Error encodeSegmentUncached(const uint8_t* text, uint32_t begin, uint32_t end, SpmScratch* scratch,
                              std::vector<int32_t>* out) const;
  void mergeByScan(const uint8_t* text, SpmScratch* scratch, uint32_t count) const;
  void mergeByHeap(const uint8_t* text, SpmScratch* scratch, uint32_t count) const;
  int32_t mergedToken(const uint8_t* text, const SpmScratch& scratch, uint32_t left, uint32_t right) const;
  Error emitSymbol(const uint8_t* text, uint32_t start, uint32_t length, int32_t token, std::vector<int32_t>* out) const;
  void partition(std::string_view text, bool parseSpecial, SpmScratch* scratch) const;

  uint32_t count_ = 0;
  std::vector<uint8_t> texts_;
  std::vector<uint32_t> offsets_;
  std::vector<float> scores_;
  bool addSpacePrefix_ = true;

  // text -> id: open addressing over ids, compared against texts_.
  std::vector<int32_t> textSlots_;
  uint64_t textMask_ = 0;

  // (left id, right id) -> id of the token whose text is their concatenation; one 12-byte slot per probe.
  struct PairSlot {
    int32_t left;
    int32_t right;
    int32_t merged;  // -1: empty slot
  };
  std::vector<PairSlot> pairSlots_;
  uint64_t pairMask_ = 0;

  // one-character tokens: ASCII directly, others by their packed UTF-8 bytes.
  int32_t asciiToken_[128];
  std::vector<uint32_t> charKeys_;
  std::vector<int32_t> charValues_;
  uint64_t charMask_ = 0;

  // Characters that some token holds right before a U+2581. A U+2581 after any other character starts a segment
  // no merge can cross, so segments are tokenized on their own.
  bool asciiBeforeSpace_[128];
  std::vector<uint32_t> beforeSpaceKeys_;
  uint64_t beforeSpaceMask_ = 0;

  int32_t byteToken_[256];  // <0xXX>, else the one-byte token, else unk, else -1

  std::vector<int32_t> specialAll_;          // control, user-defined and unknown tokens, longest text first
  std::vector<int32_t> specialUserDefined_;  // the user-defined ones, same order
};

}  // namespace mn
