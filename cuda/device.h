// deepnum CUDA backend, host side: what only cuda/ has (device discovery, the owning device Buffer, copies,
// gemm's accumulate variant). The kernels' declarations are cpp/kernels.h's, shared with the CPU: the CUDA
// kernels (cuda/*.cu) define deepnum::gemm<T>, deepnum::conv2d_forward<T>, ... with exactly the CPU
// signatures, so the one binding source (cpp/contract.h) calls the same names in _core and _cuda. Both
// modules build them with hidden visibility, so neither exports (or interposes) the other's symbols.
//
// On the device: all pointers are device pointers to C-contiguous data; sizes are trusted (checked by
// cpp/contract.h). Everything runs on the default stream, in launch order, and device memory is stream-ordered on
// it (memory.cpp), so no op synchronises except to read a value back. Every CUDA call is checked (check.h) and
// throws std::runtime_error; bad labels / argmax values found on the device throw ranges.h's
// std::invalid_argument (the kernels raise a flag that is read back with the op's result, and the data is copied
// to the host only when it is raised).
// Determinism: the only atomics raise error flags; every sum runs in an order fixed by the sizes (and the fixed
// launch configurations), so a rerun gives bit-identical results.
// This header is plain C++ (included by the host compiler for bindings.cpp).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "../cpp/kernels.h"

namespace deepnum {
namespace cuda {

using deepnum::i64;

// memory.cpp — device count and description; owning device buffer
int device_count(std::string* reason);  // 0 with the reason when cudaGetDeviceCount fails; never throws
class Buffer {
 public:
  // cudaMallocAsync on the default stream from the device's default pool, which keeps freed memory (memory.cpp);
  // at least 1 byte, so a missing device is always reported
  explicit Buffer(std::size_t bytes);
  // Device memory that another library owns (an array imported through DLPack, bindings.cpp): nothing is
  // allocated, and the destructor calls release() (the producer's deleter) once instead of freeing.
  Buffer(void* ptr, std::size_t bytes, int device, std::function<void()> release);
  // cudaFreeAsync on the default stream, or release(); never throws, errors ignored (may run at interpreter exit)
  ~Buffer();
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void* data() const { return ptr_; }
  std::size_t bytes() const { return bytes_; }
  int device() const { return device_; }  // the CUDA device the memory is on
  template <class T>
  T* as() const { return static_cast<T*>(ptr_); }

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
  int device_ = 0;
  std::function<void()> release_;  // empty: memory of our pool, freed by cudaFreeAsync
};
void copy_to_device(void* dst, const void* src, std::size_t bytes);  // blocking (cudaMemcpy)
void copy_to_host(void* dst, const void* src, std::size_t bytes);    // blocking (cudaMemcpy)
void copy_on_device(void* dst, const void* src, std::size_t bytes);  // stream-ordered, returns at once
void fill_zero(void* dst, std::size_t bytes);                        // stream-ordered, returns at once

// gemm.cu — deepnum::gemm with accumulate: c += op(a)·op(b) instead of c = (used inside conv2d.cu)
template <class T>
void gemm_accumulate(T* c, const T* a, const T* b, bool trans_a, bool trans_b, i64 M, i64 N, i64 K, bool accumulate);

// arrays.cu — the array functions of deepnum._cudabackend.DEVICE (see arrays.cu's header for each rule). Sizes are
// checked by the bindings; take_rows checks its indices on the device and throws std::invalid_argument naming one.
void take_rows(void* out, const void* a, const i64* index, i64 n_index, i64 n_rows, i64 row_bytes);
void swap01(void* out, const void* a, i64 A, i64 B, i64 inner_bytes);
template <class T>
void argmax_rows(i64* out, const T* a, i64 rows, i64 n);
template <class T>
void softmax_rows(T* out, const T* z, i64 rows, i64 n);
template <class A, class B>
i64 count_unequal(const A* a, const B* b, i64 n);  // A and B each i64, float or double
template <class T>
void positive(i64* out, const T* z, i64 n);
template <class T>
double sigmoid_bce(const T* z, const T* y, i64 n);
template <class T>
void sigmoid_bce_grad(T* dz, const T* probs, const T* y, i64 n);
template <class T>
void add_l1(T* out, const T* g, const T* p, double l1, i64 n);

}  // namespace cuda
}  // namespace deepnum
