// GGUF v2/v3 reader (REFERENCE.md "GGUF"). Every read is bounds-checked against the mapping, every size
// computation overflow-checked, and every rule of REFERENCE.md's "Hostile files" list gives its own error code
// (docs/gguf.md has the table). Nothing here asserts, aborts or throws on file data.
#include "gguf/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <system_error>

#include "common/half.h"
#include "common/huge_pages.h"
#include "gguf/message.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the GGUF reader decodes little-endian fields with memcpy; big-endian hosts need byte swaps"
#endif

namespace mn {
namespace {

// ============================================================================================== limits

constexpr uint64_t kMaxCount = uint64_t{1} << 63;  // counts and lengths at or above this are never genuine
constexpr uint64_t kMaxTensorNameBytes = 63;       // ggml's GGML_MAX_NAME is 64 including the NUL
constexpr uint32_t kMaxDims = 4;
constexpr int kMaxArrayDepth = 4;                  // ARRAY of ARRAY of ... ; real files use none
constexpr uint64_t kMaxNestedArrays = 4096;        // caps memory (~100 bytes each here); llama.cpp reads none
constexpr uint64_t kMinStringBytes = 8;            // u64 length, empty text
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;    // key of >= 1 byte, u32 type, 1-byte value
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;  // name >= 1 byte, n_dims, one ne, type, offset
constexpr uint32_t kDefaultAlignment = 32;
constexpr char kAlignmentKey[] = "general.alignment";

// ============================================================================================== value types

bool isKnownValueType(uint32_t id) { return id <= static_cast<uint32_t>(GgufValueType::FLOAT64); }

// The fewest bytes one array element of this type can take: bounds the element count against the bytes left.
uint64_t minElementBytes(GgufValueType type) {
  if (type == GgufValueType::STRING) return kMinStringBytes;
  if (type == GgufValueType::ARRAY) return 4 + 8;  // element type and count of an empty array
  return ggufFixedValueBytes(type);
}

bool isValidUtf8(std::string_view text) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const uint8_t lead = bytes[i];
    if (lead < 0x80) {
      i++;
      continue;
    }
    size_t length;
    uint32_t codePoint;
    if ((lead & 0xe0) == 0xc0) {
      length = 2, codePoint = lead & 0x1f;
    } else if ((lead & 0xf0) == 0xe0) {
      length = 3, codePoint = lead & 0x0f;
    } else if ((lead & 0xf8) == 0xf0) {
      length = 4, codePoint = lead & 0x07;
    } else {
      return false;
    }
    if (n - i < length) return false;
    for (size_t k = 1; k < length; k++) {
      if ((bytes[i + k] & 0xc0) != 0x80) return false;
      codePoint = (codePoint << 6) | (bytes[i + k] & 0x3f);
    }
    static constexpr uint32_t kSmallestOfLength[5] = {0, 0, 0x80, 0x800, 0x10000};  // shorter forms are overlong
    if (codePoint < kSmallestOfLength[length] || codePoint > 0x10ffff || (codePoint >= 0xd800 && codePoint <= 0xdfff)) {
      return false;
    }
    i += length;
  }
  return true;
}

// ============================================================================================== cursor

// A read position in the mapped bytes. Callers check has(n) before read/skip.
class Cursor {
 public:
  Cursor(const uint8_t* data, uint64_t size, uint64_t position) : data_(data), size_(size), position_(position) {}

  uint64_t position() const { return position_; }
  uint64_t size() const { return size_; }
  uint64_t remaining() const { return size_ - position_; }
  bool has(uint64_t bytes) const { return bytes <= size_ - position_; }
  const uint8_t* here() const { return data_ + position_; }
  void skip(uint64_t bytes) { position_ += bytes; }

  template <class T>
  T read() {
    T value;
    std::memcpy(&value, data_ + position_, sizeof value);
    position_ += sizeof value;
    return value;
  }

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t position_;
};

// Errors name what was being read; `what` callables build that text only when an error is reported.

template <class Describe>
Error truncatedAt(const Cursor& in, uint64_t needed, const Describe& what) {
  return makeError("GGUF_TRUNCATED", cat("truncated file: ", what(), " at offset ", in.position(), " needs ", needed,
                                         " bytes but the file ends at byte ", in.size()));
}

// A count or length field (elements, entries or bytes that follow it) that no file of this size can satisfy.
template <class Describe>
Error checkCount(const Cursor& in, uint64_t count, uint64_t minBytesEach, const Describe& what) {
  if (count >= kMaxCount) {
    return makeError("GGUF_BAD_COUNT", cat(what(), " = ", count, " is 2^63 or more"));
  }
  if (count > in.remaining() / minBytesEach) {
    return makeError("GGUF_BAD_COUNT", cat(what(), " = ", count, " needs at least ", count, " x ", minBytesEach,
                                           " bytes but only ", in.remaining(), " bytes remain after offset ",
                                           in.position(), " (corrupt count or truncated file)"));
  }
  return Error::none();
}

