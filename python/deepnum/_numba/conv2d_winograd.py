"""conv2d's backward by F(2×2, 5×5) for 5×5 kernels at stride 1 (``applies``): cpp/conv2d_winograd.cpp's backward.

A 6×6 tile d of the zero-padded input, rows 2·tp.. and columns 2·tq.., gives the outputs (2·tp.., 2·tq..):
  y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A        for a 5×5 filter g, summed over the input channels;
36 multiplications per 2×2 outputs and input channel instead of 100. The sum over channels makes the
elementwise products 36 matrix products, one per position ξ = 6a + b of the tile, over the T tiles of a
chunk of images (t = (image·TP + tp)·TQ + tq), M[ξ] (K, T) = U[ξ] (K, C) · V[ξ] (C, T), U the filters and
V the input tiles transformed. The backward takes the transposes of these steps:
  dM = A dy Aᵀ per 2×2 tile of dy (0 past P and Q);
  dw: dU[ξ] (K, C) = Σ over chunks of dM[ξ] · V[ξ]ᵀ (gemm's dot products), then dw = Gᵀ dU G per filter;
  dx: dV[ξ] (C, T) = U[ξ]ᵀ · dM[ξ] (into V's planes), then B dV Bᵀ of each tile added at its place.
Numba vectorizes innermost loops only, and a tile's 36 values lie far apart in the input. So the tiles are
first laid out as im2col's patches of 6×6 at stride 2 (patches.py: (C·36, T), each position a row along the
tiles), and every transform is a pair of passes over such rows, out[a·n + s] = Σ_r m[a, r]·in[r·n + s] and
then along the other direction (``_left``, ``_right``): vector loops along T. The way back to dx is
col2im's, which adds the overlapping tiles. The products are gemm.py's tile loops, the 36 positions in
parallel. The filter transforms run in float64, the rest in the arrays' type, as in cpp.
Only the backward takes this path: Numba's forward by Winograd was 0.6-1.0x its im2col forward at every
shape measured (network3's second layer at batch 10-100, 28×28 planes), its backward 1.1-1.5x as fast at
network3's second layer from batch 20 on and 2.7x on 28×28 planes at batch 10 (2-core Zen 3; ``applies``).
Every element is summed in a fixed order by one iteration, the chunks in order, so no result depends on the
thread count.
The chunks are fixed by the shapes: V and M of a chunk hold about CHUNK elements (at least one image).

Error: as cpp's path (tests/test_ops.py, WINOGRAD_F32_ERROR): Bᵀ and B scale a tile by up to 96 along
each direction and G undoes it. conv2d.py takes this path where ``applies`` and the inputs are finite
(the transforms would turn an inf into inf - inf, and a NaN into a tile of them).
"""
import numba
import numpy as np

from .gemm import _dot_tiles, _panels
from .patches import patches

# Where the path is taken: 5×5 kernels at stride 1, at least 16 channels in and out and 256 tiles of 2×2
# outputs in the batch (measured: 8 channels in and out 0.9x im2col's speed at 360 tiles; 20 -> 40 channels even
# at 160 tiles, network3's second layer at batch 10, and 1.1-1.5x from 320 on).
MIN_CHANNELS = 16
MIN_BATCH_TILES = 256
CHUNK = 1 << 19  # elements of a chunk's V and M together

def applies(N, C, H, W, K, R, S, stride_h, stride_w, pad_h, pad_w):
    """Whether conv2d on these sizes takes this path (for finite inputs)."""
    tiles = (H + 2 * pad_h - 3) // 2 * ((W + 2 * pad_w - 3) // 2)
    return (R == 5 and S == 5 and stride_h == 1 and stride_w == 1 and C >= MIN_CHANNELS and K >= MIN_CHANNELS
            and N * tiles >= MIN_BATCH_TILES)


