"""Numba twin of cpp/activations.cpp.

Elementwise activations over the flattened arrays, selected by code: 0 linear, 1 sigmoid,
2 tanh, 3 relu, 4 leaky relu (slope alpha for x <= 0). The backward pass takes the
derivative through the saved output y. Computed in the array's dtype, in parallel over
elements.
"""
import numba
import numpy as np


def activation_forward(y, x, act, alpha):
    _activation_forward(y.reshape(-1), x.reshape(-1), act, alpha)


def activation_backward(dx, y, dy, act, alpha):
    _activation_backward(dx.reshape(-1), y.reshape(-1), dy.reshape(-1), act, alpha)


@numba.njit(cache=True, nogil=True, parallel=True)
def _activation_forward(y, x, act, alpha):
    # x and y are flat (n,)
    t = x.dtype.type
    one, zero, slope = t(1), t(0), t(alpha)
    for i in numba.prange(x.size):
        v = x[i]
        if act == 0:
            y[i] = v
        elif act == 1:
            y[i] = one / (one + np.exp(-v))  # exp(-v) = inf gives the right limit, 0
        elif act == 2:
            y[i] = np.tanh(v)
        elif act == 3:
            y[i] = zero if v <= 0 else v
        else:
            y[i] = slope * v if v <= 0 else v


@numba.njit(cache=True, nogil=True, parallel=True)
def _activation_backward(dx, y, dy, act, alpha):
    # dx, y and dy are flat (n,)
    t = y.dtype.type
    one, zero, slope = t(1), t(0), t(alpha)
    for i in numba.prange(y.size):
        v, g = y[i], dy[i]
        if act == 0:
            dx[i] = g
        elif act == 1:
            dx[i] = g * v * (one - v)
        elif act == 2:
            dx[i] = g * (one - v * v)
        elif act == 3:
            dx[i] = g if v > 0 else zero
        else:
            dx[i] = g if v > 0 else slope * g
