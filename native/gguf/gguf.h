// GGUF v3 reader. The file is mmapped read-only; tensor data is never copied. Every byte is bounds-checked and
// every size computation overflow-checked; a malformed file gives an Error (GGUF_* code), never an abort.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/ggml_type.h"
#include "common/huge_pages.h"
#include "common/load_control.h"
#include "common/status.h"

namespace mn {

enum class GgufValueType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};

// One metadata value. Scalars are decoded; strings and arrays point into the mapping (valid while the file is).
struct GgufValue {
  GgufValueType type = GgufValueType::UINT8;
  union {
    uint64_t u64;
    int64_t i64;
    double f64;
    bool b;
  } scalar = {0};                 // integers widen into u64/i64 by signedness, floats into f64
  std::string_view string;        // STRING
  GgufValueType elementType = GgufValueType::UINT8;  // ARRAY
  uint64_t count = 0;             // ARRAY: number of elements
  const uint8_t* elements = nullptr;  // ARRAY of fixed-size elements: packed little-endian values
  std::vector<std::string_view> strings;  // ARRAY of STRING
  std::vector<GgufValue> arrays;          // ARRAY of ARRAY
};

// "UINT8", "ARRAY", ... ; "?" for an id outside the enum.
const char* ggufValueTypeName(GgufValueType type);
// Encoded bytes of one value of a fixed-size type; 0 for STRING and ARRAY.
uint64_t ggufFixedValueBytes(GgufValueType type);

struct GgufKv {
  std::string_view key;
  GgufValue value;
};

struct GgufTensorInfo {
  std::string_view name;
  uint32_t nDims = 0;
  uint64_t ne[4] = {1, 1, 1, 1};  // ne[0] is the contiguous row length
  GgmlType type = GgmlType::F32;
  uint64_t offset = 0;            // relative to the data section
  uint64_t nElements = 0;
  uint64_t nBytes = 0;
};

struct GgufReadOptions {
  bool verifyTensorData = false;  // scan F32/F16/BF16 values and block scales for NaN/Inf (touches every page)
  // Read the whole file into anonymous memory, 2 MiB-aligned and in 2 MiB pages where the system grants them,
  // instead of mapping it. Decode streams weights from such pages as fast as from page-cache folios of 2 MiB, and
  // faster than from small ones (docs/performance.md, "Where the weights live"); the copy costs one read of the file
  // and RAM for all of it.
  bool copyToMemory = false;
  // When set, the copy and the scan report their bytes to it and stop with ABORT_ERR once it is asked to.
  LoadControl* control = nullptr;
};

class GgufFile {
 public:
  // mmaps and parses path. Codes: GGUF_OPEN_FAILED (with strerror) and the format codes of parse(); every message
  // starts with the path. The mapping lives as long as the GgufFile.
  // With options.copyToMemory the file is read into memory instead (GGUF_OPEN_FAILED also when that fails).
  static Error open(const std::string& path, const GgufReadOptions& options, std::unique_ptr<GgufFile>* out);
  // Parses bytes the caller keeps alive (fuzzing, tests). Same validation as open().
  static Error parse(const uint8_t* data, size_t size, const GgufReadOptions& options, std::unique_ptr<GgufFile>* out);
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t dataOffset() const { return dataOffset_; }
  uint64_t fileSize() const { return size_; }
  const std::vector<GgufKv>& metadata() const { return kvs_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }

  const GgufKv* findKv(std::string_view key) const;
  const GgufTensorInfo* findTensor(std::string_view name) const;
  const uint8_t* tensorData(const GgufTensorInfo& tensor) const { return data_ + dataOffset_ + tensor.offset; }

  // Typed lookups for model code. Missing key: returns false with *error untouched. Present with an
  // incompatible type or an out-of-range value: returns false and sets *error (GGUF_WRONG_TYPE / GGUF_BAD_VALUE).
  // Integer getters accept any integer type whose value fits.
  bool getU32(std::string_view key, uint32_t* out, Error* error) const;
  bool getI64(std::string_view key, int64_t* out, Error* error) const;
  bool getF32(std::string_view key, float* out, Error* error) const;
  bool getBool(std::string_view key, bool* out, Error* error) const;
  bool getString(std::string_view key, std::string_view* out, Error* error) const;

 private:
  GgufFile() = default;
  Error parseAll(const GgufReadOptions& options);
  Error parseMetadata(uint64_t* position, uint64_t* tensorCount);
  Error parseTensorInfos(uint64_t tensorCount, uint64_t position);
  Error checkTensorLayout();
  // GGUF_NAN when a float of the tensor (F32/F16/BF16 values, the fp16/fp32 scales and mins of quantized blocks)
  // is NaN or infinite. Reads every byte of an unquantized tensor, every block header of a quantized one.
  Error verifyTensorValues(const GgufTensorInfo& tensor) const;

  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  size_t mappedBytes_ = 0;  // length of the mapping data_ starts (0: a copy, or the caller's bytes)
  HugePages copy_;          // the file read into memory (GgufReadOptions::copyToMemory)
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  uint64_t dataOffset_ = 0;
  std::vector<GgufKv> kvs_;
  std::vector<GgufTensorInfo> tensors_;
  // Indices into kvs_ / tensors_ sorted by key / name: duplicate detection and lookups in O(n log n) worst case
  // (a hash set could be flooded by a crafted file).
  std::vector<uint32_t> kvsByKey_;
  std::vector<uint32_t> tensorsByName_;
};

}  // namespace mn
