"""Numba backend: the twins of cpp/*.cpp, one module per op.

Same kernel names and argument order as :mod:`deepnum._reference` (outputs, then saved
activations, then inputs, then sizes and scalars), so the two modules are interchangeable.
Arrays must be C-contiguous and of one float dtype (float32 or float64); checks live in
the compiled contract (deepnum._contract). Kernels compile on first use per dtype and are cached on disk.
"""
import numba

from .activations import activation_backward, activation_forward
from .conv2d import conv2d_backward, conv2d_forward
from .dropout import dropout_backward, dropout_forward
from .gemm import gemm
from .linear import linear_backward, linear_forward
from .pool import max_pool2d_backward, max_pool2d_forward
from .rnn import rnn_backward, rnn_forward
from .softmax_nll import softmax_nll_backward, softmax_nll_forward
from .updates import adam_update, sgd_update

__all__ = [
    "gemm", "linear_forward", "linear_backward", "conv2d_forward", "conv2d_backward",
    "max_pool2d_forward", "max_pool2d_backward", "softmax_nll_forward", "softmax_nll_backward",
    "activation_forward", "activation_backward", "dropout_forward", "dropout_backward",
    "sgd_update", "adam_update", "rnn_forward", "rnn_backward", "set_num_threads",
]

def set_num_threads(n):
    """Use n threads in the parallel kernels; Numba caps it at NUMBA_NUM_THREADS (fixed at start-up)."""
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
