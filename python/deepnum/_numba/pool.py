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

U = numba.uintp


def max_pool2d_forward(y, argmax, x, size_h, size_w, stride_h, stride_w):
    # x is (N,C,H,W); y and argmax are (N,C,P,Q)
    if size_h == size_w == stride_h == stride_w == 2:
        _forward_2x2(y, argmax, x)
    else:
        _forward(y, argmax, x, size_h, size_w, stride_h, stride_w)


@numba.njit(cache=True, nogil=True, parallel=True)
def _forward(y, argmax, x, size_h, size_w, stride_h, stride_w):
    N, C = x.shape[0], x.shape[1]
    for nc in numba.prange(N * C):
        n, c = nc // C, nc % C
        for p in range(y.shape[2]):
            _pool_row(y[n, c, p], argmax[n, c, p], x[n, c], p * stride_h, size_h, size_w, stride_w)


@numba.njit(cache=True, nogil=True, parallel=True)
def _forward_2x2(y, argmax, x):
    # 2x2 windows at stride 2 without a branch: the maximum from max(), its first position in window order
    # from 0/1 flags; a plane with a NaN (its sum is NaN; inf - inf also) is done again by the exact rule (the
    # first NaN wins). Unsigned offsets into the flat arrays: no negative-index test on each element (2-5x
    # faster than a call per row of views on the seeds' 24x24 and 8x8 planes).
    N, C, H, W = x.shape
    P, Q = y.shape[2], y.shape[3]
    flat_x, flat_y, flat_arg = x.reshape(x.size), y.reshape(y.size), argmax.reshape(argmax.size)
    for nc in numba.prange(N * C):
        total = x.dtype.type(0)
        for p in range(P):
            r0, out = U(nc * H * W + 2 * p * W), U((nc * P + p) * Q)
            r1 = r0 + U(W)
            for q in range(Q):
                j = U(2 * q)
                a, b, c, d = flat_x[r0 + j], flat_x[r0 + j + U(1)], flat_x[r1 + j], flat_x[r1 + j + U(1)]
                m = max(max(a, b), max(c, d))
                total += (a + b) + (c + d)
                ea, eb, ec = np.int64(a == m), np.int64(b == m), np.int64(c == m)
                flat_y[out + U(q)] = m
                flat_arg[out + U(q)] = 2 * (p * W + q) + (1 - ea) * (eb + (1 - eb) * (ec * W + (1 - ec) * (W + 1)))
        if total != total:
            n, c = nc // C, nc % C
            for p in range(P):
                _pool_row(y[n, c, p], argmax[n, c, p], x[n, c], 2 * p, 2, 2, 2)


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
    # dy and argmax are (N,C,P,Q); dx is (N,C,H,W); unsigned offsets, as in _forward_2x2
    N, C, H, W = dx.shape
    HW, PQ = H * W, dy.shape[2] * dy.shape[3]
    flat_dx, flat_dy, flat_arg = dx.reshape(dx.size), dy.reshape(dy.size), argmax.reshape(argmax.size)
    for nc in numba.prange(N * C):
        plane, out = U(nc * HW), U(nc * PQ)
        flat_dx[plane:plane + U(HW)] = 0
        for j in range(PQ):
            flat_dx[plane + U(flat_arg[out + U(j)])] += flat_dy[out + U(j)]
