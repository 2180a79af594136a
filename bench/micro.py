"""Micro-benchmarks: every op, forward and forward+backward, at the seed models' shapes.

A case is one op at one shape and pass, written three ways: with deepnum.ops (timed on the cpp
and numba backends), in hand NumPy and in PyTorch. Every implementation's result is checked
against deepnum's NumPy reference, run in float64, before it is timed (dropout draws differ
between libraries: there only deepnum is checked).
"""
import re
from contextlib import nullcontext
from dataclasses import dataclass
from itertools import product
from typing import Callable, Optional

import numpy as np

import deepnum
from deepnum import ops

from . import baselines as bl
from .baselines import torch
from .report import fmt_time
from .timing import assert_close, repeat, summary

SIZES = {
    "full": {
        "square": (256, 512, 1024, 2048),
        "batches": (1, 10, 20, 100, 500, 600),
        "dense": ((784, 10), (784, 100), (784, 500), (640, 100)),
        "conv": ((1, 20, 28), (20, 40, 12)),  # (C, K, H = W) with 5×5 kernels, then 2×2 pooling
        "conv_batches": (10, 100, 500),
        "conv_bwd_batches": (10, 100),
        "activations": (("sigmoid", (10, 100)), ("tanh", (20, 500)), ("relu", (10, 100)), ("relu", (100, 100)),
                        ("relu", (10, 20, 24, 24)), ("relu", (100, 20, 24, 24)), ("relu", (10, 40, 8, 8)),
                        ("relu", (100, 40, 8, 8))),
        "dropout": ((10, 640), (10, 1000)),
        "params": ((784, 10), (784, 100), (784, 500), (640, 100), (100, 10), (20, 1, 5, 5), (40, 20, 5, 5)),
    },
    "smoke": {
        "square": (32,), "batches": (3,), "dense": ((12, 5),), "conv": ((1, 2, 8), (2, 3, 6)),
        "conv_batches": (2,), "conv_bwd_batches": (2,),
        "activations": (("sigmoid", (3, 5)), ("relu", (2, 2, 4, 4))), "dropout": ((3, 7),), "params": ((12, 5),),
    },
}
LR = 0.01
DEEPNUM = ("cpp", "numba")


@dataclass
class Case:
    op: str
    shape: str
    pass_: str  # "fwd", "fwd+bwd", "step" (updates), or for gemm the product computed
    args: tuple
    deepnum: Callable
    numpy: Callable
    torch: Callable
    flop: Optional[float] = None
    exact: bool = True  # False: the libraries draw different random numbers; check deepnum only

    @property
    def name(self):
        return f"{self.op} {self.shape} {self.pass_}"


# ---- forward+backward, composed from each library's ops --------------------------------------

def _linear(x, w, b, dy):
    return (ops.linear_forward(x, w, b), *ops.linear_backward(dy, x, w))


def _np_linear(x, w, b, dy):
    return (bl.dense(x, w, b), *bl.dense_grad(dy, x, w))


def _conv(x, w, b, dy):
    return (ops.conv2d_forward(x, w, b), *ops.conv2d_backward(dy, x, w))


def _np_conv(x, w, b, dy):
    y, cols = bl.conv2d(x, w, b)
    return (y, *bl.conv2d_grad(dy, cols, x.shape, w))


def _pool(x, dy):
    y, argmax = ops.max_pool2d_forward(x, 2)
    return y, ops.max_pool2d_backward(dy, argmax, x.shape)


def _np_pool(x, dy):
    y, mask = bl.max_pool(x)
    return y, bl.max_pool_grad(dy, mask)


def _softmax_nll(z, labels):
    return ops.softmax_nll_backward(ops.softmax_nll_forward(z, labels)[1], labels)


def _np_softmax_nll(z, labels):
    return bl.softmax_nll_grad(bl.softmax_nll(z, labels)[1], labels)


def _activation(name):
    def run(x, dy):
        y = ops.activation_forward(name, x)
        return y, ops.activation_backward(name, y, dy)
    return run


