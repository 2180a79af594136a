/* mlp: one fused training step of a multilayer perceptron — Dense layers, a softmax-NLL head and
 * plain SGD with weight decay — in a single call, for the small batches where per-call overhead
 * would dominate a step:
 *   forward   a_l = act_l(a_{l-1} · w_l + b_l), a_0 = x; probs = softmax(a_L); loss = mean NLL
 *   backward  dz_l = act_l'(a_l) ⊙ d_l (d_L = dlogits), d_{l-1} = dz_l · w_lᵀ (not for l = 1),
 *             dw_l = a_{l-1}ᵀ · dz_l, db_l = column sums of dz_l
 *   update    w_l -= lr · (dw_l + weight_decay · w_l), b_l -= lr · db_l, each layer right after its
 *             backward (d_{l-1} is computed from the old w_l first)
 * Two ways, chosen from the sizes alone (never from the thread count):
 *   - a first layer of at most kChunk outputs (logistic regression): the kernels of linear.cpp,
 *     activations.cpp, softmax_nll.cpp and updates.cpp in the order the layer-by-layer path
 *     (deepnum.nn + optim.SGD) calls them, each parallel inside; bit-identical parameters;
 *   - wider: every layer in chunks of kChunk output columns, each thread owning the same chunks of
 *     every layer in one parallel region (its columns of w stay in its cache from step to step);
 *     the same arithmetic per element except the order of some sums (a chunk's product may take
 *     another gemm path; dx adds the chunks' partial products in chunk order).
 * A linear activation is the identity and is skipped. A loss that is not finite is returned
 * without touching the parameters.
 * Layout: x (N, n_0); w_l (n_{l-1}, n_l); b_l (n_l); labels (N) in [0, n_L). Scratch buffers
 * belong to the calling thread and are reused across steps.
 */
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels.h"
#include "openmp.h"

