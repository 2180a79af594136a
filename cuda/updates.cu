/* updates: fused in-place optimizer steps over n parameters on the device (one pass, elementwise).
 *   sgd:  g = grad + wd·param; with a velocity buffer v = momentum·v + g, then g = g + momentum·v (nesterov) or
 *         g = v; param -= lr·g
 *   adam: g = grad + wd·param; m = b1·m + (1-b1)·g; v = b2·v + (1-b2)·g·g;
 *         param -= lr·(m/c1) / (sqrt(v/c2) + eps), with c1 = 1 - b1^step, c2 = 1 - b2^step
 * Scalars are rounded to T once on the host (bias corrections computed in double first), as in cpp/updates.cpp;
 * the per-element steps are ew::sgd_step / adam_step in elementwise.h. Layout: (n,) in any shape.
 */
#include <cmath>

#include "common.cuh"
#include "elementwise.h"

namespace deepnum {
namespace cuda {
namespace {

template <class T>
__global__ void sgd_kernel(T* param, T* velocity, const T* grad, T lr, T momentum, bool nesterov, T wd, i64 n) {
  for (i64 i = grid_start(); i < n; i += grid_stride())
    ew::sgd_step(param[i], velocity ? velocity + i : nullptr, grad[i], lr, momentum, nesterov, wd);
}

template <class T>
__global__ void adam_kernel(T* param, T* m, T* v, const T* grad, T lr, T b1, T one_b1, T b2, T one_b2, T eps, T wd,
                            T c1, T c2, i64 n) {
  for (i64 i = grid_start(); i < n; i += grid_stride())
    ew::adam_step(param[i], m[i], v[i], grad[i], lr, b1, one_b1, b2, one_b2, eps, wd, c1, c2);
}

}  // namespace
}  // namespace cuda

using namespace cuda;  // the helpers of common.cuh and this file

template <class T>
void sgd_update(T* param, T* velocity, const T* grad, double lr, double momentum, bool nesterov, double weight_decay,
                i64 n) {
  // param, grad and velocity (when not nullptr) are (n,) in any shape
  launch<sgd_kernel<T>>(blocks_for(n), kThreads, param, velocity, grad, static_cast<T>(lr), static_cast<T>(momentum),
                        nesterov, static_cast<T>(weight_decay), n);
}

template <class T>
void adam_update(T* param, T* m, T* v, const T* grad, double lr, double beta1, double beta2, double eps,
                 double weight_decay, i64 step, i64 n) {
  // param, m, v and grad are (n,) in any shape; step >= 1
  const T c1 = static_cast<T>(1.0 - std::pow(beta1, static_cast<double>(step)));
  const T c2 = static_cast<T>(1.0 - std::pow(beta2, static_cast<double>(step)));
  launch<adam_kernel<T>>(blocks_for(n), kThreads, param, m, v, grad, static_cast<T>(lr), static_cast<T>(beta1),
                         static_cast<T>(1.0 - beta1), static_cast<T>(beta2), static_cast<T>(1.0 - beta2),
                         static_cast<T>(eps), static_cast<T>(weight_decay), c1, c2, n);
}

DEEPNUM_INSTANTIATE(sgd_update);
DEEPNUM_INSTANTIATE(adam_update);

}  // namespace deepnum
