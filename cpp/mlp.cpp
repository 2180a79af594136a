/* mlp: one fused training step of a multilayer perceptron — Dense layers, a softmax-NLL head and
 * plain SGD with weight decay — in a single call, for the small batches where per-call overhead
 * would dominate a step:
 *   forward   a_l = act_l(a_{l-1} · w_l + b_l), a_0 = x; probs = softmax(a_L); loss = mean NLL
 *   backward  dz_l = act_l'(a_l) ⊙ d_l (d_L = dlogits), d_{l-1} = dz_l · w_lᵀ (not for l = 1),
 *             dw_l = a_{l-1}ᵀ · dz_l, db_l = column sums of dz_l
 *   update    w_l -= lr · (dw_l + weight_decay · w_l), b_l -= lr · db_l, each layer right after its
 *             backward (d_{l-1} is computed from the old w_l first)
 * It is a composition of the kernels of linear.cpp, activations.cpp, softmax_nll.cpp and
 * updates.cpp in the order the layer-by-layer path (deepnum.nn + optim.SGD) calls them, so the
 * two give bit-identical parameters. A linear activation is the identity and is skipped. A loss
 * that is not finite is returned without touching the parameters.
 * Layout: x (N, n_0); w_l (n_{l-1}, n_l); b_l (n_l); labels (N) in [0, n_L). Scratch buffers
 * belong to the calling thread and are reused across steps.
 */
#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels.h"

namespace deepnum {

template <class T>
double mlp_train_step(T* const* ws, T* const* bs, const int* acts, const i64* sizes, i64 layers, const T* x,
                      const i64* labels, i64 N, double lr, double weight_decay, double alpha) {
  // sizes has layers + 1 entries: w_l is (sizes[l-1], sizes[l]) for l = 1..layers
  static thread_local std::vector<T> act_buf, d_buf, dprev_buf, dw_buf, db_buf;
  i64 total = 0, widest = 0, largest_w = 0;
  for (i64 l = 1; l <= layers; ++l) {
    total += N * sizes[l];
    widest = std::max(widest, sizes[l]);
    largest_w = std::max(largest_w, sizes[l - 1] * sizes[l]);
  }
  act_buf.resize(total + N * sizes[layers]);  // every a_l, then probs
  d_buf.resize(N * widest);
  dprev_buf.resize(N * widest);
  dw_buf.resize(largest_w);
  db_buf.resize(widest);

  std::vector<T*> a(layers + 1);
  T* next = act_buf.data();
  for (i64 l = 1; l <= layers; ++l, next += N * sizes[l - 1]) a[l] = next;
  T* probs = next;

  const T* in = x;
  for (i64 l = 1; l <= layers; ++l) {
    linear_forward(a[l], in, ws[l - 1], bs[l - 1], N, sizes[l - 1], sizes[l]);
    if (acts[l - 1] != kLinear) activation_forward(a[l], a[l], acts[l - 1], alpha, N * sizes[l]);
    in = a[l];
  }
  const i64 classes = sizes[layers];
  const double loss = softmax_nll_forward(probs, a[layers], labels, N, classes);
  if (!std::isfinite(loss)) return loss;  // diverged: leave the parameters as they were

  T *d = d_buf.data(), *dprev = dprev_buf.data();
  softmax_nll_backward(d, probs, labels, N, classes);
  for (i64 l = layers; l >= 1; --l) {
    const i64 n_in = sizes[l - 1], n_out = sizes[l];
    if (acts[l - 1] != kLinear) activation_backward(d, a[l], d, acts[l - 1], alpha, N * n_out);
    linear_backward(l > 1 ? dprev : nullptr, dw_buf.data(), db_buf.data(), d, l > 1 ? a[l - 1] : x, ws[l - 1], N,
                    n_in, n_out);
    sgd_update(ws[l - 1], static_cast<T*>(nullptr), dw_buf.data(), lr, 0.0, false, weight_decay, n_in * n_out);
    sgd_update(bs[l - 1], static_cast<T*>(nullptr), db_buf.data(), lr, 0.0, false, 0.0, n_out);
    std::swap(d, dprev);
  }
  return loss;
}

template double mlp_train_step<float>(float* const*, float* const*, const int*, const i64*, i64, const float*,
                                      const i64*, i64, double, double, double);
template double mlp_train_step<double>(double* const*, double* const*, const int*, const i64*, i64, const double*,
                                       const i64*, i64, double, double, double);

}  // namespace deepnum