def _np_activation(name):
    def run(x, dy):
        y = bl.ACT[name](x)
        return y, dy * bl.DACT[name](y)
    return run


def _dropout(x, dy):
    y, mask = ops.dropout_forward(x, 0.5, 1)
    return y, ops.dropout_backward(dy, mask)


def _np_dropout(rng):
    def run(x, dy):
        y, mask = bl.dropout(x, 0.5, rng)
        return y, dy * mask
    return run


def _sgd(p, g):
    ops.sgd_update(p, g, LR)
    return p


def _adam(p, g, m, v):
    ops.adam_update(p, g, m, v, 1, LR)
    return p, m, v


# ---- the cases -----------------------------------------------------------------------------

def _matmul(a, b):
    return a @ b


def _gemm_linear(sizes, randn):
    for n in sizes["square"]:
        yield Case("gemm", f"{n}x{n}x{n}", "a.b", (randn(n, n), randn(n, n)), ops.gemm, _matmul, _matmul, 2.0 * n**3)
    for batch, (n_in, n_out) in product(sizes["batches"], sizes["dense"]):
        x, w, b, dy = randn(batch, n_in), randn(n_in, n_out), randn(n_out), randn(batch, n_out)
        flop = 2.0 * batch * n_in * n_out
        # the three products of a dense layer: forward, dx and dw
        yield Case("gemm", f"{batch}x{n_in}x{n_out}", "x.w", (x, w), ops.gemm, _matmul, _matmul, flop)
        yield Case("gemm", f"{batch}x{n_out}x{n_in}", "dy.wT", (dy, w), lambda a, b: ops.gemm(a, b, trans_b=True),
                   lambda a, b: a @ b.T, lambda a, b: a @ b.T, flop)
        yield Case("gemm", f"{n_in}x{batch}x{n_out}", "xT.dy", (x, dy), lambda a, b: ops.gemm(a, b, trans_a=True),
                   lambda a, b: a.T @ b, lambda a, b: a.T @ b, flop)
        shape = f"N{batch} {n_in}->{n_out}"
        yield Case("linear", shape, "fwd", (x, w, b), ops.linear_forward, bl.dense, bl.torch_linear, flop)
        yield Case("linear", shape, "fwd+bwd", (x, w, b, dy), _linear, _np_linear, bl.torch_fwd_bwd(bl.torch_linear),
                   3 * flop)


