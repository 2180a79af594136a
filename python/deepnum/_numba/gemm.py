"""Numba twin of cpp/gemm.cpp.

c (M,N) = op(a) (M,K) · op(b) (K,N), where op(a) = a.T when trans_a (a stored (K,M)) and
op(b) = b.T when trans_b (b stored (N,K)); c is overwritten. One kernel covers the four
transpose combinations.

Blocked loop nest: c is cut into (MB, NB) tiles that run in parallel, one tile per iteration.
For each KB-deep slice of k, a tile copies its (KB, NB) block of op(b) into a contiguous
buffer, then adds a[i, k] * row k of that block to row i of c, so the inner loop is
contiguous whatever the transposes. Every element of c is summed over k in ascending
order by one iteration, so the result does not depend on the thread count.
"""
import numba
import numpy as np

MB, NB, KB = 64, 256, 128


@numba.njit(cache=True, nogil=True, parallel=True)
def gemm(c, a, b, trans_a, trans_b):
    # c is (M,N); a is (M,K) or (K,M) if trans_a; b is (K,N) or (N,K) if trans_b
    M, N = c.shape
    K = a.shape[0] if trans_a else a.shape[1]
    n_jb = (N + NB - 1) // NB
    for tile in numba.prange(((M + MB - 1) // MB) * n_jb):
        i0, j0 = (tile // n_jb) * MB, (tile % n_jb) * NB
        i1, j1 = min(i0 + MB, M), min(j0 + NB, N)
        bp = np.empty((KB, j1 - j0), c.dtype)
        c[i0:i1, j0:j1].fill(0)
        for k0 in range(0, K, KB):
            k1 = min(k0 + KB, K)
            if trans_b:
                for j in range(j0, j1):
                    for k in range(k0, k1):
                        bp[k - k0, j - j0] = b[j, k]
            else:
                for k in range(k0, k1):
                    for j in range(j0, j1):
                        bp[k - k0, j - j0] = b[k, j]
            for i in range(i0, i1):
                ci = c[i, j0:j1]
                for k in range(k0, k1):
                    aik = a[k, i] if trans_a else a[i, k]
                    bk = bp[k - k0]
                    for j in range(j1 - j0):
                        ci[j] += aik * bk[j]
