// Thread count and SIMD level of the CPU kernels.
// Threads: OpenMP honours OMP_NUM_THREADS at start-up; set_num_threads changes it later (one thread without OpenMP).
// SIMD: reports the clone that the DEEPNUM_SIMD (target_clones) dispatch selects on this CPU.
// OpenMP: the version the module was compiled with (_OPENMP, yyyymm), 0 for a build without it (one thread).
#include <string>

#include "kernels.h"
#include "openmp.h"

namespace deepnum {

void set_num_threads(int n) {
  if (n < 1) throw std::invalid_argument("set_num_threads: n must be >= 1, got " + std::to_string(n));
#ifdef _OPENMP
  omp_set_num_threads(n);
#endif  // without OpenMP the kernels run on the calling thread; deepnum.set_num_threads warns when n > 1
}

int get_num_threads() { return omp_get_max_threads(); }

const char* simd_level() {
#if DEEPNUM_X86_LEVELS
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return "avx512";
  if (__builtin_cpu_supports("x86-64-v3")) return "avx2";
  return "baseline";
#elif defined(__aarch64__)
  return "neon";  // Advanced SIMD is part of the aarch64 baseline
#else
  return "baseline";
#endif
}

int openmp_version() {
#ifdef _OPENMP
  return _OPENMP;
#else
  return 0;
#endif
}

}  // namespace deepnum
