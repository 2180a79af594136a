// Error checking of every CUDA runtime call, for .cu and host .cpp files alike (no pybind11 here).
//   DN_CHECK(cudaMalloc(&p, n));   throws std::runtime_error("<call> failed at file:line: <cudaGetErrorString>")
//   DN_CHECK_LAUNCH();             after each kernel launch: cudaGetLastError(), and with the
//                                  environment variable DEEPNUM_CUDA_SYNC=1 also cudaDeviceSynchronize(),
//                                  so an asynchronous fault is reported at the launch that caused it.
// pybind11 turns std::runtime_error into RuntimeError and std::invalid_argument into ValueError.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace deepnum {
namespace cuda {

// Clears the runtime's last error first: a non-sticky failure (an out-of-memory cudaMalloc, a bad
// device number) must not be reported again by the next launch's cudaGetLastError().
[[noreturn]] inline void fail(cudaError_t err, const char* call, const char* file, int line) {
  (void)cudaGetLastError();
  throw std::runtime_error(std::string("CUDA error: ") + call + " failed at " + file + ":" + std::to_string(line) +
                           ": " + cudaGetErrorName(err) + ": " + cudaGetErrorString(err));
}

inline bool sync_after_launch() {
  static const bool on = [] {
    const char* v = std::getenv("DEEPNUM_CUDA_SYNC");
    return v != nullptr && v[0] != '\0' && v[0] != '0';
  }();
  return on;
}

}  // namespace cuda
}  // namespace deepnum

#define DN_CHECK(call)                                                                  \
  do {                                                                                  \
    const cudaError_t dn_err_ = (call);                                                 \
    if (dn_err_ != cudaSuccess) ::deepnum::cuda::fail(dn_err_, #call, __FILE__, __LINE__); \
  } while (0)

#define DN_CHECK_LAUNCH()                                                               \
  do {                                                                                  \
    DN_CHECK(cudaGetLastError());                                                       \
    if (::deepnum::cuda::sync_after_launch()) DN_CHECK(cudaDeviceSynchronize());        \
  } while (0)
