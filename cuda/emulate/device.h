// CUDA's device-side language for the host compiler: the emulated build (DEEPNUM_CUDA=EMULATE) compiles the kernels
// of cuda/*.cu, unchanged, as C++ against this header, for tests on machines without a GPU.
//
// What it provides, with CUDA's semantics:
//   __global__ __device__ __host__ __forceinline__ __launch_bounds__   (nothing, or inline)
//   __shared__                  a function-local static: one copy, and blocks run one at a time, so it is the
//                               running block's shared memory
//   threadIdx blockIdx blockDim gridDim                     the running thread's, set by the scheduler
//   __syncthreads()             a barrier across the block's threads; every live thread must reach it, and a
//                               thread that has exited while others wait is an error (CUDA: a hang or worse)
//   __shfl_sync __shfl_down_sync __shfl_xor_sync            by lane, within warps of 32 (width <= 32 as CUDA's);
//                               every lane of the mask must be live and reach the same shuffle
//   atomicExch atomicOr atomicAdd (int, unsigned)            atomic read-modify-write
// How it runs (runtime.cpp): a launch asserts the hardware's limits (threads per block <= 1024, block.z <= 64,
// grid.x < 2^31, grid.y and grid.z <= 65535, none 0) and then runs every block in turn, and in a block every thread
// as a fiber (its own stack, ucontext) on the calling thread. Threads run in index order until they block at a
// barrier or a shuffle or exit; then the waiting ones are released together. The order is fixed, so a missing
// __syncthreads gives wrong results rather than flaky ones, and the sanitizer recipe (README.md) runs the same
// launches under AddressSanitizer (device memory is heap memory, shared memory static arrays: out-of-range indices
// are reported) and ThreadSanitizer (each CUDA thread is a TSan fiber, ordered only by the barriers, so two threads
// of a block touching the same element without a __syncthreads between them are reported as a race).
// Static shared memory per kernel (<= 48 KiB) is not measured here: ptxas rejects more in the nvcc build of the same
// sources, which CI compiles on every run.
#pragma once
#include <cuda_runtime_api.h>
#include <math.h>

#include <cstdint>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

extern uint3 threadIdx;
extern uint3 blockIdx;
extern dim3 blockDim;
extern dim3 gridDim;

namespace deepnum {
namespace emulate {

// Runs body(context) for every thread of every block of the launch; throws std::runtime_error naming the launch
// (`where`: the launch helper's __PRETTY_FUNCTION__) when a limit is exceeded or a thread breaks a rule above.
void run_grid(const char* where, dim3 grid, dim3 block, void (*body)(void*), void* context);

// The launch helper's emulated path: the arguments converted to the kernel's parameter types once (as a launch
// copies them), then the kernel called by every thread.
template <class... Params, class... Args>
void run(void (*kernel)(Params...), const char* where, dim3 grid, dim3 block, Args&&... args) {
  struct Call {
    void (*kernel)(Params...);
    std::tuple<std::decay_t<Params>...> params;
  } call{kernel, std::tuple<std::decay_t<Params>...>(std::forward<Args>(args)...)};
  run_grid(where, grid, block, [](void* c) {
        auto* p = static_cast<Call*>(c);
        std::apply(p->kernel, p->params);
      }, &call);
}

// A shuffle of 8 bytes: mode 0 = from lane `arg` (__shfl_sync), 1 = from lane + arg (down), 2 = lane ^ arg (xor).
std::uint64_t shuffle(unsigned mask, std::uint64_t value, int mode, int arg, int width);

template <class T>
T shuffle_as(unsigned mask, T value, int mode, int arg, int width) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value, "a shuffle moves at most 8 bytes");
  std::uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  bits = shuffle(mask, bits, mode, arg, width);
  std::memcpy(&value, &bits, sizeof(T));
  return value;
}

}  // namespace emulate
}  // namespace deepnum

void __syncthreads();

template <class T>
T __shfl_sync(unsigned mask, T var, int src_lane, int width = 32) {
  return deepnum::emulate::shuffle_as(mask, var, 0, src_lane, width);
}
template <class T>
T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32) {
  return deepnum::emulate::shuffle_as(mask, var, 1, static_cast<int>(delta), width);
}
template <class T>
T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32) {
  return deepnum::emulate::shuffle_as(mask, var, 2, lane_mask, width);
}

template <class T>
T atomicExch(T* address, T value) {
  static_assert(std::is_same<T, int>::value || std::is_same<T, unsigned>::value, "atomicExch: int or unsigned");
  return __atomic_exchange_n(address, value, __ATOMIC_RELAXED);
}
template <class T>
T atomicOr(T* address, T value) {
  static_assert(std::is_same<T, int>::value || std::is_same<T, unsigned>::value, "atomicOr: int or unsigned");
  return __atomic_fetch_or(address, value, __ATOMIC_RELAXED);
}
template <class T>
T atomicAdd(T* address, T value) {
  static_assert(std::is_same<T, int>::value || std::is_same<T, unsigned>::value, "atomicAdd: int or unsigned");
  return __atomic_fetch_add(address, value, __ATOMIC_RELAXED);
}
