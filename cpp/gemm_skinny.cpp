/* gemm, skinny-N path: c (M,N) = A · B for skinny N or small M with the rows of A contiguous in k (a narrow
 * layer's forward, a convolution's dw, dy·wᵀ for one sample): dot products of A rows with the rows of Bᵀ
 * (read in place when b is stored transposed, else packed N x K; a last partial group of columns is copied,
 * zero-padded), each c element summed in VW interleaved partial sums that are added pairwise in vector
 * registers, then the tail of k in order.
 * Variants: one per SIMD level (gemm_internal.h), tiles of 4 (AVX-512) or 2 rows x 4 columns.
 * Each thread takes one contiguous range of rows of c.
 */
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>

#include "gemm_internal.h"
#include "parallel.h"

namespace deepnum::gemm_detail {
namespace {

// The shuffle that halves groups of 2H lanes of two vectors x, y of VW lanes: lane p of the result takes lane
// (group·2H + p % H) + Hi·H of x (p < VW/2) or of y (p >= VW/2), group = (p % (VW/2)) / H.
// sum = that shuffle for Hi = 0 plus the one for Hi = 1. (__builtin_shufflevector, with the lanes as constants: GCC 12
// and clang; the vectors by reference, as a vector argument or result wider than the baseline's changes the ABI.)
template <class V, int VW, int H, std::size_t... P>
[[gnu::always_inline]] inline void add_halves(V& sum, const V& x, const V& y, std::index_sequence<P...>) {
  const V lo = __builtin_shufflevector(x, y, ((P < VW / 2 ? 0 : VW) + (P % (VW / 2)) / H * 2 * H + P % H)...);
  const V hi = __builtin_shufflevector(x, y, ((P < VW / 2 ? 0 : VW) + (P % (VW / 2)) / H * 2 * H + P % H + H)...);
  sum = lo + hi;
}

// v[0..n) (n = VW at the first level, H = VW/2) -> v[0] whose lane l is the sum of the lanes of input l,
// added as the scalar tree lanes[l] += lanes[l + w] for w = VW/2, ..., 1 would: each level adds the upper
// half of every group of 2H lanes to its lower half, two vectors at a time, and packs the results.
template <class V, int VW, int H>
[[gnu::always_inline]] inline void reduce_lanes(V* v, int n) {
  if constexpr (H >= 1) {
    constexpr auto lanes = std::make_index_sequence<VW>{};
    for (int i = 0; i < n / 2; ++i) add_halves<V, VW, H>(v[i], v[2 * i], v[2 * i + 1], lanes);
    reduce_lanes<V, VW, H / 2>(v, n / 2);
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
    reduce_lanes<V, VW, VW / 2>(acc + q, VW);
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

template <class T>
struct SkinnyKernel {
  void (*run)(T* c, View<T> A, const T* bt, const T* tail, i64 N, i64 K, i64 i0, i64 i1);
  i64 ng;
};

// Tiles of R rows x NG columns: R·NG accumulators + R + NG loaded vectors in 32 (AVX-512) or 16 registers.
template <class T>
SkinnyKernel<T> select_skinny_kernel() {
  return for_cpu_level([](auto level) {
    using L = decltype(level);
    constexpr int VW = L::kVectorBytes / sizeof(T), R = L::kRegisters == 32 ? 4 : 2;
    return SkinnyKernel<T>{&L::template run<skinny_rows<T, R, 4, VW>>, 4};
  });
}

}  // namespace

template <class T>
void gemm_skinny_n(T* c, View<T> A, View<T> B, i64 M, i64 N, i64 K) {
  static const SkinnyKernel<T> kn = select_skinny_kernel<T>();
  const i64 whole = N / kn.ng * kn.ng;
  const T* bt = B.p;
  if (B.rs != 1 || B.cs != K) {  // op(b)ᵀ is not stored as K-long rows: pack it
    T* packed = thread_scratch<T, kSlotSkinnyB>(whole * K);
    for (i64 j = 0; j < whole; ++j)
      for (i64 k = 0; k < K; ++k) packed[j * K + k] = B(k, j);
    bt = packed;
  }
  T* tail = thread_scratch<T, kSlotSkinnyTail>(kn.ng * K);
  std::fill(tail, tail + kn.ng * K, T(0));
  for (i64 j = whole; j < N; ++j)
    for (i64 k = 0; k < K; ++k) tail[(j - whole) * K + k] = B(k, j);
  ranges_on_threads(std::min(threads_for(M * N * K), M), M,
                    [&](i64 r0, i64 r1) { kn.run(c, A, bt, tail, N, K, r0, r1); });
}

DEEPNUM_INSTANTIATE(gemm_skinny_n);

}  // namespace deepnum::gemm_detail
