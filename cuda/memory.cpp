// Device memory and device discovery for deepnum._cuda (host code, compiled by the host compiler).
//
// Buffer owns one allocation from the device's default memory pool, stream-ordered on the default stream:
// cudaMallocAsync(&p, n, 0) and cudaFreeAsync(p, 0). Every kernel and copy of cuda/ runs on that stream, so a
// freed block can be handed out again by the next cudaMallocAsync without waiting for the device: no allocation
// or free synchronises (cudaFree synchronises the whole device; cudaFreeAsync does not). At the first allocation
// the pool's release threshold (cudaMemPoolAttrReleaseThreshold) is set to UINT64_MAX, so the memory freed to the
// pool stays reserved for later allocations instead of going back to the driver at each synchronisation — a caching
// allocator for outputs and scratch alike. The memory is returned when the process ends (or by
// cudaMemPoolTrimTo). deepnum uses one device, the current one (cudaGetDevice) at the first allocation.
// A Buffer can also stand for memory another library allocated (imported through DLPack): it frees nothing and
// calls the owner's release function once instead.
// Every call is checked (check.h).
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>

#include "check.h"
#include "device.h"

namespace deepnum {
namespace cuda {

int device_count(std::string* reason) {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free error so later calls report their own
    if (reason) *reason = std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
    return 0;
  }
  if (n == 0 && reason) *reason = "cudaGetDeviceCount found no device";
  return n;
}

namespace {

// Keeps freed memory in the current device's default pool (see the top of the file). Once per process; a failure
// (no device) throws and is retried by the next allocation (std::call_once runs again after an exception).
void keep_freed_memory_in_pool() {
  static std::once_flag done;
  std::call_once(done, [] {
    int device = 0;
    DN_CHECK(cudaGetDevice(&device));
    cudaMemPool_t pool;
    DN_CHECK(cudaDeviceGetDefaultMemPool(&pool, device));
    std::uint64_t threshold = UINT64_MAX;
    DN_CHECK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold));
  });
}

}  // namespace

Buffer::Buffer(std::size_t bytes) : bytes_(bytes) {
  keep_freed_memory_in_pool();
  DN_CHECK(cudaGetDevice(&device_));
  DN_CHECK(cudaMallocAsync(&ptr_, std::max<std::size_t>(bytes, 1), 0));
}

Buffer::Buffer(void* ptr, std::size_t bytes, int device, std::function<void()> release)
    : ptr_(ptr), bytes_(bytes), device_(device), release_(std::move(release)) {}

Buffer::~Buffer() {
  // No throw from a destructor; at exit the runtime may be gone. A failed free must not be reported again by the
  // next launch's cudaGetLastError, so its error is cleared.
  if (release_) {
    try {
      release_();
    } catch (...) {
    }
  } else if (ptr_ != nullptr && cudaFreeAsync(ptr_, 0) != cudaSuccess) {
    (void)cudaGetLastError();
  }
}

void copy_to_device(void* dst, const void* src, std::size_t bytes) {
  if (bytes) DN_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}

void copy_to_host(void* dst, const void* src, std::size_t bytes) {
  if (bytes) DN_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}

void copy_on_device(void* dst, const void* src, std::size_t bytes) {
  if (bytes) DN_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, 0));
}

void fill_zero(void* dst, std::size_t bytes) {
  if (bytes) DN_CHECK(cudaMemsetAsync(dst, 0, bytes, 0));
}

}  // namespace cuda
}  // namespace deepnum
