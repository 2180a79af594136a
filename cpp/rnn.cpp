/* rnn: an Elman recurrent layer over a whole sequence, the time loop inside the kernel.
 *   forward:  h_t = act(x_t·w_xh + h_{t-1}·w_hh + b_h) for t = 0 .. T-1, with h_{-1} = h0. The input
 *             products x_t·w_xh of all steps are one gemm over the T·N rows, written into h_all; each step
 *             then adds one gemm h_{t-1}·w_hh and b_h and applies act, in that order: (xw + hw) + b.
 *   backward: backpropagation through time. dz_t, the gradient w.r.t. the pre-activation of step t, is
 *     full BPTT (bptt_steps = 0 or >= T):  dz_t = (dh_all_t + dz_{t+1}·w_hhᵀ) ⊙ act'(h_t), dz_T = 0;
 *     BPTT(k), k = bptt_steps in [1, T):   the gradient of the loss at step s reaches the pre-activations of
 *       steps s, s-1, ..., s-k+1 only: dz_t = Σ_{s=t}^{min(t+k-1,T-1)} e_{s,t} with e_{s,s} = dh_all_s ⊙ act'(h_s)
 *       and e_{s,t} = (e_{s,t+1}·w_hhᵀ) ⊙ act'(h_t), summed over s in ascending order. The e_{s,t} in flight
 *       (at most k) are stacked, so one gemm per step propagates all of them.
 *     Then, each as one gemm (or column sum) over the T·N rows, written with `=`:
 *       dx_t = dz_t·w_xhᵀ, dh0 = dz_0·w_hhᵀ, dw_xh = Σ_t x_tᵀ·dz_t, dw_hh = Σ_t h_{t-1}ᵀ·dz_t, db_h = Σ_{t,n} dz_t.
 *     clip > 0: when the global 2-norm of (dw_xh, dw_hh, db_h) (squares summed serially in double, in that
 *     order) exceeds clip, all three are multiplied by T(clip / norm). dx and dh0 are never clipped.
 * Activations: linear, sigmoid, tanh, relu (codes in kernels.h); act' through the saved output, exactly as in
 * activations.cpp, with the same element functions (activation_math.h).
 * Layout (time-major, row-major): x, dx (T,N,D); h0, dh0 (N,H); h_all, dh_all (T,N,H); w_xh (D,H); w_hh (H,H);
 * b_h (H). Threads: gemm's own (each thread owns a block of its output); elementwise steps over contiguous row or
 * element ranges; db over column ranges. Scratch: 2·(T,N,H), plus 2·(k,N,H) for BPTT(k).
 */
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "activation_math.h"
#include "kernels.h"
#include "parallel.h"

