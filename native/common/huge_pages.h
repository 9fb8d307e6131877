// Anonymous memory in 2 MiB pages where the system grants them (Linux: transparent huge pages by madvise), for
// buffers streamed end to end: the repacked weights (model/repack.cc) and the roofline's read (kernels/bandwidth.cc).
#pragma once

#include <cstddef>
#include <cstdint>

namespace mn {

// Bytes the system can hand out without swapping (Linux: MemAvailable), or 0 when it does not say.
uint64_t availableMemoryBytes();

class HugePages {
 public:
  HugePages() = default;
  ~HugePages();
  HugePages(const HugePages&) = delete;
  HugePages& operator=(const HugePages&) = delete;

  // Maps `bytes` of zeroed memory starting on a 2 MiB boundary, releasing any earlier mapping; false when the
  // system refuses (errno says why).
  bool allocate(size_t bytes);
  uint8_t* data() const { return data_; }
  size_t size() const { return bytes_; }
  // Unmaps the buffer (if any); data() is then null.
  void release();

 private:
  uint8_t* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace mn
