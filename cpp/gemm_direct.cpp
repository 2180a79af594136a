/* gemm, direct path: c (M,N) = A · B for the matrix-vector like shapes that no other path takes
 * (M or N below kDirectSize in gemm.cpp), with no packing. When the columns of B are contiguous each c
 * element is a dot product in kLanes interleaved partial sums; otherwise each c row accumulates
 * a(i,k)·(row k of B) over k in order. One source, compiled per SIMD level by DEEPNUM_SIMD
 * (target_clones); threads split the longer of the two dimensions of c.
 */
#include <algorithm>

#include "gemm_internal.h"
#include "parallel.h"

namespace deepnum::gemm_detail {
namespace {

constexpr int kLanes = 16;  // partial sums of a direct dot product

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

// Rows [i0, i1) x columns [j0, j1) of c (M,N) = A · B, serially.
template <class T>
DEEPNUM_SIMD void direct_rect(T* c, View<T> A, View<T> B, i64 N, i64 K, i64 i0, i64 i1, i64 j0, i64 j1) {
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

}  // namespace

template <class T>
void gemm_direct(T* c, View<T> A, View<T> B, i64 M, i64 N, i64 K) {
  // threads split the longer side
  ranges_on_threads(std::min(threads_for(M * N * K), std::max(M, N)), std::max(M, N), [&](i64 i0, i64 i1) {
    if (M > N)
      direct_rect(c, A, B, N, K, i0, i1, 0, N);
    else
      direct_rect(c, A, B, N, K, 0, M, i0, i1);
  });
}

DEEPNUM_INSTANTIATE(gemm_direct);

}  // namespace deepnum::gemm_detail
