"""Numba twin of cpp/conv2d.cpp.

2-D convolution (cross-correlation), NCHW: x (N,C,H,W), w (K,C,R,S), b (K,), y (N,K,P,Q) with
P = (H + 2*pad_h - R) // stride_h + 1 and Q likewise; gradients are written with `=`.

im2col over a chunk of m images at once, then one product for the chunk (gemm.py), J = C*R*S taps
and L = m*P*Q positions:
  cols (J, L)     cols[(c*R + r)*S + s, i*P*Q + p*Q + q] = x[n0 + i, c, p*stride_h + r - pad_h,
                  q*stride_w + s - pad_w], 0 in the padding; parallel over (image, channel)
  rows (L, J)     cols transposed, rows[i*P*Q + p*Q + q, (c*R + r)*S + s]: each position's taps
                  contiguous; parallel over (image, output row)
  forward         t (K, L) = w (K, J) · rows.T when J >= DOT_MIN (gemm's dot products, with no
                  transposing copy: faster than its panel products at network3's second layer, J =
                  500 and K = 40), else w · cols (the panels: short dot products do not pay);
                  then y[n0 + i, k] = t[k, i*P*Q:(i+1)*P*Q] + b[k]
  dw              dw (K, J) += dyc (K, L) · cols.T, dyc being dy's chunk as (K, L)
  dx              dcols (J, L) = w.T · dyc, added back into the planes of dx (col2im); parallel
                  over (image, channel)
  db              summed from dyc's rows, chunk by chunk
The backward of 5×5 kernels at stride 1 with enough channels and tiles takes the Winograd path instead
(conv2d_winograd.py), db excepted, when dy, x and w are finite.
Chunks hold at most CHUNK elements of cols (at least one image), so a large batch does not
allocate a matrix of its size. Every element is summed in a fixed order by one iteration (the
chunks in order), so results do not depend on the thread count.
"""
import numba
import numpy as np

from . import conv2d_winograd as winograd
from .gemm import DOT_MIN, gemm
from .patches import U, patches as _patches

CHUNK = 1 << 21  # elements of cols per chunk


