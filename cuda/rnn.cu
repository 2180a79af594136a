/* rnn: an Elman recurrent layer over a whole sequence on the device, the time loop on the host issuing
 * one gemm and one elementwise kernel per step (the steps are sequential), as in cpp/rnn.cpp.
 *   forward:  h_t = act(x_t·w_xh + h_{t-1}·w_hh + b_h), h_{-1} = h0: one gemm x·w_xh over all T·N rows into
 *             h_all, then per step a gemm h_{t-1}·w_hh and h = act((h + hw) + b).
 *   backward: dz_t (gradient w.r.t. the pre-activation of step t):
 *     full BPTT (bptt_steps = 0 or >= T): dz_t = (dh_all_t + dz_{t+1}·w_hhᵀ) ⊙ act'(h_t);
 *     BPTT(k): the e_{s,t} of the sources still in flight (at most k) are stacked, one gemm per step propagates all
 *       of them, dz_t is their sum over s in ascending order (the scheme of cpp/rnn.cpp).
 *     Then dx = dz·w_xhᵀ, dh0 = dz_0·w_hhᵀ, dw_xh = xᵀ·dz, dw_hh = h_prevᵀ·dz, db_h = column sums of dz (`=`).
 *     clip > 0: the global 2-norm of (dw_xh, dw_hh, db_h) is reduced on the device in double in a fixed order
 *     and the scaling kernel reads it there (no host round trip).
 * Activations: linear, sigmoid, tanh, relu through ew::activation_forward / activation_backward (elementwise.h).
 * Layout (time-major, row-major): x, dx (T,N,D); h0, dh0 (N,H); h_all, dh_all (T,N,H); w_xh (D,H); w_hh (H,H).
 * Scratch: (N,H) per step forward; backward dz, h_prev (T,N,H) and 2·(k,N,H) for BPTT(k) (k = 1 for full).
 */
#include <cmath>
#include <utility>

#include "common.cuh"
#include "elementwise.h"

