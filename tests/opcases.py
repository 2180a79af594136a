"""Every op as a test case: how to draw its inputs, run it forward, and run it backward.

The driver in test_ops.py checks each case on each backend against the NumPy reference
(forward), against central finite differences (gradients), and under bad input. A case is:

* ``draw(data, dtype, small)``: a dict of keyword inputs drawn with hypothesis; ``small``
  keeps sizes tiny for finite differences. Shapes cover batch 1, 1×1 and input-sized
  kernels, stride > 1, padding > 0, odd sizes and sizes around the SIMD/tile widths.
* ``forward(kw)``: a tuple of outputs (arrays or floats).
* ``backward(kw, outs, cots)``: gradients of sum_j <outs[j], cots[j]> over ``diff_outputs``,
  as a dict keyed by input name (``None`` for ops without a backward).
"""
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
from hypothesis import strategies as st

from deepnum import ops

# Sizes just below, at and above the SIMD widths (8 floats in AVX2, 16 in AVX-512) and
# typical tile edges, mixed with small odd sizes.
EDGE_SIZES = [1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65]


def size(data, small, lo=1, hi=None, label=None):
    hi_small = 4 if hi is None else min(hi, 4)
    if small:
        return data.draw(st.integers(lo, max(lo, hi_small)), label=label)
    choices = [s for s in EDGE_SIZES if s >= lo and (hi is None or s <= hi)]
    return data.draw(st.sampled_from(choices) | st.integers(lo, hi or 40), label=label)


def rng_of(data):
    return np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))


