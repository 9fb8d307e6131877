// LD_PRELOAD shim for test 45: counts heap allocations made on threads other than the main one (the threads
// that run evaluations: libuv's workers and the engine's pool) and reports the count through getrusage, whose
// ru_msgsnd field Linux never fills, so JS reads it as process.resourceUsage().ipcSent.
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

extern void* __libc_malloc(size_t size);
extern void* __libc_calloc(size_t count, size_t size);
extern void* __libc_realloc(void* pointer, size_t size);
extern void* __libc_memalign(size_t alignment, size_t size);

static atomic_long workerAllocations;
// -1 unknown, 0 a worker thread, 1 the main thread (whose thread id is the process id)
static __thread int isMainThread = -1;

static void count(void) {
  if (isMainThread < 0) isMainThread = syscall(SYS_gettid) == getpid();
  if (!isMainThread) atomic_fetch_add_explicit(&workerAllocations, 1, memory_order_relaxed);
}

void* malloc(size_t size) {
  count();
  return __libc_malloc(size);
}

void* calloc(size_t n, size_t size) {
  count();
  return __libc_calloc(n, size);
}

void* realloc(void* pointer, size_t size) {
  count();
  return __libc_realloc(pointer, size);
}

void* memalign(size_t alignment, size_t size) {
  count();
  return __libc_memalign(alignment, size);
}

void* aligned_alloc(size_t alignment, size_t size) {
  count();
  return __libc_memalign(alignment, size);
}

int posix_memalign(void** out, size_t alignment, size_t size) {
  count();
  void* pointer = __libc_memalign(alignment, size);
  if (pointer == NULL) return ENOMEM;
  *out = pointer;
  return 0;
}

int getrusage(int who, struct rusage* usage) {
  if (syscall(SYS_getrusage, who, usage) != 0) return -1;  // errno is set
  usage->ru_msgsnd = atomic_load(&workerAllocations);
  return 0;
}
