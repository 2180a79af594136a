"""Numba twin of cpp/linear.cpp.

Fully connected layer: y = x · w + b with x (N,n_in), w (n_in,n_out), b (n_out,), y (N,n_out).
Both passes are calls of the jitted gemm (gemm.py) plus the bias, done in NumPy: calling gemm
from another jitted function would compile a fresh copy of it for every constant pair of
transpose flags. Gradients are written with `=`.
"""
from .gemm import gemm


def linear_forward(y, x, w, b):
    # x is (N,n_in), w is (n_in,n_out), b is (n_out,), y is (N,n_out)
    gemm(y, x, w, False, False)
    y += b


def linear_backward(dx, dw, db, dy, x, w):
    # dy is (N,n_out); dx like x (or of size 0: not wanted), dw like w, db (n_out,)
    if dx.size:
        gemm(dx, dy, w, False, True)
    gemm(dw, x, dy, True, False)
    dy.sum(axis=0, out=db)
