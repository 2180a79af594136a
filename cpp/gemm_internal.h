// What the gemm files (gemm.cpp and its paths gemm_*.cpp) share: the strided view of an operand, the thread
// count for a product, each path's entry point, the SIMD levels that path kernels are compiled for, the
// register-blocked micro-tile of the small-M and blocked paths, and gemm's scratch buffers.
// Every matrix is row-major; a View names op(a) or op(b) with one of its two strides 1.
#pragma once
#include <cstdint>
#include <cstring>
#include <string_view>

#include "kernels.h"

namespace deepnum::gemm_detail {

// A strided matrix view: element (i, j) is p[i * rs + j * cs]. In gemm one of the strides is 1.
template <class T>
struct View {
  const T* p;
  i64 rs, cs;
  const T& operator()(i64 i, i64 j) const { return p[i * rs + j * cs]; }
};

// gemm.cpp — threads worth starting for `work` multiply-adds: 1 inside a parallel region.
i64 threads_for(i64 work);

// gemm.cpp — a grid of rows x cols rectangles of whole tiles (m_tiles x n_tiles tiles of mr x nr), one per
// thread, for at most `threads` threads: the grid whose largest rectangle is smallest, then the squarest.
struct Grid {
  i64 rows, cols;
};
Grid thread_grid(i64 m_tiles, i64 n_tiles, i64 mr, i64 nr, i64 threads);

// The paths: c (M,N) contiguous = A (M,K) · B (K,N), each on as many threads as threads_for allows.
template <class T> void gemm_direct(T* c, View<T> A, View<T> B, i64 M, i64 N, i64 K);              // gemm_direct.cpp
template <class T> void gemm_small_m(T* c, View<T> A, View<T> B, i64 M, i64 N, i64 K);             // gemm_small.cpp
template <class T> void gemm_transposed_small_m(T* c, View<T> A, View<T> B, i64 M, i64 N, i64 K);  // gemm_small.cpp
template <class T> void gemm_skinny_n(T* c, View<T> A, View<T> B, i64 M, i64 N, i64 K);            // gemm_skinny.cpp
template <class T> void gemm_blocked(T* c, View<T> A, View<T> B, i64 M, i64 N, i64 K);             // gemm_blocked.cpp

// ---- SIMD levels -------------------------------------------------------------------------

// A SIMD level: its vector width and register count (from which each path derives its tile shape) and
// run<F>(args...), which calls the always-inline kernel F in a function compiled for the level (the target
// attribute), so that F's GCC vector extensions and loops become that level's vector code. One definition
// stamped per level; a path takes &Level::template run<F> once and calls through that pointer.
#define DEEPNUM_GEMM_LEVEL(Level, vector_bytes, registers, target)  \
  struct Level {                                                    \
    static constexpr int kVectorBytes = vector_bytes;               \
    static constexpr int kRegisters = registers;                    \
    template <auto F, class... Args>                                \
    target static void run(Args... args) {                          \
      F(args...);                                                   \
    }                                                               \
  }

DEEPNUM_GEMM_LEVEL(Baseline, 16, 16, );  // SSE2: 16 xmm registers (aarch64: NEON, 16 bytes, of 32 registers)
#if DEEPNUM_X86_LEVELS
DEEPNUM_GEMM_LEVEL(Avx2, 32, 16, [[gnu::target("arch=x86-64-v3")]]);    // 16 ymm registers, FMA
DEEPNUM_GEMM_LEVEL(Avx512, 64, 32, [[gnu::target("arch=x86-64-v4")]]);  // 32 zmm registers
#endif
#undef DEEPNUM_GEMM_LEVEL

// make(Level{}) for the SIMD level of this CPU (simd_level()), the baseline where levels are not built.
template <class Make>
auto for_cpu_level(Make make) {
#if DEEPNUM_X86_LEVELS
  const std::string_view level = simd_level();
  if (level == "avx512") return make(Avx512{});
  if (level == "avx2") return make(Avx2{});
#endif
  return make(Baseline{});
}

// ---- micro-tile --------------------------------------------------------------------------

// One MR x (NV·VW) tile of c over kc values of k: element (i, k) of a at a[i·ars + k·acs] (a packed
// panel, ars = 1 and acs = MR, or op(a) in place), row k of b (NV·VW values) at b + k·ldb (a packed
// panel, ldb = NV·VW, or op(b) in place). Accumulators live in MR·NV vector registers of VW lanes;
// a tile of fewer than 8 of them (a few rows) keeps U = 8 / (MR·NV) sets, k going to set k % U, added
// pairwise at the end, so that U·MR·NV multiply-adds are in flight rather than a latency-bound chain.
// c = acc when overwrite, else c += acc.
template <class T, int MR, int NV, int VW>
[[gnu::always_inline]] inline void micro_tile(i64 kc, const T* a, i64 ars, i64 acs, const T* b, i64 ldb, T* c,
                                              i64 ldc, bool overwrite) {
  typedef T V __attribute__((vector_size(VW * sizeof(T))));
  constexpr int U = MR * NV >= 8 ? 1 : MR * NV >= 4 ? 2 : MR * NV >= 2 ? 4 : 8;
  V acc[U][MR][NV];
#pragma GCC unroll 8
  for (int u = 0; u < U; ++u)
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[u][i][v] = V{};
  for (i64 k0 = 0; k0 < kc; k0 += U) {
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u) {
      const i64 k = k0 + u;
      if (U > 1 && k >= kc) break;  // the last, partial group of U values of k
      V bv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) std::memcpy(&bv[v], b + k * ldb + v * VW, sizeof(V));
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i) {
        const T ai = a[i * ars + k * acs];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[u][i][v] += ai * bv[v];
      }
    }
  }
#pragma GCC unroll 3
  for (int w = U / 2; w > 0; w /= 2)
#pragma GCC unroll 4
    for (int u = 0; u < w; ++u)
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[u][i][v] += acc[u + w][i][v];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      T* ci = c + i * ldc + v * VW;
      if (!overwrite) {
        V old;
        std::memcpy(&old, ci, sizeof(V));
        acc[0][i][v] = old + acc[0][i][v];
      }
      std::memcpy(ci, &acc[0][i][v], sizeof(V));
    }
}

// ---- scratch -----------------------------------------------------------------------------

// gemm's thread_scratch slots. Slots are shared by the whole library and callers hold theirs across a
// gemm call (conv2d's im2col columns, mlp's activations: slots 0-9), so gemm's start well past them.
enum ScratchSlot : int {
  kSlotTransposed = 64,  // cᵀ of the transposed small-M path
  kSlotEdge,             // the zero-padded last rows of op(b) of a small-M edge block
  kSlotEdgeTile,         // that block's c tile
  kSlotSkinnyB,          // op(b)ᵀ packed for the skinny-N path
  kSlotSkinnyTail,       // its last partial group of columns, zero-padded
  kSlotBlockA,           // the packed a block of the blocked path
  kSlotBlockB,           // the packed b block of the blocked path
};

// thread_scratch<T, S>(n), 64-byte aligned (packed panels are read in whole vectors).
template <class T, int S>
T* aligned_scratch(i64 n) {
  const i64 pad = 64 / static_cast<i64>(sizeof(T));
  T* p = thread_scratch<T, S>(n + pad);
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  return p + ((64 - addr % 64) % 64) / sizeof(T);
}

}  // namespace deepnum::gemm_detail
