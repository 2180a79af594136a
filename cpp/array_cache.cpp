/* array_cache: a NumPy data-memory handler that keeps the blocks of freed large arrays for reuse.
 *
 * A training step allocates the same large outputs (activations, argmax, gradients) every time. Through
 * glibc, a block above its mmap threshold, or one freed at the top of a heap past the trim threshold,
 * goes back to the kernel and the next step takes page faults and zero-filling on it again (measured:
 * ~10% of an n3-relu step's time in page faults). This handler keeps freed blocks of 64 KiB and more, by
 * size (rounded up to 4 KiB), up to kMaxCached bytes in all, and hands them out again; smaller blocks go
 * to malloc. It is installed only for the current context, by deepnum while it runs a training step
 * (PyDataMem_SetHandler is per context); an array remembers its handler and is freed through it later.
 *
 * Every block carries a 64-byte header with its capacity, so a block is returned by its own size
 * whatever size NumPy passes to free; data is 64-byte aligned for large blocks, 16 for small ones.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_22_API_VERSION
#define NPY_TARGET_VERSION NPY_1_22_API_VERSION  // PyDataMem_SetHandler came with NumPy 1.22
#include <numpy/arrayobject.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "array_cache.h"

namespace deepnum {
namespace {

constexpr std::size_t kHeader = 64;                       // bytes before the data: the block's capacity
constexpr std::size_t kLarge = std::size_t{1} << 16;       // blocks from this size on are cached
constexpr std::size_t kPage = 4096;                        // cached capacities are multiples of this
constexpr std::size_t kMaxCached = std::size_t{1} << 28;   // bytes kept in the cache at the most

struct Cache {
  std::mutex lock;
  std::unordered_map<std::size_t, std::vector<char*>> free;  // capacity -> blocks (header addresses)
  std::size_t cached = 0;
};

Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: arrays may be freed during interpreter shutdown
  return *c;
}

std::size_t capacity_of(const void* data) {
  return *reinterpret_cast<const std::size_t*>(static_cast<const char*>(data) - kHeader);
}

void* cache_malloc(void*, std::size_t size) {
  if (size > SIZE_MAX - kHeader - kPage) return nullptr;
  char* block = nullptr;
  std::size_t capacity = size;
  if (size >= kLarge) {
    capacity = (size + kPage - 1) / kPage * kPage;
    Cache& c = cache();
    {
      std::lock_guard<std::mutex> guard(c.lock);
      auto it = c.free.find(capacity);
      if (it != c.free.end() && !it->second.empty()) {
        block = it->second.back();
        it->second.pop_back();
        c.cached -= capacity;
      }
    }
    if (!block) block = static_cast<char*>(std::aligned_alloc(kHeader, kHeader + capacity));
  } else {
    block = static_cast<char*>(std::malloc(kHeader + capacity));
  }
  if (!block) return nullptr;
  *reinterpret_cast<std::size_t*>(block) = capacity;
  return block + kHeader;
}

void cache_free(void*, void* data, std::size_t) {
  if (!data) return;
  char* block = static_cast<char*>(data) - kHeader;
  const std::size_t capacity = capacity_of(data);
  if (capacity >= kLarge) {
    Cache& c = cache();
    std::lock_guard<std::mutex> guard(c.lock);
    if (c.cached + capacity <= kMaxCached) {
      c.free[capacity].push_back(block);
      c.cached += capacity;
      return;
    }
  }
  std::free(block);
}

void* cache_calloc(void* ctx, std::size_t n, std::size_t size) {
  if (size && n > SIZE_MAX / size) return nullptr;
  void* data = cache_malloc(ctx, n * size);
  if (data) std::memset(data, 0, n * size);
  return data;
}

void* cache_realloc(void* ctx, void* data, std::size_t size) {
  if (!data) return cache_malloc(ctx, size);
  const std::size_t capacity = capacity_of(data);
  if (size <= capacity && (capacity < kLarge || size >= kLarge)) return data;
  void* fresh = cache_malloc(ctx, size);
  if (!fresh) return nullptr;
  std::memcpy(fresh, data, size < capacity ? size : capacity);
  cache_free(ctx, data, capacity);
  return fresh;
}

PyDataMem_Handler handler = {
    "deepnum_array_cache", 1, {nullptr, cache_malloc, cache_calloc, cache_realloc, cache_free}};

// The capsule NumPy takes for the handler, made on first use (nullptr with a Python error set if NumPy's
// C API cannot be imported; tried again on the next call).
PyObject* handler_capsule() {
  static PyObject* capsule = nullptr;
  if (!capsule && _import_array() >= 0) capsule = PyCapsule_New(&handler, "mem_handler", nullptr);
  return capsule;
}

}  // namespace

PyObject* use_array_cache() {
  PyObject* capsule = handler_capsule();
  if (!capsule) return nullptr;
  return PyDataMem_SetHandler(capsule);
}

PyObject* restore_allocator(PyObject* previous) {
  if (!handler_capsule()) return nullptr;
  return PyDataMem_SetHandler(previous);
}

std::size_t array_cache_bytes() {
  Cache& c = cache();
  std::lock_guard<std::mutex> guard(c.lock);
  return c.cached;
}

}  // namespace deepnum
