/* gemm, blocked path: c (M,N) = A · B for the shapes no other path takes (M and N large). B is packed in
 * KC x NC blocks of NR-wide panels (op(b)ᵀ rows), A in MC x KC blocks of MR-high panels, and a macro-kernel
 * runs the MR x NR micro_tile (gemm_internal.h) over a block pair, c loaded and stored once per KC values
 * of k; edge tiles go through a local tile with the same arithmetic.
 * Variants: one per SIMD level (gemm_internal.h), tiles of 8 (AVX-512) or 6 rows x 2 vectors.
 * Threads each own one rectangle of whole tiles of c (thread_grid in gemm.cpp).
 */
#include <algorithm>
#include <cstring>

#include "gemm_internal.h"
#include "openmp.h"

namespace deepnum::gemm_detail {
namespace {

// Packs rows [x0, x0+nx) x columns [k0, k0+kc) of X into panels of W rows: panel p holds, for
// each k, the W values X(x0 + p·W + w, k0 + k) contiguously; rows past nx are zero.
// For a this is op(a) itself (W = MR); for b it is op(b)ᵀ (W = NR).
template <int W, class T>
void pack_panels(T* dst, View<T> X, i64 x0, i64 nx, i64 k0, i64 kc) {
  for (i64 p = 0; p < nx; p += W) {
    const i64 w_n = std::min<i64>(W, nx - p);
    T* d = dst + p * kc;
    if (w_n < W) std::fill(d, d + kc * W, T(0));
    if (X.cs == 1) {  // rows of X are contiguous in k: transpose them into the panel, kB values of k
      constexpr i64 kB = 16;  // at a time so that the panel lines being written stay in L1
      for (i64 kb = 0; kb < kc; kb += kB) {
        const i64 k_n = std::min(kB, kc - kb);
        for (i64 w = 0; w < w_n; ++w) {
          const T* s = &X(x0 + p + w, k0 + kb);
          for (i64 k = 0; k < k_n; ++k) d[(kb + k) * W + w] = s[k];
        }
      }
    } else if (w_n == W) {  // columns of X are contiguous in x: copy W values per k
      for (i64 k = 0; k < kc; ++k) std::memcpy(d + k * W, &X(x0 + p, k0 + k), W * sizeof(T));
    } else {
      for (i64 k = 0; k < kc; ++k) std::memcpy(d + k * W, &X(x0 + p, k0 + k), w_n * sizeof(T));
    }
  }
}

// All tiles of the (mc, nc) block of c from a packed a block (mc x kc) and b block (kc x nc).
// Edge tiles go through a local tile with the same arithmetic as full ones.
template <class T, int MR, int NV, int VW>
[[gnu::always_inline]] inline void macro_block(i64 mc, i64 nc, i64 kc, const T* ap, const T* bp, T* c, i64 ldc,
                                               bool overwrite) {
  constexpr int NR = NV * VW;
  alignas(64) T tile[MR * NR];
  for (i64 j = 0; j < nc; j += NR) {
    const T* bj = bp + j * kc;
    for (i64 i = 0; i < mc; i += MR) {
      const T* ai = ap + i * kc;
      T* cij = c + i * ldc + j;
      if (i + MR <= mc && j + NR <= nc) {
        micro_tile<T, MR, NV, VW>(kc, ai, 1, MR, bj, NR, cij, ldc, overwrite);
      } else {
        micro_tile<T, MR, NV, VW>(kc, ai, 1, MR, bj, NR, tile, NR, true);
        const i64 m_n = std::min<i64>(MR, mc - i), n_n = std::min<i64>(NR, nc - j);
        for (i64 ii = 0; ii < m_n; ++ii)
          for (i64 jj = 0; jj < n_n; ++jj)
            cij[ii * ldc + jj] = overwrite ? tile[ii * NR + jj] : cij[ii * ldc + jj] + tile[ii * NR + jj];
      }
    }
  }
}

// What the blocked path needs from a SIMD level: its macro-kernel, the matching packing, the tile
// (MR x NR) and the blocks (MC x KC of a, KC x NC of b).
template <class T>
struct Kernel {
  void (*macro)(i64 mc, i64 nc, i64 kc, const T* ap, const T* bp, T* c, i64 ldc, bool overwrite);
  void (*pack_a)(T* dst, View<T> X, i64 x0, i64 nx, i64 k0, i64 kc);
  void (*pack_b)(T* dst, View<T> X, i64 x0, i64 nx, i64 k0, i64 kc);
  i64 mr, nr, mc, kc, nc;
};

// Tiles of MR x 2 vectors: 16 accumulator registers of 32 with AVX-512, 12 of 16 otherwise.
// Blocks: KC is long so c tiles are loaded and stored rarely; an a block (MC x KC) of 256 KiB
// stays in L2 and a b block (KC x NC) of 2 MiB in L3. Tuned on Zen 4 to OpenBLAS single-thread speed.
template <class T>
Kernel<T> select_kernel() {
  return for_cpu_level([](auto level) {
    using L = decltype(level);
    constexpr int VW = L::kVectorBytes / sizeof(T), MR = L::kRegisters == 32 ? 8 : 6, NV = 2;
    constexpr i64 kc = 512, mc = (i64{256} << 10) / (kc * sizeof(T)) / MR * MR, nc = (i64{2} << 20) / (kc * sizeof(T));
    return Kernel<T>{&L::template run<macro_block<T, MR, NV, VW>>, pack_panels<MR, T>, pack_panels<NV * VW, T>,
                     MR, NV * VW, mc, kc, nc};
  });
}

// Rows [i0, i1) x columns [j0, j1) of c (M,N), serially on the calling thread.
template <class T>
void gemm_rect(const Kernel<T>& kn, T* c, View<T> A, View<T> B, i64 N, i64 K, i64 i0, i64 i1, i64 j0, i64 j1) {
  const i64 kc_max = std::min(kn.kc, K);
  T* ap = aligned_scratch<T, kSlotBlockA>((std::min(kn.mc, i1 - i0) + kn.mr) * kc_max);
  T* bp = aligned_scratch<T, kSlotBlockB>((std::min(kn.nc, j1 - j0) + kn.nr) * kc_max);
  const View<T> Bt{B.p, B.cs, B.rs};  // op(b)ᵀ, (N,K)
  for (i64 jc = j0; jc < j1; jc += kn.nc) {
    const i64 nc = std::min(kn.nc, j1 - jc);
    for (i64 pc = 0; pc < K; pc += kn.kc) {
      const i64 kc = std::min(kn.kc, K - pc);
      kn.pack_b(bp, Bt, jc, nc, pc, kc);
      for (i64 ic = i0; ic < i1; ic += kn.mc) {
        const i64 mc = std::min(kn.mc, i1 - ic);
        kn.pack_a(ap, A, ic, mc, pc, kc);
        kn.macro(mc, nc, kc, ap, bp, c + ic * N + jc, N, pc == 0);
      }
    }
  }
}

}  // namespace

template <class T>
void gemm_blocked(T* c, View<T> A, View<T> B, i64 M, i64 N, i64 K) {
  static const Kernel<T> kn = select_kernel<T>();
  const i64 m_tiles = (M + kn.mr - 1) / kn.mr, n_tiles = (N + kn.nr - 1) / kn.nr;
  const Grid g = thread_grid(m_tiles, n_tiles, kn.mr, kn.nr, threads_for(M * N * K));
  if (g.rows * g.cols == 1) {
    gemm_rect(kn, c, A, B, N, K, 0, M, 0, N);
    return;
  }
#pragma omp parallel num_threads(static_cast<int>(g.rows * g.cols))
  {
    const i64 t = omp_get_thread_num(), r = t / g.cols, q = t % g.cols;
    const i64 i0 = m_tiles * r / g.rows * kn.mr, i1 = std::min(M, m_tiles * (r + 1) / g.rows * kn.mr);
    const i64 j0 = n_tiles * q / g.cols * kn.nr, j1 = std::min(N, n_tiles * (q + 1) / g.cols * kn.nr);
    gemm_rect(kn, c, A, B, N, K, i0, i1, j0, j1);
  }
}

DEEPNUM_INSTANTIATE(gemm_blocked);

}  // namespace deepnum::gemm_detail
