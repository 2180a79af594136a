"""Numba twin of cpp/gemm.cpp.

c (M,N) = op(a) (M,K) · op(b) (K,N), where op(a) = a.T when trans_a (a stored (K,M)) and
op(b) = b.T when trans_b (b stored (N,K)); c is overwritten, or added to with ``accumulate``.

Numba's loop vectorizer vectorizes innermost loops only (Numba leaves LLVM's SLP vectorizer off),
so c cannot be kept in vector registers across k the way a BLAS micro-kernel does. Two loop
nests come close, each register-blocked so that one load serves several products:
- *dot*: c[i, j] = op(a)[i, :] · op(b)[:, j] for 4 rows and 2 columns at a time (``_dot4x2``),
  with rows of op(a) and columns of op(b) contiguous along k: a·bᵀ as stored, otherwise after
  transposing the operands once. Its sums run in vector lanes with FMAs (fastmath reassoc and
  contract on these loops only): about 60 GFLOP/s per AVX2 core.
- *axpy*: c[i, :] += a[i,k]·b[k, :] + ... + a[i,k+3]·b[k+3, :] for 4 rows at a time
  (``_axpy4``), along rows of op(b) as stored (not trans_b). It needs no copy and vectorizes
  over N, but stores c every 4 values of k: about 30 GFLOP/s per core.
``_plan`` takes dot where the layouts fit or the copies are small against the work, axpy for short
k or few rows (small batches). A product with few columns and more rows (N < 32 ≤ M) is computed
as c.T = op(b).T · op(a).T into a buffer, so that the long loop runs along M.

c is cut into tiles, computed in parallel (one tile per iteration; on the calling thread below
MIN_PARALLEL multiply-adds). Every element of c is summed in a fixed order by one iteration, so
the result does not depend on the thread count. An axpy product of one tile (a small batch's
x·w) is cut along k instead: its two halves are computed in parallel and then added, in that
order at any thread count.
"""
import numba
import numpy as np

MB, NB, KC = 64, 256, 256  # the axpy tiles and their k slices
DOT_NB, DOT_KC = 32, 1024  # the dot tiles' columns (MB rows) and k slices: long k, few horizontal sums
MIN_PARALLEL = 1 << 18  # multiply-adds below which gemm runs on one thread
NARROW = 32  # fewer columns than this (and at least as many rows): computed transposed
DOT_MIN = 64  # dot products only along k at least this long
DOT = {"reassoc", "contract"}  # fastmath flags of the dot loops: sums in vector lanes, with FMAs


def gemm(c, a, b, trans_a, trans_b, accumulate=False):
    """c = op(a)·op(b) (or c += with accumulate), in parallel over tiles of c when it pays."""
    M, N = c.shape
    K = a.shape[0] if trans_a else a.shape[1]
    if M == 0 or N == 0:
        return
    if K == 0:
        if not accumulate:
            c[...] = 0
        return
    if N < NARROW <= M:
        t = np.empty((N, M), c.dtype)
        gemm(t, b, a, not trans_b, not trans_a)
        if accumulate:
            c += t.T
        else:
            c[...] = t.T
        return
    parallel = M * N * K >= MIN_PARALLEL
    if _plan(M, N, K, trans_a, trans_b) == "dot":
        rows = np.ascontiguousarray(a.T) if trans_a else a  # op(a), (M,K)
        cols = b if trans_b else np.ascontiguousarray(b.T)  # op(b).T, (N,K)
        (_dot_parallel if parallel else _dot_tiles)(c, rows, cols, accumulate)
    else:
        op_a = a.T if trans_a else a  # a view: its elements are read one at a time
        if parallel and M <= MB and N <= NB:  # one tile: its two halves of k on two threads
            _axpy_halves(c, op_a, b, accumulate)
        else:
            (_axpy_parallel if parallel else _axpy_tiles)(c, op_a, b, accumulate)


def _plan(M, N, K, trans_a, trans_b):
    """'dot' or 'axpy' for an (M,K)·(K,N) product with these transposes."""
    if trans_b:  # axpy runs along rows of b as stored
        return "dot"
    if K < DOT_MIN:
        return "axpy"
    copies = (M * K if trans_a else 0) + K * N
    # measured per AVX2 core: a copied element ~1 ns, dot ~25 multiply-adds per ns, axpy ~15
    return "dot" if copies * 60 <= M * N * K else "axpy"


