/* activations: elementwise nonlinearities, codes as in kernels.h (Activation).
 *   forward:  linear x; sigmoid 1 / (1 + exp(-x)); tanh; relu (x <= 0 ? 0 : x);
 *             leaky_relu (x <= 0 ? alpha·x : x)
 *   backward: dx from dy through the saved output y: sigmoid dy·y·(1 - y); tanh dy·(1 - y·y);
 *             relu (y > 0 ? dy : 0); leaky_relu (y > 0 ? dy : alpha·dy)
 * Layout: any shape, n elements, C-contiguous; y may be x and dx may be dy (in place).
 * Float sigmoid and tanh are the vectorisable polynomials of activation_math.h (within 2 ulp), double
 * uses libm. Serial SIMD loops over contiguous slices, one slice per thread for large n.
 */
#include "activation_math.h"
#include "kernels.h"
#include "parallel.h"

namespace deepnum {
namespace {

template <class T>
DEEPNUM_SIMD void forward_range(T* y, const T* x, int act, T alpha, i64 lo, i64 hi) {
  switch (act) {
    case kLinear:
      for (i64 i = lo; i < hi; ++i) y[i] = x[i];
      break;
    case kSigmoid:
      for (i64 i = lo; i < hi; ++i) y[i] = sigmoid_(x[i]);
      break;
    case kTanh:
      for (i64 i = lo; i < hi; ++i) y[i] = tanh_(x[i]);
      break;
    case kRelu:
      for (i64 i = lo; i < hi; ++i) y[i] = x[i] <= T(0) ? T(0) : x[i];
      break;
    case kLeakyRelu:
      for (i64 i = lo; i < hi; ++i) y[i] = x[i] <= T(0) ? alpha * x[i] : x[i];
      break;
  }
}

template <class T>
DEEPNUM_SIMD void backward_range(T* dx, const T* y, const T* dy, int act, T alpha, i64 lo, i64 hi) {
  switch (act) {
    case kLinear:
      for (i64 i = lo; i < hi; ++i) dx[i] = dy[i];
      break;
    case kSigmoid:
      for (i64 i = lo; i < hi; ++i) dx[i] = dy[i] * y[i] * (T(1) - y[i]);
      break;
    case kTanh:
      for (i64 i = lo; i < hi; ++i) dx[i] = dy[i] * (T(1) - y[i] * y[i]);
      break;
    case kRelu:
      for (i64 i = lo; i < hi; ++i) dx[i] = y[i] > T(0) ? dy[i] : T(0);
      break;
    case kLeakyRelu:
      for (i64 i = lo; i < hi; ++i) dx[i] = y[i] > T(0) ? dy[i] : alpha * dy[i];
      break;
  }
}

}  // namespace

template <class T>
void activation_forward(T* y, const T* x, int act, double alpha, i64 n) {
  // x and y are (n,) in any shape
  parallel_ranges(n, n, [&](i64 lo, i64 hi) { forward_range(y, x, act, static_cast<T>(alpha), lo, hi); });
}

template <class T>
void activation_backward(T* dx, const T* y, const T* dy, int act, double alpha, i64 n) {
  // y, dy and dx are (n,) in any shape
  parallel_ranges(n, n, [&](i64 lo, i64 hi) { backward_range(dx, y, dy, act, static_cast<T>(alpha), lo, hi); });
}

DEEPNUM_INSTANTIATE(activation_forward);
DEEPNUM_INSTANTIATE(activation_backward);

}  // namespace deepnum