namespace deepnum {
namespace {

// ---- steps -------------------------------------------------------------------------------

// h = act((h + hw) + b) on rows [r0, r1) of (N,H) matrices: h holds x_t·w_xh on entry.
template <class T>
DEEPNUM_SIMD void forward_rows(T* h, const T* hw, const T* b, int act, i64 r0, i64 r1, i64 H) {
  for (i64 r = r0; r < r1; ++r) {
    T* hr = h + r * H;
    const T* wr = hw + r * H;
    for (i64 j = 0; j < H; ++j) hr[j] = (hr[j] + wr[j]) + b[j];
    switch (act) {
      case kSigmoid:
        for (i64 j = 0; j < H; ++j) hr[j] = sigmoid_(hr[j]);
        break;
      case kTanh:
        for (i64 j = 0; j < H; ++j) hr[j] = tanh_(hr[j]);
        break;
      case kRelu:
        for (i64 j = 0; j < H; ++j) hr[j] = hr[j] <= T(0) ? T(0) : hr[j];
        break;
      default:  // kLinear
        break;
    }
  }
}

// g through the activation A, given its output y (as activation_backward in activations.cpp).
template <int A, class T>
[[gnu::always_inline]] inline T through(T g, T y) {
  if constexpr (A == kSigmoid) return g * y * (T(1) - y);
  if constexpr (A == kTanh) return g * (T(1) - y * y);
  if constexpr (A == kRelu) return y > T(0) ? g : T(0);
  return g;  // kLinear
}

// Full BPTT, one step, elements [lo, hi): dz = (dh + carry) ⊙ act'(y); carry == nullptr means zero.
template <int A, class T>
[[gnu::always_inline]] inline void full_loop(T* dz, const T* dh, const T* carry, const T* y, i64 lo, i64 hi) {
  if (carry == nullptr) {
    for (i64 i = lo; i < hi; ++i) dz[i] = through<A>(dh[i], y[i]);
  } else {
    for (i64 i = lo; i < hi; ++i) dz[i] = through<A>(dh[i] + carry[i], y[i]);
  }
}

template <class T>
DEEPNUM_SIMD void full_step(T* dz, const T* dh, const T* carry, const T* y, int act, i64 lo, i64 hi) {
  switch (act) {
    case kSigmoid: return full_loop<kSigmoid>(dz, dh, carry, y, lo, hi);
    case kTanh: return full_loop<kTanh>(dz, dh, carry, y, lo, hi);
    case kRelu: return full_loop<kRelu>(dz, dh, carry, y, lo, hi);
    default: return full_loop<kLinear>(dz, dh, carry, y, lo, hi);
  }
}

// BPTT(k), one step, elements [lo, hi): slot j of the stack (m slots of n elements) holds the gradient from
// source t+j reaching h_t (slot 0 is dh_all_t, copied here); each slot goes through act'(y) in place and
// dz is their sum over j in ascending order.
template <int A, class T>
[[gnu::always_inline]] inline void truncated_loop(T* dz, T* stack, const T* dh, const T* y, i64 m, i64 n, i64 lo,
                                                  i64 hi) {
  for (i64 i = lo; i < hi; ++i) stack[i] = dh[i];
  for (i64 j = 0; j < m; ++j) {
    T* e = stack + j * n;
    for (i64 i = lo; i < hi; ++i) e[i] = through<A>(e[i], y[i]);
  }
  for (i64 i = lo; i < hi; ++i) dz[i] = stack[i];
  for (i64 j = 1; j < m; ++j) {
    const T* e = stack + j * n;
    for (i64 i = lo; i < hi; ++i) dz[i] += e[i];
  }
}

template <class T>
DEEPNUM_SIMD void truncated_step(T* dz, T* stack, const T* dh, const T* y, int act, i64 m, i64 n, i64 lo,
                                 i64 hi) {
  switch (act) {
    case kSigmoid: return truncated_loop<kSigmoid>(dz, stack, dh, y, m, n, lo, hi);
    case kTanh: return truncated_loop<kTanh>(dz, stack, dh, y, m, n, lo, hi);
    case kRelu: return truncated_loop<kRelu>(dz, stack, dh, y, m, n, lo, hi);
    default: return truncated_loop<kLinear>(dz, stack, dh, y, m, n, lo, hi);
  }
}

// Scales (a, b, c) by T(clip / norm) when their global 2-norm exceeds clip.
template <class T>
void clip_global_norm(T* a, i64 na, T* b, i64 nb, T* c, i64 nc, double clip) {
  double sq = 0.0;
  for (const auto& [p, n] : {std::pair<T*, i64>{a, na}, {b, nb}, {c, nc}})
    for (i64 i = 0; i < n; ++i) sq += static_cast<double>(p[i]) * static_cast<double>(p[i]);
  const double norm = std::sqrt(sq);
  if (!(norm > clip)) return;  // also when the norm is NaN: nothing is scaled
  const T scale = static_cast<T>(clip / norm);
  for (const auto& [p, n] : {std::pair<T*, i64>{a, na}, {b, nb}, {c, nc}})
    for (i64 i = 0; i < n; ++i) p[i] *= scale;
}

}  // namespace

template <class T>
void rnn_forward(T* h_all, const T* x, const T* h0, const T* w_xh, const T* w_hh, const T* b_h, i64 steps, i64 N,
                 i64 D, i64 H, int act) {
  // x is (steps,N,D), h0 is (N,H), w_xh is (D,H), w_hh is (H,H), b_h is (H,), h_all is (steps,N,H)
  const i64 n = N * H;
  gemm(h_all, x, w_xh, false, false, steps * N, H, D);
  std::vector<T> hw(n);
  for (i64 t = 0; t < steps; ++t) {
    gemm(hw.data(), t == 0 ? h0 : h_all + (t - 1) * n, w_hh, false, false, N, H, H);
    T* h = h_all + t * n;
    parallel_ranges(N, n, [&](i64 r0, i64 r1) { forward_rows(h, hw.data(), b_h, act, r0, r1, H); });
  }
}

template <class T>
void rnn_backward(T* dx, T* dh0, T* dw_xh, T* dw_hh, T* db_h, const T* h_all, const T* dh_all, const T* x,
                  const T* h0, const T* w_xh, const T* w_hh, i64 steps, i64 N, i64 D, i64 H, int act,
                  i64 bptt_steps, double clip) {
  // h_all and dh_all are (steps,N,H), x and dx are (steps,N,D), h0 and dh0 are (N,H),
  // w_xh and dw_xh are (D,H), w_hh and dw_hh are (H,H), db_h is (H,)
  const i64 n = N * H, rows = steps * N;
  std::vector<T> dz(rows * H);
  if (bptt_steps <= 0 || bptt_steps >= steps) {
    std::vector<T> carry(n);  // gradient reaching h_t from step t+1
    for (i64 t = steps - 1; t >= 0; --t) {
      T* dzt = dz.data() + t * n;
      const T* c = t == steps - 1 ? nullptr : carry.data();
      parallel_ranges(n, n, [&](i64 lo, i64 hi) { full_step(dzt, dh_all + t * n, c, h_all + t * n, act, lo, hi); });
      if (t > 0) gemm(carry.data(), dzt, w_hh, false, true, N, H, H);
    }
  } else {
    const i64 k = bptt_steps;
    std::vector<T> cur(k * n), next(k * n);  // slot j: gradient from source t+j reaching h_t
    i64 m = 0;                              // slots in flight before source t joins
    for (i64 t = steps - 1; t >= 0; --t) {
      T* dzt = dz.data() + t * n;
      const i64 mt = m + 1;
      parallel_ranges(n, mt * n, [&](i64 lo, i64 hi) {
        truncated_step(dzt, cur.data(), dh_all + t * n, h_all + t * n, act, mt, n, lo, hi);
      });
      m = std::min(mt, k - 1);  // the oldest source has had its k steps once mt == k
      if (t > 0 && m > 0) {
        gemm(next.data() + n, cur.data(), w_hh, false, true, m * N, H, H);
        std::swap(cur, next);
      }
    }
  }
  gemm(dh0, dz.data(), w_hh, false, true, N, H, H);
  gemm(dx, dz.data(), w_xh, false, true, rows, D, H);
  gemm(dw_xh, x, dz.data(), true, false, D, H, rows);
  std::vector<T> h_prev(rows * H);  // (h0, h_0, ..., h_{steps-2})
  std::copy(h0, h0 + n, h_prev.begin());
  std::copy(h_all, h_all + (rows - N) * H, h_prev.begin() + n);
  gemm(dw_hh, h_prev.data(), dz.data(), true, false, H, H, rows);
  column_sums(db_h, dz.data(), rows, H);
  if (clip > 0) clip_global_norm(dw_xh, D * H, dw_hh, H * H, db_h, H, clip);
}

DEEPNUM_INSTANTIATE(rnn_forward);
DEEPNUM_INSTANTIATE(rnn_backward);

}  // namespace deepnum
