/* arrays: the device array functions of deepnum._cudabackend.DEVICE, the twins of deepnum/_host.py's HostArrays,
 * which the training loop and the layers call per minibatch and per evaluation (bound in bindings.cpp as
 * _cuda.take_rows, _cuda.argmax, ...; argument checks there).
 *   take_rows:        out[i] = a[index[i]] (rows of the first axis; any dtype, moved in 8/4/2/1-byte units);
 *                     indices are checked on the device first (a flag copied back), a bad one is named
 *   swap01:           (A, B, inner) -> (B, A, inner), any dtype (batch-first <-> time-major)
 *   argmax_rows:      the first index of the largest entry of each row of (rows, n), int64 (a NaN wins, as NumPy)
 *   count_unequal:    how many a[i] != b[i] (int64 / float32 / float64; two dtypes compared as doubles, as NumPy)
 *   softmax_rows:     softmax of each row of (rows, n), the row maximum subtracted first (one thread per row)
 *   positive:         1 where z > 0 else 0, int64
 *   sigmoid_bce:      the mean of max(z, 0) - z·y + log1p(exp(-|z|)) (each term in T, summed in double)
 *   sigmoid_bce_grad: (probs - y) / n
 *   add_l1:           g + l1·sign(p)
 * Layout: C-contiguous; `rows`/`n` view an n-d array as (size / last axis, last axis). Grid-stride loops, so any
 * size runs with blocks_for's grid. Sums (count_unequal, sigmoid_bce) are deterministic: each thread sums its
 * grid-stride elements in order, each block its threads in block_sum's fixed tree (one partial per block), and one
 * block sums the partials in a fixed order; no atomics. Each of them copies one scalar back (a synchronising copy).
 */
#include <math.h>

#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "common.cuh"
#include "elementwise.h"

