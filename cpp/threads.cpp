// Thread count and SIMD level of the CPU kernels.
// Threads: OpenMP honours OMP_NUM_THREADS at start-up; set_num_threads changes it later.
// SIMD: reports the clone that the DEEPNUM_SIMD (target_clones) dispatch selects on this CPU.
#include <omp.h>

#include <string>

#include "kernels.h"

namespace deepnum {

void set_num_threads(int n) {
  if (n < 1) throw std::invalid_argument("set_num_threads: n must be >= 1, got " + std::to_string(n));
  omp_set_num_threads(n);
}

int get_num_threads() { return omp_get_max_threads(); }

const char* simd_level() {
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__) && !defined(DEEPNUM_NO_CLONES)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return "avx512";
  if (__builtin_cpu_supports("x86-64-v3")) return "avx2";
  return "baseline";
#else
  return "baseline";
#endif
}

}  // namespace deepnum
