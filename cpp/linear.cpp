/* linear: fully connected layer on a batch, built on gemm.
 *   forward:  y = x · w + b
 *   backward: dx = dy · wᵀ (skipped when dx is nullptr), dw = xᵀ · dy, db = sum of dy over the batch
 *             (all written with `=`)
 * Layout: x (N,n_in), w (n_in,n_out), b (n_out), y (N,n_out), row-major.
 * db sums each column over the batch in order, in double, in parallel over blocks of columns.
 */
#include <algorithm>

#include "kernels.h"
#include "linear_backward.h"
#include "parallel.h"

namespace deepnum {
namespace {

// y rows [r0, r1) += b
template <class T>
DEEPNUM_SIMD void add_bias_rows(T* y, const T* b, i64 r0, i64 r1, i64 n_out) {
  for (i64 r = r0; r < r1; ++r) {
    T* yr = y + r * n_out;
    for (i64 j = 0; j < n_out; ++j) yr[j] += b[j];
  }
}

// db[j] = sum over rows n of dy[n, j], for columns [j0, j1); rows in order, in double.
template <class T>
DEEPNUM_SIMD void column_sums_range(T* db, const T* dy, i64 N, i64 n_out, i64 j0, i64 j1) {
  constexpr i64 kBlock = 256;
  double acc[kBlock];
  for (i64 jb = j0; jb < j1; jb += kBlock) {
    const i64 nb = std::min(kBlock, j1 - jb);
    for (i64 j = 0; j < nb; ++j) acc[j] = 0.0;
    for (i64 n = 0; n < N; ++n) {
      const T* row = dy + n * n_out + jb;
      for (i64 j = 0; j < nb; ++j) acc[j] += static_cast<double>(row[j]);
    }
    for (i64 j = 0; j < nb; ++j) db[jb + j] = static_cast<T>(acc[j]);
  }
}

}  // namespace

template <class T>
void column_sums(T* db, const T* dy, i64 rows, i64 n) {
  // dy is (rows,n), db is (n,)
  parallel_ranges(n, rows * n, [&](i64 j0, i64 j1) { column_sums_range(db, dy, rows, n, j0, j1); });
}

template <class T>
void linear_forward(T* y, const T* x, const T* w, const T* b, i64 N, i64 n_in, i64 n_out) {
  // x is (N,n_in), w is (n_in,n_out), b is (n_out,), y is (N,n_out)
  gemm(y, x, w, false, false, N, n_out, n_in);
  parallel_ranges(N, N * n_out, [&](i64 r0, i64 r1) { add_bias_rows(y, b, r0, r1, n_out); });
}

DEEPNUM_INSTANTIATE(column_sums);
DEEPNUM_INSTANTIATE(linear_forward);
DEEPNUM_INSTANTIATE(linear_backward);

}  // namespace deepnum
