/* gemm: c (M,N) = op(a) (M,K) · op(b) (K,N), all row-major and C-contiguous; op(a) = aᵀ when
 * trans_a (a stored (K,M)), op(b) = bᵀ when trans_b (b stored (N,K)). c is overwritten.
 *
 * Five paths, chosen from the sizes and layouts alone (never from the thread count), in this order:
 *   - small M or short K (M <= kSmallM or K <= kSmallM, rows of op(b) contiguous): a layer on a
 *     small batch, a matrix-vector product, a weight gradient over a small batch; no packing of
 *     op(b) (it would cost as much as the product): a register-blocked tile of up to SMR rows x NR
 *     columns reads op(a) in place and op(b) rows where they lie, and keeps its accumulators over
 *     the whole of K (each c element summed over k in order, or in 2-8 interleaved partial sums for
 *     tiles of few rows: see micro_tile); the last partial NR columns are
 *     read in place too, but for their last row or two, which come from a small zero-padded copy;
 *   - small N with op(a) stored transposed (weight gradients xᵀ·dy of a narrow layer): the
 *     small-M product cᵀ = op(b)ᵀ · op(a)ᵀ into a scratch buffer, transposed into c;
 *   - skinny N or small M with rows of op(a) contiguous in k (N <= kSkinnyN or M < kDirectSize: a
 *     narrow layer's forward, a convolution's dw, dy·wᵀ for one sample): dot products of a rows
 *     with the rows of op(b)ᵀ (in place when b is stored transposed, else packed), each in VW
 *     interleaved partial sums;
 *   - direct, for the remaining matrix-vector like shapes (M or N < kDirectSize): no packing;
 *     each c row accumulates a(i,k)·(row k of op(b)) over k in order or, when the columns of op(b)
 *     are contiguous, each c element is a dot product in kLanes interleaved partial sums;
 * The micro-kernel is written with GCC vector extensions and compiled once per SIMD level
 * (AVX-512, AVX2, baseline; simd_level() picks one at run time) with a tile shape that fits
 * that level's registers. Threads (OpenMP) each own a rectangle (blocked), a range of column blocks
 * (small M) or a range of rows or columns (the others) of c, never a slice of K, so results are
 * bit-identical for any thread count. Called
 * from inside a parallel region, gemm runs serially on the calling thread.
 */
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels.h"

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__) && !defined(DEEPNUM_NO_CLONES)
#define DEEPNUM_GEMM_LEVELS 1
#else
#define DEEPNUM_GEMM_LEVELS 0
#endif

