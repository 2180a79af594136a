// Shared OpenMP helpers of the CPU kernels: split [0, n) into one contiguous range per thread; run a kernel's
// chunks (conv2d's batches of images) a chunk per thread at a time.
#pragma once
#include <exception>

#include "kernels.h"
#include "openmp.h"

namespace deepnum {

// Below this many elements of work a kernel runs on the calling thread: waking the other thread, and moving
// the data it touches between the cores' caches, would cost more (measured on a 2-core Zen 4 VM, where
// 32768 made small-batch training steps slower with 2 threads than with 1).
constexpr i64 kParallelMin = 262144;

// Calls f(begin, end) on contiguous slices of [0, n), one per OpenMP thread, when work > kParallelMin;
// otherwise f(0, n) on the calling thread. f is typically a serial DEEPNUM_SIMD loop: target_clones
// must sit on such inner functions, not on a function holding the parallel region.
template <class F>
void parallel_ranges(i64 n, i64 work, const F& f) {
  if (work <= kParallelMin || omp_get_max_threads() == 1) {
    f(i64{0}, n);
    return;
  }
#pragma omp parallel
  {
    const i64 t = omp_get_thread_num(), nt = omp_get_num_threads();
    f(n * t / nt, n * (t + 1) / nt);
  }
}

// The same with a thread count the kernel chose itself (gemm's paths): f(0, n) on the calling thread when
// threads is 1, else one contiguous slice of [0, n) per thread of a team of `threads`.
template <class F>
void ranges_on_threads(i64 threads, i64 n, const F& f) {
  if (threads == 1) {
    f(i64{0}, n);
    return;
  }
#pragma omp parallel num_threads(static_cast<int>(threads))
  {
    const i64 t = omp_get_thread_num();
    f(n * t / threads, n * (t + 1) / threads);
  }
}

// Multiply-adds that justify a second thread for a kernel's chunks (as in gemm).
constexpr i64 kParallelMacs = i64{1} << 20;

// f(c) for every chunk c in [0, chunks): on the threads, a chunk each at a time, when there are two or
// more chunks and `macs` multiply-adds in all; else in order on the calling thread (whose gemm may then
// use the threads). An exception from f (std::bad_alloc) is rethrown here, after the loop.
template <class F>
void for_each_chunk(i64 chunks, i64 macs, const F& f) {
  if (chunks < 2 || macs <= kParallelMacs || omp_get_max_threads() == 1 || omp_in_parallel()) {
    for (i64 c = 0; c < chunks; ++c) f(c);
    return;
  }
  std::exception_ptr error;
#pragma omp parallel for schedule(dynamic, 1)
  for (i64 c = 0; c < chunks; ++c) {
    try {
      f(c);
    } catch (...) {
#pragma omp critical(deepnum_chunk_error)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace deepnum
