#include "common/huge_pages.h"

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <string>

#if defined(__linux__) || defined(__APPLE__)
#include <sys/mman.h>
#define MN_HAVE_MMAP 1
#endif

namespace mn {
namespace {
constexpr size_t kHugePage = size_t(2) << 20;
}  // namespace

uint64_t availableMemoryBytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  while (meminfo >> key >> kib) {
    if (key == "MemAvailable:") return kib * 1024;
    meminfo.ignore(64, '\n');
  }
  return 0;
}

HugePages::~HugePages() { release(); }

void HugePages::release() {
  if (data_ == nullptr) return;
#if MN_HAVE_MMAP
  munmap(data_, bytes_);
#else
  std::free(data_);
#endif
  data_ = nullptr;
  bytes_ = 0;
}

bool HugePages::allocate(size_t bytes) {
  release();
  if (bytes == 0) return true;
  if (bytes > std::numeric_limits<size_t>::max() - 2 * kHugePage) {
    errno = ENOMEM;
    return false;
  }
  const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
#if MN_HAVE_MMAP
  void* region = mmap(nullptr, rounded + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED) return false;
  // Trim the over-allocation so the buffer starts and ends on 2 MiB boundaries.
  uint8_t* const start = static_cast<uint8_t*>(region);
  uint8_t* const base =
      reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(start) + kHugePage - 1) & ~uintptr_t(kHugePage - 1));
  if (base > start) munmap(start, size_t(base - start));
  if (start + kHugePage > base) munmap(base + rounded, size_t(start + kHugePage - base));
#ifdef MADV_HUGEPAGE
  madvise(base, rounded, MADV_HUGEPAGE);
#endif
  data_ = base;
#else
  data_ = static_cast<uint8_t*>(std::calloc(rounded, 1));
  if (data_ == nullptr) return false;
#endif
  bytes_ = rounded;
  return true;
}

}  // namespace mn