@numba.njit(cache=True, nogil=True, parallel=True)
def _dot_parallel(c, rows, cols, accumulate):
    M, N = c.shape
    n_jb = (N + DOT_NB - 1) // DOT_NB
    for tile in numba.prange(((M + MB - 1) // MB) * n_jb):
        i0, j0 = (tile // n_jb) * MB, (tile % n_jb) * DOT_NB
        _dot_tile(c, rows, cols, accumulate, i0, min(i0 + MB, M), j0, min(j0 + DOT_NB, N))


@numba.njit(cache=True, nogil=True)
def _dot_tiles(c, rows, cols, accumulate):
    M, N = c.shape
    for i0 in range(0, M, MB):
        for j0 in range(0, N, DOT_NB):
            _dot_tile(c, rows, cols, accumulate, i0, min(i0 + MB, M), j0, min(j0 + DOT_NB, N))


@numba.njit(cache=True, nogil=True)
def _dot_tile(c, rows, cols, accumulate, i0, i1, j0, j1):
    # c[i0:i1, j0:j1] (+)= rows[i0:i1] · cols[j0:j1].T, k in DOT_KC slices (rows of both stay in cache)
    K = rows.shape[1]
    if not accumulate:
        for i in range(i0, i1):
            c[i, j0:j1] = 0
    i4, j2 = i0 + (i1 - i0) // 4 * 4, j0 + (j1 - j0) // 2 * 2
    for k0 in range(0, K, DOT_KC):
        k1 = min(k0 + DOT_KC, K)
        for i in range(i0, i4, 4):
            for j in range(j0, j2, 2):
                _dot4x2(c, i, j, rows, cols, k0, k1)
            for j in range(j2, j1):
                for r in range(i, i + 4):
                    c[r, j] += _dot(rows[r], cols[j], k0, k1)
        for r in range(i4, i1):
            for j in range(j0, j1):
                c[r, j] += _dot(rows[r], cols[j], k0, k1)


@numba.njit(cache=True, nogil=True, fastmath=DOT)
def _dot4x2(c, i, j, rows, cols, k0, k1):
    # c[i + r, j + s] += rows[i + r, k0:k1] · cols[j + s, k0:k1] for r < 4, s < 2; the loop runs
    # over slices from 0 so that Numba knows k >= 0 (no negative-index wrap-around to vectorize)
    a0, a1, a2, a3 = rows[i, k0:k1], rows[i + 1, k0:k1], rows[i + 2, k0:k1], rows[i + 3, k0:k1]
    b0, b1 = cols[j, k0:k1], cols[j + 1, k0:k1]
    z = rows.dtype.type(0)
    s00 = s01 = s10 = s11 = s20 = s21 = s30 = s31 = z
    for k in range(k1 - k0):
        x0, x1, x2, x3, y0, y1 = a0[k], a1[k], a2[k], a3[k], b0[k], b1[k]
        s00 += x0 * y0
        s01 += x0 * y1
        s10 += x1 * y0
        s11 += x1 * y1
        s20 += x2 * y0
        s21 += x2 * y1
        s30 += x3 * y0
        s31 += x3 * y1
    c[i, j] += s00
    c[i, j + 1] += s01
    c[i + 1, j] += s10
    c[i + 1, j + 1] += s11
    c[i + 2, j] += s20
    c[i + 2, j + 1] += s21
    c[i + 3, j] += s30
    c[i + 3, j + 1] += s31


@numba.njit(cache=True, nogil=True, fastmath=DOT)
def _dot(x, y, k0, k1):
    # x[k0:k1] · y[k0:k1]
    xs, ys = x[k0:k1], y[k0:k1]
    s = x.dtype.type(0)
    for k in range(k1 - k0):
        s += xs[k] * ys[k]
    return s


@numba.njit(cache=True, nogil=True, parallel=True)
def _axpy_parallel(c, a, b, accumulate):
    M, N = c.shape
    n_jb = (N + NB - 1) // NB
    for tile in numba.prange(((M + MB - 1) // MB) * n_jb):
        i0, j0 = (tile // n_jb) * MB, (tile % n_jb) * NB
        _axpy_tile(c, a, b, accumulate, i0, min(i0 + MB, M), j0, min(j0 + NB, N), 0, b.shape[0])


@numba.njit(cache=True, nogil=True)
def _axpy_tiles(c, a, b, accumulate):
    M, N = c.shape
    for i0 in range(0, M, MB):
        for j0 in range(0, N, NB):
            _axpy_tile(c, a, b, accumulate, i0, min(i0 + MB, M), j0, min(j0 + NB, N), 0, b.shape[0])


@numba.njit(cache=True, nogil=True, parallel=True)
def _axpy_halves(c, a, b, accumulate):
    # c (+)= (op(a)[:, :h] · b[:h] + op(a)[:, h:] · b[h:]), h a multiple of 4 near K/2: one tile's
    # products on two threads, summed in this order whatever their number
    M, N = c.shape
    K = b.shape[0]
    h = K // 8 * 4
    halves = np.empty((2, M, N), c.dtype)
    for part in numba.prange(2):
        k_lo, k_hi = (0, h) if part == 0 else (h, K)
        _axpy_tile(halves[part], a, b, False, 0, M, 0, N, k_lo, k_hi)
    if accumulate:
        c += halves[0] + halves[1]
    else:
        c[...] = halves[0] + halves[1]


@numba.njit(cache=True, nogil=True)
def _axpy_tile(c, a, b, accumulate, i0, i1, j0, j1, k_lo, k_hi):
    # c[i0:i1, j0:j1] (+)= op(a)[i0:i1, k_lo:k_hi] · b[k_lo:k_hi, j0:j1], k in KC slices (b's block
    # stays in cache)
    if not accumulate:
        for i in range(i0, i1):
            c[i, j0:j1] = 0
    for k0 in range(k_lo, k_hi, KC):
        k1 = min(k0 + KC, k_hi)
        i = i0
        while i + 4 <= i1:
            _axpy4(c[i, j0:j1], c[i + 1, j0:j1], c[i + 2, j0:j1], c[i + 3, j0:j1], a, i, b, j0, j1, k0, k1)
            i += 4
        if i + 2 <= i1:
            _axpy2(c[i, j0:j1], c[i + 1, j0:j1], a, i, b, j0, j1, k0, k1)
            i += 2
        if i < i1:
            _axpy1(c[i, j0:j1], a, i, b, j0, j1, k0, k1)


@numba.njit(cache=True, nogil=True)
def _axpy4(c0, c1, c2, c3, a, i, b, j0, j1, k0, k1):
    # row r of c += a[i + r, k0:k1] · b[k0:k1, j0:j1] for r < 4 (rows of c passed one by one:
    # a row of a C array slices as a C array)
    k = k0
    while k + 4 <= k1:
        b0, b1, b2, b3 = b[k, j0:j1], b[k + 1, j0:j1], b[k + 2, j0:j1], b[k + 3, j0:j1]
        a00, a01, a02, a03 = a[i, k], a[i, k + 1], a[i, k + 2], a[i, k + 3]
        a10, a11, a12, a13 = a[i + 1, k], a[i + 1, k + 1], a[i + 1, k + 2], a[i + 1, k + 3]
        a20, a21, a22, a23 = a[i + 2, k], a[i + 2, k + 1], a[i + 2, k + 2], a[i + 2, k + 3]
        a30, a31, a32, a33 = a[i + 3, k], a[i + 3, k + 1], a[i + 3, k + 2], a[i + 3, k + 3]
        for j in range(j1 - j0):
            c0[j] += a00 * b0[j] + a01 * b1[j] + a02 * b2[j] + a03 * b3[j]
            c1[j] += a10 * b0[j] + a11 * b1[j] + a12 * b2[j] + a13 * b3[j]
            c2[j] += a20 * b0[j] + a21 * b1[j] + a22 * b2[j] + a23 * b3[j]
            c3[j] += a30 * b0[j] + a31 * b1[j] + a32 * b2[j] + a33 * b3[j]
        k += 4
    for k in range(k, k1):
        bk = b[k, j0:j1]
        a0, a1, a2, a3 = a[i, k], a[i + 1, k], a[i + 2, k], a[i + 3, k]
        for j in range(j1 - j0):
            c0[j] += a0 * bk[j]
            c1[j] += a1 * bk[j]
            c2[j] += a2 * bk[j]
            c3[j] += a3 * bk[j]


@numba.njit(cache=True, nogil=True)
def _axpy2(c0, c1, a, i, b, j0, j1, k0, k1):
    # row r of c += a[i + r, k0:k1] · b[k0:k1, j0:j1] for r < 2, the sums grouped as in _axpy4
    k = k0
    while k + 4 <= k1:
        b0, b1, b2, b3 = b[k, j0:j1], b[k + 1, j0:j1], b[k + 2, j0:j1], b[k + 3, j0:j1]
        a00, a01, a02, a03 = a[i, k], a[i, k + 1], a[i, k + 2], a[i, k + 3]
        a10, a11, a12, a13 = a[i + 1, k], a[i + 1, k + 1], a[i + 1, k + 2], a[i + 1, k + 3]
        for j in range(j1 - j0):
            c0[j] += a00 * b0[j] + a01 * b1[j] + a02 * b2[j] + a03 * b3[j]
            c1[j] += a10 * b0[j] + a11 * b1[j] + a12 * b2[j] + a13 * b3[j]
        k += 4
    for k in range(k, k1):
        bk, a0, a1 = b[k, j0:j1], a[i, k], a[i + 1, k]
        for j in range(j1 - j0):
            c0[j] += a0 * bk[j]
            c1[j] += a1 * bk[j]


@numba.njit(cache=True, nogil=True)
def _axpy1(c0, a, i, b, j0, j1, k0, k1):
    # c0 += a[i, k0:k1] · b[k0:k1, j0:j1]
    k = k0
    while k + 4 <= k1:
        b0, b1, b2, b3 = b[k, j0:j1], b[k + 1, j0:j1], b[k + 2, j0:j1], b[k + 3, j0:j1]
        a00, a01, a02, a03 = a[i, k], a[i, k + 1], a[i, k + 2], a[i, k + 3]
        for j in range(j1 - j0):
            c0[j] += a00 * b0[j] + a01 * b1[j] + a02 * b2[j] + a03 * b3[j]
        k += 4
    for k in range(k, k1):
        bk, a0 = b[k, j0:j1], a[i, k]
        for j in range(j1 - j0):
            c0[j] += a0 * bk[j]
