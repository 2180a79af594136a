"""Numba twin of cpp/updates.cpp.

Fused, in-place parameter updates over the flattened arrays, computed in the parameter's
dtype with the same operation order as the reference:
  sgd:  g = grad + wd * param; with a velocity buffer (size > 0) v = momentum * v + g and
        g = g + momentum * v (nesterov) or v; param -= lr * g.
  adam: g = grad + wd * param; m = b1 * m + (1 - b1) * g; v = b2 * v + (1 - b2) * g * g;
        param -= lr * (m / (1 - b1**step)) / (sqrt(v / (1 - b2**step)) + eps).
"""
import numba
import numpy as np


def sgd_update(param, velocity, grad, lr, momentum, nesterov, weight_decay):
    _sgd_update(param.reshape(-1), velocity.reshape(-1), grad.reshape(-1), lr, momentum, nesterov, weight_decay)


def adam_update(param, m, v, grad, lr, beta1, beta2, eps, weight_decay, step):
    _adam_update(param.reshape(-1), m.reshape(-1), v.reshape(-1), grad.reshape(-1),
                 lr, beta1, beta2, eps, weight_decay, step)


@numba.njit(cache=True, nogil=True, parallel=True)
def _sgd_update(param, velocity, grad, lr, momentum, nesterov, weight_decay):
    # param and grad are flat (n,); velocity is flat (n,) or empty
    t = param.dtype.type
    lr_t, mu, wd = t(lr), t(momentum), t(weight_decay)
    has_velocity = velocity.size > 0
    for i in numba.prange(param.size):
        g = grad[i] + wd * param[i]
        if has_velocity:
            velocity[i] = mu * velocity[i] + g
            g = g + mu * velocity[i] if nesterov else velocity[i]
        param[i] -= lr_t * g


@numba.njit(cache=True, nogil=True, parallel=True)
def _adam_update(param, m, v, grad, lr, beta1, beta2, eps, weight_decay, step):
    # param, m, v and grad are flat (n,)
    t = param.dtype.type
    lr_t, eps_t, wd = t(lr), t(eps), t(weight_decay)
    b1, b2, one_b1, one_b2 = t(beta1), t(beta2), t(1 - beta1), t(1 - beta2)
    # a float exponent calls C pow(), as Python does; numba's float ** int multiplies in a loop
    c1, c2 = t(1 - beta1 ** np.float64(step)), t(1 - beta2 ** np.float64(step))
    for i in numba.prange(param.size):
        g = grad[i] + wd * param[i]
        m[i] = b1 * m[i] + one_b1 * g
        v[i] = b2 * v[i] + one_b2 * g * g
        param[i] -= lr_t * (m[i] / c1) / (np.sqrt(v[i] / c2) + eps_t)
