"""
deepnum C++ CPU kernels (OpenMP threads, run-time SIMD dispatch). Use deepnum.ops, not this module.
"""
from __future__ import annotations
import typing
__all__: list[str] = ['ACTIVATIONS', 'OPS', 'RETURNS_LOSS', 'RNN_ACTIVATIONS', 'activation_backward', 'activation_forward', 'adam_update', 'array_cache_bytes', 'conv2d_backward', 'conv2d_forward', 'conv2d_winograd_applies', 'dropout_backward', 'dropout_forward', 'gemm', 'get_num_threads', 'linear_backward', 'linear_forward', 'max_pool2d_backward', 'max_pool2d_forward', 'mlp_train_step', 'openmp_version', 'restore_allocator', 'rnn_backward', 'rnn_forward', 'set_num_threads', 'sgd_update', 'simd_level', 'softmax_nll_backward', 'softmax_nll_forward', 'use_array_cache']
def activation_backward(y: typing.Any, dy: typing.Any, name: typing.Any, alpha: typing.Any) -> typing.Any:
    ...
def activation_forward(x: typing.Any, name: typing.Any, alpha: typing.Any) -> typing.Any:
    ...
def adam_update(param: typing.Any, m: typing.Any, v: typing.Any, grad: typing.Any, lr: typing.Any, beta1: typing.Any, beta2: typing.Any, eps: typing.Any, weight_decay: typing.Any, step: typing.Any) -> typing.Any:
    ...
def array_cache_bytes() -> int:
    """
    Bytes of freed blocks deepnum's array cache holds.
    """
def conv2d_backward(dy: typing.Any, x: typing.Any, w: typing.Any, stride: typing.Any, padding: typing.Any, need_dx: typing.Any) -> typing.Any:
    ...
def conv2d_forward(x: typing.Any, w: typing.Any, b: typing.Any, stride: typing.Any, padding: typing.Any) -> typing.Any:
    ...
def conv2d_winograd_applies(N: typing.SupportsInt | typing.SupportsIndex, C: typing.SupportsInt | typing.SupportsIndex, H: typing.SupportsInt | typing.SupportsIndex, W: typing.SupportsInt | typing.SupportsIndex, K: typing.SupportsInt | typing.SupportsIndex, R: typing.SupportsInt | typing.SupportsIndex, S: typing.SupportsInt | typing.SupportsIndex, sh: typing.SupportsInt | typing.SupportsIndex, sw: typing.SupportsInt | typing.SupportsIndex, ph: typing.SupportsInt | typing.SupportsIndex, pw: typing.SupportsInt | typing.SupportsIndex) -> bool:
    """
    Whether conv2d_forward/backward on these sizes (x (N,C,H,W), w (K,C,R,S), stride (sh,sw), padding (ph,pw)) take the F(2x2, 5x5) Winograd path: 5x5 kernels at stride 1, at least 4 channels in and out and 64 tiles of 2x2 outputs in the batch; and only when the arrays they read are finite. Otherwise they take im2col + gemm.
    """
def dropout_backward(dy: typing.Any, mask: typing.Any) -> typing.Any:
    ...
def dropout_forward(x: typing.Any, p: typing.Any, seed: typing.Any) -> typing.Any:
    ...
def gemm(a: typing.Any, b: typing.Any, trans_a: typing.Any, trans_b: typing.Any) -> typing.Any:
    ...
def get_num_threads() -> int:
    """
    Number of OpenMP threads kernels use.
    """
def linear_backward(dy: typing.Any, x: typing.Any, w: typing.Any, need_dx: typing.Any) -> typing.Any:
    ...
def linear_forward(x: typing.Any, w: typing.Any, b: typing.Any) -> typing.Any:
    ...
def max_pool2d_backward(dy: typing.Any, argmax: typing.Any, x_shape: typing.Any) -> typing.Any:
    ...
def max_pool2d_forward(x: typing.Any, size: typing.Any, stride: typing.Any) -> typing.Any:
    ...
def mlp_train_step(ws: typing.Any, bs: typing.Any, activations: typing.Any, x: typing.Any, labels: typing.Any, lr: typing.Any, weight_decay: typing.Any, alpha: typing.Any) -> typing.Any:
    ...
def openmp_version() -> int:
    """
    The OpenMP version the kernels were built with (_OPENMP, yyyymm), 0 for a build without OpenMP (one thread).
    """
def restore_allocator(previous: typing.Any) -> None:
    """
    Install again the NumPy memory handler that use_array_cache returned.
    """
def rnn_backward(h_all: typing.Any, dh_all: typing.Any, x: typing.Any, h0: typing.Any, w_xh: typing.Any, w_hh: typing.Any, activation: typing.Any, bptt_steps: typing.Any, clip: typing.Any) -> typing.Any:
    ...
def rnn_forward(x: typing.Any, h0: typing.Any, w_xh: typing.Any, w_hh: typing.Any, b_h: typing.Any, activation: typing.Any) -> typing.Any:
    ...
def set_num_threads(n: typing.SupportsInt | typing.SupportsIndex) -> None:
    """
    Set the number of OpenMP threads used by kernels.
    """
def sgd_update(param: typing.Any, velocity: typing.Any, grad: typing.Any, lr: typing.Any, momentum: typing.Any, nesterov: typing.Any, weight_decay: typing.Any) -> typing.Any:
    ...
def simd_level() -> str:
    """
    SIMD instruction set the run-time dispatch picks on this CPU.
    """
def softmax_nll_backward(probs: typing.Any, labels: typing.Any) -> typing.Any:
    ...
def softmax_nll_forward(logits: typing.Any, labels: typing.Any) -> typing.Any:
    ...
def use_array_cache() -> typing.Any:
    """
    Make NumPy allocate through deepnum's cache of large blocks in this context; returns the handler it replaces (for restore_allocator).
    """
ACTIVATIONS: dict = {'linear': 0, 'sigmoid': 1, 'tanh': 2, 'relu': 3, 'leaky_relu': 4}
OPS: dict = {'gemm': 1, 'linear_forward': 1, 'linear_backward': 3, 'mlp_train_step': 0, 'conv2d_forward': 1, 'conv2d_backward': 3, 'max_pool2d_forward': 2, 'max_pool2d_backward': 1, 'softmax_nll_forward': 1, 'softmax_nll_backward': 1, 'activation_forward': 1, 'activation_backward': 1, 'dropout_forward': 2, 'dropout_backward': 1, 'sgd_update': 0, 'adam_update': 0, 'rnn_forward': 1, 'rnn_backward': 5}
RETURNS_LOSS: tuple = ('mlp_train_step', 'softmax_nll_forward')
RNN_ACTIVATIONS: tuple = ('linear', 'sigmoid', 'tanh', 'relu')