namespace deepnum {

namespace {

constexpr i64 kChunk = 16;                    // columns of a layer per unit of work in the threaded step
constexpr i64 kThreadWork = i64{1} << 21;     // multiply-adds of a step that justify a second thread

template <class T>
struct Net {
  T* const* ws;
  T* const* bs;
  const int* acts;
  const i64* sizes;
  i64 layers, N;
};

// The layer-by-layer composition: each kernel parallelises internally (over the batch for a narrow
// network such as logistic regression).
template <class T>
double step_by_kernels(const Net<T>& net, std::vector<T*>& a, T* probs, T* d, T* dprev, T* dw, T* db, const T* x,
                       const i64* labels, double lr, double weight_decay, double alpha) {
  const i64 N = net.N, L = net.layers;
  const T* in = x;
  for (i64 l = 1; l <= L; ++l) {
    linear_forward(a[l], in, net.ws[l - 1], net.bs[l - 1], N, net.sizes[l - 1], net.sizes[l]);
    if (net.acts[l - 1] != kLinear) activation_forward(a[l], a[l], net.acts[l - 1], alpha, N * net.sizes[l]);
    in = a[l];
  }
  const double loss = softmax_nll_forward(probs, a[L], labels, N, net.sizes[L]);
  if (!std::isfinite(loss)) return loss;  // diverged: leave the parameters as they were
  softmax_nll_backward(d, probs, labels, N, net.sizes[L]);
  for (i64 l = L; l >= 1; --l) {
    const i64 n_in = net.sizes[l - 1], n_out = net.sizes[l];
    if (net.acts[l - 1] != kLinear) activation_backward(d, a[l], d, net.acts[l - 1], alpha, N * n_out);
    linear_backward(l > 1 ? dprev : nullptr, dw, db, d, l > 1 ? a[l - 1] : x, net.ws[l - 1], N, n_in, n_out);
    sgd_update(net.ws[l - 1], static_cast<T*>(nullptr), dw, lr, 0.0, false, weight_decay, n_in * n_out);
    sgd_update(net.bs[l - 1], static_cast<T*>(nullptr), db, lr, 0.0, false, 0.0, n_out);
    std::swap(d, dprev);
  }
  return loss;
}

// The same step with every layer cut into chunks of kChunk columns (outputs), each thread owning a
// contiguous range of chunks in every layer, in one parallel region: a thread computes, updates and
// keeps in its cache the same columns of w step after step. The chunks are fixed by the sizes, so
// the result does not depend on the thread count. Per chunk the arithmetic is the layer-by-layer
// path's, except dx of a layer wider than one chunk: its sum over the outputs goes chunk by chunk
// (each in order), the chunk sums then added in order. threads is read by the pragma alone (unused without OpenMP).
template <class T>
double step_by_chunks(const Net<T>& net, std::vector<T*>& a, T* probs, T* d, T* dprev, T* dx_parts, const T* x,
                      const i64* labels, double lr, double weight_decay, double alpha, [[maybe_unused]] int threads) {
  const i64 N = net.N, L = net.layers;
  double loss = 0.0;
#pragma omp parallel num_threads(threads)
  {
    const i64 t = omp_get_thread_num(), nt = omp_get_num_threads();
    T *dz = d, *dnext = dprev;
    for (i64 l = 1; l <= L; ++l) {
      const i64 n_in = net.sizes[l - 1], n_out = net.sizes[l], chunks = (n_out + kChunk - 1) / kChunk;
      const T* in = l > 1 ? a[l - 1] : x;
      for (i64 c = chunks * t / nt; c < chunks * (t + 1) / nt; ++c) {
        const i64 j0 = c * kChunk, cw = std::min(kChunk, n_out - j0);
        T* y = thread_scratch<T, 0>(N * cw);
        gemm_strided(y, in, n_in, 1, net.ws[l - 1] + j0, n_out, 1, N, cw, n_in);
        for (i64 i = 0; i < N; ++i)
          for (i64 j = 0; j < cw; ++j) y[i * cw + j] += net.bs[l - 1][j0 + j];
        if (net.acts[l - 1] != kLinear) activation_forward(y, y, net.acts[l - 1], alpha, N * cw);
        for (i64 i = 0; i < N; ++i) std::memcpy(a[l] + i * n_out + j0, y + i * cw, cw * sizeof(T));
      }
#pragma omp barrier
    }
#pragma omp single
    {
      loss = softmax_nll_forward(probs, a[L], labels, N, net.sizes[L]);
      if (std::isfinite(loss)) softmax_nll_backward(dz, probs, labels, N, net.sizes[L]);
    }  // implicit barrier: every thread sees loss and dz
    if (std::isfinite(loss)) {
      for (i64 l = L; l >= 1; --l) {
        const i64 n_in = net.sizes[l - 1], n_out = net.sizes[l], chunks = (n_out + kChunk - 1) / kChunk;
        const T* in = l > 1 ? a[l - 1] : x;
        for (i64 c = chunks * t / nt; c < chunks * (t + 1) / nt; ++c) {
          const i64 j0 = c * kChunk, cw = std::min(kChunk, n_out - j0);
          T *g = thread_scratch<T, 1>(N * cw), *y = thread_scratch<T, 2>(N * cw);
          T *dw = thread_scratch<T, 3>(n_in * cw), *db = thread_scratch<T, 4>(cw);
          for (i64 i = 0; i < N; ++i) {
            std::memcpy(g + i * cw, dz + i * n_out + j0, cw * sizeof(T));
            std::memcpy(y + i * cw, a[l] + i * n_out + j0, cw * sizeof(T));
          }
          if (net.acts[l - 1] != kLinear) activation_backward(g, y, g, net.acts[l - 1], alpha, N * cw);
          T* w = net.ws[l - 1] + j0;  // columns [j0, j0 + cw) of w, rows n_out apart
          if (l > 1) gemm_strided(dx_parts + c * N * n_in, g, cw, 1, w, 1, n_out, N, n_in, cw);
          gemm_strided(dw, in, 1, n_in, g, cw, 1, n_in, cw, N);
          column_sums(db, g, N, cw);
          sgd_update_rows(w, n_out, dw, cw, n_in, cw, lr, weight_decay);
          sgd_update_rows(net.bs[l - 1] + j0, cw, db, cw, 1, cw, lr, 0.0);
        }
#pragma omp barrier
        if (l > 1) {  // dx = the chunks' partial products, added in chunk order; threads split its elements
          const i64 n = N * n_in;
          for (i64 e = n * t / nt; e < n * (t + 1) / nt; ++e) {
            T sum = dx_parts[e];
            for (i64 c = 1; c < chunks; ++c) sum += dx_parts[c * n + e];
            dnext[e] = sum;
          }
#pragma omp barrier
          std::swap(dz, dnext);
        }
      }
    }
  }
  return loss;
}

}  // namespace

template <class T>
double mlp_train_step(T* const* ws, T* const* bs, const int* acts, const i64* sizes, i64 layers, const T* x,
                      const i64* labels, i64 N, double lr, double weight_decay, double alpha) {
  // sizes has layers + 1 entries: w_l is (sizes[l-1], sizes[l]) for l = 1..layers
  const Net<T> net{ws, bs, acts, sizes, layers, N};
  check_labels("mlp_train_step", labels, N, sizes[layers]);  // before any work: nothing may throw in parallel
  i64 total = 0, widest = 0, largest_w = 0, parts = 0, work = 0;
  for (i64 l = 1; l <= layers; ++l) {
    total += N * sizes[l];
    widest = std::max(widest, sizes[l]);
    largest_w = std::max(largest_w, sizes[l - 1] * sizes[l]);
    parts = std::max(parts, (sizes[l] + kChunk - 1) / kChunk * N * sizes[l - 1]);
    work += 3 * N * sizes[l - 1] * sizes[l];
  }
  std::vector<T*> a(layers + 1);
  T* next = thread_scratch<T, 5>(total + N * sizes[layers]);  // every a_l, then probs
  for (i64 l = 1; l <= layers; ++l, next += N * sizes[l - 1]) a[l] = next;
  T *probs = next, *d = thread_scratch<T, 6>(N * widest), *dprev = thread_scratch<T, 7>(N * widest);
  // Chunked (fixed by the sizes alone, so results do not depend on the thread count) when the first
  // layer has several chunks; a narrow network runs kernel by kernel, parallel inside each kernel.
  if (sizes[1] > kChunk) {
    const int threads = omp_get_level() > 0 || work < kThreadWork ? 1 : omp_get_max_threads();
    return step_by_chunks(net, a, probs, d, dprev, thread_scratch<T, 8>(parts), x, labels, lr, weight_decay, alpha,
                          threads);
  }
  return step_by_kernels(net, a, probs, d, dprev, thread_scratch<T, 8>(largest_w), thread_scratch<T, 9>(widest), x,
                         labels, lr, weight_decay, alpha);
}

DEEPNUM_INSTANTIATE(mlp_train_step);

}  // namespace deepnum
