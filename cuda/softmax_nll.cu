/* softmax_nll: softmax over classes fused with the negative log-likelihood of the labels, on the device.
 *   forward:  probs = softmax(logits) row by row, with the row maximum subtracted first; returns the mean over
 *             rows of log(sum exp(l - max)) - (l[label] - max) (elementwise pieces in elementwise.h).
 *   backward: dlogits = (probs - onehot(labels)) / N.
 * Layout: logits, probs, dlogits (N, n_classes); labels (N) int64.
 * Forward: one warp per row (4 rows per block); each lane takes every 32nd class in order and the lanes are
 * combined with a fixed shuffle tree, so the result is deterministic. The per-row losses (double) are summed by
 * one block in a fixed order into a LossRead, which also holds the labels' range flag: one copy brings both to
 * the host (the op returns a Python float, so it waits for the device anyway).
 * Labels are checked by the kernels that read them (no separate pass): a row with a bad label raises the flag
 * (common.cuh) and contributes no loss; the backward kernel raises it too, and is followed by one 4-byte read of
 * the flag (it has no other result to read). When the flag is raised the labels are copied to the host and
 * check_labels (cpp/ranges.h) throws the CPU's std::invalid_argument for the first bad one; the outputs written
 * so far are discarded with the exception, as nothing is returned.
 */
#include <stdexcept>
#include <string>
#include <vector>

#include "common.cuh"
#include "elementwise.h"

namespace deepnum {
namespace cuda {
namespace {

constexpr int kWarp = 32, kRowsPerBlock = 4;

// What softmax_nll_forward copies back, in one copy: the sum of the row losses and the labels' range flag.
struct LossRead {
  double sum;
  int bad_label;
};

// The flag was raised: ranges.h's check_labels on a host copy names the first bad label, with the message of the
// C++ kernels and of deepnum._contract.
[[noreturn]] void throw_bad_label(const i64* labels, i64 N, i64 n_classes, const char* op) {
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

// A row with a label outside [0, n) raises *bad and has loss 0 (never used: the op throws).
template <class T>
__global__ void softmax_nll_rows_kernel(T* probs, double* row_loss, int* bad, const T* logits, const i64* labels, i64 N,
                                    i64 n) {
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
    if (lane == 0) {
      const i64 label = labels[i];
      const bool ok = label >= 0 && label < n;
      if (!ok) raise_flag(bad);
      row_loss[i] = ok ? static_cast<double>(ew::nll(s, l[label] - m)) : 0.0;
    }
  }
}

// An element of a row with a label outside [0, n) raises *bad (its value is never used: the op throws).
template <class T>
__global__ void softmax_grad_kernel(T* dlogits, int* bad, const T* probs, const i64* labels, i64 N, i64 n) {
  const T count = static_cast<T>(N);
  for (i64 e = grid_start(); e < N * n; e += grid_stride()) {
    const i64 label = labels[e / n];
    if (label < 0 || label >= n) raise_flag(bad);
    dlogits[e] = ew::softmax_nll_grad(probs[e], e % n == label, count);
  }
}

}  // namespace
}  // namespace cuda

using namespace cuda;  // the helpers of common.cuh and this file

template <class T>
double softmax_nll_forward(T* probs, const T* logits, const i64* labels, i64 N, i64 n_classes) {
  // logits and probs are (N,n_classes), labels is (N,)
  Buffer row_loss(sizeof(double) * N), result(sizeof(LossRead));
  LossRead* out = result.as<LossRead>();
  fill_zero(out, sizeof(LossRead));  // the flag; the sum is written by sum_in_order_kernel
  const unsigned blocks =
      static_cast<unsigned>(std::clamp<i64>((N + kRowsPerBlock - 1) / kRowsPerBlock, 1, limits().max_blocks));
  launch<softmax_nll_rows_kernel<T>>(blocks, kRowsPerBlock * kWarp, probs, row_loss.as<double>(), &out->bad_label, logits,
                                 labels, N, n_classes);
  launch<sum_in_order_kernel>(1, kThreads, &out->sum, row_loss.as<double>(), N);
  LossRead host;
  copy_to_host(&host, out, sizeof(LossRead));
  if (host.bad_label) throw_bad_label(labels, N, n_classes, "softmax_nll_forward");
  return host.sum / static_cast<double>(N);
}

template <class T>
void softmax_nll_backward(T* dlogits, const T* probs, const i64* labels, i64 N, i64 n_classes) {
  // probs and dlogits are (N,n_classes), labels is (N,)
  Flag bad;
  launch<softmax_grad_kernel<T>>(blocks_for(N * n_classes), kThreads, dlogits, bad.ptr(), probs, labels, N,
                                 n_classes);
  if (bad.raised()) throw_bad_label(labels, N, n_classes, "softmax_nll_backward");
}

DEEPNUM_INSTANTIATE(softmax_nll_forward);
DEEPNUM_INSTANTIATE(softmax_nll_backward);

}  // namespace deepnum