template <class T, class Describe>
Error readScalar(Cursor& in, T* out, const Describe& what) {
  if (!in.has(sizeof(T))) return truncatedAt(in, sizeof(T), what);
  *out = in.read<T>();
  return Error::none();
}

template <class Describe>
Error readString(Cursor& in, std::string_view* out, const Describe& what) {
  uint64_t length = 0;
  if (Error e = readScalar(in, &length, [&] { return cat("the length of ", what()); }); !e.ok()) return e;
  if (Error e = checkCount(in, length, 1, [&] { return cat("the length of ", what()); }); !e.ok()) return e;
  *out = std::string_view(reinterpret_cast<const char*>(in.here()), length);
  in.skip(length);
  return Error::none();
}

// ============================================================================================== metadata values

struct ValueReader {
  Cursor& in;
  std::string_view key;       // for messages
  uint64_t* nestedArrays;     // running total over the file, capped by kMaxNestedArrays

  Error readValue(GgufValueType type, GgufValue* out, int depth) {
    out->type = type;
    switch (type) {
      case GgufValueType::STRING:
        return readString(in, &out->string, [&] { return cat("the string value of metadata key ", quoted(key)); });
      case GgufValueType::ARRAY:
        return readArray(out, depth + 1);
      case GgufValueType::BOOL: {
        uint8_t byte = 0;
        if (Error e = readScalar(in, &byte, [&] { return valueText(); }); !e.ok()) return e;
        if (byte > 1) {
          return makeError("GGUF_BAD_VALUE", cat("metadata key ", quoted(key), ": BOOL byte is ", byte, ", not 0 or 1"));
        }
        out->scalar.b = byte != 0;
        return Error::none();
      }
      default:
        return readNumber(type, out);
    }
  }

  std::string valueText() const { return cat("the value of metadata key ", quoted(key)); }

  Error readNumber(GgufValueType type, GgufValue* out) {
    const uint64_t bytes = ggufFixedValueBytes(type);
    if (!in.has(bytes)) return truncatedAt(in, bytes, [&] { return valueText(); });
    switch (type) {
      case GgufValueType::UINT8: out->scalar.u64 = in.read<uint8_t>(); break;
      case GgufValueType::INT8: out->scalar.i64 = in.read<int8_t>(); break;
      case GgufValueType::UINT16: out->scalar.u64 = in.read<uint16_t>(); break;
      case GgufValueType::INT16: out->scalar.i64 = in.read<int16_t>(); break;
      case GgufValueType::UINT32: out->scalar.u64 = in.read<uint32_t>(); break;
      case GgufValueType::INT32: out->scalar.i64 = in.read<int32_t>(); break;
      case GgufValueType::UINT64: out->scalar.u64 = in.read<uint64_t>(); break;
      case GgufValueType::INT64: out->scalar.i64 = in.read<int64_t>(); break;
      case GgufValueType::FLOAT32: out->scalar.f64 = in.read<float>(); break;
      case GgufValueType::FLOAT64: out->scalar.f64 = in.read<double>(); break;
      default: break;  // unreachable: STRING, ARRAY and BOOL are handled by readValue
    }
    return Error::none();
  }

  Error readArray(GgufValue* out, int depth) {
    if (depth > kMaxArrayDepth) {
      return makeError("GGUF_BAD_VALUE_TYPE",
                       cat("metadata key ", quoted(key), ": arrays nested deeper than ", kMaxArrayDepth, " levels"));
    }
    uint32_t elementTypeId = 0;
    if (Error e = readScalar(in, &elementTypeId, [&] { return cat("the array element type of metadata key ", quoted(key)); });
        !e.ok()) {
      return e;
    }
    if (!isKnownValueType(elementTypeId)) {
      return makeError("GGUF_BAD_VALUE_TYPE",
                       cat("metadata key ", quoted(key), ": unknown array element type ", elementTypeId));
    }
    const auto elementType = static_cast<GgufValueType>(elementTypeId);
    out->elementType = elementType;
    const auto countText = [&] { return cat("the element count of metadata array ", quoted(key)); };
    if (Error e = readScalar(in, &out->count, countText); !e.ok()) return e;
    if (Error e = checkCount(in, out->count, minElementBytes(elementType), countText); !e.ok()) return e;

    if (elementType == GgufValueType::STRING) {
      out->strings.resize(out->count);
      for (uint64_t i = 0; i < out->count; i++) {
        const Error e = readString(in, &out->strings[i], [&] {
          return cat("element ", i, " of metadata array ", quoted(key));
        });
        if (!e.ok()) return e;
      }
      return Error::none();
    }
    if (elementType == GgufValueType::ARRAY) {
      *nestedArrays += out->count;
      if (*nestedArrays > kMaxNestedArrays) {
        return makeError("GGUF_BAD_COUNT", cat("metadata key ", quoted(key), ": more than ", kMaxNestedArrays,
                                               " nested arrays in the file"));
      }
      out->arrays.resize(out->count);
      for (uint64_t i = 0; i < out->count; i++) {
        if (Error e = readValue(GgufValueType::ARRAY, &out->arrays[i], depth); !e.ok()) return e;
      }
      return Error::none();
    }
    const uint64_t bytes = out->count * ggufFixedValueBytes(elementType);  // cannot overflow: checkCount bounded it
    out->elements = in.here();
    if (elementType == GgufValueType::BOOL) {
      for (uint64_t i = 0; i < out->count; i++) {
        if (out->elements[i] > 1) {
          return makeError("GGUF_BAD_VALUE", cat("metadata array ", quoted(key), ": BOOL element ", i, " is byte ",
                                                 out->elements[i], ", not 0 or 1"));
        }
      }
    }
    in.skip(bytes);
    return Error::none();
  }
};

