/* activations: elementwise nonlinearities on the device, codes as in cpp/kernels.h (Activation).
 *   forward:  linear, sigmoid, tanh, relu, leaky_relu of x;  backward: dx from dy through the saved output y.
 * The per-element formulas are ew::activation_forward / activation_backward in elementwise.h (shared with the
 * host copies that the CPU tests check). Layout: any shape, n elements, C-contiguous; grid-stride loops.
 */
#include "common.cuh"
#include "elementwise.h"

namespace deepnum {
namespace cuda {
namespace {

template <class T>
__global__ void activation_forward_kernel(T* y, const T* x, int act, T alpha, i64 n) {
  for (i64 i = grid_start(); i < n; i += grid_stride()) y[i] = ew::activation_forward(x[i], act, alpha);
}

template <class T>
__global__ void activation_backward_kernel(T* dx, const T* y, const T* dy, int act, T alpha, i64 n) {
  for (i64 i = grid_start(); i < n; i += grid_stride()) dx[i] = ew::activation_backward(y[i], dy[i], act, alpha);
}

}  // namespace
}  // namespace cuda

using namespace cuda;  // the helpers of common.cuh and this file

template <class T>
void activation_forward(T* y, const T* x, int act, double alpha, i64 n) {
  // x and y are (n,) in any shape
  launch<activation_forward_kernel<T>>(blocks_for(n), kThreads, y, x, act, static_cast<T>(alpha), n);
}

template <class T>
void activation_backward(T* dx, const T* y, const T* dy, int act, double alpha, i64 n) {
  // y, dy and dx are (n,) in any shape
  launch<activation_backward_kernel<T>>(blocks_for(n), kThreads, dx, y, dy, act, static_cast<T>(alpha), n);
}

DEEPNUM_INSTANTIATE(activation_forward);
DEEPNUM_INSTANTIATE(activation_backward);

}  // namespace deepnum