namespace deepnum {
namespace {

constexpr i64 kDirectSize = 4;                // direct path below this many rows (or columns)
constexpr i64 kSmallM = 32;                   // small-M path up to this many rows
constexpr i64 kSkinnyN = 32;                  // skinny-N path up to this many columns
constexpr i64 kWorkPerThread = i64{1} << 20;  // multiply-adds that justify one more thread (~12 us)
constexpr int kLanes = 16;                    // partial sums of a direct dot product

// A strided matrix view: element (i, j) is p[i * rs + j * cs]. In gemm one of the strides is 1.
template <class T>
struct View {
  const T* p;
  i64 rs, cs;
  const T& operator()(i64 i, i64 j) const { return p[i * rs + j * cs]; }
};

// Threads worth starting for `work` multiply-adds: 1 inside a parallel region.
i64 threads_for(i64 work) {
  if (omp_get_level() > 0) return 1;
  return std::min<i64>(omp_get_max_threads(), std::max<i64>(1, work / kWorkPerThread));
}

// ---- direct path -------------------------------------------------------------------------

// sum over k < n of x[k·xs] · y[k], in order for short n; otherwise element k goes to partial
// sum k % kLanes and the partial sums are added pairwise.
template <class T>
[[gnu::always_inline]] inline T dot(const T* x, i64 xs, const T* y, i64 n) {
  if (n < kLanes) {
    T s = T(0);
    for (i64 k = 0; k < n; ++k) s += x[k * xs] * y[k];
    return s;
  }
  T acc[kLanes] = {};
  i64 k = 0;
  if (xs == 1) {
    for (; k + kLanes <= n; k += kLanes)
      for (int l = 0; l < kLanes; ++l) acc[l] += x[k + l] * y[k + l];
  } else {
    for (; k + kLanes <= n; k += kLanes)
      for (int l = 0; l < kLanes; ++l) acc[l] += x[(k + l) * xs] * y[k + l];
  }
  for (int l = 0; k < n; ++k, ++l) acc[l] += x[k * xs] * y[k];
  for (int w = kLanes / 2; w > 0; w /= 2)
    for (int l = 0; l < w; ++l) acc[l] += acc[l + w];
  return acc[0];
}

// Rows [i0, i1) x columns [j0, j1) of c (M,N) = A · B without packing.
template <class T>
DEEPNUM_SIMD void gemm_direct(T* c, View<T> A, View<T> B, i64 N, i64 K, i64 i0, i64 i1, i64 j0, i64 j1) {
  if (B.rs == 1) {  // columns of B are contiguous: one dot product per element
    for (i64 j = j0; j < j1; ++j)
      for (i64 i = i0; i < i1; ++i) c[i * N + j] = dot(&A(i, 0), A.cs, &B(0, j), K);
    return;
  }
  for (i64 i = i0; i < i1; ++i)  // rows of B are contiguous: c rows accumulate a(i,k) · row k of B
    for (i64 j = j0; j < j1; ++j) c[i * N + j] = T(0);
  for (i64 k = 0; k < K; ++k) {
    const T* bk = &B(k, 0);
    for (i64 i = i0; i < i1; ++i) {
      const T aik = A(i, k);
      T* ci = c + i * N;
      for (i64 j = j0; j < j1; ++j) ci[j] += aik * bk[j];
    }
  }
}

// The direct path, threads splitting the longer of the two dimensions of c.
template <class T>
void gemm_direct_parallel(T* c, View<T> A, View<T> B, i64 M, i64 N, i64 K) {
  const i64 threads = std::min(threads_for(M * N * K), std::max(M, N));
  if (threads == 1) {
    gemm_direct(c, A, B, N, K, 0, M, 0, N);
    return;
  }
#pragma omp parallel num_threads(static_cast<int>(threads))
  {
    const i64 t = omp_get_thread_num();
    if (M > N)
      gemm_direct(c, A, B, N, K, M * t / threads, M * (t + 1) / threads, 0, N);
    else
      gemm_direct(c, A, B, N, K, 0, M, N * t / threads, N * (t + 1) / threads);
  }
}

// ---- packing -----------------------------------------------------------------------------

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

// ---- micro- and macro-kernel -------------------------------------------------------------

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

// The macro-kernel compiled for each SIMD level: MR x (NV·VW) tiles, VW = lanes of the level's vectors.
template <class T, int MR, int NV, int VW>
struct Baseline {
  static void macro(i64 mc, i64 nc, i64 kc, const T* ap, const T* bp, T* c, i64 ldc, bool overwrite) {
    macro_block<T, MR, NV, VW>(mc, nc, kc, ap, bp, c, ldc, overwrite);
  }
};
#if DEEPNUM_GEMM_LEVELS
template <class T, int MR, int NV, int VW>
struct Avx2 {
  [[gnu::target("arch=x86-64-v3")]] static void macro(i64 mc, i64 nc, i64 kc, const T* ap, const T* bp, T* c,
                                                      i64 ldc, bool overwrite) {
    macro_block<T, MR, NV, VW>(mc, nc, kc, ap, bp, c, ldc, overwrite);
  }
};
template <class T, int MR, int NV, int VW>
struct Avx512 {
  [[gnu::target("arch=x86-64-v4")]] static void macro(i64 mc, i64 nc, i64 kc, const T* ap, const T* bp, T* c,
                                                      i64 ldc, bool overwrite) {
    macro_block<T, MR, NV, VW>(mc, nc, kc, ap, bp, c, ldc, overwrite);
  }
};
#endif

// ---- small-M path ------------------------------------------------------------------------

// Rows [0, M) of one column block of c (NV·VW columns at b and c): tiles of SMR rows, then one
// tile of the remaining rows, each with its own compile-time row count. c = the product when
// overwrite, else c += it.
template <class T, int SMR, int NV, int VW, int R = SMR>
[[gnu::always_inline]] inline void small_rows(i64 M, i64 K, View<T> A, const T* b, i64 ldb, T* c, i64 ldc,
                                              bool overwrite = true) {
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

// The last, partial column block (n_n < NV·VW columns from column j) of c (M,N) = A · B, in a local tile of
// NVE vectors: the rows of B whose vector reads stay inside B (all but the last one or two) are read in
// place, the unused lanes reading on into the next row; the rest come from a small zero-padded copy and are
// added to the tile after them. Only the n_n columns are stored into c.
template <class T, int SMR, int NVE, int VW>
[[gnu::always_inline]] inline void small_edge(T* c, View<T> A, View<T> B, i64 M, i64 N, i64 K, i64 j) {
  constexpr i64 width = NVE * VW;
  const i64 n_n = N - j, tail = std::min(K, (width - n_n + B.rs - 1) / B.rs), k0 = K - tail;
  static thread_local std::vector<T> edge_buf, tile_buf;
  if (static_cast<i64>(edge_buf.size()) < tail * width) edge_buf.resize(tail * width);
  if (static_cast<i64>(tile_buf.size()) < M * width) tile_buf.resize(M * width);
  T *edge = edge_buf.data(), *tile = tile_buf.data();
  for (i64 k = 0; k < tail; ++k) {
    std::memcpy(edge + k * width, &B(k0 + k, j), n_n * sizeof(T));
    std::fill(edge + k * width + n_n, edge + (k + 1) * width, T(0));
  }
  if (k0 > 0) small_rows<T, SMR, NVE, VW>(M, k0, A, &B(0, j), B.rs, tile, width);
  small_rows<T, SMR, NVE, VW>(M, tail, {&A(0, k0), A.rs, A.cs}, edge, width, tile, width, k0 == 0);
  for (i64 i = 0; i < M; ++i) std::memcpy(c + i * N + j, tile + i * width, n_n * sizeof(T));
}

// small_edge with the fewest vectors, a power of two up to NV, that hold the N - j columns.
template <class T, int SMR, int NV, int VW, int NVE = 1>
[[gnu::always_inline]] inline void small_edge_fit(T* c, View<T> A, View<T> B, i64 M, i64 N, i64 K, i64 j) {
  if constexpr (NVE < NV) {
    if (N - j > NVE * VW) return small_edge_fit<T, SMR, NV, VW, 2 * NVE>(c, A, B, M, N, K, j);
  }
  small_edge<T, SMR, NVE, VW>(c, A, B, M, N, K, j);
}

// Column blocks [jb0, jb1) (of NR = NV·VW columns) of c (M,N) = A · B, B rows contiguous.
template <class T, int SMR, int NV, int VW>
[[gnu::always_inline]] inline void small_blocks(T* c, View<T> A, View<T> B, i64 M, i64 N, i64 K, i64 jb0, i64 jb1) {
  constexpr int NR = NV * VW;
  for (i64 jb = jb0; jb < jb1; ++jb) {
    const i64 j = jb * NR;
    if (j + NR <= N)
      small_rows<T, SMR, NV, VW>(M, K, A, &B(0, j), B.rs, c + j, N);
    else if (N - j == VW)  // exactly one vector of columns left: read in place
      small_rows<T, SMR, 1, VW>(M, K, A, &B(0, j), B.rs, c + j, N);
    else
      small_edge_fit<T, SMR, NV, VW>(c, A, B, M, N, K, j);
  }
}

// The small-M kernel compiled for each SIMD level (same pattern as the blocked macro-kernel).
template <class T, int SMR, int NV, int VW>
struct SmallBaseline {
  static void run(T* c, View<T> A, View<T> B, i64 M, i64 N, i64 K, i64 jb0, i64 jb1) {
    small_blocks<T, SMR, NV, VW>(c, A, B, M, N, K, jb0, jb1);
  }
};
#if DEEPNUM_GEMM_LEVELS
template <class T, int SMR, int NV, int VW>
struct SmallAvx2 {
  [[gnu::target("arch=x86-64-v3")]] static void run(T* c, View<T> A, View<T> B, i64 M, i64 N, i64 K, i64 jb0,
                                                    i64 jb1) {
    small_blocks<T, SMR, NV, VW>(c, A, B, M, N, K, jb0, jb1);
  }
};
template <class T, int SMR, int NV, int VW>
struct SmallAvx512 {
  [[gnu::target("arch=x86-64-v4")]] static void run(T* c, View<T> A, View<T> B, i64 M, i64 N, i64 K, i64 jb0,
                                                    i64 jb1) {
    small_blocks<T, SMR, NV, VW>(c, A, B, M, N, K, jb0, jb1);
  }
};
#endif

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
  constexpr int VW = 16 / sizeof(T);  // lanes of a 128-bit vector
#if DEEPNUM_GEMM_LEVELS
  const std::string_view level = simd_level();
  if (level == "avx512")
    return wide ? SmallKernel<T>{SmallAvx512<T, 2, 4, 4 * VW>::run, 4 * 4 * VW}
                : SmallKernel<T>{SmallAvx512<T, 12, 2, 4 * VW>::run, 2 * 4 * VW};
  if (level == "avx2")
    return wide ? SmallKernel<T>{SmallAvx2<T, 2, 4, 2 * VW>::run, 4 * 2 * VW}
                : SmallKernel<T>{SmallAvx2<T, 6, 2, 2 * VW>::run, 2 * 2 * VW};
#endif
  return wide ? SmallKernel<T>{SmallBaseline<T, 2, 4, VW>::run, 4 * VW}
              : SmallKernel<T>{SmallBaseline<T, 6, 2, VW>::run, 2 * VW};
}

// The small-M path: each thread takes one contiguous range of column blocks (contiguous, so that
// a thread reads the columns of op(b) that the same thread wrote in a preceding kernel partitioned
// the same way, e.g. conv2d's im2col by image: handing blocks out in turn made conv1 at batch 100
// 4.6x slower with 2 threads than with 1). Each block is computed the same way whoever computes it.
template <class T>
void gemm_small_m(T* c, View<T> A, View<T> B, i64 M, i64 N, i64 K) {
  static const SmallKernel<T> narrow = select_small_kernel<T>(false), wide = select_small_kernel<T>(true);
  const SmallKernel<T>& kn = M <= 2 ? wide : narrow;
  const i64 blocks = (N + kn.nr - 1) / kn.nr;
  const i64 threads = std::min(threads_for(M * N * K), blocks);
  if (threads == 1) {
    kn.run(c, A, B, M, N, K, 0, blocks);
    return;
  }
#pragma omp parallel num_threads(static_cast<int>(threads))
  {
    const i64 t = omp_get_thread_num();
    kn.run(c, A, B, M, N, K, blocks * t / threads, blocks * (t + 1) / threads);
  }
}

// ---- skinny-N path -----------------------------------------------------------------------

// The lanes of a shuffle that halves groups of 2H lanes of two vectors x, y of VW lanes: lane p of the
// result takes lane (group·2H + p % H) + Hi·H of x (p < VW/2) or of y (p >= VW/2), group = (p % (VW/2)) / H.
template <class I, int VW, int H, int Hi, std::size_t... P>
constexpr I halving_lanes(std::index_sequence<P...>) {
  using S = std::remove_reference_t<decltype(I{}[0])>;
  return I{static_cast<S>((P < VW / 2 ? 0 : VW) + (P % (VW / 2)) / H * 2 * H + P % H + Hi * H)...};
}

// v[0..n) (n = VW at the first level, H = VW/2) -> v[0] whose lane l is the sum of the lanes of input l,
// added as the scalar tree lanes[l] += lanes[l + w] for w = VW/2, ..., 1 would: each level adds the upper
// half of every group of 2H lanes to its lower half, two vectors at a time, and packs the results.
template <class V, class I, int VW, int H>
[[gnu::always_inline]] inline void reduce_lanes(V* v, int n) {
  if constexpr (H >= 1) {
    constexpr I lo = halving_lanes<I, VW, H, 0>(std::make_index_sequence<VW>{});
    constexpr I hi = halving_lanes<I, VW, H, 1>(std::make_index_sequence<VW>{});
    for (int i = 0; i < n / 2; ++i)
      v[i] = __builtin_shuffle(v[2 * i], v[2 * i + 1], lo) + __builtin_shuffle(v[2 * i], v[2 * i + 1], hi);
    reduce_lanes<V, I, VW, H / 2>(v, n / 2);
  }
}

// Rows [i, i+R) x columns [j, j+NG) of c (ldc apart) as dot products: a rows (ars apart,
// contiguous in k) against bt rows (op(b)ᵀ, K long, contiguous); each c element sums its k in
// VW interleaved partial sums, added pairwise in vector registers (reduce_lanes, VW accumulators at a
// time, zero ones padding R·NG up to a multiple of VW), then the tail k >= K - K % VW in order.
// Columns past n_n are computed from zero rows of bt and not stored.
template <class T, int R, int NG, int VW>
[[gnu::always_inline]] inline void dot_tile(i64 K, const T* a, i64 ars, const T* bt, T* c, i64 ldc, i64 n_n) {
  typedef T V __attribute__((vector_size(VW * sizeof(T))));
  typedef std::conditional_t<sizeof(T) == 4, std::int32_t, std::int64_t> S;
  typedef S I __attribute__((vector_size(VW * sizeof(T))));
  constexpr int kPadded = (R * NG + VW - 1) / VW * VW;
  V acc[kPadded];
#pragma GCC unroll 32
  for (int q = 0; q < kPadded; ++q) acc[q] = V{};
  const i64 kv = K - K % VW;
  for (i64 k = 0; k < kv; k += VW) {
    V av[R], bv[NG];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) std::memcpy(&av[r], a + r * ars + k, sizeof(V));
#pragma GCC unroll 8
    for (int g = 0; g < NG; ++g) std::memcpy(&bv[g], bt + g * K + k, sizeof(V));
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
      for (int g = 0; g < NG; ++g) acc[r * NG + g] += av[r] * bv[g];
  }
  T sums[kPadded];
#pragma GCC unroll 4
  for (int q = 0; q < kPadded; q += VW) {
    reduce_lanes<V, I, VW, VW / 2>(acc + q, VW);
    std::memcpy(sums + q, &acc[q], sizeof(V));
  }
  for (int r = 0; r < R; ++r)
    for (int g = 0; g < NG && g < n_n; ++g) {
      T sum = sums[r * NG + g];
      for (i64 k = kv; k < K; ++k) sum += a[r * ars + k] * bt[g * K + k];
      c[r * ldc + g] = sum;
    }
}

// Rows [i0, i1) of c (M,N) from a (rows contiguous in k) and op(b)ᵀ: whole groups of NG columns
// from bt (rows K apart), a last partial group from tail (NG rows, zero past N): tiles of R rows,
// then single rows.
template <class T, int R, int NG, int VW>
[[gnu::always_inline]] inline void skinny_rows(T* c, View<T> A, const T* bt, const T* tail, i64 N, i64 K, i64 i0,
                                               i64 i1) {
  i64 i = i0;
  for (; i + R <= i1; i += R)
    for (i64 j = 0; j < N; j += NG)
      dot_tile<T, R, NG, VW>(K, &A(i, 0), A.rs, j + NG <= N ? bt + j * K : tail, c + i * N + j, N, N - j);
  for (; i < i1; ++i)
    for (i64 j = 0; j < N; j += NG)
      dot_tile<T, 1, NG, VW>(K, &A(i, 0), A.rs, j + NG <= N ? bt + j * K : tail, c + i * N + j, N, N - j);
}

template <class T, int R, int NG, int VW>
struct SkinnyBaseline {
  static void run(T* c, View<T> A, const T* bt, const T* tail, i64 N, i64 K, i64 i0, i64 i1) {
    skinny_rows<T, R, NG, VW>(c, A, bt, tail, N, K, i0, i1);
  }
};
#if DEEPNUM_GEMM_LEVELS
template <class T, int R, int NG, int VW>
struct SkinnyAvx2 {
  [[gnu::target("arch=x86-64-v3")]] static void run(T* c, View<T> A, const T* bt, const T* tail, i64 N, i64 K,
                                                    i64 i0, i64 i1) {
    skinny_rows<T, R, NG, VW>(c, A, bt, tail, N, K, i0, i1);
  }
};
template <class T, int R, int NG, int VW>
struct SkinnyAvx512 {
  [[gnu::target("arch=x86-64-v4")]] static void run(T* c, View<T> A, const T* bt, const T* tail, i64 N, i64 K,
                                                    i64 i0, i64 i1) {
    skinny_rows<T, R, NG, VW>(c, A, bt, tail, N, K, i0, i1);
  }
};
#endif

template <class T>
struct SkinnyKernel {
  void (*run)(T* c, View<T> A, const T* bt, const T* tail, i64 N, i64 K, i64 i0, i64 i1);
  i64 ng;
};

// Tiles of R rows x NG columns: R·NG accumulators + R + NG loaded vectors in 32 (AVX-512) or 16 registers.
template <class T>
SkinnyKernel<T> select_skinny_kernel() {
  constexpr int VW = 16 / sizeof(T);  // lanes of a 128-bit vector
#if DEEPNUM_GEMM_LEVELS
  const std::string_view level = simd_level();
  if (level == "avx512") return {SkinnyAvx512<T, 4, 4, 4 * VW>::run, 4};
  if (level == "avx2") return {SkinnyAvx2<T, 2, 4, 2 * VW>::run, 4};
#endif
  return {SkinnyBaseline<T, 2, 4, VW>::run, 4};
}

// The skinny-N path for rows of op(a) contiguous in k. op(b)ᵀ is read in place when b is stored
// transposed, else packed (N x K, small); a last partial group of columns is copied, zero-padded.
// Each thread takes one contiguous range of rows of c.
template <class T>
void gemm_skinny_n(T* c, View<T> A, View<T> B, i64 M, i64 N, i64 K) {
  static const SkinnyKernel<T> kn = select_skinny_kernel<T>();
  static thread_local std::vector<T> bt_buf, tail_buf;
  const i64 whole = N / kn.ng * kn.ng;
  const T* bt = B.p;
  if (B.rs != 1 || B.cs != K) {  // op(b)ᵀ is not stored as K-long rows: pack it
    if (static_cast<i64>(bt_buf.size()) < whole * K) bt_buf.resize(whole * K);
    for (i64 j = 0; j < whole; ++j)
      for (i64 k = 0; k < K; ++k) bt_buf[j * K + k] = B(k, j);
    bt = bt_buf.data();
  }
  tail_buf.assign(kn.ng * K, T(0));
  for (i64 j = whole; j < N; ++j)
    for (i64 k = 0; k < K; ++k) tail_buf[(j - whole) * K + k] = B(k, j);
  const T* tail = tail_buf.data();
  const i64 threads = std::min(threads_for(M * N * K), M);
  if (threads == 1) {
    kn.run(c, A, bt, tail, N, K, 0, M);
    return;
  }
#pragma omp parallel num_threads(static_cast<int>(threads))
  {
    const i64 t = omp_get_thread_num();
    kn.run(c, A, bt, tail, N, K, M * t / threads, M * (t + 1) / threads);
  }
}

// c (M,N) = op(a) · op(b) for small N and op(a) stored transposed: cᵀ = op(b)ᵀ · op(a)ᵀ is a
// small-M product whose right operand has contiguous rows; it is computed into a scratch
// buffer and transposed into c.
template <class T>
void gemm_transposed_small_m(T* c, View<T> A, View<T> B, i64 M, i64 N, i64 K) {
  static thread_local std::vector<T> ct_buf;
  if (static_cast<i64>(ct_buf.size()) < N * M) ct_buf.resize(N * M);
  T* ct = ct_buf.data();
  gemm_small_m(ct, View<T>{B.p, B.cs, B.rs}, View<T>{A.p, A.cs, A.rs}, N, M, K);
  for (i64 i = 0; i < M; ++i)
    for (i64 j = 0; j < N; ++j) c[i * N + j] = ct[j * M + i];
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

// Blocks: KC is long so c tiles are loaded and stored rarely; an a block (MC x KC) of 256 KiB
// stays in L2 and a b block (KC x NC) of 2 MiB in L3. Tuned on Zen 4 to OpenBLAS single-thread speed.
template <template <class, int, int, int> class Level, class T, int MR, int NV, int VW>
Kernel<T> make_kernel() {
  constexpr i64 kc = 512, mc = (i64{256} << 10) / (kc * sizeof(T)) / MR * MR, nc = (i64{2} << 20) / (kc * sizeof(T));
  return {Level<T, MR, NV, VW>::macro, pack_panels<MR, T>, pack_panels<NV * VW, T>, MR, NV * VW, mc, kc, nc};
}

// Tiles of MR x 2 vectors: 16 accumulator registers of 32 with AVX-512, 12 of 16 otherwise.
template <class T>
Kernel<T> select_kernel() {
  constexpr int VW = 16 / sizeof(T);  // lanes of a 128-bit vector
#if DEEPNUM_GEMM_LEVELS
  const std::string_view level = simd_level();
  if (level == "avx512") return make_kernel<Avx512, T, 8, 2, 4 * VW>();
  if (level == "avx2") return make_kernel<Avx2, T, 6, 2, 2 * VW>();
#endif
  return make_kernel<Baseline, T, 6, 2, VW>();
}

// A 64-byte aligned scratch buffer of n elements, owned by the calling thread and reused.
template <class T>
T* scratch(std::vector<T>& buf, i64 n) {
  const i64 pad = 64 / static_cast<i64>(sizeof(T));
  if (static_cast<i64>(buf.size()) < n + pad) buf.resize(n + pad);
  const auto addr = reinterpret_cast<std::uintptr_t>(buf.data());
  return buf.data() + ((64 - addr % 64) % 64) / sizeof(T);
}

// Rows [i0, i1) x columns [j0, j1) of c (M,N), serially on the calling thread.
template <class T>
void gemm_rect(const Kernel<T>& kn, T* c, View<T> A, View<T> B, i64 N, i64 K, i64 i0, i64 i1, i64 j0, i64 j1) {
  static thread_local std::vector<T> a_buf, b_buf;
  const i64 kc_max = std::min(kn.kc, K);
  T* ap = scratch(a_buf, (std::min(kn.mc, i1 - i0) + kn.mr) * kc_max);
  T* bp = scratch(b_buf, (std::min(kn.nc, j1 - j0) + kn.nr) * kc_max);
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

// A grid of rows x cols rectangles of whole tiles, one per thread, for at most `threads`
// threads: the grid whose largest rectangle is smallest, then the squarest.
struct Grid {
  i64 rows, cols;
};

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

}  // namespace

template <class T>
void gemm_strided(T* c, const T* a, i64 a_rs, i64 a_cs, const T* b, i64 b_rs, i64 b_cs, i64 M, i64 N, i64 K) {
  // c is (M,N) contiguous; op(a)(i,k) = a[i·a_rs + k·a_cs], op(b)(k,j) = b[k·b_rs + j·b_cs], one stride of each 1
  const View<T> A{a, a_rs, a_cs}, B{b, b_rs, b_cs};
  if ((M <= kSmallM || K <= kSmallM) && B.cs == 1)
    gemm_small_m(c, A, B, M, N, K);
  else if (N <= kSmallM && A.rs == 1)
    gemm_transposed_small_m(c, A, B, M, N, K);
  else if ((N <= kSkinnyN || M < kDirectSize) && A.cs == 1)
    gemm_skinny_n(c, A, B, M, N, K);
  else if (M < kDirectSize || N < kDirectSize)
    gemm_direct_parallel(c, A, B, M, N, K);
  else
    gemm_blocked(c, A, B, M, N, K);
}

template <class T>
void gemm(T* c, const T* a, const T* b, bool trans_a, bool trans_b, i64 M, i64 N, i64 K) {
  // c is (M,N); a is (M,K), or (K,M) if trans_a; b is (K,N), or (N,K) if trans_b
  gemm_strided(c, a, trans_a ? 1 : K, trans_a ? M : 1, b, trans_b ? 1 : N, trans_b ? K : 1, M, N, K);
}

template void gemm_strided<float>(float*, const float*, i64, i64, const float*, i64, i64, i64, i64, i64);
template void gemm_strided<double>(double*, const double*, i64, i64, const double*, i64, i64, i64, i64, i64);
template void gemm<float>(float*, const float*, const float*, bool, bool, i64, i64, i64);
template void gemm<double>(double*, const double*, const double*, bool, bool, i64, i64, i64);

}  // namespace deepnum