// ============================================================================================== tensor data

struct ScaleLayout {
  uint32_t offsets[2];  // byte offsets of the fp16 scale (and min) inside one block
  uint32_t count;       // 0: not a quantized type
  bool float32;         // Q8_K keeps an fp32 scale
};

// Where each quantized block keeps its scales (REFERENCE.md "ggml types").
ScaleLayout scaleLayout(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0: case GgmlType::Q5_0: case GgmlType::Q8_0: return {{0, 0}, 1, false};
    case GgmlType::Q4_1: case GgmlType::Q5_1: case GgmlType::Q8_1: return {{0, 2}, 2, false};
    case GgmlType::Q4_K: case GgmlType::Q5_K: return {{0, 2}, 2, false};
    case GgmlType::Q2_K: return {{80, 82}, 2, false};   // after scales[16], qs[64]
    case GgmlType::Q3_K: return {{108, 0}, 1, false};   // after hmask[32], qs[64], scales[12]
    case GgmlType::Q6_K: return {{208, 0}, 1, false};   // after ql[128], qh[64], scales[16]
    case GgmlType::Q8_K: return {{0, 0}, 1, true};
    default: return {{0, 0}, 0, false};
  }
}

const char* nonFiniteName(float value) { return std::isnan(value) ? "NaN" : "infinite"; }

Error nonFiniteValue(const GgufTensorInfo& tensor, uint64_t index, float value) {
  return makeError("GGUF_NAN", cat("tensor ", quoted(tensor.name), ": element ", index, " is ", nonFiniteName(value)));
}

Error nonFiniteScale(const GgufTensorInfo& tensor, uint64_t block, uint32_t which, float value) {
  return makeError("GGUF_NAN", cat("tensor ", quoted(tensor.name), ": block ", block, " ",
                                   which == 0 ? "scale" : "min", " is ", nonFiniteName(value)));
}

// ============================================================================================== misc

template <class T>
T loadLe(const uint8_t* bytes) {
  T value;
  std::memcpy(&value, bytes, sizeof value);
  return value;
}

bool isPowerOfTwo(uint64_t value) { return value != 0 && (value & (value - 1)) == 0; }

std::string shapeText(const GgufTensorInfo& tensor) { return dimsText(tensor.ne, tensor.nDims); }

// Sorts indices by the string each names and reports the first repeated one (O(n log n) comparisons).
template <class Name>
std::vector<uint32_t> sortedByName(size_t count, const Name& name, const uint32_t** duplicate) {
  std::vector<uint32_t> order(count);
  for (size_t i = 0; i < count; i++) order[i] = static_cast<uint32_t>(i);
  std::sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    const std::string_view x = name(a), y = name(b);
    return x != y ? x < y : a < b;
  });
  *duplicate = nullptr;
  for (size_t i = 1; i < count && *duplicate == nullptr; i++) {
    if (name(order[i - 1]) == name(order[i])) *duplicate = &order[i];
  }
  return order;
}

template <class Name>
const uint32_t* findSorted(const std::vector<uint32_t>& order, std::string_view wanted, const Name& name) {
  const auto it = std::lower_bound(order.begin(), order.end(), wanted,
                                   [&](uint32_t index, std::string_view value) { return name(index) < value; });
  return it != order.end() && name(*it) == wanted ? &*it : nullptr;
}

}  // namespace

uint64_t ggufFixedValueBytes(GgufValueType type) {
  switch (type) {
    case GgufValueType::UINT8: case GgufValueType::INT8: case GgufValueType::BOOL: return 1;
    case GgufValueType::UINT16: case GgufValueType::INT16: return 2;
    case GgufValueType::UINT32: case GgufValueType::INT32: case GgufValueType::FLOAT32: return 4;
    case GgufValueType::UINT64: case GgufValueType::INT64: case GgufValueType::FLOAT64: return 8;
    default: return 0;
  }
}