def normal(rng, shape, dtype, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def distinct(rng, shape, dtype, gap=0.05):
    """Values pairwise at least ``gap`` apart and away from 0 (no ties for max-pool, no kinks)."""
    n = int(np.prod(shape))
    return ((rng.permutation(n) - n / 2 + 0.5) * gap).reshape(shape).astype(dtype)


def mutate_array(a, how, rng):
    """``a`` broken in one way (``how``), for the bad-input drivers of test_ops.py and test_contract.py."""
    if how == "ndim_up":
        return a[None]
    if how == "ndim_down":
        return a.reshape(-1) if a.ndim > 1 else a.reshape(1, -1)
    if how == "dim_change":
        axis = int(rng.integers(a.ndim))
        new = list(a.shape)
        new[axis] = max(1, new[axis] + int(rng.choice([-1, 1, 2])))
        return np.resize(a, new)
    if how == "zero_dim":
        return a[:0]
    if how in ("int32", "float16", "complex64", "float64", "int64"):
        return a.astype(how)
    if how == "other_float":
        return a.astype(np.float64 if a.dtype == np.float32 else np.float32)
    if how == "fortran":
        return np.asfortranarray(a)
    if how == "strided":
        return np.repeat(a, 2, axis=-1)[..., ::2]
    if how == "readonly":
        b = a.copy()
        b.flags.writeable = False
        return b
    if how == "nan":
        b = a.copy()
        b.flat[int(rng.integers(b.size))] = np.nan
        return b
    if how == "out_of_range":
        b = a.copy()
        b.flat[int(rng.integers(b.size))] = rng.choice([-1, 10**6])
        return b
    if how == "list":
        return a.tolist()
    raise AssertionError(how)


@dataclass
class Case:
    name: str
    draw: Callable
    forward: Callable
    backward: Optional[Callable] = None
    diff_outputs: tuple = (0,)
    wrt: Callable = lambda kw: ()  # names of the inputs gradients are taken for


# ---- gemm ----------------------------------------------------------------------------------

def draw_gemm(data, dtype, small):
    rng = rng_of(data)
    m, n, k = (size(data, small, label=l) for l in "mnk")
    ta, tb = data.draw(st.booleans(), label="trans_a"), data.draw(st.booleans(), label="trans_b")
    a = normal(rng, (k, m) if ta else (m, k), dtype)
    b = normal(rng, (n, k) if tb else (k, n), dtype)
    return dict(a=a, b=b, trans_a=ta, trans_b=tb)


def backward_gemm(kw, outs, cots):
    # c = op(a)·op(b): the gradients are gemms with the transposes swapped
    a, b, ta, tb, dc = kw["a"], kw["b"], kw["trans_a"], kw["trans_b"], cots[0]
    da = ops.gemm(b, dc, tb, True) if ta else ops.gemm(dc, b, False, not tb)
    db = ops.gemm(dc, a, True, ta) if tb else ops.gemm(a, dc, not ta, False)
    return dict(a=da, b=db)


# ---- linear --------------------------------------------------------------------------------

def draw_linear(data, dtype, small):
    rng = rng_of(data)
    n, n_in, n_out = (size(data, small, label=l) for l in ("N", "n_in", "n_out"))
    return dict(x=normal(rng, (n, n_in), dtype), w=normal(rng, (n_in, n_out), dtype), b=normal(rng, n_out, dtype))


def backward_linear(kw, outs, cots):
    dx, dw, db = ops.linear_backward(cots[0], kw["x"], kw["w"])
    return dict(x=dx, w=dw, b=db)


# ---- conv2d --------------------------------------------------------------------------------

def draw_conv2d(data, dtype, small):
    rng = rng_of(data)
    n = data.draw(st.integers(1, 2 if small else 3), label="N")
    c = data.draw(st.integers(1, 2 if small else 6), label="C")
    k = data.draw(st.integers(1, 2 if small else 6), label="K")
    hmax = 5 if small else 13
    h, w = data.draw(st.integers(1, hmax), label="H"), data.draw(st.integers(1, hmax), label="W")
    ph, pw = data.draw(st.integers(0, 2), label="pad_h"), data.draw(st.integers(0, 2), label="pad_w")
    r = data.draw(st.integers(1, min(h + 2 * ph, 5)), label="R")
    s = data.draw(st.integers(1, min(w + 2 * pw, 5)), label="S")
    stride = data.draw(st.sampled_from([1, 2, 3, (1, 2), (2, 1), (3, 2)]), label="stride")
    padding = (ph, pw) if ph != pw else ph
    bias = normal(rng, k, dtype) if data.draw(st.booleans(), label="bias") else None
    return dict(x=normal(rng, (n, c, h, w), dtype), w=normal(rng, (k, c, r, s), dtype), b=bias,
                stride=stride, padding=padding)


def backward_conv2d(kw, outs, cots):
    dx, dw, db = ops.conv2d_backward(cots[0], kw["x"], kw["w"], kw["stride"], kw["padding"])
    grads = dict(x=dx, w=dw)
    if kw["b"] is not None:
        grads["b"] = db
    return grads


# ---- max-pool ------------------------------------------------------------------------------

def draw_pool(data, dtype, small):
    rng = rng_of(data)
    n, c = data.draw(st.integers(1, 2), label="N"), data.draw(st.integers(1, 3), label="C")
    h = data.draw(st.integers(1, 6 if small else 13), label="H")
    w = data.draw(st.integers(1, 6 if small else 13), label="W")
    size_ = data.draw(st.sampled_from([1, 2, 3, (1, 2), (2, 3)]).filter(
        lambda s: (s if isinstance(s, int) else s[0]) <= h and (s if isinstance(s, int) else s[1]) <= w), label="size")
    stride = data.draw(st.sampled_from([None, 1, 2, 3, (2, 1)]), label="stride")
    return dict(x=distinct(rng, (n, c, h, w), dtype), size=size_, stride=stride)


def backward_pool(kw, outs, cots):
    return dict(x=ops.max_pool2d_backward(cots[0], outs[1], kw["x"].shape))


# ---- softmax + NLL -------------------------------------------------------------------------

def draw_softmax(data, dtype, small):
    rng = rng_of(data)
    n = size(data, small, label="N")
    classes = size(data, small, lo=1, hi=20, label="n_classes")
    scale = 1.0 if small else data.draw(st.sampled_from([1.0, 10.0, 1e4]), label="scale")
    labels = rng.integers(0, classes, n).astype(data.draw(st.sampled_from([np.int32, np.int64]), label="ldtype"))
    return dict(logits=normal(rng, (n, classes), dtype, scale), labels=labels)


def backward_softmax(kw, outs, cots):
    dlogits = ops.softmax_nll_backward(outs[1], kw["labels"])
    if not isinstance(dlogits, np.ndarray):  # a DeviceArray (cuda): scale by the scalar cotangent on the host
        dlogits = dlogits.to_numpy()
    return dict(logits=dlogits * cots[0])


# ---- activations ---------------------------------------------------------------------------

ACTIVATION_NAMES = ["linear", "sigmoid", "tanh", "relu", "leaky_relu"]


def draw_activation(data, dtype, small):
    rng = rng_of(data)
    name = data.draw(st.sampled_from(ACTIVATION_NAMES), label="name")
    shape = tuple(size(data, small, hi=70, label="dim") for _ in range(data.draw(st.integers(1, 3), label="ndim")))
    x = normal(rng, shape, dtype, 3.0)
    x = np.where(np.abs(x) < 0.1, np.copysign(0.1, x), x).astype(dtype)  # keep away from the relu kink
    alpha = data.draw(st.sampled_from([0.01, 0.2, 0.5]), label="alpha")
    return dict(name=name, x=x, alpha=alpha)


def backward_activation(kw, outs, cots):
    return dict(x=ops.activation_backward(kw["name"], outs[0], cots[0], kw["alpha"]))


# ---- dropout -------------------------------------------------------------------------------

def draw_dropout(data, dtype, small):
    rng = rng_of(data)
    shape = tuple(size(data, small, hi=70, label="dim") for _ in range(data.draw(st.integers(1, 3), label="ndim")))
    p = data.draw(st.sampled_from([0.0, 0.1, 0.5, 0.9]), label="p")
    seed = data.draw(st.integers(0, 2**64 - 1), label="dropout_seed")
    return dict(x=normal(rng, shape, dtype), p=p, seed=seed)


def backward_dropout(kw, outs, cots):
    return dict(x=ops.dropout_backward(cots[0], outs[1]))


# ---- parameter updates ---------------------------------------------------------------------

def draw_sgd(data, dtype, small):
    rng = rng_of(data)
    shape = tuple(size(data, small, hi=70, label="dim") for _ in range(data.draw(st.integers(1, 2), label="ndim")))
    momentum = data.draw(st.sampled_from([0.0, 0.5, 0.9]), label="momentum")
    has_velocity = momentum > 0 or data.draw(st.booleans(), label="velocity")
    return dict(param=normal(rng, shape, dtype), grad=normal(rng, shape, dtype),
                lr=data.draw(st.sampled_from([0.01, 0.1, 1.0]), label="lr"), momentum=momentum,
                velocity=normal(rng, shape, dtype) if has_velocity else None,
                nesterov=momentum > 0 and data.draw(st.booleans(), label="nesterov"),
                weight_decay=data.draw(st.sampled_from([0.0, 1e-4, 0.1]), label="weight_decay"))


def forward_sgd(kw):
    param = kw["param"].copy()
    velocity = None if kw["velocity"] is None else kw["velocity"].copy()
    ops.sgd_update(param, kw["grad"], kw["lr"], kw["momentum"], velocity, kw["nesterov"], kw["weight_decay"])
    return (param,) if velocity is None else (param, velocity)


def draw_adam(data, dtype, small):
    rng = rng_of(data)
    shape = tuple(size(data, small, hi=70, label="dim") for _ in range(data.draw(st.integers(1, 2), label="ndim")))
    return dict(param=normal(rng, shape, dtype), grad=normal(rng, shape, dtype), m=normal(rng, shape, dtype),
                v=np.abs(normal(rng, shape, dtype)), step=data.draw(st.integers(1, 1000), label="step"),
                lr=data.draw(st.sampled_from([1e-4, 1e-3, 0.1]), label="lr"),
                beta1=data.draw(st.sampled_from([0.0, 0.9]), label="beta1"),
                beta2=data.draw(st.sampled_from([0.999, 0.5]), label="beta2"),
                eps=data.draw(st.sampled_from([1e-8, 1e-3]), label="eps"),
                weight_decay=data.draw(st.sampled_from([0.0, 0.01]), label="weight_decay"))


def forward_adam(kw):
    param, m, v = kw["param"].copy(), kw["m"].copy(), kw["v"].copy()
    rest = {k: kw[k] for k in ("lr", "beta1", "beta2", "eps", "weight_decay")}
    ops.adam_update(param, kw["grad"], m, v, kw["step"], **rest)
    return param, m, v


# ---- recurrent network ---------------------------------------------------------------------

RNN_ACTIVATION_NAMES = ["tanh", "sigmoid", "relu", "linear"]


def draw_rnn(data, dtype, small):
    """Time-major (T, N, D) sequences; T up to 8 for finite differences, up to 33 otherwise.
    w_hh is scaled to a spectral radius near 0.5, so states stay O(1) over long sequences."""
    rng = rng_of(data)
    steps = data.draw(st.integers(1, 8), label="T") if small else size(data, small, hi=33, label="T")
    n, d, h = (size(data, small, label=l) for l in ("N", "D", "H"))
    return dict(x=normal(rng, (steps, n, d), dtype), h0=normal(rng, (n, h), dtype, 0.5),
                w_xh=normal(rng, (d, h), dtype, 1 / np.sqrt(d)), w_hh=normal(rng, (h, h), dtype, 0.5 / np.sqrt(h)),
                b_h=normal(rng, h, dtype, 0.5), activation=data.draw(st.sampled_from(RNN_ACTIVATION_NAMES),
                                                                     label="activation"))


def backward_rnn(kw, outs, cots):
    # full BPTT, no clipping: truncation and clipping are checked against the reference in test_rnn.py
    dx, dh0, dw_xh, dw_hh, db_h = ops.rnn_backward(cots[0], kw["x"], outs[0], kw["h0"], kw["w_xh"], kw["w_hh"],
                                                   kw["activation"])
    return dict(x=dx, h0=dh0, w_xh=dw_xh, w_hh=dw_hh, b_h=db_h)


CASES = {c.name: c for c in [
    Case("gemm", draw_gemm, lambda kw: (ops.gemm(**kw),), backward_gemm, wrt=lambda kw: ("a", "b")),
    Case("linear", draw_linear, lambda kw: (ops.linear_forward(**kw),), backward_linear,
         wrt=lambda kw: ("x", "w", "b")),
    Case("conv2d", draw_conv2d, lambda kw: (ops.conv2d_forward(**kw),), backward_conv2d,
         wrt=lambda kw: ("x", "w") + (("b",) if kw["b"] is not None else ())),
    Case("max_pool2d", draw_pool, lambda kw: ops.max_pool2d_forward(**kw), backward_pool, wrt=lambda kw: ("x",)),
    Case("softmax_nll", draw_softmax, lambda kw: ops.softmax_nll_forward(**kw), backward_softmax,
         wrt=lambda kw: ("logits",)),
    Case("activation", draw_activation, lambda kw: (ops.activation_forward(**kw),), backward_activation,
         wrt=lambda kw: ("x",)),
    Case("dropout", draw_dropout, lambda kw: ops.dropout_forward(**kw), backward_dropout, wrt=lambda kw: ("x",)),
    Case("rnn", draw_rnn, lambda kw: (ops.rnn_forward(**kw),), backward_rnn,
         wrt=lambda kw: ("x", "h0", "w_xh", "w_hh", "b_h")),
    Case("sgd_update", draw_sgd, forward_sgd),
    Case("adam_update", draw_adam, forward_adam),
]}
