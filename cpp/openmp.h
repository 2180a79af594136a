// The OpenMP runtime calls of the CPU kernels, or their one-thread values in a build without OpenMP
// (DEEPNUM_OPENMP=OFF, or a compiler without it such as Apple's clang: CMakeLists.txt warns at configure time).
// Without OpenMP the `#pragma omp` lines are ignored, so every parallel region runs once, as thread 0 of a team
// of one; the kernels' results do not depend on the thread count, so they are the same as with OpenMP.
#pragma once
#ifdef _OPENMP
#include <omp.h>
#else
inline int omp_get_max_threads() { return 1; }
inline int omp_get_num_threads() { return 1; }
inline int omp_get_thread_num() { return 0; }
inline int omp_get_level() { return 0; }
inline int omp_in_parallel() { return 0; }
#endif