const char* ggufValueTypeName(GgufValueType type) {
  switch (type) {
    case GgufValueType::UINT8: return "UINT8";
    case GgufValueType::INT8: return "INT8";
    case GgufValueType::UINT16: return "UINT16";
    case GgufValueType::INT16: return "INT16";
    case GgufValueType::UINT32: return "UINT32";
    case GgufValueType::INT32: return "INT32";
    case GgufValueType::FLOAT32: return "FLOAT32";
    case GgufValueType::BOOL: return "BOOL";
    case GgufValueType::STRING: return "STRING";
    case GgufValueType::ARRAY: return "ARRAY";
    case GgufValueType::UINT64: return "UINT64";
    case GgufValueType::INT64: return "INT64";
    case GgufValueType::FLOAT64: return "FLOAT64";
  }
  return "?";
}

// ============================================================================================== open / parse

namespace {

// The copy reads this much at a time, so that an abort stops it within a few milliseconds.
constexpr size_t kReadChunkBytes = size_t(64) << 20;

// Reads the size-byte file behind fd into *copy (fresh memory in 2 MiB pages where the system grants them), read-only
// once filled, counting its chunks on control (may be null). Nothing is left allocated on failure.
Error readIntoMemory(int fd, const std::string& path, size_t size, LoadControl* control, HugePages* copy) {
  if (!copy->allocate(size)) {
    return makeError("GGUF_OPEN_FAILED", cat(path, ": cannot allocate ", size, " bytes to read the file into: ",
                                             std::generic_category().message(errno)));
  }
  uint8_t* const base = copy->data();
  size_t done = 0;
  while (done < size) {
    const ssize_t n = pread(fd, base + done, std::min(size - done, kReadChunkBytes), static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string reason = n < 0 ? std::generic_category().message(errno)
                                       : cat("the file ended at byte ", done, " of the ", size, " it had when opened");
      copy->release();
      return makeError("GGUF_OPEN_FAILED", cat(path, ": cannot read: ", reason));
    }
    done += static_cast<size_t>(n);
    if (control != nullptr) {
      if (Error error = control->step(uint64_t(n)); !error.ok()) {
        copy->release();
        return error;
      }
    }
  }
  mprotect(base, copy->size(), PROT_READ);
  return Error::none();
}

}  // namespace

Error GgufFile::open(const std::string& path, const GgufReadOptions& options, std::unique_ptr<GgufFile>* out) {
  const auto openFailed = [&](const char* action, int error) {
    return makeError("GGUF_OPEN_FAILED",
                     cat(path, ": cannot ", action, ": ", std::generic_category().message(error)));
  };
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below as not a regular file.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return openFailed("open", errno);
  struct stat status;
  if (fstat(fd, &status) != 0) {
    const int error = errno;
    close(fd);
    return openFailed("stat", error);
  }
  if (!S_ISREG(status.st_mode)) {
    close(fd);
    return makeError("GGUF_OPEN_FAILED", cat(path, ": not a regular file"));
  }
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->size_ = static_cast<uint64_t>(status.st_size);
  if (file->size_ > 0) {  // mmap refuses length 0; an empty file is simply truncated
    if (file->size_ > std::numeric_limits<size_t>::max()) {
      close(fd);
      return makeError("GGUF_OPEN_FAILED", cat(path, ": file of ", file->size_, " bytes does not fit the address space"));
    }
    const size_t size = static_cast<size_t>(file->size_);
    if (options.copyToMemory) {
      if (Error error = readIntoMemory(fd, path, size, options.control, &file->copy_); !error.ok()) {
        close(fd);
        return error;
      }
      file->data_ = file->copy_.data();
    } else {
      void* mapping = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
      if (mapping == MAP_FAILED) {
        const int error = errno;
        close(fd);
        return openFailed("mmap", error);
      }
#ifdef MADV_HUGEPAGE
      // Pages read in through this mapping land in 2 MiB page-cache folios instead of scattered 4 KiB pages: decode
      // streams the weights faster from physically contiguous memory (docs/performance.md, "Page-cache folios").
      // Only a hint; pages already cached keep their size, and a kernel without file THP ignores it.
      madvise(mapping, size, MADV_HUGEPAGE);
#endif
      file->data_ = static_cast<const uint8_t*>(mapping);
      file->mappedBytes_ = size;
    }
  }
  close(fd);  // a mapping keeps the file open
  Error error = file->parseAll(options);
  if (!error.ok()) {
    error.message = cat(path, ": ", error.message);
    return error;
  }
  *out = std::move(file);
  return Error::none();
}

Error GgufFile::parse(const uint8_t* data, size_t size, const GgufReadOptions& options,
                      std::unique_ptr<GgufFile>* out) {
  std::unique_ptr<GgufFile> file(new GgufFile());
  file->data_ = data;
  file->size_ = size;
  if (Error error = file->parseAll(options); !error.ok()) return error;
  *out = std::move(file);
  return Error::none();
}

GgufFile::~GgufFile() {
  if (mappedBytes_ > 0) munmap(const_cast<uint8_t*>(data_), mappedBytes_);
}

