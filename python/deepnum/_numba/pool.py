"""Numba twin of cpp/pool.cpp.

2-D max-pooling without padding, NCHW: x (N,C,H,W), y and argmax (N,C,P,Q). argmax (int64) is
the flat index h * W + w of the winner inside the (H, W) plane of its (n, c); the first
maximum in row-major window order wins, and a NaN wins over any number (the first NaN).
The backward pass zero-fills dx and adds each dy at its argmax, which the caller has
checked to lie in [0, H*W).

Both passes run in parallel over the (n, c) planes; within a plane the work is serial,
so overlapping windows add up in a fixed order whatever the thread count.
"""
import numba
import numpy as np


@numba.njit(cache=True, nogil=True, parallel=True)
def max_pool2d_forward(y, argmax, x, size_h, size_w, stride_h, stride_w):
    # x is (N,C,H,W); y and argmax are (N,C,P,Q)
    N, C, H, W = x.shape
    P, Q = y.shape[2], y.shape[3]
    for nc in numba.prange(N * C):
        n, c = nc // C, nc % C
        plane = x[n, c]
        for p in range(P):
            yrow, arow = y[n, c, p], argmax[n, c, p]
            for q in range(Q):
                h0, w0 = p * stride_h, q * stride_w
                best, best_idx = plane[h0, w0], h0 * W + w0
                for h in range(h0, h0 + size_h):
                    xrow = plane[h]
                    for w in range(w0, w0 + size_w):
                        v = xrow[w]
                        # v wins if larger or if it is the first NaN; `|` and `&` (not `or`, `and`)
                        # keep the test free of hard-to-predict branches
                        if (v > best) | (np.isnan(v) & (not np.isnan(best))):
                            best, best_idx = v, h * W + w
                yrow[q] = best
                arow[q] = best_idx


@numba.njit(cache=True, nogil=True, parallel=True)
def max_pool2d_backward(dx, dy, argmax):
    # dy and argmax are (N,C,P,Q); dx is (N,C,H,W)
    N, C, H, W = dx.shape
    P, Q = dy.shape[2], dy.shape[3]
    flat = dx.reshape(N, C, H * W)
    for nc in numba.prange(N * C):
        n, c = nc // C, nc % C
        g = flat[n, c]
        g.fill(0)
        for p in range(P):
            for q in range(Q):
                g[argmax[n, c, p, q]] += dy[n, c, p, q]
