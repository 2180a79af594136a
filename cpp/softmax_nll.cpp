/* softmax_nll: softmax over classes fused with the negative log-likelihood of the labels.
 *   forward:  probs = softmax(logits) row by row, with the row maximum subtracted first (finite
 *             for any finite logits); returns mean over rows of log(sum exp(l - max)) - (l[label] - max).
 *   backward: dlogits = (probs - onehot(labels)) / N.
 * Layout: logits, probs, dlogits (N, n_classes); labels (N) int64. Parallel over rows; the
 * per-row losses are summed serially in double, so the loss does not depend on the thread count.
 * Labels are checked before anything is written.
 */
#include <cmath>
#include <string>
#include <vector>

#include "kernels.h"
#include "parallel.h"

namespace deepnum {
namespace {

// probs = softmax of one row of n logits; returns the row's loss log(sum exp(l - max)) - (l[label] - max).
template <class T>
T softmax_row(T* probs, const T* l, i64 label, i64 n) {
  T m = l[0];
  for (i64 j = 1; j < n; ++j) m = l[j] > m ? l[j] : m;
  const T target = l[label] - m;  // read before probs is written: probs may alias logits
  T s = T(0);
  for (i64 j = 0; j < n; ++j) {
    probs[j] = std::exp(l[j] - m);
    s += probs[j];
  }
  for (i64 j = 0; j < n; ++j) probs[j] /= s;
  return std::log(s) - target;
}

}  // namespace

void check_labels(const char* op, const i64* labels, i64 N, i64 n_classes) {
  for (i64 i = 0; i < N; ++i)
    if (labels[i] < 0 || labels[i] >= n_classes)
      throw std::invalid_argument(std::string(op) + ": labels must lie in [0, " + std::to_string(n_classes) +
                                  "), got " + std::to_string(labels[i]) + " at row " + std::to_string(i));
}

template <class T>
double softmax_nll_forward(T* probs, const T* logits, const i64* labels, i64 N, i64 n_classes) {
  // logits and probs are (N,n_classes), labels is (N,)
  check_labels("softmax_nll_forward", labels, N, n_classes);
  std::vector<double> loss(N);
#pragma omp parallel for if (N * n_classes > kParallelMin)
  for (i64 i = 0; i < N; ++i)
    loss[i] = static_cast<double>(softmax_row(probs + i * n_classes, logits + i * n_classes, labels[i], n_classes));
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

template double softmax_nll_forward<float>(float*, const float*, const i64*, i64, i64);
template double softmax_nll_forward<double>(double*, const double*, const i64*, i64, i64);
template void softmax_nll_backward<float>(float*, const float*, const i64*, i64, i64);
template void softmax_nll_backward<double>(double*, const double*, const i64*, i64, i64);

}  // namespace deepnum