Error GgufFile::parseAll(const GgufReadOptions& options) {
  uint64_t position = 0, tensorCount = 0;
  if (Error e = parseMetadata(&position, &tensorCount); !e.ok()) return e;
  if (Error e = parseTensorInfos(tensorCount, position); !e.ok()) return e;
  if (Error e = checkTensorLayout(); !e.ok()) return e;
  if (options.verifyTensorData) {
    for (const GgufTensorInfo& tensor : tensors_) {
      if (Error e = verifyTensorValues(tensor); !e.ok()) return e;
      if (options.control != nullptr) {
        if (Error e = options.control->step(tensor.nBytes); !e.ok()) return e;
      }
    }
  }
  return Error::none();
}

// Header, key/value pairs, their uniqueness and general.alignment. Leaves *position after the last pair.
Error GgufFile::parseMetadata(uint64_t* position, uint64_t* tensorCount) {
  static constexpr uint8_t kMagic[4] = {'G', 'G', 'U', 'F'};
  const uint64_t magicBytes = std::min<uint64_t>(size_, 4);
  if (magicBytes > 0 && std::memcmp(data_, kMagic, magicBytes) != 0) {
    const std::string_view start(reinterpret_cast<const char*>(data_), magicBytes);
    return makeError("GGUF_BAD_MAGIC", cat("not a GGUF file: it starts with ", quoted(start), ", not \"GGUF\""));
  }
  Cursor in(data_, size_, 0);
  if (!in.has(4)) return truncatedAt(in, 4, [] { return std::string("the magic \"GGUF\""); });
  in.skip(4);

  if (Error e = readScalar(in, &version_, [] { return std::string("the header field version"); }); !e.ok()) return e;
  if (version_ != 2 && version_ != 3) {
    const uint32_t swapped = __builtin_bswap32(version_);
    if (swapped >= 1 && swapped <= 3) {
      return makeError("GGUF_BAD_VERSION", cat("version field reads ", version_, ": a big-endian GGUF file (version ",
                                               swapped, "), which this little-endian reader does not support"));
    }
    return makeError("GGUF_BAD_VERSION", cat("unsupported GGUF version ", version_, " (this reader reads 2 and 3)"));
  }
  uint64_t kvCount = 0;
  if (Error e = readScalar(in, tensorCount, [] { return std::string("the header field n_tensors"); }); !e.ok()) return e;
  if (Error e = readScalar(in, &kvCount, [] { return std::string("the header field n_kv"); }); !e.ok()) return e;
  // n_tensors is held against the bytes left once the metadata is read (parseTensorInfos); here only its range.
  for (const auto& [name, count] : {std::pair{"n_tensors", *tensorCount}, std::pair{"n_kv", kvCount}}) {
    if (count >= kMaxCount) return makeError("GGUF_BAD_COUNT", cat("header field ", name, " = ", count, " is 2^63 or more"));
    if (count > std::numeric_limits<uint32_t>::max()) {  // indices are 32-bit
      return makeError("GGUF_BAD_COUNT", cat("header field ", name, " = ", count, " is more than 2^32 - 1"));
    }
  }
  if (Error e = checkCount(in, kvCount, kMinKvBytes, [] { return std::string("header field n_kv"); }); !e.ok()) return e;

  kvs_.resize(kvCount);
  uint64_t nestedArrays = 0;
  for (uint64_t i = 0; i < kvCount; i++) {
    GgufKv& kv = kvs_[i];
    if (Error e = readString(in, &kv.key, [&] { return cat("metadata key #", i); }); !e.ok()) return e;
    if (kv.key.empty()) return makeError("GGUF_BAD_STRING", cat("metadata key #", i, " is empty"));
    if (!isValidUtf8(kv.key)) {
      return makeError("GGUF_BAD_STRING", cat("metadata key #", i, " ", quoted(kv.key), " is not valid UTF-8"));
    }
    uint32_t typeId = 0;
    if (Error e = readScalar(in, &typeId, [&] { return cat("the value type of metadata key ", quoted(kv.key)); });
        !e.ok()) {
      return e;
    }
    if (!isKnownValueType(typeId)) {
      return makeError("GGUF_BAD_VALUE_TYPE", cat("metadata key ", quoted(kv.key), ": unknown value type ", typeId));
    }
    ValueReader reader{in, kv.key, &nestedArrays};
    if (Error e = reader.readValue(static_cast<GgufValueType>(typeId), &kv.value, 0); !e.ok()) return e;
  }

  const uint32_t* duplicate = nullptr;
  const auto keyOf = [this](uint32_t index) { return kvs_[index].key; };
  kvsByKey_ = sortedByName(kvs_.size(), keyOf, &duplicate);
  if (duplicate != nullptr) {
    return makeError("GGUF_DUPLICATE_KEY", cat("metadata key ", quoted(kvs_[*duplicate].key), " appears twice"));
  }

  alignment_ = kDefaultAlignment;
  if (const GgufKv* kv = findKv(kAlignmentKey)) {
    if (kv->value.type != GgufValueType::UINT32) {
      return makeError("GGUF_BAD_ALIGNMENT", cat("metadata ", kAlignmentKey, " has type ",
                                                 ggufValueTypeName(kv->value.type), "; it must be UINT32"));
    }
    if (!isPowerOfTwo(kv->value.scalar.u64)) {
      return makeError("GGUF_BAD_ALIGNMENT",
                       cat("metadata ", kAlignmentKey, " = ", kv->value.scalar.u64, " is not a power of two"));
    }
    alignment_ = static_cast<uint32_t>(kv->value.scalar.u64);
  }
  *position = in.position();
  return Error::none();
}