namespace deepnum {
namespace cuda {
namespace {

// ---- per-element arithmetic (the formulas of deepnum/_host.py) -------------------------------

using ew::exp_;
DN_HD inline float log1p_(float x) { return log1pf(x); }
DN_HD inline double log1p_(double x) { return log1p(x); }
DN_HD inline float abs_(float x) { return fabsf(x); }
DN_HD inline double abs_(double x) { return fabs(x); }

template <class T>
DN_HD inline T bce_term(T z, T y) {
  return (z > T(0) ? z : T(0)) - z * y + log1p_(exp_(-abs_(z)));
}

template <class A, class B>
DN_HD inline bool unequal(A a, B b) {
  if constexpr (std::is_same_v<A, B>) return a != b;
  else return static_cast<double>(a) != static_cast<double>(b);  // NumPy's int64/float32 comparison is in float64
}

template <class T>
DN_HD inline T sign_(T p) {  // np.sign: -1, 0, 1, and NaN for NaN
  return p > T(0) ? T(1) : p < T(0) ? T(-1) : p;
}

// ---- gathers and transposes (moved in units of U, 8/4/2/1 bytes) -----------------------------

__global__ void index_range_kernel(int* bad, const i64* index, i64 n_index, i64 n_rows) {
  for (i64 i = grid_start(); i < n_index; i += grid_stride())
    if (index[i] < 0 || index[i] >= n_rows) *bad = 1;  // every writer stores the same value
}

template <class U>
__global__ void take_rows_kernel(U* out, const U* a, const i64* index, i64 n_index, i64 row_units) {
  for (i64 e = grid_start(); e < n_index * row_units; e += grid_stride())
    out[e] = a[index[e / row_units] * row_units + e % row_units];
}

template <class U>
__global__ void swap01_kernel(U* out, const U* a, i64 A, i64 B, i64 inner) {
  // out is (B, A, inner), a is (A, B, inner); e walks out
  for (i64 e = grid_start(); e < A * B * inner; e += grid_stride()) {
    const i64 c = e % inner, t = e / inner, i = t % A, j = t / A;
    out[e] = a[(i * B + j) * inner + c];
  }
}

// The largest unit of 8, 4, 2, 1 bytes that divides `bytes` (row sizes; a view's offset is a multiple of its row).
template <class F>
void by_unit(i64 bytes, F&& f) {
  if (bytes % 8 == 0) return f(std::uint64_t{}, bytes / 8);
  if (bytes % 4 == 0) return f(std::uint32_t{}, bytes / 4);
  if (bytes % 2 == 0) return f(std::uint16_t{}, bytes / 2);
  return f(std::uint8_t{}, bytes);
}

// ---- rows of the last axis -------------------------------------------------------------------

template <class T>
__global__ void argmax_rows_kernel(i64* out, const T* a, i64 rows, i64 n) {
  for (i64 r = grid_start(); r < rows; r += grid_stride()) {
    const T* x = a + r * n;
    i64 best = 0;
    T m = x[0];
    for (i64 j = 1; j < n && m == m; ++j) {  // stops at the first NaN, which is NumPy's argmax
      if (x[j] > m || x[j] != x[j]) {
        m = x[j];
        best = j;
      }
    }
    out[r] = best;
  }
}

template <class T>
__global__ void softmax_rows_kernel(T* out, const T* z, i64 rows, i64 n) {
  for (i64 r = grid_start(); r < rows; r += grid_stride()) {
    const T* x = z + r * n;
    T m = x[0];
    for (i64 j = 1; j < n; ++j) m = x[j] > m || x[j] != x[j] ? x[j] : m;  // np.max: a NaN is the maximum
    T s = T(0);
    for (i64 j = 0; j < n; ++j) s += exp_(x[j] - m);
    for (i64 j = 0; j < n; ++j) out[r * n + j] = exp_(x[j] - m) / s;
  }
}

// ---- elementwise -----------------------------------------------------------------------------

template <class T>
__global__ void positive_kernel(i64* out, const T* z, i64 n) {
  for (i64 i = grid_start(); i < n; i += grid_stride()) out[i] = z[i] > T(0) ? 1 : 0;
}

template <class T>
__global__ void sigmoid_bce_grad_kernel(T* dz, const T* probs, const T* y, i64 n) {
  const T count = static_cast<T>(n);
  for (i64 i = grid_start(); i < n; i += grid_stride()) dz[i] = (probs[i] - y[i]) / count;
}

template <class T>
__global__ void add_l1_kernel(T* out, const T* g, const T* p, T l1, i64 n) {
  for (i64 i = grid_start(); i < n; i += grid_stride()) out[i] = g[i] + l1 * sign_(p[i]);
}

// ---- fixed-order sums: one partial per block, then one block over the partials ---------------

template <class A, class B>
__global__ void unequal_partials_kernel(double* partial, const A* a, const B* b, i64 n) {
  __shared__ double shared[kThreads];
  double count = 0.0;  // exact: a block counts far fewer than 2^53
  for (i64 i = grid_start(); i < n; i += grid_stride()) count += unequal(a[i], b[i]) ? 1.0 : 0.0;
  const double s = block_sum(count, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

template <class T>
__global__ void bce_partials_kernel(double* partial, const T* z, const T* y, i64 n) {
  __shared__ double shared[kThreads];
  double sum = 0.0;
  for (i64 i = grid_start(); i < n; i += grid_stride()) sum += static_cast<double>(bce_term(z[i], y[i]));
  const double s = block_sum(sum, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// The sum the launch of `partials` (one double per block of blocks_for(n)) and sum_in_order_kernel give, copied back.
template <class Partials>
double fixed_order_sum(i64 n, Partials&& partials) {
  const unsigned blocks = blocks_for(n);
  Buffer partial(sizeof(double) * blocks), total(sizeof(double));
  partials(blocks, partial.as<double>());
  launch<sum_in_order_kernel>(1, kThreads, total.as<double>(), partial.as<double>(), static_cast<i64>(blocks));
  double sum = 0.0;
  copy_to_host(&sum, total.data(), sizeof(double));
  return sum;
}

}  // namespace

void take_rows(void* out, const void* a, const i64* index, i64 n_index, i64 n_rows, i64 row_bytes) {
  // a is (n_rows, row_bytes) bytes, index is (n_index,), out is (n_index, row_bytes) bytes
  if (n_index == 0) return;
  Flag bad;
  launch<index_range_kernel>(blocks_for(n_index), kThreads, bad.ptr(), index, n_index, n_rows);
  if (bad.raised()) {
    std::vector<i64> host(n_index);
    copy_to_host(host.data(), index, sizeof(i64) * n_index);
    for (i64 i = 0; i < n_index; ++i)
      if (host[i] < 0 || host[i] >= n_rows)
        throw std::invalid_argument("take_rows: index must lie in [0, " + std::to_string(n_rows) + "), got " +
                                    std::to_string(host[i]) + " at position " + std::to_string(i));
    throw std::runtime_error("take_rows: the device found a bad index that its host copy does not have");
  }
  if (row_bytes == 0) return;
  by_unit(row_bytes, [&](auto unit, i64 row_units) {
    using U = decltype(unit);
    launch<take_rows_kernel<U>>(blocks_for(n_index * row_units), kThreads, static_cast<U*>(out),
                                static_cast<const U*>(a), index, n_index, row_units);
  });
}

void swap01(void* out, const void* a, i64 A, i64 B, i64 inner_bytes) {
  // a is (A, B, inner_bytes) bytes, out is (B, A, inner_bytes) bytes
  if (A * B * inner_bytes == 0) return;
  by_unit(inner_bytes, [&](auto unit, i64 inner) {
    using U = decltype(unit);
    launch<swap01_kernel<U>>(blocks_for(A * B * inner), kThreads, static_cast<U*>(out), static_cast<const U*>(a), A,
                             B, inner);
  });
}

template <class T>
void argmax_rows(i64* out, const T* a, i64 rows, i64 n) {
  // a is (rows, n) with n >= 1, out is (rows,)
  if (rows) launch<argmax_rows_kernel<T>>(blocks_for(rows), kThreads, out, a, rows, n);
}

template <class T>
void softmax_rows(T* out, const T* z, i64 rows, i64 n) {
  // z and out are (rows, n) with n >= 1
  if (rows) launch<softmax_rows_kernel<T>>(blocks_for(rows), kThreads, out, z, rows, n);
}

template <class A, class B>
i64 count_unequal(const A* a, const B* b, i64 n) {
  // a and b are (n,)
  if (n == 0) return 0;
  return static_cast<i64>(fixed_order_sum(n, [&](unsigned blocks, double* partial) {
    launch<unequal_partials_kernel<A, B>>(blocks, kThreads, partial, a, b, n);
  }));
}

template <class T>
void positive(i64* out, const T* z, i64 n) {
  // z and out are (n,)
  if (n) launch<positive_kernel<T>>(blocks_for(n), kThreads, out, z, n);
}

template <class T>
double sigmoid_bce(const T* z, const T* y, i64 n) {
  // z and y are (n,); the mean (NaN for n = 0, as NumPy's mean of nothing)
  if (n == 0) return NAN;
  return fixed_order_sum(n, [&](unsigned blocks, double* partial) {
           launch<bce_partials_kernel<T>>(blocks, kThreads, partial, z, y, n);
         }) / static_cast<double>(n);
}

template <class T>
void sigmoid_bce_grad(T* dz, const T* probs, const T* y, i64 n) {
  // probs, y and dz are (n,)
  if (n) launch<sigmoid_bce_grad_kernel<T>>(blocks_for(n), kThreads, dz, probs, y, n);
}

template <class T>
void add_l1(T* out, const T* g, const T* p, double l1, i64 n) {
  // g, p and out are (n,)
  if (n) launch<add_l1_kernel<T>>(blocks_for(n), kThreads, out, g, p, static_cast<T>(l1), n);
}

DEEPNUM_INSTANTIATE(argmax_rows);
DEEPNUM_INSTANTIATE(softmax_rows);
DEEPNUM_INSTANTIATE(positive);
DEEPNUM_INSTANTIATE(sigmoid_bce);
DEEPNUM_INSTANTIATE(sigmoid_bce_grad);
DEEPNUM_INSTANTIATE(add_l1);
#define DEEPNUM_COUNT_UNEQUAL(A, B) template i64 count_unequal<A, B>(const A*, const B*, i64);
#define DEEPNUM_COUNT_UNEQUAL_WITH(A) \
  DEEPNUM_COUNT_UNEQUAL(A, i64) DEEPNUM_COUNT_UNEQUAL(A, float) DEEPNUM_COUNT_UNEQUAL(A, double)
DEEPNUM_COUNT_UNEQUAL_WITH(i64)
DEEPNUM_COUNT_UNEQUAL_WITH(float)
DEEPNUM_COUNT_UNEQUAL_WITH(double)

}  // namespace cuda
}  // namespace deepnum
