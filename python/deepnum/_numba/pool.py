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
    N, C = x.shape[0], x.shape[1]
    two_by_two = size_h == 2 and size_w == 2 and stride_h == 2 and stride_w == 2
    for nc in numba.prange(N * C):
        n, c = nc // C, nc % C
        plane = x[n, c]
        for p in range(y.shape[2]):
            if two_by_two:
                _pool_row_2x2(y[n, c, p], argmax[n, c, p], plane, 2 * p)
            else:
                _pool_row(y[n, c, p], argmax[n, c, p], plane, p * stride_h, size_h, size_w, stride_w)


@numba.njit(cache=True, nogil=True)
def _pool_row_2x2(best, idx, plane, h0):
    # one output row of 2x2 windows at stride 2 without a branch: the maximum from max(), its first position
    # in window order from 0/1 flags; a row with a NaN (its sum is NaN; inf - inf also) is done again by the
    # exact rule (the first NaN wins). About 5x _pool_row on this shape.
    W = plane.shape[1]
    r0, r1 = plane[h0], plane[h0 + 1]
    total = plane.dtype.type(0)
    for q in range(best.size):
        a, b, c, d = r0[2 * q], r0[2 * q + 1], r1[2 * q], r1[2 * q + 1]
        m = max(max(a, b), max(c, d))
        total += (a + b) + (c + d)
        ea, eb, ec = np.int64(a == m), np.int64(b == m), np.int64(c == m)
        best[q] = m
        idx[q] = h0 * W + 2 * q + (1 - ea) * (eb + (1 - eb) * (ec * W + (1 - ec) * (W + 1)))
    if total != total:
        _pool_row(best, idx, plane, h0, 2, 2, 2)


@numba.njit(cache=True, nogil=True)
def _pool_row(best, idx, plane, h0, size_h, size_w, stride_w):
    # one output row: the window's taps in row-major order in the outer loops and the outputs
    # inner, so that the compare-and-select loop vectorizes over q (about 2x the one-window-at-a-
    # time loop; the scalar remainder of a short row still branches)
    W = plane.shape[1]
    first = plane[h0]
    for q in range(best.size):
        best[q], idx[q] = first[q * stride_w], h0 * W + q * stride_w
    for dh in range(size_h):
        row = plane[h0 + dh]
        for dw in range(size_w):
            if dh == 0 and dw == 0:
                continue
            base = (h0 + dh) * W + dw
            for q in range(best.size):
                v, b = row[q * stride_w + dw], best[q]
                # v wins if larger or if it is the first NaN; `|` and `&` (not `or`, `and`) keep the
                # test free of branches
                take = (v > b) | (np.isnan(v) & (not np.isnan(b)))
                best[q] = v if take else b
                idx[q] = base + q * stride_w if take else idx[q]


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