// Tensor infos: name, shape, type and offset of each, then where the data section starts.
Error GgufFile::parseTensorInfos(uint64_t tensorCount, uint64_t position) {
  Cursor in(data_, size_, position);
  if (Error e = checkCount(in, tensorCount, kMinTensorInfoBytes, [] { return std::string("header field n_tensors"); });
      !e.ok()) {
    return e;
  }
  tensors_.resize(tensorCount);
  for (uint64_t i = 0; i < tensorCount; i++) {
    GgufTensorInfo& tensor = tensors_[i];
    if (Error e = readString(in, &tensor.name, [&] { return cat("the name of tensor #", i); }); !e.ok()) return e;
    if (tensor.name.empty()) return makeError("GGUF_BAD_NAME", cat("tensor #", i, " has an empty name"));
    if (tensor.name.size() > kMaxTensorNameBytes) {
      return makeError("GGUF_BAD_NAME", cat("tensor #", i, " name ", quoted(tensor.name), " is ", tensor.name.size(),
                                            " bytes; names must be shorter than 64"));
    }
    if (!isValidUtf8(tensor.name)) {
      return makeError("GGUF_BAD_STRING", cat("tensor #", i, " name ", quoted(tensor.name), " is not valid UTF-8"));
    }
    const auto field = [&](const char* what) { return [&tensor, what] { return cat(what, " of tensor ", quoted(tensor.name)); }; };
    if (Error e = readScalar(in, &tensor.nDims, field("n_dims")); !e.ok()) return e;
    if (tensor.nDims == 0 || tensor.nDims > kMaxDims) {
      return makeError("GGUF_BAD_DIMS", cat("tensor ", quoted(tensor.name), ": n_dims = ", tensor.nDims,
                                            "; it must be 1 to ", kMaxDims));
    }
    for (uint32_t d = 0; d < tensor.nDims; d++) {
      if (Error e = readScalar(in, &tensor.ne[d], field("a dimension")); !e.ok()) return e;
    }
    uint64_t elements = 1;
    for (uint32_t d = 0; d < tensor.nDims; d++) {
      if (tensor.ne[d] == 0) {
        return makeError("GGUF_BAD_SHAPE", cat("tensor ", quoted(tensor.name), ": dimension ", d, " of shape ",
                                               shapeText(tensor), " is 0"));
      }
      if (__builtin_mul_overflow(elements, tensor.ne[d], &elements) || elements >= kMaxCount) {
        return makeError("GGUF_BAD_SHAPE", cat("tensor ", quoted(tensor.name), ": shape ", shapeText(tensor),
                                               " has more than 2^63 elements"));
      }
    }
    tensor.nElements = elements;
    uint32_t typeId = 0;
    if (Error e = readScalar(in, &typeId, field("the type")); !e.ok()) return e;
    const GgmlTypeTraits traits = ggmlTypeTraits(typeId);
    if (traits.name == nullptr) {
      return makeError("GGUF_BAD_TENSOR_TYPE", cat("tensor ", quoted(tensor.name), ": unknown ggml type id ", typeId));
    }
    tensor.type = static_cast<GgmlType>(typeId);
    if (tensor.ne[0] % traits.blockSize != 0) {
      return makeError("GGUF_BAD_BLOCK", cat("tensor ", quoted(tensor.name), ": row length ne[0] = ", tensor.ne[0],
                                             " is not a multiple of ", traits.name, "'s block size ", traits.blockSize));
    }
    if (__builtin_mul_overflow(elements / traits.blockSize, uint64_t{traits.blockBytes}, &tensor.nBytes)) {
      return makeError("GGUF_BAD_SHAPE", cat("tensor ", quoted(tensor.name), ": shape ", shapeText(tensor), " of ",
                                             traits.name, " needs more than 2^64 bytes"));
    }
    if (Error e = readScalar(in, &tensor.offset, field("the data offset")); !e.ok()) return e;
    if (tensor.offset % alignment_ != 0) {
      return makeError("GGUF_BAD_OFFSET", cat("tensor ", quoted(tensor.name), ": data offset ", tensor.offset,
                                              " is not a multiple of the alignment ", alignment_));
    }
    uint64_t end = 0;
    if (__builtin_add_overflow(tensor.offset, tensor.nBytes, &end) || end >= kMaxCount) {
      return makeError("GGUF_BAD_OFFSET", cat("tensor ", quoted(tensor.name), ": data offset ", tensor.offset, " + ",
                                              tensor.nBytes, " bytes wraps around"));
    }
  }

  const uint32_t* duplicate = nullptr;
  const auto nameOf = [this](uint32_t index) { return tensors_[index].name; };
  tensorsByName_ = sortedByName(tensors_.size(), nameOf, &duplicate);
  if (duplicate != nullptr) {
    return makeError("GGUF_DUPLICATE_TENSOR", cat("tensor name ", quoted(tensors_[*duplicate].name), " appears twice"));
  }

  if (__builtin_add_overflow(in.position(), uint64_t{alignment_} - 1, &dataOffset_)) {
    return makeError("GGUF_BAD_ALIGNMENT", cat("alignment ", alignment_, " pushes the data section past 2^64"));
  }
  dataOffset_ &= ~(uint64_t{alignment_} - 1);
  if (!tensors_.empty() && dataOffset_ > size_) {
    return makeError("GGUF_TRUNCATED", cat("truncated file: the tensor data section starts at offset ", dataOffset_,
                                           " but the file ends at byte ", size_));
  }
  return Error::none();
}

