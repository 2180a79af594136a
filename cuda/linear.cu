/* linear: fully connected layer on a batch, built on gemm.
 *   forward:  y = x · w + b
 *   backward: dx = dy · wᵀ, dw = xᵀ · dy, db = sum of dy over the batch (all written with `=`)
 * Layout: x (N,n_in), w (n_in,n_out), b (n_out), y (N,n_out), row-major on the device.
 * column_sums: a block owns 32 columns; its 32 x 8 threads each sum every 8th row of one column in double,
 * then the 8 partial sums are added in a fixed order: deterministic, no atomics.
 */
#include "common.cuh"
#include "../cpp/linear_backward.h"

namespace deepnum {
namespace cuda {
namespace {

constexpr int kCols = 32, kRowLanes = 8;

template <class T>
__global__ void add_bias_kernel(T* y, const T* b, i64 rows, i64 n) {
  const i64 total = rows * n;
  for (i64 i = grid_start(); i < total; i += grid_stride()) y[i] += b[i % n];
}

template <class T>
__global__ void column_sums_kernel(T* db, const T* dy, i64 rows, i64 n) {
  __shared__ double part[kRowLanes][kCols];
  const int tx = threadIdx.x % kCols, ty = threadIdx.x / kCols;
  for (i64 j0 = static_cast<i64>(blockIdx.x) * kCols; j0 < n; j0 += static_cast<i64>(gridDim.x) * kCols) {
    const i64 j = j0 + tx;
    double acc = 0.0;
    if (j < n)
      for (i64 r = ty; r < rows; r += kRowLanes) acc += static_cast<double>(dy[r * n + j]);
    part[ty][tx] = acc;
    __syncthreads();
    if (ty == 0 && j < n) {
      double s = part[0][tx];
      for (int l = 1; l < kRowLanes; ++l) s += part[l][tx];
      db[j] = static_cast<T>(s);
    }
    __syncthreads();
  }
}

}  // namespace
}  // namespace cuda

using namespace cuda;  // the helpers of common.cuh and this file

template <class T>
void column_sums(T* db, const T* dy, i64 rows, i64 n) {
  // dy is (rows,n), db is (n,)
  if (n <= 0) return;
  launch<column_sums_kernel<T>>(blocks_for(n, kCols), kCols * kRowLanes, db, dy, rows, n);
}

template <class T>
void linear_forward(T* y, const T* x, const T* w, const T* b, i64 N, i64 n_in, i64 n_out) {
  // x is (N,n_in), w is (n_in,n_out), b is (n_out,), y is (N,n_out)
  gemm(y, x, w, false, false, N, n_out, n_in);
  launch<add_bias_kernel<T>>(blocks_for(N * n_out), kThreads, y, b, N, n_out);
}

DEEPNUM_INSTANTIATE(column_sums);
DEEPNUM_INSTANTIATE(linear_forward);
DEEPNUM_INSTANTIATE(linear_backward);

}  // namespace deepnum
