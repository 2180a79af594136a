"""Numba twin of cpp/activations.cpp.

Elementwise activations over the flattened arrays, selected by code: 0 linear, 1 sigmoid,
2 tanh, 3 relu, 4 leaky relu (slope alpha for x <= 0). The backward pass takes the
derivative through the saved output y. Computed in the array's dtype, in parallel over
elements from PARALLEL elements on (below, a parallel launch costs more than it saves).

sigmoid and tanh: activation_math.py (float32: vectorizable polynomials, as the C++ kernels).
"""
import numba

from .activation_math import sigmoid_, tanh_

PARALLEL = 1 << 13


def activation_forward(y, x, act, alpha):
    f = _forward_parallel if x.size >= PARALLEL else _forward
    f(y.reshape(-1), x.reshape(-1), act, alpha)


def activation_backward(dx, y, dy, act, alpha):
    f = _backward_parallel if y.size >= PARALLEL else _backward
    f(dx.reshape(-1), y.reshape(-1), dy.reshape(-1), act, alpha)


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _f(v, act, one, zero, slope):
    # the activation of v
    if act == 0:
        return v
    if act == 1:
        return sigmoid_(v)
    if act == 2:
        return tanh_(v)
    if act == 3:
        return zero if v <= 0 else v
    return slope * v if v <= 0 else v


@numba.njit(cache=True, nogil=True)
def _df(v, g, act, one, zero, slope):
    # dy g through the activation whose output is v
    if act == 0:
        return g
    if act == 1:
        return g * v * (one - v)
    if act == 2:
        return g * (one - v * v)
    if act == 3:
        return g if v > 0 else zero
    return g if v > 0 else slope * g


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _forward(y, x, act, alpha):
    # x and y are flat (n,); sigmoid and tanh in loops of their own: with the test of act inside the
    # loop, theirs do not vectorize (10x slower)
    t = x.dtype.type
    if act == 1:
        for i in range(x.size):
            y[i] = sigmoid_(x[i])
    elif act == 2:
        for i in range(x.size):
            y[i] = tanh_(x[i])
    else:
        for i in range(x.size):
            y[i] = _f(x[i], act, t(1), t(0), t(alpha))


@numba.njit(cache=True, nogil=True, parallel=True, error_model="numpy")
def _forward_parallel(y, x, act, alpha):
    t = x.dtype.type
    if act == 1:
        for i in numba.prange(x.size):
            y[i] = sigmoid_(x[i])
    elif act == 2:
        for i in numba.prange(x.size):
            y[i] = tanh_(x[i])
    else:
        for i in numba.prange(x.size):
            y[i] = _f(x[i], act, t(1), t(0), t(alpha))


@numba.njit(cache=True, nogil=True)
def _backward(dx, y, dy, act, alpha):
    # dx, y and dy are flat (n,)
    t = y.dtype.type
    for i in range(y.size):
        dx[i] = _df(y[i], dy[i], act, t(1), t(0), t(alpha))


@numba.njit(cache=True, nogil=True, parallel=True)
def _backward_parallel(dx, y, dy, act, alpha):
    t = y.dtype.type
    for i in numba.prange(y.size):
        dx[i] = _df(y[i], dy[i], act, t(1), t(0), t(alpha))
