"""Numba twin of cpp/rnn.cpp.

Elman RNN over a whole sequence, time-major: x (T,N,D), h0 (N,H), w_xh (D,H), w_hh (H,H),
b_h (H,), h_all (T,N,H); activation codes 0 linear, 1 sigmoid, 2 tanh, 3 relu.

forward: x_t·w_xh for all steps is one gemm over the T·N rows, written into h_all; each step
adds h_{t-1}·w_hh (one gemm) and b_h, in that order, and applies the activation.
backward: BPTT, full (bptt_steps 0 or >= T) or BPTT(k) (the loss at step s reaches the
pre-activations of steps s .. s-k+1; the gradients in flight are stacked and propagated by one
gemm per step, and summed into dz_t in ascending source order); then dx, dh0, dw_xh, dw_hh are
gemms over the T·N rows and db_h a column sum in float64; with clip > 0, (dw_xh, dw_hh, db_h)
are scaled by clip / norm when their global 2-norm (squares summed in float64) exceeds clip.
The time loop runs in Python and calls the jitted gemm (gemm.py) and the jitted elementwise
steps (parallel over rows or elements), as linear.py does. Gradients are written with `=`.
"""
import numba
import numpy as np

from .activation_math import sigmoid_, tanh_
from .gemm import gemm


def rnn_forward(h_all, x, h0, w_xh, w_hh, b_h, act):
    # x is (T,N,D), h0 (N,H), w_xh (D,H), w_hh (H,H), b_h (H,), h_all (T,N,H)
    T, N, H = h_all.shape
    gemm(h_all.reshape(T * N, H), x.reshape(T * N, -1), w_xh, False, False)
    hw = np.empty((N, H), h_all.dtype)
    for t in range(T):
        gemm(hw, h0 if t == 0 else h_all[t - 1], w_hh, False, False)
        _forward_step(h_all[t], hw, b_h, act)


def rnn_backward(dx, dh0, dw_xh, dw_hh, db_h, h_all, dh_all, x, h0, w_xh, w_hh, act, bptt_steps, clip):
    # h_all and dh_all are (T,N,H); dx like x, dh0 like h0, dw_xh like w_xh, dw_hh like w_hh, db_h (H,)
    T, N, H = h_all.shape
    dz = np.empty_like(h_all)
    if bptt_steps <= 0 or bptt_steps >= T:
        carry = np.zeros((N, H), h_all.dtype)  # gradient reaching h_t from step t+1
        for t in range(T - 1, -1, -1):
            _full_step(dz[t], dh_all[t], carry, h_all[t], act)
            if t > 0:
                gemm(carry, dz[t], w_hh, False, True)
    else:
        k = bptt_steps
        cur, nxt = np.empty((k, N, H), h_all.dtype), np.empty((k, N, H), h_all.dtype)
        m = 0  # slots in flight before source t joins; slot j holds the gradient from source t+j
        for t in range(T - 1, -1, -1):
            _truncated_step(dz[t], cur, dh_all[t], h_all[t], act, m + 1)
            m = min(m + 1, k - 1)  # the oldest source has had its k steps
            if t > 0 and m > 0:
                gemm(nxt[1:m + 1].reshape(m * N, H), cur[:m].reshape(m * N, H), w_hh, False, True)
                cur, nxt = nxt, cur
    rows = dz.reshape(T * N, H)
    gemm(dh0, dz[0], w_hh, False, True)
    gemm(dx.reshape(T * N, -1), rows, w_xh, False, True)
    gemm(dw_xh, x.reshape(T * N, -1), rows, True, False)
    h_prev = np.concatenate((h0, h_all[:-1].reshape(-1, H)))
    gemm(dw_hh, h_prev, rows, True, False)
    _column_sums(db_h, rows)
    if clip > 0:
        _clip_global_norm(dw_xh.reshape(-1), dw_hh.reshape(-1), db_h, clip)


@numba.njit(cache=True, nogil=True, parallel=True)
def _forward_step(h, hw, b, act):
    # h (N,H) holds x_t·w_xh on entry; h = act((h + hw) + b)
    N, H = h.shape
    zero = h.dtype.type(0)
    for i in numba.prange(N):  # act tested outside the loops over j, so that they vectorize
        row, hw_row = h[i], hw[i]
        if act == 1:
            for j in range(H):
                row[j] = sigmoid_((row[j] + hw_row[j]) + b[j])
        elif act == 2:
            for j in range(H):
                row[j] = tanh_((row[j] + hw_row[j]) + b[j])
        elif act == 3:
            for j in range(H):
                z = (row[j] + hw_row[j]) + b[j]
                row[j] = zero if z <= 0 else z
        else:
            for j in range(H):
                row[j] = (row[j] + hw_row[j]) + b[j]


@numba.njit(cache=True, nogil=True, parallel=True)
def _full_step(dz, dh, carry, y, act):
    # dz = (dh + carry) through the activation at its output y; all (N,H)
    N, H = dz.shape
    t = y.dtype.type
    one, zero = t(1), t(0)
    for i in numba.prange(N):
        for j in range(H):
            g, v = dh[i, j] + carry[i, j], y[i, j]
            if act == 1:
                g = g * v * (one - v)
            elif act == 2:
                g = g * (one - v * v)
            elif act == 3:
                g = g if v > 0 else zero
            dz[i, j] = g


@numba.njit(cache=True, nogil=True, parallel=True)
def _truncated_step(dz, stack, dh, y, act, m):
    # stack (k,N,H): slot 0 becomes dh; slots [0, m) go through the activation in place; dz = their sum
    N, H = dz.shape
    t = y.dtype.type
    one, zero = t(1), t(0)
    for i in numba.prange(N):
        for j in range(H):
            stack[0, i, j] = dh[i, j]
            v, s = y[i, j], zero
            for q in range(m):
                g = stack[q, i, j]
                if act == 1:
                    g = g * v * (one - v)
                elif act == 2:
                    g = g * (one - v * v)
                elif act == 3:
                    g = g if v > 0 else zero
                stack[q, i, j] = g
                s += g
            dz[i, j] = s


@numba.njit(cache=True, nogil=True, parallel=True)
def _column_sums(db, rows):
    # db[j] = sum over r of rows[r, j], rows in order, in float64
    R, H = rows.shape
    for j in numba.prange(H):
        acc = 0.0
        for r in range(R):
            acc += rows[r, j]
        db[j] = acc


@numba.njit(cache=True, nogil=True)
def _clip_global_norm(a, b, c, clip):
    sq = 0.0
    for g in (a, b, c):
        for i in range(g.size):
            sq += np.float64(g[i]) * np.float64(g[i])
    norm = np.sqrt(sq)
    if norm > clip:  # false for a NaN norm: nothing is scaled
        scale = a.dtype.type(clip / norm)
        for g in (a, b, c):
            for i in range(g.size):
                g[i] *= scale
