/* dropout: inverted dropout with the counter-based random stream of cpp/dropout.cpp, on the device.
 *   forward:  u_i = splitmix64(seed + (i+1)·0x9E3779B97F4A7C15) >> 11, times 2^-53 (ew::dropout_uniform in
 *             elementwise.h); mask_i = u_i >= p ? 1/(1-p) : 0; y = x·mask. The same mask as every other backend.
 *   backward: dx = dy·mask.
 * Layout: any shape, n elements, C-contiguous; grid-stride loops.
 */
#include "common.cuh"
#include "elementwise.h"

namespace deepnum {
namespace cuda {
namespace {

template <class T>
__global__ void dropout_forward_kernel(T* y, T* mask, const T* x, double p, std::uint64_t seed, T scale, i64 n) {
  for (i64 i = grid_start(); i < n; i += grid_stride()) {
    const T m = ew::dropout_mask(seed, i, p, scale);
    const T xi = x[i];
    mask[i] = m;
    y[i] = xi * m;
  }
}

template <class T>
__global__ void dropout_backward_kernel(T* dx, const T* dy, const T* mask, i64 n) {
  for (i64 i = grid_start(); i < n; i += grid_stride()) dx[i] = dy[i] * mask[i];
}

}  // namespace
}  // namespace cuda

using namespace cuda;  // the helpers of common.cuh and this file

template <class T>
void dropout_forward(T* y, T* mask, const T* x, double p, std::uint64_t seed, i64 n) {
  // x, y and mask are (n,) in any shape
  launch<dropout_forward_kernel<T>>(blocks_for(n), kThreads, y, mask, x, p, seed, static_cast<T>(1.0 / (1.0 - p)), n);
}

template <class T>
void dropout_backward(T* dx, const T* dy, const T* mask, i64 n) {
  // dy, mask and dx are (n,) in any shape
  launch<dropout_backward_kernel<T>>(blocks_for(n), kThreads, dx, dy, mask, n);
}

DEEPNUM_INSTANTIATE(dropout_forward);
DEEPNUM_INSTANTIATE(dropout_backward);

}  // namespace deepnum
