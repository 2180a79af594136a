/* gemm: c (M,N) = op(a) (M,K) · op(b) (K,N), all row-major and C-contiguous; op(a) = aᵀ when
 * trans_a (a stored (K,M)), op(b) = bᵀ when trans_b (b stored (N,K)). c is overwritten.
 * gemm_strided is the same on strided operands (one stride of each 1); gemm calls it.
 *
 * This file chooses the path and the threads; each path lives in its own file (shared parts in
 * gemm_internal.h). Five paths, chosen from the sizes and layouts alone (never from the thread count),
 * in this order:
 *   - small M or short K, rows of op(b) contiguous (gemm_small.cpp): a layer on a small batch, a
 *     matrix-vector product, a weight gradient over a small batch; register-blocked tiles read both
 *     operands in place, no packing;
 *   - small N with op(a) stored transposed (gemm_small.cpp; weight gradients xᵀ·dy of a narrow layer):
 *     the small-M product cᵀ = op(b)ᵀ · op(a)ᵀ, transposed into c;
 *   - skinny N or small M with rows of op(a) contiguous in k (gemm_skinny.cpp: a narrow layer's
 *     forward, a convolution's dw, dy·wᵀ for one sample): dot products of a rows with op(b)ᵀ rows;
 *   - direct, for the remaining matrix-vector like shapes (gemm_direct.cpp: M or N < kDirectSize);
 *   - blocked, everything else (gemm_blocked.cpp): packed a and b blocks, a register-tiled macro-kernel.
 * The SIMD paths are compiled once per SIMD level (AVX-512, AVX2, baseline; simd_level() picks one at
 * run time) with tile shapes that fit that level's registers. Threads (OpenMP) each own a rectangle
 * (blocked: thread_grid), a range of column blocks (small M) or a range of rows or columns (the others)
 * of c, never a slice of K, so results are bit-identical for any thread count. Called from inside a
 * parallel region, gemm runs serially on the calling thread.
 */
#include <algorithm>

#include "gemm_internal.h"
#include "openmp.h"

namespace deepnum {
namespace gemm_detail {
namespace {

constexpr i64 kDirectSize = 4;                // direct path below this many rows (or columns)
constexpr i64 kSmallM = 32;                   // small-M path up to this many rows
constexpr i64 kSkinnyN = 32;                  // skinny-N path up to this many columns
constexpr i64 kWorkPerThread = i64{1} << 20;  // multiply-adds that justify one more thread (~12 us)

}  // namespace

i64 threads_for(i64 work) {
  if (omp_get_level() > 0) return 1;
  return std::min<i64>(omp_get_max_threads(), std::max<i64>(1, work / kWorkPerThread));
}

Grid thread_grid(i64 m_tiles, i64 n_tiles, i64 mr, i64 nr, i64 threads) {
  Grid best{1, 1};
  i64 best_area = m_tiles * mr * n_tiles * nr, best_edge = m_tiles * mr + n_tiles * nr;
  for (i64 r = 1; r <= std::min(threads, m_tiles); ++r) {
    const i64 q = std::min(threads / r, n_tiles);
    const i64 h = (m_tiles + r - 1) / r * mr, w = (n_tiles + q - 1) / q * nr;
    if (h * w < best_area || (h * w == best_area && h + w < best_edge)) {
      best = {r, q};
      best_area = h * w;
      best_edge = h + w;
    }
  }
  return best;
}

}  // namespace gemm_detail

template <class T>
void gemm_strided(T* c, const T* a, i64 a_rs, i64 a_cs, const T* b, i64 b_rs, i64 b_cs, i64 M, i64 N, i64 K) {
  // c is (M,N) contiguous; op(a)(i,k) = a[i·a_rs + k·a_cs], op(b)(k,j) = b[k·b_rs + j·b_cs], one stride of each 1
  using namespace gemm_detail;
  const View<T> A{a, a_rs, a_cs}, B{b, b_rs, b_cs};
  if ((M <= kSmallM || K <= kSmallM) && B.cs == 1)
    gemm_small_m(c, A, B, M, N, K);
  else if (N <= kSmallM && A.rs == 1)
    gemm_transposed_small_m(c, A, B, M, N, K);
  else if ((N <= kSkinnyN || M < kDirectSize) && A.cs == 1)
    gemm_skinny_n(c, A, B, M, N, K);
  else if (M < kDirectSize || N < kDirectSize)
    gemm_direct(c, A, B, M, N, K);
  else
    gemm_blocked(c, A, B, M, N, K);
}

template <class T>
void gemm(T* c, const T* a, const T* b, bool trans_a, bool trans_b, i64 M, i64 N, i64 K) {
  // c is (M,N); a is (M,K), or (K,M) if trans_a; b is (K,N), or (N,K) if trans_b
  gemm_strided(c, a, trans_a ? 1 : K, trans_a ? M : 1, b, trans_b ? 1 : N, trans_b ? K : 1, M, N, K);
}

DEEPNUM_INSTANTIATE(gemm_strided);
DEEPNUM_INSTANTIATE(gemm);

}  // namespace deepnum