def _chunk(N, C, K, TPQ):
    return max(1, min(N, CHUNK // (36 * TPQ * (C + K))))


def backward(dx, dw, dy, x, w, pad_h, pad_w):
    """dx (like x, or of size 0: not wanted) and dw (like w) of conv2d at stride 1 with zero padding (pad_h, pad_w),
    for the upstream gradient dy."""
    N, K, P, Q = dy.shape
    C = x.shape[1]
    TP, TQ = (P + 1) // 2, (Q + 1) // 2
    u = _filter_transform(w).astype(dy.dtype)
    du = np.empty((36, K, C), dy.dtype)
    m = _chunk(N, C, K, TP * TQ)
    for n0 in range(0, N, m):
        n1 = min(n0 + m, N)
        T = (n1 - n0) * TP * TQ
        cols, v, dm = (np.empty((36 * n, T), dy.dtype) for n in (C, C, K))
        patches(cols, x[n0:n1], 6, 6, 2, 2, pad_h, pad_w, TP, TQ, False)
        _transform(v, cols, BT_, BT_, True)
        g = np.empty((4 * K, T), dy.dtype)
        _tiles_in(g, dy[n0:n1], TP, TQ)
        _transform(dm, g, A_, A_, True)
        _transposed_products(du, v.reshape(36, C, T), u, dm.reshape(36, K, T), n0 > 0, dx.size > 0)
        if dx.size:
            _transform(cols, v, B_, B_, False)
            patches(cols, dx[n0:n1], 6, 6, 2, 2, pad_h, pad_w, TP, TQ, True)
    _filter_gradient(dw, du)


@numba.njit(cache=True, nogil=True, parallel=True)
def _transposed_products(du, v, u, dm, accumulate, want_dv):
    # dU[ξ] (+)= dM[ξ] · V[ξ]ᵀ, then (want_dv) V[ξ] = U[ξ]ᵀ · dM[ξ], one position per iteration
    for xi in numba.prange(36):
        _dot_tiles(du[xi], dm[xi], v[xi], accumulate)
        if want_dv:
            _panels(v[xi], u[xi], True, dm[xi], False)


# The transforms along one direction, by their rows (rows_kernel's kind): out (p values) = m · in (q values)
BT_, B_, A_, G_, GT_ = range(5)
SHAPES = ((6, 6), (6, 6), (6, 2), (6, 5), (5, 6))  # (p, q) of each


def _transform(out, inp, left, right, position_major):
    """Each of the n planes' tiles (q×q' values, q' along the tile's rows) becomes left · tile · rightᵀ (p×p').

    inp and out hold one row of T values (tiles) per position: position_major, inp is plane-major
    (inp[plane·q·q' + r·q' + s]: patches' layout) and out position-major (out[(a·p' + b)·n + plane]: V and dM as
    36 planes (n, T)); otherwise the other way round (dV into col2im's rows)."""
    (p, q), (pp, qq) = SHAPES[left], SHAPES[right]
    _transform_planes(out, inp, left, right, p, q, pp, qq, position_major)


@numba.njit(cache=True, nogil=True, parallel=True)
def _transform_planes(out, inp, left, right, p, q, pp, qq, position_major):
    n = inp.shape[0] // (q * qq)
    for pl in numba.prange(n):
        plane = np.int64(pl)  # the loop's index may be unsigned, and unsigned + signed is a float in Numba
        tmp = np.empty((p * qq, inp.shape[1]), inp.dtype)
        base, step = (plane * q * qq, 1) if position_major else (plane, n)
        for s in range(qq):  # along the tile's columns: tmp[a·q' + s] = Σ_r left[a, r]·tile[r, s]
            _rows(left, inp, base + s * step, qq * step, tmp, s, qq)
        base, step = (plane, n) if position_major else (plane * p * pp, 1)
        for a in range(p):  # along its rows: out[a·p' + b] = Σ_s right[b, s]·tmp[a·q' + s]
            _rows(right, tmp, a * qq, 1, out, base + a * pp * step, step)


@numba.njit(cache=True, nogil=True)
def _rows(kind, src, i0, di, dst, o0, do):
    # dst[o0 + a·do] = Σ_r m[a, r]·src[i0 + r·di] for the transform m of this kind, rows of T values
    f = src.dtype.type
    T = src.shape[1]
    if kind == BT_ or kind == GT_:  # six rows in
        x0, x1, x2, x3 = src[i0], src[i0 + di], src[i0 + 2 * di], src[i0 + 3 * di]
        x4, x5 = src[i0 + 4 * di], src[i0 + 5 * di]
        y0, y1, y2, y3, y4 = dst[o0], dst[o0 + do], dst[o0 + 2 * do], dst[o0 + 3 * do], dst[o0 + 4 * do]
        if kind == BT_:
            y5 = dst[o0 + 5 * do]
            for j in range(T):
                d0, d1, d2, d3, d4, d5 = x0[j], x1[j], x2[j], x3[j], x4[j], x5[j]
                y0[j] = f(2) * d0 - f(3) * d1 - f(4) * d2 + f(3) * d3 + f(2) * d4
                y1[j] = f(-2) * d1 + d2 + f(5) * d3 + f(2) * d4
                y2[j] = f(-2) * d1 + f(5) * d2 - d3 - f(2) * d4
                y3[j] = f(32) * d1 + f(16) * d2 - f(32) * d3 - f(16) * d4
                y4[j] = d1 - f(2) * d2 - d3 + f(2) * d4
                y5[j] = f(2) * d1 - f(3) * d2 - f(4) * d3 + f(3) * d4 + f(2) * d5
        else:  # Gᵀ
            for j in range(T):
                d0, d1, d2, d3, d4, d5 = x0[j], x1[j], x2[j], x3[j], x4[j], x5[j]
                total, diff = (d1 + d2) * f(1 / 6), (d1 - d2) * f(1 / 6)
                y0[j] = f(0.5) * d0 + total + d3 * f(1 / 15) + d4 * f(1 / 30)
                y1[j] = diff + d3 * f(1 / 30) - d4 * f(1 / 15)
                y2[j] = total + d3 * f(1 / 60) + d4 * f(2 / 15)
                y3[j] = diff + d3 * f(1 / 120) - d4 * f(4 / 15)
                y4[j] = total + d3 * f(1 / 240) + d4 * f(8 / 15) + f(0.5) * d5
    else:  # six rows out
        y0, y1, y2 = dst[o0], dst[o0 + do], dst[o0 + 2 * do]
        y3, y4, y5 = dst[o0 + 3 * do], dst[o0 + 4 * do], dst[o0 + 5 * do]
        x0, x1 = src[i0], src[i0 + di]
        if kind == A_:
            for j in range(T):
                d0, d1 = x0[j], x1[j]
                y0[j] = d0
                y1[j] = d0 + d1
                y2[j] = d0 - d1
                y3[j] = d0 + f(0.5) * d1
                y4[j] = d0 - f(2) * d1
                y5[j] = d1
        elif kind == B_:
            x2, x3, x4, x5 = src[i0 + 2 * di], src[i0 + 3 * di], src[i0 + 4 * di], src[i0 + 5 * di]
            for j in range(T):
                d0, d1, d2, d3, d4, d5 = x0[j], x1[j], x2[j], x3[j], x4[j], x5[j]
                y0[j] = f(2) * d0
                y1[j] = f(-3) * d0 - f(2) * d1 - f(2) * d2 + f(32) * d3 + d4 + f(2) * d5
                y2[j] = f(-4) * d0 + d1 + f(5) * d2 + f(16) * d3 - f(2) * d4 - f(3) * d5
                y3[j] = f(3) * d0 + f(5) * d1 - d2 - f(32) * d3 - d4 - f(4) * d5
                y4[j] = f(2) * d0 + f(2) * d1 - f(2) * d2 - f(16) * d3 + f(2) * d4 + f(3) * d5
                y5[j] = f(2) * d5
        else:  # G
            x2, x3, x4 = src[i0 + 2 * di], src[i0 + 3 * di], src[i0 + 4 * di]
            for j in range(T):
                d0, d1, d2, d3, d4 = x0[j], x1[j], x2[j], x3[j], x4[j]
                even, odd = d0 + d2 + d4, d1 + d3
                y0[j] = f(0.5) * d0
                y1[j] = (even + odd) * f(1 / 6)
                y2[j] = (even - odd) * f(1 / 6)
                y3[j] = d0 * f(1 / 15) + d1 * f(1 / 30) + d2 * f(1 / 60) + d3 * f(1 / 120) + d4 * f(1 / 240)
                y4[j] = d0 * f(1 / 30) - d1 * f(1 / 15) + d2 * f(2 / 15) - d3 * f(4 / 15) + d4 * f(8 / 15)
                y5[j] = f(0.5) * d4


@numba.njit(cache=True, nogil=True, parallel=True)
def _tiles_in(g, dy, TP, TQ):
    # g[k·4 + r·2 + s, tile (i, tp, tq)] = dy[i, k, 2tp + r, 2tq + s], 0 past P and Q
    m, K, P, Q = dy.shape
    for k in numba.prange(K):
        g[k * 4:(k + 1) * 4] = 0
        for i in range(m):
            for p in range(P):
                tp, r = p // 2, p % 2
                for q in range(Q):
                    g[k * 4 + r * 2 + q % 2, (i * TP + tp) * TQ + q // 2] = dy[i, k, p, q]


def _filter_transform(w):
    """U (36, K, C) in float64: U[6a + b, k, c] = (G w[k, c] Gᵀ)[a, b], along the K·C filters at once."""
    K, C = w.shape[0], w.shape[1]
    u = np.empty((36, K * C))
    _transform(u, np.ascontiguousarray(w.reshape(K * C, 25).T, np.float64), G_, G_, True)
    return u.reshape(36, K, C)


def _filter_gradient(dw, du):
    """dw[k, c] = Gᵀ dU[:, k, c] G, dU (36, K, C) as 6×6 tiles, in float64."""
    K, C = dw.shape[0], dw.shape[1]
    t = np.empty((25, K * C))
    _transform(t, du.reshape(36, K * C).astype(np.float64), GT_, GT_, True)
    dw[...] = t.T.reshape(dw.shape)
