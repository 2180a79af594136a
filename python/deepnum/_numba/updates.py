"""Numba twin of cpp/updates.cpp.

Fused, in-place parameter updates over the flattened arrays, computed in the parameter's
dtype with the same operation order as the reference:
  sgd:  g = grad + wd * param; with a velocity buffer (size > 0) v = momentum * v + g and
        g = g + momentum * v (nesterov) or v; param -= lr * g.
  adam: g = grad + wd * param; m = b1 * m + (1 - b1) * g; v = b2 * v + (1 - b2) * g * g;
        param -= lr * (m / (1 - b1**step)) / (sqrt(v / (1 - b2**step)) + eps).
The loops run in parallel from PARALLEL elements on (below, a parallel launch costs more than
it saves).
"""
import numba
import numpy as np

PARALLEL = 1 << 16


def sgd_update(param, velocity, grad, lr, momentum, nesterov, weight_decay):
    f = _sgd_parallel if param.size >= PARALLEL else _sgd
    f(param.reshape(-1), velocity.reshape(-1), grad.reshape(-1), lr, momentum, nesterov, weight_decay)


def adam_update(param, m, v, grad, lr, beta1, beta2, eps, weight_decay, step):
    f = _adam_parallel if param.size >= PARALLEL else _adam
    f(param.reshape(-1), m.reshape(-1), v.reshape(-1), grad.reshape(-1), lr, beta1, beta2, eps, weight_decay, step)


@numba.njit(cache=True, nogil=True)
def _sgd_one(i, param, velocity, grad, lr, mu, nesterov, wd):
    # element i; velocity is flat (n,) or empty
    g = grad[i] + wd * param[i]
    if velocity.size:
        velocity[i] = mu * velocity[i] + g
        g = g + mu * velocity[i] if nesterov else velocity[i]
    param[i] -= lr * g


@numba.njit(cache=True, nogil=True)
def _sgd(param, velocity, grad, lr, momentum, nesterov, weight_decay):
    # param and grad are flat (n,); velocity is flat (n,) or empty
    t = param.dtype.type
    for i in range(param.size):
        _sgd_one(i, param, velocity, grad, t(lr), t(momentum), nesterov, t(weight_decay))


@numba.njit(cache=True, nogil=True, parallel=True)
def _sgd_parallel(param, velocity, grad, lr, momentum, nesterov, weight_decay):
    t = param.dtype.type
    for i in numba.prange(param.size):
        _sgd_one(i, param, velocity, grad, t(lr), t(momentum), nesterov, t(weight_decay))


@numba.njit(cache=True, nogil=True)
def _adam_constants(t, lr, beta1, beta2, eps, weight_decay, step):
    # a float exponent calls C pow(), as Python does; numba's float ** int multiplies in a loop
    c1, c2 = t(1 - beta1 ** np.float64(step)), t(1 - beta2 ** np.float64(step))
    return t(lr), t(eps), t(weight_decay), t(beta1), t(beta2), t(1 - beta1), t(1 - beta2), c1, c2


@numba.njit(cache=True, nogil=True, error_model="numpy")  # no ZeroDivisionError branch: it vectorizes
def _adam_one(i, param, m, v, grad, lr, eps, wd, b1, b2, one_b1, one_b2, c1, c2):
    g = grad[i] + wd * param[i]
    m[i] = b1 * m[i] + one_b1 * g
    v[i] = b2 * v[i] + one_b2 * g * g
    param[i] -= lr * (m[i] / c1) / (np.sqrt(v[i] / c2) + eps)


@numba.njit(cache=True, nogil=True)
def _adam(param, m, v, grad, lr, beta1, beta2, eps, weight_decay, step):
    # param, m, v and grad are flat (n,)
    k = _adam_constants(param.dtype.type, lr, beta1, beta2, eps, weight_decay, step)
    for i in range(param.size):
        _adam_one(i, param, m, v, grad, *k)


@numba.njit(cache=True, nogil=True, parallel=True)
def _adam_parallel(param, m, v, grad, lr, beta1, beta2, eps, weight_decay, step):
    k = _adam_constants(param.dtype.type, lr, beta1, beta2, eps, weight_decay, step)
    for i in numba.prange(param.size):
        _adam_one(i, param, m, v, grad, *k)
