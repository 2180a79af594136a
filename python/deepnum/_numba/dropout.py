"""Numba twin of cpp/dropout.cpp.

Inverted dropout over the flattened arrays: mask holds 1/(1-p) (in the array's dtype) where
the element is kept and 0 where it is dropped; y = x * mask and dx = dy * mask. Element i
keeps when its uniform draw u_i >= p, with u_i the top 53 bits of
splitmix64(seed + (i + 1) * 0x9E3779B97F4A7C15): a counter-based hash, so the mask is the
same in every backend and for any thread count. All hash arithmetic is uint64 (mixing
int64 in would turn it into float64).
"""
import numba
import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_UNIT = 2.0 ** -53  # top 53 bits -> [0, 1)


PARALLEL = 1 << 14  # elements from which the loops run in parallel


def dropout_forward(y, mask, x, p, seed):
    f = _dropout_forward_parallel if x.size >= PARALLEL else _dropout_forward
    f(y.reshape(-1), mask.reshape(-1), x.reshape(-1), p, np.uint64(seed))


def dropout_backward(dx, dy, mask):
    f = _dropout_backward_parallel if dy.size >= PARALLEL else _dropout_backward
    f(dx.reshape(-1), dy.reshape(-1), mask.reshape(-1))


@numba.njit(cache=True, nogil=True)
def _keep(i, p, seed):
    # whether element i is kept
    z = seed + np.uint64(i + 1) * GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z = z ^ (z >> np.uint64(31))
    return np.float64(z >> np.uint64(11)) * _UNIT >= p


@numba.njit(cache=True, nogil=True)
def _dropout_forward(y, mask, x, p, seed):
    # y, mask and x are flat (n,); seed is uint64
    t = x.dtype.type
    keep, drop = t(1.0 / (1.0 - p)), t(0)
    for i in range(x.size):
        mask[i] = keep if _keep(i, p, seed) else drop
        y[i] = x[i] * mask[i]


@numba.njit(cache=True, nogil=True, parallel=True)
def _dropout_forward_parallel(y, mask, x, p, seed):
    t = x.dtype.type
    keep, drop = t(1.0 / (1.0 - p)), t(0)
    for i in numba.prange(x.size):
        mask[i] = keep if _keep(i, p, seed) else drop
        y[i] = x[i] * mask[i]


@numba.njit(cache=True, nogil=True)
def _dropout_backward(dx, dy, mask):
    # dx, dy and mask are flat (n,)
    for i in range(dy.size):
        dx[i] = dy[i] * mask[i]


@numba.njit(cache=True, nogil=True, parallel=True)
def _dropout_backward_parallel(dx, dy, mask):
    for i in numba.prange(dy.size):
        dx[i] = dy[i] * mask[i]