def _chunk(N, J, PQ):
    return max(1, min(N, CHUNK // max(1, J * PQ)))


def conv2d_forward(y, x, w, b, stride_h, stride_w, pad_h, pad_w):
    # x is (N,C,H,W), w is (K,C,R,S), b is (K,), y is (N,K,P,Q)
    N, K, P, Q = y.shape
    J = w[0].size
    wf = w.reshape(K, J)
    m = _chunk(N, J, P * Q)
    for n0 in range(0, N, m):
        n1 = min(n0 + m, N)
        L = (n1 - n0) * P * Q
        t = np.empty((K, L), y.dtype)
        if J >= DOT_MIN:
            rows = np.empty((L, J), y.dtype)
            _im2row(rows, x[n0:n1], w.shape[2], w.shape[3], stride_h, stride_w, pad_h, pad_w, P, Q)
            gemm(t, wf, rows, False, True)
        else:
            cols = np.empty((J, L), y.dtype)
            _im2col(cols, x[n0:n1], w.shape[2], w.shape[3], stride_h, stride_w, pad_h, pad_w, P, Q)
            gemm(t, wf, cols, False, False)
        _scatter_bias(y[n0:n1], t, b)


def conv2d_backward(dx, dw, db, dy, x, w, stride_h, stride_w, pad_h, pad_w):
    # dy is (N,K,P,Q); dx like x (N,C,H,W) or of size 0 (not wanted), dw like w (K,C,R,S), db (K,)
    N, K, P, Q = dy.shape
    R, S = w.shape[2], w.shape[3]
    if (winograd.applies(N, x.shape[1], x.shape[2], x.shape[3], K, R, S, stride_h, stride_w, pad_h, pad_w)
            and all(np.isfinite(a).all() for a in (dy, x, w))):
        winograd.backward(dx, dw, dy, x, w, pad_h, pad_w)
        db[:] = dy.sum(axis=(0, 2, 3))
        return
    J = w[0].size
    wf, dwf = w.reshape(K, J), dw.reshape(K, J)
    m = _chunk(N, J, P * Q)
    for n0 in range(0, N, m):
        n1 = min(n0 + m, N)
        L = (n1 - n0) * P * Q
        dyc = np.empty((K, L), dy.dtype)
        _gather(dyc, dy[n0:n1])
        db_chunk = dyc.sum(axis=1)
        if n0:
            db += db_chunk
        else:
            db[:] = db_chunk
        cols = np.empty((J, L), dy.dtype)
        _im2col(cols, x[n0:n1], R, S, stride_h, stride_w, pad_h, pad_w, P, Q)
        gemm(dwf, dyc, cols, False, True, n0 > 0)
        if dx.size:  # dx of size 0: not wanted
            dcols = np.empty((J, L), dy.dtype)
            gemm(dcols, wf, dyc, True, False)
            _col2im(dx[n0:n1], dcols, R, S, stride_h, stride_w, pad_h, pad_w, P, Q)


def _im2col(cols, x, R, S, stride_h, stride_w, pad_h, pad_w, P, Q):
    # x is (m,C,H,W); cols is (C*R*S, m*P*Q), laid out as in the module's docstring
    _patches(cols, x, R, S, stride_h, stride_w, pad_h, pad_w, P, Q, False)


def _col2im(dx, dcols, R, S, stride_h, stride_w, pad_h, pad_w, P, Q):
    # dx[i, c] = the sum of dcols' rows (c, r, s) over the taps that read each of its pixels
    _patches(dcols, dx, R, S, stride_h, stride_w, pad_h, pad_w, P, Q, True)


@numba.njit(cache=True, nogil=True, parallel=True)
def _im2row(rows, planes, R, S, stride_h, stride_w, pad_h, pad_w, P, Q):
    # rows (m*P*Q, C*R*S) as in the module's docstring: for each output row (i, p), each channel and
    # kernel row r, the S taps of every q (S pixels of one row of the plane, 0 in the padding)
    m, C, H, W = planes.shape
    J = C * R * S
    flat_rows, flat_planes = rows.reshape(rows.size), planes.reshape(planes.size)
    for ip in numba.prange(m * P):
        i, p = ip // P, ip % P
        for c in range(C):
            plane = (i * C + c) * H * W
            for r in range(R):
                h = p * stride_h + r - pad_h
                for q in range(Q):
                    out = U((ip * Q + q) * J + (c * R + r) * S)
                    w0 = q * stride_w - pad_w
                    if 0 <= h < H and 0 <= w0 and w0 + S <= W:
                        pixels = U(plane + h * W + w0)
                        for s in range(S):
                            flat_rows[out + U(s)] = flat_planes[pixels + U(s)]
                    else:
                        for s in range(S):
                            inside = 0 <= h < H and 0 <= w0 + s < W
                            flat_rows[out + U(s)] = flat_planes[U(plane + h * W + w0 + s)] if inside else 0


@numba.njit(cache=True, nogil=True, parallel=True)
def _scatter_bias(y, t, b):
    # y[i, k] = t[k, i*P*Q:(i+1)*P*Q] + b[k], y (m,K,P,Q) and t (K, m*P*Q)
    m, K = y.shape[0], y.shape[1]
    PQ = y.shape[2] * y.shape[3]
    for ik in numba.prange(m * K):
        i, k = ik // K, ik % K
        yk, tk, bk = y[i, k].reshape(PQ), t[k, i * PQ:(i + 1) * PQ], b[k]
        for j in range(PQ):
            yk[j] = tk[j] + bk


@numba.njit(cache=True, nogil=True, parallel=True)
def _gather(dyc, dy):
    # dyc[k, i*P*Q:(i+1)*P*Q] = dy[i, k], dy (m,K,P,Q) and dyc (K, m*P*Q)
    m, K = dy.shape[0], dy.shape[1]
    PQ = dy.shape[2] * dy.shape[3]
    for ik in numba.prange(m * K):
        i, k = ik // K, ik % K
        dyc[k, i * PQ:(i + 1) * PQ] = dy[i, k].reshape(PQ)
