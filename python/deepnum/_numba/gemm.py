"""Numba twin of cpp/gemm.cpp.

c (M,N) = op(a) (M,K) · op(b) (K,N), where op(a) = a.T when trans_a (a stored (K,M)) and
op(b) = b.T when trans_b (b stored (N,K)); c is overwritten, or added to with ``accumulate``.

Two loop nests:
- *panels*, where op(b) = b (rows of b contiguous along N): a register tile in the manner of BLIS.
  For each KC slice of k, op(a)'s rows are packed MR at a time (k-major, zero past the last row) and
  b's columns NR at a time (read in place where the tile has few rows); a micro-kernel keeps an MR×NR
  block of sums in vector registers across the slice, one FMA per pair of loaded values and row.
  Numba leaves LLVM's SLP vectorizer off (numba#8705, a miscompilation it caused), and its loop
  vectorizer cannot keep sums in registers across an outer loop. The micro-kernels are therefore
  straight-line code over MR·NR scalars, written out by ``_kernel_source`` and compiled, once per
  dtype at import (then cached), with the SLP vectorizer switched on for them alone (``_with_slp``):
  it turns each row's NR sums into vectors. About 75 GFLOP/s per AVX2 core in float32 (4×16 tiles)
  against ~30 for the axpy loops this replaced.
- *dot*, where op(b) = b.T (rows of op(a) and columns of op(b) contiguous along k): c[i, j] =
  op(a)[i, :] · op(b)[:, j] for 4 rows and 2 columns at a time (``_dot4x2``), after transposing a
  once when trans_a. Its sums run in vector lanes with FMAs (fastmath reassoc and contract on these
  loops only): about 60 GFLOP/s per AVX2 core.
A product with few columns and more rows (N < 32 ≤ M) is computed as c.T = op(b).T · op(a).T into a
buffer, so that the long loop runs along M.

c is cut into tiles, computed in parallel (one tile per iteration; on the calling thread below
MIN_PARALLEL multiply-adds). Every element of c is summed in a fixed order by one iteration (the KC
slices in order, k in order within a slice), so the result does not depend on the thread count. A
panel product of one tile's rows is cut into two tiles of columns, so that both threads have one. A
product of one row (batch 1) is a vector loop along b's rows instead (half the time of a 4-row tile).
"""
import numba
import numpy as np
from numba.core import config, types
from numba.core.compiler_lock import global_compiler_lock
from numba.extending import overload

MB, NB, KC = 64, 256, 256  # the panel tiles (rows, columns) and their k slices
PACK_B_ROWS = 32  # b's columns are packed for tiles of more rows than this (read in place below)
DOT_NB, DOT_KC = 32, 1024  # the dot tiles' columns (MB rows) and k slices: long k, few horizontal sums
MIN_PARALLEL = 1 << 18  # multiply-adds below which gemm runs on one thread
NARROW = 32  # fewer columns than this (and at least as many rows): computed transposed
DOT_MIN = 64  # conv2d's forward takes the dot products from this many taps on (conv2d.py)
DOT = {"reassoc", "contract"}  # fastmath flags of the dot loops: sums in vector lanes, with FMAs
TILES = {np.dtype(np.float32): (4, 16), np.dtype(np.float64): (4, 8)}  # (MR, NR): 8 AVX2 registers of sums


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
    if not c.flags.c_contiguous:
        t = np.empty((M, N), c.dtype)
        if accumulate:
            t[...] = c
        gemm(t, a, b, trans_a, trans_b, accumulate)
        c[...] = t
        return
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)  # views only where they already are
    parallel = M * N * K >= MIN_PARALLEL
    if trans_b:
        rows = np.ascontiguousarray(a.T) if trans_a else a  # op(a), (M,K)
        (_dot_parallel if parallel else _dot_tiles)(c, rows, b, accumulate)
    elif M == 1:  # one row (batch 1): a vector loop along b's rows beats a register tile of three zero rows
        if parallel:
            _row_parallel(c, a, trans_a, b, accumulate, _tile_width(c.dtype, M, N))
        else:
            _row_tile(c, a, trans_a, b, accumulate, 0, N)
    elif parallel:
        _panels_parallel(c, a, trans_a, b, accumulate, _tile_width(c.dtype, M, N))
    else:
        _panels(c, a, trans_a, b, accumulate)