def _conv_pool(sizes, randn):
    for (c, k, h), batch in product(sizes["conv"], sizes["conv_batches"]):
        x, w, b = randn(batch, c, h, h), randn(k, c, 5, 5), randn(k)
        p = h - 4
        flop = 2.0 * batch * k * p * p * c * 25
        shape = f"N{batch} {c}x{h}x{h}->{k} k5"
        yield Case("conv2d", shape, "fwd", (x, w, b), ops.conv2d_forward, lambda *a: bl.conv2d(*a)[0],
                   bl.torch_conv2d, flop)
        if batch in sizes["conv_bwd_batches"]:
            yield Case("conv2d", shape, "fwd+bwd", (x, w, b, randn(batch, k, p, p)), _conv, _np_conv,
                       bl.torch_fwd_bwd(bl.torch_conv2d), 3 * flop)
        x, shape = randn(batch, k, p, p), f"N{batch} {k}x{p}x{p} 2x2"
        yield Case("max_pool2d", shape, "fwd", (x,), lambda x: ops.max_pool2d_forward(x, 2)[0],
                   lambda x: bl.max_pool(x)[0], bl.torch_max_pool)
        yield Case("max_pool2d", shape, "fwd+bwd", (x, randn(batch, k, p // 2, p // 2)), _pool, _np_pool,
                   bl.torch_fwd_bwd(bl.torch_max_pool))


def _elementwise(sizes, randn, rng):
    for batch in sizes["batches"]:
        z, labels = randn(batch, 10), rng.integers(0, 10, batch)
        yield Case("softmax_nll", f"N{batch}x10", "fwd", (z, labels), lambda z, y: ops.softmax_nll_forward(z, y)[0],
                   lambda z, y: bl.softmax_nll(z, y)[0], bl.torch_softmax_nll)
        yield Case("softmax_nll", f"N{batch}x10", "fwd+bwd", (z, labels), _softmax_nll, _np_softmax_nll,
                   bl.torch_softmax_nll_grad)
    for name, shape in sizes["activations"]:
        x, label = randn(*shape), "x".join(map(str, shape))
        yield Case(name, label, "fwd", (x,), lambda x, name=name: ops.activation_forward(name, x), bl.ACT[name],
                   bl.torch_activation(name))
        yield Case(name, label, "fwd+bwd", (x, randn(*shape)), _activation(name), _np_activation(name),
                   bl.torch_fwd_bwd(bl.torch_activation(name)))
    for shape in sizes["dropout"]:
        x, label = randn(*shape), "x".join(map(str, shape))
        yield Case("dropout", label, "fwd", (x,), lambda x: ops.dropout_forward(x, 0.5, 1)[0],
                   lambda x: bl.dropout(x, 0.5, rng)[0], bl.torch_dropout, exact=False)
        yield Case("dropout", label, "fwd+bwd", (x, randn(*shape)), _dropout, _np_dropout(rng),
                   bl.torch_fwd_bwd(bl.torch_dropout), exact=False)
    for shape in sizes["params"]:
        p, g, m, v, label = randn(*shape), randn(*shape), randn(*shape), abs(randn(*shape)), "x".join(map(str, shape))
        yield Case("sgd", label, "step", (p, g), _sgd, lambda p, g: bl.sgd(p, g, LR),
                   lambda p, g: bl.torch_sgd(p, g, LR))
        yield Case("adam", label, "step", (p, g, m, v), _adam, lambda *a: bl.adam(*a, LR, 1),
                   lambda *a: bl.torch_adam(*a, LR, 1))


def cases(sizes, seed=0):
    """Every case at ``sizes`` (an entry of SIZES), with standard-normal float32 inputs."""
    rng = np.random.default_rng(seed)

    def randn(*shape):
        return rng.standard_normal(shape, dtype=np.float32)
    yield from _gemm_linear(sizes, randn)
    yield from _conv_pool(sizes, randn)
    yield from _elementwise(sizes, randn, rng)


# ---- running them --------------------------------------------------------------------------

def _prepare(case, impl):
    """The function of ``impl``, its own copy of the arguments, and the context to call it in."""
    args = tuple(a.copy() for a in case.args)
    if impl in DEEPNUM:
        return case.deepnum, args, deepnum.use_backend(impl)
    if impl == "numpy":
        return case.numpy, args, nullcontext()
    grad = case.pass_ == "fwd+bwd"  # autograd for the float inputs; the last argument is dy or labels
    tensors = tuple(torch.from_numpy(a).requires_grad_(grad and a.dtype.kind == "f" and i < len(args) - 1)
                    for i, a in enumerate(args))
    return case.torch, tensors, torch.enable_grad() if grad else torch.no_grad()


def run(mode, only, impls, log):
    """Check and time every case whose name matches ``only``; returns one row per (case, impl)."""
    rows = []
    for case in cases(SIZES[mode.sizes]):
        if only and not re.search(only, case.name):
            continue
        with deepnum.use_backend("numpy"):
            want = case.deepnum(*(a.astype(np.float64) if a.dtype == np.float32 else a for a in case.args))
        medians = {}
        for impl in impls:
            fn, args, context = _prepare(case, impl)
            with context:
                got = fn(*args)  # also the warm-up: Numba compiles here
                if case.exact or impl in DEEPNUM:
                    assert_close(got, want, f"{case.name} [{impl}]")
                samples, number = repeat(fn, args, mode.repeats, mode.min_time)
            rows.append({"kind": "micro", "name": case.name, "op": case.op, "shape": case.shape, "pass": case.pass_,
                         "impl": impl, "flop": case.flop, "number": number, **summary(samples)})
            medians[impl] = rows[-1]["median"]
        log(f"{case.name:<36} " + "  ".join(f"{impl} {fmt_time(t)}" for impl, t in medians.items()))
    return rows