// No two tensors share bytes, and every tensor lies inside the file. A short file whose tensors are packed back
// to back (as every GGUF writer lays them out) is reported as truncated; anything else as a bad offset.
Error GgufFile::checkTensorLayout() {
  std::vector<uint32_t> byOffset(tensors_.size());
  for (size_t i = 0; i < byOffset.size(); i++) byOffset[i] = static_cast<uint32_t>(i);
  std::sort(byOffset.begin(), byOffset.end(), [this](uint32_t a, uint32_t b) {
    return tensors_[a].offset != tensors_[b].offset ? tensors_[a].offset < tensors_[b].offset : a < b;
  });
  const uint64_t mask = uint64_t{alignment_} - 1;
  bool packed = true;
  uint64_t furthestEnd = 0;  // over the tensors before this one in offset order
  const GgufTensorInfo* furthest = nullptr;
  for (uint32_t index : byOffset) {
    const GgufTensorInfo& tensor = tensors_[index];
    if (furthest != nullptr && tensor.offset < furthestEnd) {
      return makeError("GGUF_OVERLAP", cat("tensor ", quoted(tensor.name), " (data offset ", tensor.offset,
                                           ") overlaps tensor ", quoted(furthest->name), " (bytes ", furthest->offset,
                                           " to ", furthestEnd, ")"));
    }
    const uint64_t expected = (furthestEnd + mask) & ~mask;  // ends are < 2^63, so this cannot wrap
    packed = packed && tensor.offset == expected;
    furthestEnd = tensor.offset + tensor.nBytes;
    furthest = &tensor;
  }
  const uint64_t dataBytes = tensors_.empty() ? 0 : size_ - dataOffset_;
  for (uint32_t index : byOffset) {
    const GgufTensorInfo& tensor = tensors_[index];
    const uint64_t end = tensor.offset + tensor.nBytes;
    if (end <= dataBytes) continue;
    if (packed) {
      return makeError("GGUF_TRUNCATED", cat("truncated file: tensor ", quoted(tensor.name), " needs data up to byte ",
                                             dataOffset_ + end, " but the file ends at byte ", size_));
    }
    return makeError("GGUF_BAD_OFFSET", cat("tensor ", quoted(tensor.name), ": data offset ", tensor.offset, " + ",
                                            tensor.nBytes, " bytes runs past the end of the data section (",
                                            dataBytes, " bytes)"));
  }
  return Error::none();
}

// ============================================================================================== lookups

const GgufKv* GgufFile::findKv(std::string_view key) const {
  const uint32_t* index = findSorted(kvsByKey_, key, [this](uint32_t i) { return kvs_[i].key; });
  return index ? &kvs_[*index] : nullptr;
}

const GgufTensorInfo* GgufFile::findTensor(std::string_view name) const {
  const uint32_t* index = findSorted(tensorsByName_, name, [this](uint32_t i) { return tensors_[i].name; });
  return index ? &tensors_[*index] : nullptr;
}

namespace {

bool isSignedInteger(GgufValueType type) {
  return type == GgufValueType::INT8 || type == GgufValueType::INT16 || type == GgufValueType::INT32 ||
         type == GgufValueType::INT64;
}

bool isUnsignedInteger(GgufValueType type) {
  return type == GgufValueType::UINT8 || type == GgufValueType::UINT16 || type == GgufValueType::UINT32 ||
         type == GgufValueType::UINT64;
}

Error wrongType(const GgufKv& kv, const char* expected) {
  return makeError("GGUF_WRONG_TYPE", cat("metadata ", quoted(kv.key), " has type ", ggufValueTypeName(kv.value.type),
                                          "; expected ", expected));
}

std::string integerText(const GgufValue& value) {
  return isSignedInteger(value.type) ? std::to_string(value.scalar.i64) : std::to_string(value.scalar.u64);
}

// The integer value if it lies in [min, max].
bool integerInRange(const GgufValue& value, int64_t min, uint64_t max, int64_t* out) {
  if (isSignedInteger(value.type)) {
    const int64_t v = value.scalar.i64;
    if (v < min || (v >= 0 && static_cast<uint64_t>(v) > max)) return false;
    *out = v;
    return true;
  }
  const uint64_t v = value.scalar.u64;
  if (v > max || (min > 0 && v < static_cast<uint64_t>(min))) return false;
  *out = static_cast<int64_t>(v);  // max <= INT64_MAX for every caller
  return true;
}

// The integer value of `key` if it lies in [min, max] (max <= INT64_MAX); the getters' contract otherwise.
bool getInteger(const GgufFile& file, std::string_view key, int64_t min, uint64_t max, const char* range,
                int64_t* out, Error* error) {
  const GgufKv* kv = file.findKv(key);
  if (kv == nullptr) return false;
  if (!isSignedInteger(kv->value.type) && !isUnsignedInteger(kv->value.type)) {
    *error = wrongType(*kv, "an integer");
    return false;
  }
  if (!integerInRange(kv->value, min, max, out)) {
    *error = makeError("GGUF_BAD_VALUE", cat("metadata ", quoted(kv->key), " = ", integerText(kv->value),
                                             " does not fit ", range));
    return false;
  }
  return true;
}

}  // namespace

