/* updates: fused in-place optimizer steps over n parameters (one pass, elementwise).
 *   sgd:  g = grad + wd·param; with a velocity buffer v = momentum·v + g, then g = g + momentum·v
 *         (nesterov) or g = v; param -= lr·g
 *   adam: g = grad + wd·param; m = b1·m + (1-b1)·g; v = b2·v + (1-b2)·g·g;
 *         param -= lr·(m/c1) / (sqrt(v/c2) + eps), with c1 = 1 - b1^step, c2 = 1 - b2^step
 * Scalars are rounded to T once (bias corrections computed in double first); the per-element
 * arithmetic is in T in the order of _reference.sgd_update / adam_update.
 * Layout: param, grad, velocity, m, v are (n,) in any shape, C-contiguous; sgd_update_rows (plain SGD on
 * rows of a sub-block, serial: the fused MLP step's chunks) takes row strides.
 */
#include <cmath>

#include "kernels.h"
#include "parallel.h"

namespace deepnum {
namespace {

template <class T>
DEEPNUM_SIMD void sgd_range(T* param, const T* grad, T lr, T wd, i64 lo, i64 hi) {
  for (i64 i = lo; i < hi; ++i) {
    const T g = grad[i] + wd * param[i];
    param[i] = param[i] - lr * g;
  }
}

// sgd_range's arithmetic on rows of a sub-block (one call: the per-call dispatch would cost more than a short row)
template <class T>
DEEPNUM_SIMD void sgd_rows(T* param, i64 ld_param, const T* grad, i64 ld_grad, i64 rows, i64 cols, T lr, T wd) {
  for (i64 r = 0; r < rows; ++r) {
    T* p = param + r * ld_param;
    const T* gr = grad + r * ld_grad;
    for (i64 i = 0; i < cols; ++i) {
      const T g = gr[i] + wd * p[i];
      p[i] = p[i] - lr * g;
    }
  }
}

template <class T>
DEEPNUM_SIMD void sgd_momentum_range(T* param, T* velocity, const T* grad, T lr, T momentum, bool nesterov, T wd,
                                     i64 lo, i64 hi) {
  for (i64 i = lo; i < hi; ++i) {
    const T g = grad[i] + wd * param[i];
    const T v = momentum * velocity[i] + g;
    velocity[i] = v;
    param[i] = param[i] - lr * (nesterov ? g + momentum * v : v);
  }
}

template <class T>
DEEPNUM_SIMD void adam_range(T* param, T* m, T* v, const T* grad, T lr, T b1, T one_b1, T b2, T one_b2, T eps,
                             T wd, T c1, T c2, i64 lo, i64 hi) {
  for (i64 i = lo; i < hi; ++i) {
    const T g = grad[i] + wd * param[i];
    const T mi = b1 * m[i] + one_b1 * g;
    const T vi = b2 * v[i] + one_b2 * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] = param[i] - lr * (mi / c1) / (std::sqrt(vi / c2) + eps);
  }
}

}  // namespace

template <class T>
void sgd_update(T* param, T* velocity, const T* grad, double lr, double momentum, bool nesterov, double weight_decay,
                i64 n) {
  // param, grad and velocity (when not nullptr) are (n,) in any shape
  const T t_lr = static_cast<T>(lr), t_mom = static_cast<T>(momentum), t_wd = static_cast<T>(weight_decay);
  if (velocity == nullptr) {
    parallel_ranges(n, n, [&](i64 lo, i64 hi) { sgd_range(param, grad, t_lr, t_wd, lo, hi); });
  } else {
    parallel_ranges(n, n, [&](i64 lo, i64 hi) {
      sgd_momentum_range(param, velocity, grad, t_lr, t_mom, nesterov, t_wd, lo, hi);
    });
  }
}

template <class T>
void sgd_update_rows(T* param, i64 ld_param, const T* grad, i64 ld_grad, i64 rows, i64 cols, double lr,
                     double weight_decay) {
  // param rows of cols values ld_param apart, grad rows ld_grad apart; on the calling thread
  sgd_rows(param, ld_param, grad, ld_grad, rows, cols, static_cast<T>(lr), static_cast<T>(weight_decay));
}

template <class T>
void adam_update(T* param, T* m, T* v, const T* grad, double lr, double beta1, double beta2, double eps,
                 double weight_decay, i64 step, i64 n) {
  // param, m, v and grad are (n,) in any shape; step >= 1
  const T c1 = static_cast<T>(1.0 - std::pow(beta1, static_cast<double>(step)));
  const T c2 = static_cast<T>(1.0 - std::pow(beta2, static_cast<double>(step)));
  parallel_ranges(n, n, [&](i64 lo, i64 hi) {
    adam_range(param, m, v, grad, static_cast<T>(lr), static_cast<T>(beta1), static_cast<T>(1.0 - beta1),
               static_cast<T>(beta2), static_cast<T>(1.0 - beta2), static_cast<T>(eps), static_cast<T>(weight_decay),
               c1, c2, lo, hi);
  });
}

DEEPNUM_INSTANTIATE(sgd_update);
DEEPNUM_INSTANTIATE(sgd_update_rows);
DEEPNUM_INSTANTIATE(adam_update);

}  // namespace deepnum
