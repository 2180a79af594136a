/* softmax_nll: softmax over classes fused with the negative log-likelihood of the labels.
 *   forward:  probs = softmax(logits) row by row, with the row maximum subtracted first (finite
 *             for any finite logits); returns mean over rows of log(sum exp(l - max)) - (l[label] - max).
 *   backward: dlogits = (probs - onehot(labels)) / N.
 * float exp is activation_math.h's vectorisable exp_nonpositive (the argument is l - max <= 0).
 * Layout: logits, probs, dlogits (N, n_classes); labels (N) int64. Parallel over rows; the
 * per-row losses are summed serially in double, so the loss does not depend on the thread count.
 * Labels are checked before anything is written.
 */
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "activation_math.h"
#include "kernels.h"
#include "parallel.h"

namespace deepnum {
namespace {

constexpr i64 kRows = 64;  // rows of a block: their maxima and target logits fit in registers and L1

// probs = softmax of rows [r0, r1) of logits (n classes each) and loss[i] = log(sum exp(l - max)) - (l[label] - max).
// A block at a time: the row maxima and target logits first (probs may alias logits), then l - max, then exp
// over the whole block in one flat loop (float: the vectorisable exp_nonpositive of activation_math.h, within
// 2 ulp of expf; double: std::exp), then each row's sum, division and loss.
template <class T>
DEEPNUM_SIMD void softmax_rows(T* probs, const T* logits, const i64* labels, double* loss, i64 r0, i64 r1, i64 n) {
  T m[kRows], target[kRows];
  for (i64 b0 = r0; b0 < r1; b0 += kRows) {
    const i64 rows = std::min(kRows, r1 - b0);
    for (i64 i = 0; i < rows; ++i) {
      const T* l = logits + (b0 + i) * n;
      T mi = l[0];
      for (i64 j = 1; j < n; ++j) mi = l[j] > mi ? l[j] : mi;
      m[i] = mi;
      target[i] = l[labels[b0 + i]] - mi;
    }
    T* p = probs + b0 * n;
    for (i64 i = 0; i < rows; ++i)
      for (i64 j = 0; j < n; ++j) p[i * n + j] = logits[(b0 + i) * n + j] - m[i];
    for (i64 k = 0; k < rows * n; ++k) p[k] = exp_nonpositive(p[k]);
    for (i64 i = 0; i < rows; ++i) {
      T sum = T(0);
      for (i64 j = 0; j < n; ++j) sum += p[i * n + j];
      for (i64 j = 0; j < n; ++j) p[i * n + j] /= sum;
      loss[b0 + i] = static_cast<double>(std::log(sum) - target[i]);
    }
  }
}

}  // namespace

template <class T>
double softmax_nll_forward(T* probs, const T* logits, const i64* labels, i64 N, i64 n_classes) {
  // logits and probs are (N,n_classes), labels is (N,)
  check_labels("softmax_nll_forward", labels, N, n_classes);
  std::vector<double> loss(N);
  parallel_ranges(N, N * n_classes, [&](i64 r0, i64 r1) { softmax_rows(probs, logits, labels, loss.data(), r0, r1, n_classes); });
  double sum = 0.0;
  for (i64 i = 0; i < N; ++i) sum += loss[i];
  return sum / static_cast<double>(N);
}

template <class T>
void softmax_nll_backward(T* dlogits, const T* probs, const i64* labels, i64 N, i64 n_classes) {
  // probs and dlogits are (N,n_classes), labels is (N,)
  check_labels("softmax_nll_backward", labels, N, n_classes);
  const T n = static_cast<T>(N);
#pragma omp parallel for if (N * n_classes > kParallelMin)
  for (i64 i = 0; i < N; ++i) {
    const T* p = probs + i * n_classes;
    T* d = dlogits + i * n_classes;
    const T d_label = (p[labels[i]] - T(1)) / n;  // read before d is written: dlogits may alias probs
    for (i64 j = 0; j < n_classes; ++j) d[j] = p[j] / n;
    d[labels[i]] = d_label;
  }
}

DEEPNUM_INSTANTIATE(softmax_nll_forward);
DEEPNUM_INSTANTIATE(softmax_nll_backward);

}  // namespace deepnum
