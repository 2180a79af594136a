// Device-side helpers shared by cuda/*.cu: the launch helper, launch sizes, grid-stride loops, fixed-order
// reductions. With DEEPNUM_CUDA_EMULATE (the test build of cuda/emulate/), the same sources are compiled by the
// host compiler and every launch runs all threads of all blocks on the CPU.
#pragma once
#include <algorithm>
#include <utility>

#ifdef DEEPNUM_CUDA_EMULATE
#include "emulate/device.h"
#endif
#include "check.h"
#include "device.h"

namespace deepnum {
namespace cuda {

constexpr int kThreads = 256;        // threads per block of the elementwise kernels

// The sizes that bound grids and scratch buffers. On the GPU they are these constants. The emulated build reads
// them from a variable that tests may shrink (deepnum._cuda._set_limits), so that shapes past every limit (the
// grid-stride tails, gemm's blockIdx.y loop, conv2d's chunks of images) stay small enough to run on the CPU.
struct Limits {
  i64 max_blocks = 65535;             // grid size cap (grid.y's hardware limit); grid-stride loops cover the rest
  i64 conv_chunk_elems = i64{1} << 24;  // target size of conv2d's scratch buffers per chunk of images
};
#ifdef DEEPNUM_CUDA_EMULATE
Limits& emulated_limits();  // cuda/emulate/runtime.cpp
inline const Limits& limits() { return emulated_limits(); }
#else
constexpr Limits limits() { return {}; }
#endif

// Every kernel launch of cuda/: launch<kernel>(grid, block, args...) runs kernel<<<grid, block>>>(args...) on
// the default stream and checks it (DN_CHECK_LAUNCH); the emulated build runs it on the CPU instead, asserting
// the hardware's limits first (emulate/device.h). The kernel is a template argument so that errors can name it.
template <auto Kernel, class... Args>
void launch(dim3 grid, dim3 block, Args&&... args) {
#ifdef DEEPNUM_CUDA_EMULATE
  emulate::run(Kernel, __PRETTY_FUNCTION__, grid, block, std::forward<Args>(args)...);
#else
  Kernel<<<grid, block>>>(std::forward<Args>(args)...);
  DN_CHECK_LAUNCH();
#endif
}

// Blocks for n elements at `threads` per block, at least 1 and at most limits().max_blocks.
inline unsigned blocks_for(i64 n, int threads = kThreads) {
  return static_cast<unsigned>(std::clamp<i64>((n + threads - 1) / threads, 1, limits().max_blocks));
}

// First index and stride of a 1-D grid-stride loop, in 64-bit arithmetic.
__device__ inline i64 grid_start() { return static_cast<i64>(blockIdx.x) * blockDim.x + threadIdx.x; }
__device__ inline i64 grid_stride() { return static_cast<i64>(blockDim.x) * gridDim.x; }

// Sum of v over the block (blockDim.x a power of two, <= 1024), in a fixed tree order; the result
// is valid in thread 0. `shared` holds blockDim.x doubles. Ends with a __syncthreads().
__device__ inline double block_sum(double v, double* shared) {
  const unsigned t = threadIdx.x;
  shared[t] = v;
  __syncthreads();
  for (unsigned w = blockDim.x / 2; w > 0; w /= 2) {
    if (t < w) shared[t] += shared[t + w];
    __syncthreads();
  }
  const double s = shared[0];
  __syncthreads();
  return s;
}

// Range faults of index data (labels, argmax) are found by the kernels that use the indices: a thread that meets a
// bad one skips it and raises an int flag in device memory (raise_flag, an atomicOr: the only atomic of cuda/, and it
// touches no result). The host reads the flag back once, after the kernel, with the op's result where it has one.
__device__ inline void raise_flag(int* flag) { atomicOr(flag, 1); }

// A device flag on its own, for ops with no result to read back: zeroed at construction (stream-ordered); raised()
// copies it back (a blocking 4-byte copy) and reports whether a kernel raised it.
class Flag {
 public:
  Flag() : buf_(sizeof(int)) { fill_zero(buf_.data(), sizeof(int)); }
  int* ptr() const { return buf_.as<int>(); }
  bool raised() const {
    int v = 0;
    copy_to_host(&v, buf_.data(), sizeof(int));
    return v != 0;
  }

 private:
  Buffer buf_;
};

namespace {  // a kernel in each file that launches it (internal linkage: no -rdc needed)

// *out = the sum of x[0..n) in a fixed order; launched as one block of kThreads threads
[[maybe_unused]] __global__ void sum_in_order_kernel(double* out, const double* x, i64 n) {
  __shared__ double shared[kThreads];
  double acc = 0.0;
  for (i64 i = threadIdx.x; i < n; i += blockDim.x) acc += x[i];
  const double s = block_sum(acc, shared);
  if (threadIdx.x == 0) *out = s;
}

}  // namespace
}  // namespace cuda
}  // namespace deepnum
