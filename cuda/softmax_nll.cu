/* softmax_nll: softmax over classes fused with the negative log-likelihood of the labels, on the device.
 *   forward:  probs = softmax(logits) row by row, with the row maximum subtracted first; returns the mean over
 *             rows of log(sum exp(l - max)) - (l[label] - max) (elementwise pieces in elementwise.h).
 *   backward: dlogits = (probs - onehot(labels)) / N.
 * Layout: logits, probs, dlogits (N, n_classes); labels (N) int64.
 * Forward: one warp per row (4 rows per block); each lane takes every 32nd class in order and the lanes are
 * combined with a fixed shuffle tree, so the result is deterministic. The per-row losses (double) are summed by
 * one block in a fixed order and the mean is copied to the host (the op returns a Python float).
 * Labels are checked on the device first (a flag copied back): a bad one throws check_labels's std::invalid_argument (cpp/ranges.h) before
 * anything is written, as in cpp/softmax_nll.cpp.
 */
#include <vector>

#include "common.cuh"
#include "elementwise.h"

namespace deepnum {
namespace cuda {
namespace {

constexpr int kWarp = 32, kRowsPerBlock = 4;

__global__ void label_range_kernel(int* bad, const i64* labels, i64 N, i64 n_classes) {
  for (i64 i = grid_start(); i < N; i += grid_stride())
    if (labels[i] < 0 || labels[i] >= n_classes) *bad = 1;  // every writer stores the same value
}

// The range check on the device (a flag copied back); when it is raised, ranges.h's check_labels on a host copy
// names the first bad label, with the message of the C++ kernels and of deepnum._contract.
void check_labels_on_device(const i64* labels, i64 N, i64 n_classes, const char* op) {
  Flag bad;
  launch<label_range_kernel>(blocks_for(N), kThreads, bad.ptr(), labels, N, n_classes);
  if (!bad.raised()) return;
  std::vector<i64> host(N);
  copy_to_host(host.data(), labels, sizeof(i64) * N);
  check_labels(op, host.data(), N, n_classes);
  throw std::runtime_error(std::string(op) + ": the device found a bad label that its host copy does not have");
}

template <class T>
__device__ inline T warp_max(T v) {
  for (int off = kWarp / 2; off > 0; off /= 2) v = ew::max_(v, __shfl_down_sync(0xffffffffu, v, off));
  return __shfl_sync(0xffffffffu, v, 0);
}

template <class T>
__device__ inline T warp_sum(T v) {
  for (int off = kWarp / 2; off > 0; off /= 2) v += __shfl_down_sync(0xffffffffu, v, off);
  return __shfl_sync(0xffffffffu, v, 0);
}

template <class T>
__global__ void softmax_rows_kernel(T* probs, double* row_loss, const T* logits, const i64* labels, i64 N, i64 n) {
  const int lane = threadIdx.x % kWarp;
  const i64 warp = static_cast<i64>(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  const i64 warps = static_cast<i64>(gridDim.x) * kRowsPerBlock;
  for (i64 i = warp; i < N; i += warps) {  // the whole warp takes the same rows: shuffles are uniform
    const T* l = logits + i * n;
    T m = l[0];
    for (i64 j = lane; j < n; j += kWarp) m = ew::max_(m, l[j]);
    m = warp_max(m);
    T s = T(0);
    for (i64 j = lane; j < n; j += kWarp) s += ew::softmax_term(l[j], m);
    s = warp_sum(s);
    for (i64 j = lane; j < n; j += kWarp) probs[i * n + j] = ew::softmax_term(l[j], m) / s;
    if (lane == 0) row_loss[i] = static_cast<double>(ew::nll(s, l[labels[i]] - m));
  }
}

// out[0] = sum of x[0..n) in a fixed order (one block)
__global__ void sum_kernel(double* out, const double* x, i64 n) {
  __shared__ double shared[kThreads];
  double acc = 0.0;
  for (i64 i = threadIdx.x; i < n; i += blockDim.x) acc += x[i];
  const double s = block_sum(acc, shared);
  if (threadIdx.x == 0) out[0] = s;
}

template <class T>
__global__ void softmax_grad_kernel(T* dlogits, const T* probs, const i64* labels, i64 N, i64 n) {
  const T count = static_cast<T>(N);
  for (i64 e = grid_start(); e < N * n; e += grid_stride())
    dlogits[e] = ew::softmax_nll_grad(probs[e], e % n == labels[e / n], count);
}

}  // namespace
}  // namespace cuda

using namespace cuda;  // the helpers of common.cuh and this file

template <class T>
double softmax_nll_forward(T* probs, const T* logits, const i64* labels, i64 N, i64 n_classes) {
  // logits and probs are (N,n_classes), labels is (N,)
  check_labels_on_device(labels, N, n_classes, "softmax_nll_forward");
  Buffer row_loss(sizeof(double) * N), total(sizeof(double));
  const unsigned blocks =
      static_cast<unsigned>(std::clamp<i64>((N + kRowsPerBlock - 1) / kRowsPerBlock, 1, limits().max_blocks));
  launch<softmax_rows_kernel<T>>(blocks, kRowsPerBlock * kWarp, probs, row_loss.as<double>(), logits, labels, N,
                                 n_classes);
  launch<sum_kernel>(1, kThreads, total.as<double>(), row_loss.as<double>(), N);
  double sum = 0.0;
  copy_to_host(&sum, total.data(), sizeof(double));
  return sum / static_cast<double>(N);
}

template <class T>
void softmax_nll_backward(T* dlogits, const T* probs, const i64* labels, i64 N, i64 n_classes) {
  // probs and dlogits are (N,n_classes), labels is (N,)
  check_labels_on_device(labels, N, n_classes, "softmax_nll_backward");
  launch<softmax_grad_kernel<T>>(blocks_for(N * n_classes), kThreads, dlogits, probs, labels, N, n_classes);
}

DEEPNUM_INSTANTIATE(softmax_nll_forward);
DEEPNUM_INSTANTIATE(softmax_nll_backward);

}  // namespace deepnum
