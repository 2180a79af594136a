/* max_pool2d: max over (size_h, size_w) windows with stride, no padding, NCHW, on the device.
 *   forward:  one thread per output: y = max of the window at (p·sh, q·sw), argmax = h·W + w inside its (H,W)
 *             plane; the first maximum in row-major window order wins and a NaN wins over any number (the first
 *             NaN), as in cpp/pool.cpp and _reference.max_pool2d_forward.
 *   backward: dx = 0, then one thread per (n, c) plane adds dy at its argmax positions in (p, q) order, as
 *             cpp/pool.cpp does (the kernel signature carries no window size, so a dx element cannot find its
 *             windows to gather from): no atomics in the sums, deterministic. The argmax values are checked by
 *             that kernel as it reads them (no separate pass): one outside [0, H·W) is skipped and raises the
 *             range flag (common.cuh), read back by one 4-byte copy after the kernel (the op has no other result
 *             to read); then the argmax is copied to the host and check_argmax (cpp/ranges.h) throws the CPU's
 *             std::invalid_argument for the first bad one (dx is discarded with the exception).
 * Layout: x and dx (N,C,H,W), y, dy and argmax (N,C,P,Q).
 */
#include <stdexcept>
#include <vector>

#include "common.cuh"

namespace deepnum {
namespace cuda {
namespace {

template <class T>
__global__ void pool_forward_kernel(T* y, i64* argmax, const T* x, i64 NC, i64 H, i64 W, i64 P, i64 Q, i64 size_h,
                                    i64 size_w, i64 sh, i64 sw) {
  const i64 total = NC * P * Q;
  for (i64 e = grid_start(); e < total; e += grid_stride()) {
    const i64 nc = e / (P * Q), p = (e / Q) % P, q = e % Q;
    const T* plane = x + nc * H * W;
    const i64 h0 = p * sh, w0 = q * sw;
    T best = plane[h0 * W + w0];
    i64 best_idx = h0 * W + w0;
    for (i64 r = 0; r < size_h; ++r)
      for (i64 s = 0; s < size_w; ++s) {
        const i64 idx = (h0 + r) * W + w0 + s;
        const T v = plane[idx];
        if (v > best || (isnan(v) && !isnan(best))) {
          best = v;
          best_idx = idx;
        }
      }
    y[e] = best;
    argmax[e] = best_idx;
  }
}

// One thread per (n, c) plane: dx = 0 was written before; adds dy at the argmax positions in (p, q) order. An
// argmax outside [0, HW) is skipped and raises *bad.
template <class T>
__global__ void pool_backward_kernel(T* dx, int* bad, const T* dy, const i64* argmax, i64 NC, i64 HW, i64 PQ) {
  for (i64 nc = grid_start(); nc < NC; nc += grid_stride()) {
    T* d = dx + nc * HW;
    const T* g = dy + nc * PQ;
    const i64* am = argmax + nc * PQ;
    for (i64 j = 0; j < PQ; ++j) {
      const i64 a = am[j];
      if (a < 0 || a >= HW) {
        raise_flag(bad);
        continue;
      }
      d[a] += g[j];
    }
  }
}

}  // namespace
}  // namespace cuda

using namespace cuda;  // the helpers of common.cuh and this file

template <class T>
void max_pool2d_forward(T* y, i64* argmax, const T* x, i64 N, i64 C, i64 H, i64 W, i64 size_h, i64 size_w, i64 sh,
                        i64 sw) {
  // x is (N,C,H,W); y and argmax are (N,C,P,Q)
  const i64 P = (H - size_h) / sh + 1, Q = (W - size_w) / sw + 1;
  launch<pool_forward_kernel<T>>(blocks_for(N * C * P * Q), kThreads, y, argmax, x, N * C, H, W, P, Q, size_h, size_w,
                                 sh, sw);
}

template <class T>
void max_pool2d_backward(T* dx, const T* dy, const i64* argmax, i64 N, i64 C, i64 H, i64 W, i64 P, i64 Q) {
  // dy and argmax are (N,C,P,Q), dx is (N,C,H,W)
  Flag bad;
  fill_zero(dx, sizeof(T) * N * C * H * W);
  launch<pool_backward_kernel<T>>(blocks_for(N * C, 64), 64, dx, bad.ptr(), dy, argmax, N * C, H * W, P * Q);
  if (bad.raised()) {  // the first bad index, with the message of cpp/pool.cpp and deepnum._contract
    std::vector<i64> host(N * C * P * Q);
    copy_to_host(host.data(), argmax, sizeof(i64) * host.size());
    check_argmax("max_pool2d_backward", host.data(), N * C * P * Q, H * W);
    throw std::runtime_error("max_pool2d_backward: the device found a bad argmax that its host copy does not have");
  }
}

DEEPNUM_INSTANTIATE(max_pool2d_forward);
DEEPNUM_INSTANTIATE(max_pool2d_backward);

}  // namespace deepnum
