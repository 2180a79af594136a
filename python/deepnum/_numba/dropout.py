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


def dropout_forward(y, mask, x, p, seed):
    _dropout_forward(y.reshape(-1), mask.reshape(-1), x.reshape(-1), p, np.uint64(seed))


def dropout_backward(dx, dy, mask):
    _dropout_backward(dx.reshape(-1), dy.reshape(-1), mask.reshape(-1))


@numba.njit(cache=True, nogil=True, parallel=True)
def _dropout_forward(y, mask, x, p, seed):
    # y, mask and x are flat (n,); seed is uint64
    t = x.dtype.type
    keep, drop = t(1.0 / (1.0 - p)), t(0)
    for i in numba.prange(x.size):
        z = seed + np.uint64(i + 1) * GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _MIX1
        z = (z ^ (z >> np.uint64(27))) * _MIX2
        z = z ^ (z >> np.uint64(31))
        u = np.float64(z >> np.uint64(11)) * _UNIT
        mask[i] = keep if u >= p else drop
        y[i] = x[i] * mask[i]


@numba.njit(cache=True, nogil=True, parallel=True)
def _dropout_backward(dx, dy, mask):
    # dx, dy and mask are flat (n,)
    for i in numba.prange(dy.size):
        dx[i] = dy[i] * mask[i]