bool GgufFile::getU32(std::string_view key, uint32_t* out, Error* error) const {
  int64_t value = 0;
  if (!getInteger(*this, key, 0, std::numeric_limits<uint32_t>::max(), "an unsigned 32-bit integer", &value, error)) {
    return false;
  }
  *out = static_cast<uint32_t>(value);
  return true;
}

bool GgufFile::getI64(std::string_view key, int64_t* out, Error* error) const {
  return getInteger(*this, key, std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(),
                    "a signed 64-bit integer", out, error);
}

bool GgufFile::getF32(std::string_view key, float* out, Error* error) const {
  const GgufKv* kv = findKv(key);
  if (kv == nullptr) return false;
  if (kv->value.type != GgufValueType::FLOAT32 && kv->value.type != GgufValueType::FLOAT64) {
    *error = wrongType(*kv, "FLOAT32");
    return false;
  }
  const double value = kv->value.scalar.f64;
  if (std::isfinite(value) && std::fabs(value) > std::numeric_limits<float>::max()) {
    *error = makeError("GGUF_BAD_VALUE", cat("metadata ", quoted(kv->key), " = ", value, " does not fit a float"));
    return false;
  }
  *out = static_cast<float>(value);
  return true;
}

bool GgufFile::getBool(std::string_view key, bool* out, Error* error) const {
  const GgufKv* kv = findKv(key);
  if (kv == nullptr) return false;
  if (kv->value.type != GgufValueType::BOOL) {
    *error = wrongType(*kv, "BOOL");
    return false;
  }
  *out = kv->value.scalar.b;
  return true;
}

bool GgufFile::getString(std::string_view key, std::string_view* out, Error* error) const {
  const GgufKv* kv = findKv(key);
  if (kv == nullptr) return false;
  if (kv->value.type != GgufValueType::STRING) {
    *error = wrongType(*kv, "STRING");
    return false;
  }
  *out = kv->value.string;
  return true;
}

// ============================================================================================== tensor values

Error GgufFile::verifyTensorValues(const GgufTensorInfo& tensor) const {
  const uint8_t* bytes = tensorData(tensor);
  switch (tensor.type) {
    case GgmlType::F32:
      for (uint64_t i = 0; i < tensor.nElements; i++) {
        const uint32_t bits = loadLe<uint32_t>(bytes + 4 * i);
        if ((bits & 0x7f800000u) == 0x7f800000u) return nonFiniteValue(tensor, i, bitsToFloat(bits));
      }
      return Error::none();
    case GgmlType::F16:
      for (uint64_t i = 0; i < tensor.nElements; i++) {
        const uint16_t bits = loadLe<uint16_t>(bytes + 2 * i);
        if ((bits & 0x7c00u) == 0x7c00u) return nonFiniteValue(tensor, i, fp16ToFloat(bits));
      }
      return Error::none();
    case GgmlType::BF16:
      for (uint64_t i = 0; i < tensor.nElements; i++) {
        const uint16_t bits = loadLe<uint16_t>(bytes + 2 * i);
        if ((bits & 0x7f80u) == 0x7f80u) return nonFiniteValue(tensor, i, bf16ToFloat(bits));
      }
      return Error::none();
    default:
      break;
  }
  const ScaleLayout layout = scaleLayout(tensor.type);
  const GgmlTypeTraits traits = ggmlTypeTraits(tensor.type);
  const uint64_t blocks = tensor.nElements / traits.blockSize;
  for (uint64_t block = 0; block < blocks; block++) {
    const uint8_t* header = bytes + block * traits.blockBytes;
    for (uint32_t s = 0; s < layout.count; s++) {
      const float scale = layout.float32 ? loadLe<float>(header + layout.offsets[s])
                                         : fp16ToFloat(loadLe<uint16_t>(header + layout.offsets[s]));
      if (!std::isfinite(scale)) return nonFiniteScale(tensor, block, s, scale);
    }
  }
  return Error::none();
}

}  // namespace mn