namespace deepnum {
namespace cuda {
namespace {

constexpr int kNormBlocks = 64;  // partial sums per array in the global norm: fixed, so the order is fixed

template <class T>
__global__ void step_forward_kernel(T* h, const T* hw, const T* b, int act, i64 n, i64 H) {
  for (i64 i = grid_start(); i < n; i += grid_stride())
    h[i] = ew::activation_forward((h[i] + hw[i]) + b[i % H], act, T(0));
}

// full BPTT, one step: dz = (dh + carry) ⊙ act'(y); carry == nullptr means zero
template <class T>
__global__ void full_step_kernel(T* dz, const T* dh, const T* carry, const T* y, int act, i64 n) {
  for (i64 i = grid_start(); i < n; i += grid_stride())
    dz[i] = ew::activation_backward(y[i], carry ? dh[i] + carry[i] : dh[i], act, T(0));
}

// BPTT(k), one step: slot 0 of the stack (m slots of n) takes dh_t; each slot goes through act'(y) in place;
// dz is their sum over the slots in ascending order
template <class T>
__global__ void truncated_step_kernel(T* dz, T* stack, const T* dh, const T* y, int act, i64 m, i64 n) {
  for (i64 i = grid_start(); i < n; i += grid_stride()) {
    stack[i] = dh[i];
    T acc = T(0);
    for (i64 j = 0; j < m; ++j) {
      const T e = ew::activation_backward(y[i], stack[j * n + i], act, T(0));
      stack[j * n + i] = e;
      acc = j == 0 ? e : acc + e;
    }
    dz[i] = acc;
  }
}

// partial[blockIdx.x] = sum of squares (double) of this block's grid-stride share of p
template <class T>
__global__ void sumsq_kernel(double* partial, const T* p, i64 n) {
  __shared__ double shared[kThreads];
  double acc = 0.0;
  for (i64 i = grid_start(); i < n; i += grid_stride()) acc += static_cast<double>(p[i]) * static_cast<double>(p[i]);
  const double s = block_sum(acc, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

// p *= T(clip / norm) when norm = sqrt(sum of partial[0..count)) exceeds clip (a NaN norm scales nothing)
template <class T>
__global__ void clip_kernel(T* p, i64 n, const double* partial, int count, double clip) {
  double sq = 0.0;
  for (int j = 0; j < count; ++j) sq += partial[j];
  const double norm = sqrt(sq);
  if (!(norm > clip)) return;
  const T scale = static_cast<T>(clip / norm);
  for (i64 i = grid_start(); i < n; i += grid_stride()) p[i] *= scale;
}

}  // namespace
}  // namespace cuda

using namespace cuda;  // the helpers of common.cuh and this file

template <class T>
void rnn_forward(T* h_all, const T* x, const T* h0, const T* w_xh, const T* w_hh, const T* b_h, i64 steps, i64 N,
                 i64 D, i64 H, int act) {
  // x is (steps,N,D), h0 is (N,H), w_xh is (D,H), w_hh is (H,H), b_h is (H,), h_all is (steps,N,H)
  const i64 n = N * H;
  gemm(h_all, x, w_xh, false, false, steps * N, H, D);
  Buffer hw(sizeof(T) * n);
  for (i64 t = 0; t < steps; ++t) {
    gemm(hw.as<T>(), t == 0 ? h0 : h_all + (t - 1) * n, w_hh, false, false, N, H, H);
    launch<step_forward_kernel<T>>(blocks_for(n), kThreads, h_all + t * n, hw.as<T>(), b_h, act, n, H);
  }
}

template <class T>
void rnn_backward(T* dx, T* dh0, T* dw_xh, T* dw_hh, T* db_h, const T* h_all, const T* dh_all, const T* x,
                  const T* h0, const T* w_xh, const T* w_hh, i64 steps, i64 N, i64 D, i64 H, int act,
                  i64 bptt_steps, double clip) {
  // h_all and dh_all are (steps,N,H), x and dx are (steps,N,D), h0 and dh0 are (N,H),
  // w_xh and dw_xh are (D,H), w_hh and dw_hh are (H,H), db_h is (H,)
  const i64 n = N * H, rows = steps * N;
  const bool full = bptt_steps <= 0 || bptt_steps >= steps;
  const i64 k = full ? 1 : bptt_steps;
  Buffer dz_buf(sizeof(T) * rows * H), cur_buf(sizeof(T) * k * n), next_buf(sizeof(T) * k * n);
  T *dz = dz_buf.as<T>(), *cur = cur_buf.as<T>(), *next = next_buf.as<T>();
  if (full) {
    for (i64 t = steps - 1; t >= 0; --t) {  // cur holds the gradient reaching h_t from step t+1
      launch<full_step_kernel<T>>(blocks_for(n), kThreads, dz + t * n, dh_all + t * n, t == steps - 1 ? nullptr : cur,
                                  h_all + t * n, act, n);
      if (t > 0) gemm(cur, dz + t * n, w_hh, false, true, N, H, H);
    }
  } else {
    i64 m = 0;  // slots in flight before source t joins; slot j: gradient from source t+j reaching h_t
    for (i64 t = steps - 1; t >= 0; --t) {
      const i64 mt = m + 1;
      launch<truncated_step_kernel<T>>(blocks_for(n), kThreads, dz + t * n, cur, dh_all + t * n, h_all + t * n, act, mt,
                                       n);
      m = std::min(mt, k - 1);  // the oldest source has had its k steps once mt == k
      if (t > 0 && m > 0) {
        gemm(next + n, cur, w_hh, false, true, m * N, H, H);
        std::swap(cur, next);
      }
    }
  }
  gemm(dh0, dz, w_hh, false, true, N, H, H);
  gemm(dx, dz, w_xh, false, true, rows, D, H);
  gemm(dw_xh, x, dz, true, false, D, H, rows);
  Buffer h_prev(sizeof(T) * rows * H);  // (h0, h_0, ..., h_{steps-2})
  copy_on_device(h_prev.data(), h0, sizeof(T) * n);
  copy_on_device(h_prev.as<T>() + n, h_all, sizeof(T) * (rows - N) * H);
  gemm(dw_hh, h_prev.as<T>(), dz, true, false, H, H, rows);
  column_sums(db_h, dz, rows, H);
  if (clip > 0) {
    Buffer partial(sizeof(double) * 3 * kNormBlocks);
    T* grads[3] = {dw_xh, dw_hh, db_h};
    const i64 sizes[3] = {D * H, H * H, H};
    for (int a = 0; a < 3; ++a) {
      launch<sumsq_kernel<T>>(kNormBlocks, kThreads, partial.as<double>() + a * kNormBlocks, grads[a], sizes[a]);
    }
    for (int a = 0; a < 3; ++a) {
      launch<clip_kernel<T>>(blocks_for(sizes[a]), kThreads, grads[a], sizes[a], partial.as<double>(), 3 * kNormBlocks,
                             clip);
    }
  }
}

DEEPNUM_INSTANTIATE(rnn_forward);
DEEPNUM_INSTANTIATE(rnn_backward);

}  // namespace deepnum
