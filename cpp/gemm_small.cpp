/* gemm, small-M path: c (M,N) = A · B for small M or short K with the rows of B contiguous (a layer on a
 * small batch, a matrix-vector product, a weight gradient over a small batch). No packing of B (it would
 * cost as much as the product): a register-blocked tile (micro_tile) of up to SMR rows x NV vectors of
 * columns reads A in place and B rows where they lie, and keeps its accumulators over the whole of K
 * (each c element summed over k in order, or in 2-8 interleaved partial sums for tiles of few rows). The
 * last partial column block is read in place too, but for its last row or two, which come from a small
 * zero-padded copy.
 * Also the transposed small-M path: small N with A stored transposed (weight gradients xᵀ·dy of a narrow
 * layer) as the small-M product cᵀ = Bᵀ · Aᵀ, transposed into c.
 * Variants: one per SIMD level (gemm_internal.h), tiles of up to 12 (AVX-512) or 6 rows x 2 vectors, or
 * 2 rows x 4 vectors for one or two rows.
 */
#include <algorithm>
#include <cstring>

#include "gemm_internal.h"
#include "parallel.h"

namespace deepnum::gemm_detail {
namespace {

// Rows [0, M) of one column block of c (NV·VW columns at b and c): tiles of SMR rows, then one
// tile of the remaining rows, each with its own compile-time row count. c = the product when
// overwrite, else c += it.
template <class T, int SMR, int NV, int VW, int R = SMR>
[[gnu::always_inline]] inline void small_rows(i64 M, i64 K, View<T> A, const T* b, i64 ldb, T* c, i64 ldc,
                                              bool overwrite) {
  if constexpr (R == SMR) {
    i64 i = 0;
    for (; i + SMR <= M; i += SMR)
      micro_tile<T, SMR, NV, VW>(K, &A(i, 0), A.rs, A.cs, b, ldb, c + i * ldc, ldc, overwrite);
    if (i < M)
      small_rows<T, SMR, NV, VW, SMR - 1>(M - i, K, {&A(i, 0), A.rs, A.cs}, b, ldb, c + i * ldc, ldc, overwrite);
  } else if constexpr (R > 0) {
    if (M == R)
      micro_tile<T, R, NV, VW>(K, A.p, A.rs, A.cs, b, ldb, c, ldc, overwrite);
    else
      small_rows<T, SMR, NV, VW, R - 1>(M, K, A, b, ldb, c, ldc, overwrite);
  }
}

// small_rows compiled for the SIMD level L as a function of its own (L::run; GCC keeps it out of line, being
// large and called from several places), so that the full column blocks, a last single vector and the edge
// tiles of the same width share one copy of its SMR tiles rather than each inlining all of them.
template <class L, class T, int SMR, int NV, int VW>
void rows(i64 M, i64 K, View<T> A, const T* b, i64 ldb, T* c, i64 ldc, bool overwrite) {
  L::template run<small_rows<T, SMR, NV, VW>>(M, K, A, b, ldb, c, ldc, overwrite);
}

// The last, partial column block (n_n < NV·VW columns from column j) of c (M,N) = A · B, in a local tile of
// NVE vectors: the rows of B whose vector reads stay inside B (all but the last one or two) are read in
// place, the unused lanes reading on into the next row; the rest come from a small zero-padded copy and are
// added to the tile after them. Only the n_n columns are stored into c.
template <class L, class T, int SMR, int NVE, int VW>
[[gnu::always_inline]] inline void small_edge(T* c, View<T> A, View<T> B, i64 M, i64 N, i64 K, i64 j) {
  constexpr i64 width = NVE * VW;
  const i64 n_n = N - j, tail = std::min(K, (width - n_n + B.rs - 1) / B.rs), k0 = K - tail;
  T *edge = thread_scratch<T, kSlotEdge>(tail * width), *tile = thread_scratch<T, kSlotEdgeTile>(M * width);
  for (i64 k = 0; k < tail; ++k) {
    std::memcpy(edge + k * width, &B(k0 + k, j), n_n * sizeof(T));
    std::fill(edge + k * width + n_n, edge + (k + 1) * width, T(0));
  }
  if (k0 > 0) rows<L, T, SMR, NVE, VW>(M, k0, A, &B(0, j), B.rs, tile, width, true);
  rows<L, T, SMR, NVE, VW>(M, tail, {&A(0, k0), A.rs, A.cs}, edge, width, tile, width, k0 == 0);
  for (i64 i = 0; i < M; ++i) std::memcpy(c + i * N + j, tile + i * width, n_n * sizeof(T));
}

// small_edge with the fewest vectors, a power of two up to NV, that hold the N - j columns.
template <class L, class T, int SMR, int NV, int VW, int NVE = 1>
[[gnu::always_inline]] inline void small_edge_fit(T* c, View<T> A, View<T> B, i64 M, i64 N, i64 K, i64 j) {
  if constexpr (NVE < NV) {
    if (N - j > NVE * VW) return small_edge_fit<L, T, SMR, NV, VW, 2 * NVE>(c, A, B, M, N, K, j);
  }
  small_edge<L, T, SMR, NVE, VW>(c, A, B, M, N, K, j);
}

// Column blocks [jb0, jb1) (of NR = NV·VW columns) of c (M,N) = A · B, B rows contiguous.
template <class L, class T, int SMR, int NV, int VW>
[[gnu::always_inline]] inline void small_blocks(T* c, View<T> A, View<T> B, i64 M, i64 N, i64 K, i64 jb0, i64 jb1) {
  constexpr int NR = NV * VW;
  for (i64 jb = jb0; jb < jb1; ++jb) {
    const i64 j = jb * NR;
    if (j + NR <= N)
      rows<L, T, SMR, NV, VW>(M, K, A, &B(0, j), B.rs, c + j, N, true);
    else if (N - j == VW)  // exactly one vector of columns left: read in place
      rows<L, T, SMR, 1, VW>(M, K, A, &B(0, j), B.rs, c + j, N, true);
    else
      small_edge_fit<L, T, SMR, NV, VW>(c, A, B, M, N, K, j);
  }
}

template <class T>
struct SmallKernel {
  void (*run)(T* c, View<T> A, View<T> B, i64 M, i64 N, i64 K, i64 jb0, i64 jb1);
  i64 nr;
};

// Tiles of up to SMR x 2 vectors: SMR·2 accumulators + 2 b vectors + 1 broadcast in 32 (AVX-512) or 16 registers;
// `wide`, for one or two rows (a matrix-vector product): up to 2 rows x 4 vectors, so that a row of op(b) is
// read in longer runs and 8 or more multiply-adds are in flight at once.
template <class T>
SmallKernel<T> select_small_kernel(bool wide) {
  return for_cpu_level([wide](auto level) {
    using L = decltype(level);
    constexpr int VW = L::kVectorBytes / sizeof(T), SMR = L::kRegisters == 32 ? 12 : 6;
    return wide ? SmallKernel<T>{&L::template run<small_blocks<L, T, 2, 4, VW>>, 4 * VW}
                : SmallKernel<T>{&L::template run<small_blocks<L, T, SMR, 2, VW>>, 2 * VW};
  });
}

}  // namespace

// Each thread takes one contiguous range of column blocks (contiguous, so that a thread reads the columns
// of op(b) that the same thread wrote in a preceding kernel partitioned the same way, e.g. conv2d's im2col
// by image: handing blocks out in turn made conv1 at batch 100 4.6x slower with 2 threads than with 1).
// Each block is computed the same way whoever computes it.
template <class T>
void gemm_small_m(T* c, View<T> A, View<T> B, i64 M, i64 N, i64 K) {
  static const SmallKernel<T> narrow = select_small_kernel<T>(false), wide = select_small_kernel<T>(true);
  const SmallKernel<T>& kn = M <= 2 ? wide : narrow;
  const i64 blocks = (N + kn.nr - 1) / kn.nr;
  ranges_on_threads(std::min(threads_for(M * N * K), blocks), blocks,
                    [&](i64 b0, i64 b1) { kn.run(c, A, B, M, N, K, b0, b1); });
}

// c (M,N) = A · B for small N and A stored transposed: cᵀ = Bᵀ · Aᵀ is a small-M product whose right
// operand has contiguous rows; it is computed into a scratch buffer and transposed into c.
template <class T>
void gemm_transposed_small_m(T* c, View<T> A, View<T> B, i64 M, i64 N, i64 K) {
  T* ct = thread_scratch<T, kSlotTransposed>(N * M);
  gemm_small_m(ct, View<T>{B.p, B.cs, B.rs}, View<T>{A.p, A.cs, A.rs}, N, M, K);
  for (i64 i = 0; i < M; ++i)
    for (i64 j = 0; j < N; ++j) c[i * N + j] = ct[j * M + i];
}

DEEPNUM_INSTANTIATE(gemm_small_m);
DEEPNUM_INSTANTIATE(gemm_transposed_small_m);

}  // namespace deepnum::gemm_detail
