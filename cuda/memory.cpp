// Device memory and device discovery for deepnum._cuda (host code, compiled by the host compiler).
// Buffer owns one cudaMalloc allocation (RAII); every call is checked (check.h).
#include <cuda_runtime_api.h>

#include <algorithm>
#include <string>

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

Buffer::Buffer(std::size_t bytes) : bytes_(bytes) { DN_CHECK(cudaMalloc(&ptr_, std::max<std::size_t>(bytes, 1))); }

Buffer::~Buffer() {
  if (ptr_ != nullptr) cudaFree(ptr_);  // no throw from a destructor; at exit the runtime may be gone
}

void copy_to_device(void* dst, const void* src, std::size_t bytes) {
  if (bytes) DN_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}

void copy_to_host(void* dst, const void* src, std::size_t bytes) {
  if (bytes) DN_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}

void copy_on_device(void* dst, const void* src, std::size_t bytes) {
  if (bytes) DN_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
}

void fill_zero(void* dst, std::size_t bytes) {
  if (bytes) DN_CHECK(cudaMemset(dst, 0, bytes));
}

}  // namespace cuda
}  // namespace deepnum
