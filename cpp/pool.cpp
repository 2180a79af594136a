/* max_pool2d: max over (size_h, size_w) windows with stride, no padding, NCHW.
 *   forward:  y[n,c,p,q] = max of the window at (p·sh, q·sw); argmax = h·W + w of that maximum
 *             inside its (H,W) plane. The first maximum in row-major window order wins and a NaN
 *             wins over any number (the first NaN), as in _reference.max_pool2d_forward.
 *   backward: dx = 0, then dx[n,c][argmax] += dy for every output, in (p,q) order.
 * The forward has a vectorisable variant for 2x2 windows with stride 2 (the seed models').
 * Layout: x and dx (N,C,H,W), y, dy and argmax (N,C,P,Q). Both passes are parallel over (n,c)
 * planes, so no two threads write the same element.
 */
#include "kernels.h"
#include "parallel.h"

namespace deepnum {
namespace {

// One (H,W) plane of x into one (P,Q) plane of y and argmax.
template <class T>
DEEPNUM_SIMD void pool_plane(T* y, i64* argmax, const T* x, i64 W, i64 P, i64 Q, i64 size_h, i64 size_w, i64 sh, i64 sw) {
  for (i64 p = 0; p < P; ++p)
    for (i64 q = 0; q < Q; ++q) {
      const i64 h0 = p * sh, w0 = q * sw;
      T best = x[h0 * W + w0];
      i64 best_idx = h0 * W + w0;
      for (i64 r = 0; r < size_h; ++r)
        for (i64 s = 0; s < size_w; ++s) {
          const i64 idx = (h0 + r) * W + w0 + s;
          const T v = x[idx];
          // branch-free (selects, not jumps): ties and zeros after relu are common and unpredictable
          const bool take = (v > best) | ((v != v) & (best == best));
          best = take ? v : best;
          best_idx = take ? idx : best_idx;
        }
      y[p * Q + q] = best;
      argmax[p * Q + q] = best_idx;
    }
}

// The seed models' 2x2 windows with stride 2, the same comparisons in the same window order,
// written so that the q loop vectorises (stride-2 loads, selects).
template <class T>
DEEPNUM_SIMD void pool_plane_2x2(T* y, i64* argmax, const T* x, i64 W, i64 P, i64 Q) {
  for (i64 p = 0; p < P; ++p) {
    const T *r0 = x + 2 * p * W, *r1 = r0 + W;
    for (i64 q = 0; q < Q; ++q) {
      T best = r0[2 * q];
      i64 best_idx = 2 * p * W + 2 * q;
      const T cand[3] = {r0[2 * q + 1], r1[2 * q], r1[2 * q + 1]};
      const i64 at[3] = {best_idx + 1, best_idx + W, best_idx + W + 1};
      for (int j = 0; j < 3; ++j) {
        const bool take = (cand[j] > best) | ((cand[j] != cand[j]) & (best == best));
        best = take ? cand[j] : best;
        best_idx = take ? at[j] : best_idx;
      }
      y[p * Q + q] = best;
      argmax[p * Q + q] = best_idx;
    }
  }
}

}  // namespace

template <class T>
void max_pool2d_forward(T* y, i64* argmax, const T* x, i64 N, i64 C, i64 H, i64 W, i64 size_h, i64 size_w, i64 sh,
                        i64 sw) {
  // x is (N,C,H,W); y and argmax are (N,C,P,Q)
  const i64 P = (H - size_h) / sh + 1, Q = (W - size_w) / sw + 1;
#pragma omp parallel for if (N * C * P * Q * size_h * size_w > kParallelMin)
  for (i64 nc = 0; nc < N * C; ++nc) {
    if (size_h == 2 && size_w == 2 && sh == 2 && sw == 2)
      pool_plane_2x2(y + nc * P * Q, argmax + nc * P * Q, x + nc * H * W, W, P, Q);
    else
      pool_plane(y + nc * P * Q, argmax + nc * P * Q, x + nc * H * W, W, P, Q, size_h, size_w, sh, sw);
  }
}

template <class T>
void max_pool2d_backward(T* dx, const T* dy, const i64* argmax, i64 N, i64 C, i64 H, i64 W, i64 P, i64 Q) {
  // dy and argmax are (N,C,P,Q), dx is (N,C,H,W)
  const i64 HW = H * W, PQ = P * Q;
  int bad = 0;
#pragma omp parallel for reduction(| : bad) if (N * C * (HW + PQ) > kParallelMin)
  for (i64 nc = 0; nc < N * C; ++nc) {
    T* d = dx + nc * HW;
    const T* g = dy + nc * PQ;
    const i64* idx = argmax + nc * PQ;
    for (i64 i = 0; i < HW; ++i) d[i] = T(0);
    for (i64 j = 0; j < PQ; ++j) {
      if (idx[j] < 0 || idx[j] >= HW) {
        bad = 1;
        continue;
      }
      d[idx[j]] += g[j];
    }
  }
  if (bad) throw std::invalid_argument("max_pool2d_backward: argmax index out of range");
}

template void max_pool2d_forward<float>(float*, i64*, const float*, i64, i64, i64, i64, i64, i64, i64, i64);
template void max_pool2d_forward<double>(double*, i64*, const double*, i64, i64, i64, i64, i64, i64, i64, i64);
template void max_pool2d_backward<float>(float*, const float*, const i64*, i64, i64, i64, i64, i64, i64);
template void max_pool2d_backward<double>(double*, const double*, const i64*, i64, i64, i64, i64, i64, i64);

}  // namespace deepnum
