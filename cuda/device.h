// deepnum CUDA backend, host side: what only cuda/ has (device discovery, the owning device Buffer, copies,
// gemm's accumulate variant). The kernels' declarations are cpp/kernels.h's, shared with the CPU: the CUDA
// kernels (cuda/*.cu) define deepnum::gemm<T>, deepnum::conv2d_forward<T>, ... with exactly the CPU
// signatures, so the one binding source (cpp/contract.h) calls the same names in _core and _cuda. Both
// modules build them with hidden visibility, so neither exports (or interposes) the other's symbols.
//
// On the device: all pointers are device pointers to C-contiguous data; sizes are trusted (checked by
// cpp/contract.h). Everything runs on the default stream, in launch order. Every CUDA call is checked
// (check.h) and throws std::runtime_error; bad labels / argmax values found on the device throw
// ranges.h's std::invalid_argument (one small device-to-host copy of a flag, and of the data when it is raised).
// Determinism: no atomics; every sum runs in an order fixed by the sizes (and the fixed launch
// configurations), so a rerun gives bit-identical results.
// This header is plain C++ (included by the host compiler for bindings.cpp).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "../cpp/kernels.h"

namespace deepnum {
namespace cuda {

using deepnum::i64;

// memory.cpp — device count and description; owning device buffer
int device_count(std::string* reason);  // 0 with the reason when cudaGetDeviceCount fails; never throws
class Buffer {
 public:
  explicit Buffer(std::size_t bytes);  // cudaMalloc (at least 1 byte, so a missing device is always reported)
  ~Buffer();                           // cudaFree; errors ignored (may run at interpreter exit)
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void* data() const { return ptr_; }
  std::size_t bytes() const { return bytes_; }
  template <class T>
  T* as() const { return static_cast<T*>(ptr_); }

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};
void copy_to_device(void* dst, const void* src, std::size_t bytes);
void copy_to_host(void* dst, const void* src, std::size_t bytes);
void copy_on_device(void* dst, const void* src, std::size_t bytes);
void fill_zero(void* dst, std::size_t bytes);

// gemm.cu — deepnum::gemm with accumulate: c += op(a)·op(b) instead of c = (used inside conv2d.cu)
template <class T>
void gemm_accumulate(T* c, const T* a, const T* b, bool trans_a, bool trans_b, i64 M, i64 N, i64 K, bool accumulate);

}  // namespace cuda
}  // namespace deepnum
