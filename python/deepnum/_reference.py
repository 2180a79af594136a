"""NumPy reference backend: slow, obvious, and the test oracle.

Every kernel here has the same name and signature as in ``cpp/`` and ``deepnum._numba``:
outputs first, then saved activations, then inputs, then sizes and scalars. Outputs are
preallocated, C-contiguous arrays of the inputs' dtype that the kernel overwrites; the
public, validated entry points are in :mod:`deepnum.ops`.

Conventions shared by every backend
-----------------------------------
* Parameter gradients (``dw``, ``db``) and activation gradients (``dx``) are all written
  with ``=``, never accumulated.
* ``argmax`` of max-pool is int64, the flat index ``h * W + w`` inside the (H, W) plane of
  its (n, c); the first maximum in row-major window order wins, and a NaN wins over any
  number (the first NaN).
* ``labels`` are int64 and already checked to lie in ``[0, n_classes)``.
* Activation codes: see ``ACTIVATIONS``.
* Dropout draws one uniform number per element from a counter-based hash (splitmix64 of
  ``seed + (i + 1) * 0x9E3779B97F4A7C15``, top 53 bits), so every backend produces the same
  mask for the same seed, whatever the thread count.
* An empty ``velocity`` (size 0) in ``sgd_update`` means "no momentum buffer".
* The RNN kernels are time-major (x is (T, N, D)) and take the codes of ``RNN_ACTIVATIONS`` (not
  leaky relu); in ``rnn_backward``, ``bptt_steps`` 0 means full BPTT and ``clip`` 0 no clipping.
* Every argument has passed the compiled contract (deepnum._contract, cpp/contract.h) first: the
  kernels trust their arguments. ``mlp_train_step`` has no kernel here: deepnum._compose composes it.
"""
import numpy as np

from ._contract import ACTIVATIONS  # defined once, in cpp/constants.h

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def _op(a, trans):
    return a.T if trans else a


def gemm(c, a, b, trans_a, trans_b):
    # c is (M,N); a is (M,K) or (K,M) if trans_a; b is (K,N) or (N,K) if trans_b
    c[...] = _op(a, trans_a) @ _op(b, trans_b)


def linear_forward(y, x, w, b):
    # x is (N,n_in), w is (n_in,n_out), b is (n_out,), y is (N,n_out)
    y[...] = x @ w + b


def linear_backward(dx, dw, db, dy, x, w):
    # dx of size 0: not wanted
    if dx.size:
        dx[...] = dy @ w.T
    dw[...] = x.T @ dy
    db[...] = dy.sum(axis=0)


def _pad(x, ph, pw):
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def conv2d_forward(y, x, w, b, stride_h, stride_w, pad_h, pad_w):
    # x is (N,C,H,W), w is (K,C,R,S), b is (K,), y is (N,K,P,Q)
    xp = _pad(x, pad_h, pad_w)
    _, _, P, Q = y.shape
    K, C, R, S = w.shape
    out = np.zeros(y.shape, dtype=x.dtype)
    for r in range(R):
        for s in range(S):
            patch = xp[:, :, r:r + stride_h * (P - 1) + 1:stride_h, s:s + stride_w * (Q - 1) + 1:stride_w]
            out += np.einsum("ncpq,kc->nkpq", patch, w[:, :, r, s])
    y[...] = out + b[None, :, None, None]


def conv2d_backward(dx, dw, db, dy, x, w, stride_h, stride_w, pad_h, pad_w):
    # dy is (N,K,P,Q); dx like x (or of size 0: not wanted), dw like w, db (K,)
    N, C, H, W = x.shape
    K, _, R, S = w.shape
    _, _, P, Q = dy.shape
    xp = _pad(x, pad_h, pad_w)
    dxp = np.zeros(xp.shape, dtype=x.dtype)
    for r in range(R):
        for s in range(S):
            hs = slice(r, r + stride_h * (P - 1) + 1, stride_h)
            ws = slice(s, s + stride_w * (Q - 1) + 1, stride_w)
            dw[:, :, r, s] = np.einsum("nkpq,ncpq->kc", dy, xp[:, :, hs, ws])
            dxp[:, :, hs, ws] += np.einsum("nkpq,kc->ncpq", dy, w[:, :, r, s])
    if dx.size:
        dx[...] = dxp[:, :, pad_h:pad_h + H, pad_w:pad_w + W]
    db[...] = dy.sum(axis=(0, 2, 3))


def max_pool2d_forward(y, argmax, x, size_h, size_w, stride_h, stride_w):
    # x is (N,C,H,W); y and argmax are (N,C,P,Q)
    N, C, H, W = x.shape
    _, _, P, Q = y.shape
    best = np.full(y.shape, -np.inf, dtype=x.dtype)
    best_idx = np.full(y.shape, -1, dtype=np.int64)
    for r in range(size_h):
        for s in range(size_w):
            v = x[:, :, r:r + stride_h * (P - 1) + 1:stride_h, s:s + stride_w * (Q - 1) + 1:stride_w]
            rows = np.arange(P)[:, None] * stride_h + r
            cols = np.arange(Q)[None, :] * stride_w + s
            take = (best_idx < 0) | (v > best) | (np.isnan(v) & ~np.isnan(best))
            best = np.where(take, v, best)
            best_idx = np.where(take, rows * W + cols, best_idx)
    y[...] = best
    argmax[...] = best_idx


def max_pool2d_backward(dx, dy, argmax):
    N, C, H, W = dx.shape
    flat = np.zeros((N, C, H * W), dtype=dx.dtype)
    for n in range(N):
        for c in range(C):
            np.add.at(flat[n, c], argmax[n, c].ravel(), dy[n, c].ravel())
    dx[...] = flat.reshape(dx.shape)


