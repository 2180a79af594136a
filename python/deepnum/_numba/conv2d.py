"""Numba twin of cpp/conv2d.cpp.

2-D convolution (cross-correlation), NCHW: x (N,C,H,W), w (K,C,R,S), b (K,), y (N,K,P,Q) with
P = (H + 2*pad_h - R) // stride_h + 1 and Q likewise; gradients are written with `=`.

im2col: `_im2col` copies the R*S shifted (P,Q) views of one input channel into rows of a
buffer (zeros where a tap falls in the padding), so every hot loop is a contiguous axpy over
the P*Q output positions:
  forward  y[n, k] = (sum over j = (c, r, s) of w[k, j] * col_n[j]) + b[k],
           parallel over (image, block of K_TILE output channels); each tile builds col_n itself.
  dx       dcol = sum over k of w[k, c, r, s] * dy[n, k], scattered back into dx[n, c];
           parallel over (n, c).
  dw       per (c, block of K_TILE output channels): vector accumulators acc[k, r*S + s, :] +=
           dy[n, k] * col_nc[r*S + s], summed over the positions at the end; parallel over tiles.
  db       serial.
Every element is summed in a fixed order by one iteration, so results do not depend on the
thread count.
"""
import numba
import numpy as np

K_TILE = 16  # output channels per tile of the forward pass and of dw


@numba.njit(cache=True, nogil=True)
def _span(offset, stride, size, n_out):
    # the outputs o in [lo, hi) with 0 <= o * stride + offset < size
    lo = 0 if offset >= 0 else (stride - 1 - offset) // stride
    hi = min(n_out, (size - offset + stride - 1) // stride)
    return lo, max(lo, hi)


@numba.njit(cache=True, nogil=True)
def _im2col(col, j0, plane, R, S, stride_h, stride_w, pad_h, pad_w):
    # plane is one (H,W) input channel; col is (J,P,Q): col[j0 + r*S + s, p, q] = plane[h, w] with
    # h = p*stride_h + r - pad_h, w = q*stride_w + s - pad_w, or 0 where (h, w) is in the padding
    H, W = plane.shape
    P, Q = col.shape[1], col.shape[2]
    for r in range(R):
        p0, p1 = _span(r - pad_h, stride_h, H, P)
        for s in range(S):
            q0, q1 = _span(s - pad_w, stride_w, W, Q)
            cj = col[j0 + r * S + s]
            cj.fill(0)
            for p in range(p0, p1):
                for q in range(q0, q1):
                    cj[p, q] = plane[p * stride_h + r - pad_h, q * stride_w + s - pad_w]


@numba.njit(cache=True, nogil=True, parallel=True)
def conv2d_forward(y, x, w, b, stride_h, stride_w, pad_h, pad_w):
    # x is (N,C,H,W), w is (K,C,R,S), b is (K,), y is (N,K,P,Q)
    N, C, H, W = x.shape
    K, _, R, S = w.shape
    P, Q = y.shape[2], y.shape[3]
    J = C * R * S
    wf = w.reshape(K, J)
    n_kt = (K + K_TILE - 1) // K_TILE
    for tile in numba.prange(N * n_kt):
        n, k0 = tile // n_kt, (tile % n_kt) * K_TILE
        col = np.empty((J, P, Q), y.dtype)
        for c in range(C):
            _im2col(col, c * R * S, x[n, c], R, S, stride_h, stride_w, pad_h, pad_w)
        colf = col.reshape(J, P * Q)
        yf = y[n].reshape(K, P * Q)
        for k in range(k0, min(k0 + K_TILE, K)):
            yk = yf[k]
            yk.fill(0)
            for j in range(J):
                wv, cj = wf[k, j], colf[j]
                for i in range(P * Q):
                    yk[i] += wv * cj[i]
            for i in range(P * Q):
                yk[i] += b[k]


@numba.njit(cache=True, nogil=True, parallel=True)
def conv2d_backward(dx, dw, db, dy, x, w, stride_h, stride_w, pad_h, pad_w):
    # dy is (N,K,P,Q); dx like x (N,C,H,W) or of size 0 (not wanted), dw like w (K,C,R,S), db (K,)
    N, C, H, W = x.shape
    K, _, R, S = w.shape
    P, Q = dy.shape[2], dy.shape[3]
    wf, dwf = w.reshape(K, C, R * S), dw.reshape(K, C, R * S)
    dyf = dy.reshape(N, K, P * Q)
    if dx.size:  # dx of size 0: not wanted
        for nc in numba.prange(N * C):
            n, c = nc // C, nc % C
            dcol = np.zeros((R * S, P * Q), dx.dtype)
            for k in range(K):
                g = dyf[n, k]
                for j in range(R * S):
                    wv, dj = wf[k, c, j], dcol[j]
                    for i in range(P * Q):
                        dj[i] += wv * g[i]
            plane = dx[n, c]
            plane.fill(0)
            for r in range(R):
                p0, p1 = _span(r - pad_h, stride_h, H, P)
                for s in range(S):
                    q0, q1 = _span(s - pad_w, stride_w, W, Q)
                    dj = dcol[r * S + s]
                    for p in range(p0, p1):
                        for q in range(q0, q1):
                            plane[p * stride_h + r - pad_h, q * stride_w + s - pad_w] += dj[p * Q + q]
    n_kt = (K + K_TILE - 1) // K_TILE
    for tile in numba.prange(C * n_kt):
        c, k0 = tile // n_kt, (tile % n_kt) * K_TILE
        k1 = min(k0 + K_TILE, K)
        col = np.empty((R * S, P, Q), dw.dtype)
        colf = col.reshape(R * S, P * Q)
        acc = np.zeros((k1 - k0, R * S, P * Q), dw.dtype)
        for n in range(N):
            _im2col(col, 0, x[n, c], R, S, stride_h, stride_w, pad_h, pad_w)
            for k in range(k0, k1):
                g = dyf[n, k]
                for j in range(R * S):
                    a, cj = acc[k - k0, j], colf[j]
                    for i in range(P * Q):
                        a[i] += g[i] * cj[i]
        for k in range(k0, k1):
            for j in range(R * S):
                total = dw.dtype.type(0)
                for i in range(P * Q):
                    total += acc[k - k0, j, i]
                dwf[k, c, j] = total
    for k in range(K):  # serial: a small share of the work
        total = db.dtype.type(0)
        for n in range(N):
            for i in range(P * Q):
                total += dyf[n, k, i]
        db[k] = total