def _tile_width(dtype, M, N):
    """The columns of a parallel product's tiles: at most NB, a multiple of NR, spread evenly over the tiles,
    and two tiles at least where the rows make one."""
    NR = TILES[dtype][1]
    n_jb = max((N + NB - 1) // NB, 1 if M > MB else 2)
    return ((N + n_jb - 1) // n_jb + NR - 1) // NR * NR


@numba.njit(cache=True, nogil=True, parallel=True)
def _row_parallel(c, a, trans_a, b, accumulate, tile_n):
    N = c.shape[1]
    for tile in numba.prange((N + tile_n - 1) // tile_n):
        j0 = tile * tile_n
        _row_tile(c, a, trans_a, b, accumulate, j0, min(j0 + tile_n, N))


@numba.njit(cache=True, nogil=True)
def _row_tile(c, a, trans_a, b, accumulate, j0, j1):
    # c[0, j0:j1] (+)= sum over k of op(a)[0, k] · b[k, j0:j1], k four at a time, b's rows read in order
    K = b.shape[0]
    row = c[0, j0:j1]
    if not accumulate:
        row[:] = 0
    k = 0
    while k + 4 <= K:
        b0, b1, b2, b3 = b[k, j0:j1], b[k + 1, j0:j1], b[k + 2, j0:j1], b[k + 3, j0:j1]
        if trans_a:
            a0, a1, a2, a3 = a[k, 0], a[k + 1, 0], a[k + 2, 0], a[k + 3, 0]
        else:
            a0, a1, a2, a3 = a[0, k], a[0, k + 1], a[0, k + 2], a[0, k + 3]
        for j in range(j1 - j0):
            row[j] += a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j]
        k += 4
    for k in range(k, K):
        ak, bk = a[k, 0] if trans_a else a[0, k], b[k, j0:j1]
        for j in range(j1 - j0):
            row[j] += ak * bk[j]


@numba.njit(cache=True, nogil=True, parallel=True)
def _panels_parallel(c, a, trans_a, b, accumulate, tile_n):
    M, N = c.shape
    n_jb = (N + tile_n - 1) // tile_n
    for tile in numba.prange(((M + MB - 1) // MB) * n_jb):
        i0, j0 = (tile // n_jb) * MB, (tile % n_jb) * tile_n
        _panel_tile(c, a, trans_a, b, accumulate, i0, min(i0 + MB, M), j0, min(j0 + tile_n, N))


@numba.njit(cache=True, nogil=True)
def _panels(c, a, trans_a, b, accumulate):
    M, N = c.shape
    for i0 in range(0, M, MB):
        for j0 in range(0, N, NB):
            _panel_tile(c, a, trans_a, b, accumulate, i0, min(i0 + MB, M), j0, min(j0 + NB, N))


@numba.njit(cache=True, nogil=True)
def _panel_tile(c, a, trans_a, b, accumulate, i0, i1, j0, j1):
    # c[i0:i1, j0:j1] (+)= op(a)[i0:i1] · b[:, j0:j1], in KC slices of k; a, b and c C-contiguous
    MR, NR = _tile_shape(c)
    U = np.uint64
    ldc, ldb = c.shape[1], b.shape[1]
    K = b.shape[0]
    a_rs, a_cs = (1, a.shape[1]) if trans_a else (a.shape[1], 1)  # op(a)[i, k] = af[i*a_rs + k*a_cs]
    af, bf, cf = a.reshape(-1), b.reshape(-1), c.reshape(-1)
    pack_b = i1 - i0 > PACK_B_ROWS
    ap = np.empty((i1 - i0 + MR - 1) // MR * MR * KC, c.dtype)
    bp = np.empty(((j1 - j0 + NR - 1) // NR * NR if pack_b else NR) * KC, c.dtype)
    tile = np.empty(MR * NR, c.dtype)
    for k0 in range(0, K, KC):
        kc = min(KC, K - k0)
        acc = accumulate or k0 > 0
        _pack(ap, af, a_rs, a_cs, i0, i1, k0, kc, MR)
        if pack_b:
            _pack(bp, bf, 1, ldb, j0, j1, k0, kc, NR)
        for j in range(j0, j1, NR):
            nr = min(NR, j1 - j)
            if pack_b:
                _panel_column(c, cf, ap, bp, U((j - j0) // NR * kc * NR), U(NR), kc, i0, i1, j, nr, acc, tile)
            elif nr == NR or k0 + kc < K:
                # in place; a panel of the last columns reads past them into b's next row (in bounds but for
                # the slice with b's last row), values that only reach the edge tile's discarded columns
                _panel_column(c, cf, ap, bf, U(k0 * ldb + j), U(ldb), kc, i0, i1, j, nr, acc, tile)
            else:  # the last columns of the last slice, zero-padded
                _pack(bp, bf, 1, ldb, j, j1, k0, kc, NR)
                _panel_column(c, cf, ap, bp, U(0), U(NR), kc, i0, i1, j, nr, acc, tile)


@numba.njit(cache=True, nogil=True)
def _panel_column(c, cf, ap, bf, bo, ldb, kc, i0, i1, j, nr, acc, tile):
    # c[i0:i1, j:j + nr] (+)= the packed rows of a · the panel of b at bf[bo:] (row stride ldb)
    MR, NR = _tile_shape(c)
    U = np.uint64
    ldc = c.shape[1]
    for i in range(i0, i1, MR):
        mr = min(MR, i1 - i)
        ao = U((i - i0) // MR * kc * MR)
        if mr == MR and nr == NR:
            _micro(ap, ao, bf, bo, ldb, U(kc), cf, U(i * ldc + j), U(ldc), acc)
        else:  # an edge tile: into a buffer, then its valid part
            _micro(ap, ao, bf, bo, ldb, U(kc), tile, U(0), U(NR), False)
            for r in range(mr):
                row = c[i + r]
                for s in range(nr):
                    if acc:
                        row[j + s] += tile[r * NR + s]
                    else:
                        row[j + s] = tile[r * NR + s]


@numba.njit(cache=True, nogil=True)
def _pack(dst, src, rs, cs, i0, i1, k0, kc, W):
    # dst[(p*kc + k)*W + r] = src[(i0 + p*W + r)*rs + (k0 + k)*cs], 0 past i1: panels W wide, k-major (op(a)'s
    # rows, W = MR; b's columns, W = NR with rs = 1 and cs = ldb), read along whichever stride is 1
    U = np.uint64
    for p in range((i1 - i0 + W - 1) // W):
        i = i0 + p * W
        w = min(W, i1 - i)
        base = U(p * kc * W)
        if cs == 1:
            for r in range(w):
                row = U((i + r) * rs + k0)
                for k in range(kc):
                    dst[base + U(k * W + r)] = src[row + U(k)]
        else:
            for k in range(kc):
                col = U(i * rs + (k0 + k) * cs)
                for r in range(w):
                    dst[base + U(k * W + r)] = src[col + U(r * rs)]
        for k in range(kc):
            for r in range(w, W):
                dst[base + U(k * W + r)] = 0


def _kernel_source(name, MR, NR):
    """A micro-kernel: c[co + r*ldc + s] (+)= sum over k < kc of ap[ao + k*MR + r] · bf[bo + k*ldb + s], r < MR,
    s < NR, its MR·NR sums in scalars (one vector per row and NR lanes once the SLP vectorizer has run)."""
    u = "np.uint64"
    lines = [f"def {name}(ap, ao, bf, bo, ldb, kc, cf, co, ldc, acc):", "    z = ap.dtype.type(0)"]
    lines += ["    " + " = ".join(f"s{r}_{s}" for s in range(NR)) + " = z" for r in range(MR)]
    lines += ["    for k in range(kc):",
              "        " + ", ".join(f"b{s}" for s in range(NR)) + " = "
              + ", ".join(f"bf[bo + {u}({s})]" for s in range(NR))]
    for r in range(MR):
        lines.append(f"        a = ap[ao + {u}({r})]")
        lines += [f"        s{r}_{s} += a * b{s}" for s in range(NR)]
    lines += ["        ao += " + f"{u}({MR})", "        bo += ldb"]
    for test, op in (("if acc:", "+="), ("else:", "=")):
        lines.append("    " + test)
        for r in range(MR):
            lines.append(f"        o = co + {u}({r}) * ldc")
            lines += [f"        cf[o + {u}({s})] {op} s{r}_{s}" for s in range(NR)]
    return "\n".join(lines) + "\n"


def _with_slp(compile_kernel):
    """compile_kernel() with LLVM's SLP vectorizer on (Numba reads the switch when it builds its passes)."""
    with global_compiler_lock:
        off = config.SLP_VECTORIZE
        config.SLP_VECTORIZE = 1
        try:
            return compile_kernel()
        finally:
            config.SLP_VECTORIZE = off


def _compile_kernel(dtype, MR, NR):
    name = f"_kernel_{dtype.name}_{MR}x{NR}"
    namespace = {"np": np, "__name__": __name__}  # the module's name: a cached kernel's environment imports it
    exec(compile(_kernel_source(name, MR, NR), __file__, "exec"), namespace)
    U, t = types.uint64, numba.from_dtype(dtype)
    packed, out = types.Array(t, 1, "C"), types.Array(t, 1, "C")
    signatures = [types.void(packed, U, b, U, U, U, out, U, U, types.boolean)
                  for b in (types.Array(t, 1, "C"), types.Array(t, 1, "C", readonly=True))]
    return _with_slp(lambda: numba.njit(signatures, cache=True, nogil=True, fastmath={"contract"})(namespace[name]))


KERNELS = {dtype: _compile_kernel(dtype, MR, NR) for dtype, (MR, NR) in TILES.items()}


def _micro(ap, ao, bf, bo, ldb, kc, cf, co, ldc, acc):
    """The micro-kernel of ap's dtype (KERNELS), called from jitted code only (typed by the overload below)."""
    raise TypeError("gemm._micro is called from jitted code only")


@overload(_micro)
def _micro_of_dtype(ap, ao, bf, bo, ldb, kc, cf, co, ldc, acc):
    kernel = KERNELS[np.dtype(ap.dtype.name)]

    def call(ap, ao, bf, bo, ldb, kc, cf, co, ldc, acc):
        kernel(ap, ao, bf, bo, ldb, kc, cf, co, ldc, acc)
    return call


def _tile_shape(c):
    """(MR, NR) of c's dtype (TILES), from jitted code only (typed by the overload below)."""
    raise TypeError("gemm._tile_shape is called from jitted code only")


@overload(_tile_shape)
def _tile_shape_of_dtype(c):
    MR, NR = TILES[np.dtype(c.dtype.name)]
    return lambda c: (MR, NR)


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