def softmax_nll_forward(probs, logits, labels):
    # logits and probs are (N,n_classes), labels (N,); returns the mean loss as a float
    shifted = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    s = e.sum(axis=1, keepdims=True)
    probs[...] = e / s
    rows = np.arange(logits.shape[0])
    return float(np.mean(np.log(s[:, 0]) - shifted[rows, labels], dtype=np.float64))


def softmax_nll_backward(dlogits, probs, labels):
    n = probs.shape[0]
    d = probs.copy()
    d[np.arange(n), labels] -= 1
    dlogits[...] = d / probs.dtype.type(n)


def activation_forward(y, x, act, alpha):
    if act == 0:
        y[...] = x
    elif act == 1:
        with np.errstate(over="ignore"):  # exp(-x) = inf gives the right limit, 0
            y[...] = 1 / (1 + np.exp(-x))
    elif act == 2:
        y[...] = np.tanh(x)
    elif act == 3:
        y[...] = np.where(x <= 0, 0, x)
    elif act == 4:
        y[...] = np.where(x <= 0, x.dtype.type(alpha) * x, x)
    else:
        raise ValueError(f"activation_forward: unknown activation code {act}")


def activation_backward(dx, y, dy, act, alpha):
    # the derivative is expressed through the saved output y
    if act == 0:
        dx[...] = dy
    elif act == 1:
        dx[...] = dy * y * (1 - y)
    elif act == 2:
        dx[...] = dy * (1 - y * y)
    elif act == 3:
        dx[...] = np.where(y > 0, dy, 0)
    elif act == 4:
        dx[...] = np.where(y > 0, dy, y.dtype.type(alpha) * dy)
    else:
        raise ValueError(f"activation_backward: unknown activation code {act}")


def dropout_uniform(seed, n):
    """The n uniform draws in [0, 1) that every backend's dropout uses for ``seed``."""
    i = np.arange(1, n + 1, dtype=np.uint64)
    z = np.uint64(seed) + i * GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def dropout_forward(y, mask, x, p, seed):
    keep = dropout_uniform(seed, x.size).reshape(x.shape) >= p
    mask[...] = np.where(keep, x.dtype.type(1.0 / (1.0 - p)), 0)
    y[...] = x * mask


def dropout_backward(dx, dy, mask):
    dx[...] = dy * mask


def sgd_update(param, velocity, grad, lr, momentum, nesterov, weight_decay):
    t = param.dtype.type
    g = grad + t(weight_decay) * param
    if velocity.size:
        velocity[...] = t(momentum) * velocity + g
        g = g + t(momentum) * velocity if nesterov else velocity
    param -= t(lr) * g


def adam_update(param, m, v, grad, lr, beta1, beta2, eps, weight_decay, step):
    t = param.dtype.type
    g = grad + t(weight_decay) * param
    m[...] = t(beta1) * m + t(1 - beta1) * g
    v[...] = t(beta2) * v + t(1 - beta2) * g * g
    c1 = t(1 - beta1 ** step)
    c2 = t(1 - beta2 ** step)
    param -= t(lr) * (m / c1) / (np.sqrt(v / c2) + t(eps))


# ---- recurrent (Elman) network -------------------------------------------------------------

def rnn_forward(h_all, x, h0, w_xh, w_hh, b_h, act):
    # x is (T,N,D), h0 (N,H), w_xh (D,H), w_hh (H,H), b_h (H,), h_all (T,N,H)
    # h_t = act(x_t·w_xh + h_{t-1}·w_hh + b_h), h_{-1} = h0
    h = h0
    for t in range(x.shape[0]):
        activation_forward(h_all[t], x[t] @ w_xh + h @ w_hh + b_h, act, 0.0)
        h = h_all[t]


def rnn_backward(dx, dh0, dw_xh, dw_hh, db_h, h_all, dh_all, x, h0, w_xh, w_hh, act, bptt_steps, clip):
    # dh_all, h_all (T,N,H); dx like x, dh0 like h0, dw_xh like w_xh, dw_hh like w_hh, db_h (H,)
    # dz[t] is the gradient w.r.t. the pre-activation of step t; see ops.rnn_backward for the rules.
    T, N, H = h_all.shape
    dz = np.zeros_like(h_all)
    if bptt_steps <= 0 or bptt_steps >= T:  # full BPTT: one sweep back in time
        carry = np.zeros_like(h0)  # gradient reaching h_t from step t+1
        for t in reversed(range(T)):
            activation_backward(dz[t], h_all[t], dh_all[t] + carry, act, 0.0)
            carry = dz[t] @ w_hh.T
    else:  # BPTT(k): the loss at step s reaches the pre-activations of steps s, s-1, ..., s-k+1
        for s in range(T):
            g = dh_all[s]
            for t in range(s, max(s - bptt_steps, -1), -1):
                e = np.empty_like(g)
                activation_backward(e, h_all[t], g, act, 0.0)
                dz[t] += e
                g = e @ w_hh.T
    h_prev = np.concatenate([h0[None], h_all[:-1]])
    dx[...] = dz @ w_xh.T
    dh0[...] = dz[0] @ w_hh.T
    dw_xh[...] = x.reshape(T * N, -1).T @ dz.reshape(T * N, H)
    dw_hh[...] = h_prev.reshape(T * N, H).T @ dz.reshape(T * N, H)
    db_h[...] = dz.sum(axis=(0, 1))
    if clip > 0:  # global norm of the parameter gradients
        norm = np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in (dw_xh, dw_hh, db_h)))
        if norm > clip:
            scale = dx.dtype.type(clip / norm)
            for g in (dw_xh, dw_hh, db_h):
                g *= scale
