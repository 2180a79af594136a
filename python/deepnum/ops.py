"""The public ops: one entry point per op, run by the backend that the arrays choose.

Every op takes float32 or float64 arrays (all of one dtype) in C order, NCHW for images, and
returns new arrays of that dtype. NumPy arrays run on the selected CPU backend (``cpp``,
``numba`` or ``numpy``; :func:`deepnum.use_backend`); device arrays (``deepnum.cuda.DeviceArray``) run on
``cuda`` and give DeviceArrays (data stays on the device). Arrays of both kinds in one call are a
TypeError naming both.

One owner per rule (docs/ARCHITECTURE.md):

* The compiled contract (``cpp/contract.h``: one source compiled into deepnum._core, deepnum._cuda
  and, for the numba and numpy backends, deepnum._contract) checks every argument — array types,
  dtypes, layout, shapes, scalar types and ranges, names, output sizes — before it allocates the
  outputs. Bad types are a TypeError, bad shapes, sizes and ranges a ValueError, each message
  starting with the op's name and the same on every backend.
* This module only converts and dispatches. Conversions, documented once here:

  - Host arrays of other libraries: an input that exposes its memory — DLPack on the CPU (a
    PyTorch CPU tensor: ``np.from_dlpack``), the buffer protocol (``memoryview``, ``array.array``,
    ``bytearray``) or ``__array_interface__``/``__array_struct__`` — is taken as a NumPy view of
    that memory, no copy; an object with only ``__array__`` is taken by ``np.asarray``, a copy
    unless its ``__array__`` hands out a view. Outputs are NumPy arrays. Plain Python lists, tuples and
    scalars are not arrays here: a TypeError (``np.asarray(x, np.float32)`` first). An object on a
    CUDA device (a ``torch.cuda`` tensor, a CuPy array: ``__dlpack_device__`` says so) is a
    TypeError pointing to ``deepnum.cuda.from_dlpack``, which takes it without a copy.
  - NumPy inputs (and those views) that are not C-contiguous are copied to C order; labels and
    argmax of any integer dtype become int64 (a copy when they are not C-contiguous int64).
  - Nothing else is converted: an integer, float16 or complex array, or float32 mixed with
    float64, is a TypeError (cast explicitly; no silent precision change).
  - The in-place updates (``sgd_update``, ``adam_update``, ``mlp_train_step``'s parameters)
    never copy: they write into the caller's memory. A parameter or state array that is not a
    writable, C-contiguous float array is a TypeError; so is an object that offers its memory
    only through ``__array__`` (which may copy: the update would be lost); another library's
    parameters are views of its memory, as above.
  - The model layer (``fit``, ``predict``, ``evaluate``) takes host data sets through
    :func:`host_view` (the same views; anything else is used as it is, each batch converted here).

NaN propagates as in NumPy (max-pool: a NaN in a window is its maximum).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence, overload

import numpy as np

from . import _backend, _cudabackend
from ._contract import ACTIVATIONS, RNN_ACTIVATIONS
from ._cudabackend import DEVICE, DeviceArray
from ._host import HOST

if TYPE_CHECKING:
    from ._cudabackend import DeviceArrays
    from ._host import HostArrays
    from ._typing import Array, ArrayT, DTypeLike, FloatArray, IntArray, Labels, Size

array_cache = _backend.array_cache

__all__ = ["gemm", "linear_forward", "linear_backward", "conv2d_forward", "conv2d_backward",
           "max_pool2d_forward", "max_pool2d_backward", "softmax_nll_forward", "softmax_nll_backward",
           "activation_forward", "activation_backward", "dropout_forward", "dropout_backward", "sgd_update",
           "adam_update", "mlp_train_step", "rnn_forward", "rnn_backward", "array_namespace", "device_namespace",
           "placed", "placed_labels", "host_view", "array_cache", "ACTIVATIONS", "RNN_ACTIVATIONS"]


# ---- conversion and dispatch ---------------------------------------------------------------

_KDLCPU = 1  # DLPack's device type of host memory ("cpu")
# not another library's array: ours, and plain Python values
_NOT_FOREIGN = (np.ndarray, DeviceArray, list, tuple, str, bytes, int, float, complex, bool)


def _dlpack_device(a):
    """The DLPack device type of ``a`` (1 for the host), or None when it has no ``__dlpack_device__``."""
    return int(a.__dlpack_device__()[0]) if hasattr(type(a), "__dlpack_device__") else None


def _has_buffer(a):
    try:
        memoryview(a)
    except TypeError:
        return False
    return True


def _foreign(a):
    """True for an array of another library (anything but a NumPy array, a DeviceArray, None and plain Python
    values): an object with the buffer protocol, the array interfaces, ``__array__`` or DLPack."""
    if a is None or isinstance(a, _NOT_FOREIGN):
        return False
    return hasattr(type(a), "__array__") or hasattr(type(a), "__dlpack__") or _has_interface(a) or _has_buffer(a)


def _on_device(a):
    """True for another library's array on a GPU (what deepnum.cuda.from_dlpack takes)."""
    return _foreign(a) and _dlpack_device(a) not in (None, _KDLCPU)


def _foreign_host(a):
    """True for another library's array in host memory."""
    return _foreign(a) and _dlpack_device(a) in (None, _KDLCPU)


def _has_interface(a):
    return hasattr(a, "__array_interface__") or hasattr(a, "__array_struct__")  # looked up on the instance, as NumPy


def _memory_view(a):
    """A NumPy view of another library's host array where it exposes its memory (DLPack on the CPU, the buffer
    protocol, the array interfaces: a view by definition of each), else None."""
    if hasattr(type(a), "__dlpack__") and _dlpack_device(a) == _KDLCPU:
        return np.from_dlpack(a)
    if _has_buffer(a):
        return np.asarray(memoryview(a))
    if _has_interface(a):
        return np.asarray(a)
    return None


def host_view(a):
    """Another library's host array that exposes its memory (a PyTorch CPU tensor, a memoryview, an array.array) as
    a NumPy view of it, no copy; anything else as it is (NumPy arrays, DeviceArrays, lists, row sources such as
    ``datasets.ShiftedImages``, objects with only ``__array__``). The model layer takes host data sets through it."""
    view = _memory_view(a) if _foreign_host(a) else None
    return a if view is None else view


def _host(a):
    """Another library's host array as a NumPy array: a view of its memory where it exposes it, else
    ``np.asarray(a)`` (``__array__``: a copy unless the object hands out a view); anything else as it is."""
    if not _foreign_host(a):
        return a
    view = _memory_view(a)
    return np.asarray(a) if view is None else view


def _in_place(op, name, a):
    """An in-place argument (a parameter or optimiser state) as a NumPy view of the caller's memory, never a copy:
    NumPy arrays, DeviceArrays and non-arrays as they are (the contract checks them), another library's host
    array as a view of its memory; one that has only ``__array__`` (which may copy) is a TypeError naming ``op``
    and ``name``."""
    if not _foreign_host(a):
        return a
    view = _memory_view(a)
    if view is None:
        raise TypeError(f"{op}: {name} is a {_type_name(a)} that gives its memory only through __array__, which may "
                        "copy, so an update in place could be lost: pass a NumPy array or an object with DLPack, the "
                        "buffer protocol or __array_interface__")
    return view


def _type_name(a):
    t = type(a)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def _c(a):
    """An input in C order: a NumPy array (or another library's host array, as ``_host`` takes it) copied when it is
    not C-contiguous; anything else as it is."""
    a = _host(a)
    return np.ascontiguousarray(a) if isinstance(a, np.ndarray) and not a.flags.c_contiguous else a


def _int64(a):
    """Labels or argmax (NumPy, or another library's host array) of any integer dtype as C-contiguous int64; anything
    else (and unsigned values that int64 cannot hold) as it is, for the contract to refuse."""
    a = _host(a)
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "iu" or (a.dtype == np.int64 and a.flags.c_contiguous):
        return a
    if a.dtype.kind == "u" and a.size and a.max() > np.iinfo(np.int64).max:
        return a
    return np.ascontiguousarray(a, np.int64)


def _listed(v):
    """Any iterable but a string or an array as a list; anything else as it is, for the contract to refuse."""
    if isinstance(v, (list, str, np.ndarray, DeviceArray)):
        return v
    try:
        return list(v)
    except TypeError:
        return v


def _side(a):
    return "deepnum.cuda.DeviceArray" if isinstance(a, DeviceArray) else "numpy.ndarray"


def _kernels(op, names, *arrays):
    """The backend for a call on ``arrays`` (called ``names``, space-separated, or a function giving them, called
    only where an array is neither a NumPy array nor None): cuda for DeviceArrays, the selected CPU backend
    otherwise; arrays of both kinds are a TypeError naming one of each, and so is another library's GPU array
    (deepnum.cuda.from_dlpack takes it)."""
    if all(a is None or isinstance(a, np.ndarray) for a in arrays):
        return _backend.active
    names = (names() if callable(names) else names).split()
    gpu = next((n for n, a in zip(names, arrays) if _on_device(a)), None)
    if gpu is not None:
        a = arrays[names.index(gpu)]
        device = tuple(int(v) for v in a.__dlpack_device__())
        raise TypeError(f"{op}: {gpu} is a {_type_name(a)} on a GPU (DLPack device {device}): "
                        f"deepnum.cuda.from_dlpack({gpu}) makes it a DeviceArray without a copy")
    if not any(isinstance(a, DeviceArray) for a in arrays):
        return _backend.active
    host = [n for n, a in zip(names, arrays) if isinstance(a, np.ndarray) or _foreign(a)]
    if host:
        device = next(n for n, a in zip(names, arrays) if isinstance(a, DeviceArray))
        kind = _type_name(arrays[names.index(host[0])])
        raise TypeError(f"{op}: {device} is a deepnum.cuda.DeviceArray but {host[0]} is a {kind} on the host: the "
                        "arrays of one call must all be on the device or all on the host "
                        "(DeviceArray.from_numpy / .to_numpy move them)")
    return _backend.load("cuda")


def array_namespace(*arrays: object) -> HostArrays | DeviceArrays:
    """The array namespace of the side ``arrays`` live on: ``deepnum._host.HOST`` for NumPy arrays (and for
    no arrays), the device namespace for DeviceArrays; both kinds at once are a TypeError. Layers,
    optimisers and the training loop create and move their arrays only through it."""
    on_device = [isinstance(a, DeviceArray) for a in arrays]
    if not any(on_device):
        return HOST
    if not all(on_device):
        raise TypeError("array_namespace: arrays on the device (deepnum.cuda.DeviceArray) and on the host "
                        f"(numpy.ndarray) mixed: got {', '.join(_side(a) for a in arrays)}")
    return DEVICE


def device_namespace(device: str, who: str) -> HostArrays | DeviceArrays:
    """The array namespace of ``device``: ``deepnum._host.HOST`` for "cpu", the device namespace for "cuda" (a
    RuntimeError with ``deepnum.cuda.unavailable_reason()`` where it cannot run); anything else is a ValueError
    naming ``who``, the caller, and the value."""
    if device == "cpu":
        return HOST
    if device == "cuda":
        reason = _cudabackend.unavailable_reason()
        if reason is not None:
            raise RuntimeError(f"{who}: device 'cuda' is unavailable: {reason}")
        return DEVICE
    raise ValueError(f"{who}: device must be 'cpu' or 'cuda', got {device!r}")


def placed(a: Any, xp: HostArrays | DeviceArrays, dtype: DTypeLike | None = None, copy: bool = False,
           who: str = "placed") -> Any:
    """``a`` on the side of the array namespace ``xp`` (HOST or the device's), C-contiguous, in ``dtype`` (default:
    its own). Already there in that dtype: ``a`` itself (a copy with ``copy``). A host array, or anything
    ``np.asarray`` takes, moves to the device in one copy (converted on the host first); a DeviceArray comes
    to the host in one copy (then converted there). A DeviceArray is never converted on the device: another
    ``dtype`` is a TypeError naming ``who``. The model layer moves its data, parameters and state with this."""
    if isinstance(a, DeviceArray):
        if xp is HOST:
            return np.ascontiguousarray(a.to_numpy(), dtype)
        if dtype is not None and a.dtype != np.dtype(dtype):
            raise TypeError(f"{who}: a DeviceArray of {a.dtype} where {np.dtype(dtype)} is needed (DeviceArrays are "
                            "not converted: cast on the host)")
        return a.copy() if copy else a
    if xp is HOST:
        return np.array(a, dtype, order="C", copy=True) if copy else np.ascontiguousarray(a, dtype)
    return xp.from_host(a, dtype)


def placed_labels(labels: Any, xp: HostArrays | DeviceArrays) -> Any:
    """Class labels on the side of ``xp`` as the ops take them: integer NumPy labels of any dtype as int64 (the ops'
    own conversion), everything else in its dtype, for the contract to refuse (a DeviceArray must be int64)."""
    return placed(_int64(np.asarray(labels)) if not isinstance(labels, DeviceArray) else labels, xp)


# ---- GEMM and linear ---------------------------------------------------------------------

def gemm(a: ArrayT, b: ArrayT, trans_a: bool = False, trans_b: bool = False) -> ArrayT:
    """Matrix product ``op(a) @ op(b)``, where ``op`` transposes when ``trans_*`` is true.

    a is (M, K), or (K, M) with ``trans_a``; b is (K, N), or (N, K) with ``trans_b``.
    Returns c of shape (M, N).
    """
    return _kernels("gemm", "a b", a, b).gemm(_c(a), _c(b), trans_a, trans_b)


def linear_forward(x: ArrayT, w: ArrayT, b: ArrayT) -> ArrayT:
    """Dense layer ``y = x @ w + b``: x (N, n_in), w (n_in, n_out), b (n_out,) -> y (N, n_out)."""
    return _kernels("linear_forward", "x w b", x, w, b).linear_forward(_c(x), _c(w), _c(b))


def linear_backward(dy: ArrayT, x: ArrayT, w: ArrayT, need_dx: bool = True) -> tuple[ArrayT | None, ArrayT, ArrayT]:
    """Gradients of ``linear_forward``: returns (dx, dw, db) for upstream gradient dy (N, n_out).

    With ``need_dx=False`` dx is not computed and returned as None (a model's first layer).
    """
    dx, dw, db = _kernels("linear_backward", "dy x w", dy, x, w).linear_backward(_c(dy), _c(x), _c(w), need_dx)
    return (dx if need_dx else None), dw, db


# ---- conv2d --------------------------------------------------------------------------------

def conv2d_forward(x: ArrayT, w: ArrayT, b: ArrayT | None = None, stride: Size = 1, padding: Size = 0) -> ArrayT:
    """2-D cross-correlation with zero padding.

    x (N, C, H, W), w (K, C, R, S), b (K,) or None; stride and padding are an int or an
    (h, w) pair. Returns y (N, K, P, Q) with P = (H + 2·pad_h - R) // stride_h + 1.

    On the cpp backend, 5×5 kernels at stride 1 with at least 4 channels in and out and 64 tiles of
    2×2 outputs in the batch (``deepnum._core.conv2d_winograd_applies``) take a Winograd F(2×2, 5×5)
    path, forward and backward, when the inputs are finite: 36 multiplications per 2×2 outputs instead
    of 100, for a larger rounding error. In float32, y and dx are within 3e-6 and dw within 6e-6 of the
    exact values relative to the largest of each (about 8e-7, 7e-7 and 1.6e-6 typically, some 4-13×
    im2col's); float64 is unaffected in practice (tests/test_ops.py, test_conv2d_winograd_*). On the
    numba backend the backward takes the same path (to the same bounds) with at least 16 channels in and
    out and 256 tiles in the batch (``deepnum._numba.conv2d_winograd.applies``). Other shapes and the
    other backends compute im2col + GEMM.
    """
    return _kernels("conv2d_forward", "x w b", x, w, b).conv2d_forward(_c(x), _c(w), _c(b), stride, padding)


def conv2d_backward(dy: ArrayT, x: ArrayT, w: ArrayT, stride: Size = 1, padding: Size = 0,
                    need_dx: bool = True) -> tuple[ArrayT | None, ArrayT, ArrayT]:
    """Gradients of ``conv2d_forward``: returns (dx, dw, db) for upstream gradient dy (N, K, P, Q).

    With ``need_dx=False`` dx is not computed and returned as None (a model's first layer).
    """
    k = _kernels("conv2d_backward", "dy x w", dy, x, w)
    dx, dw, db = k.conv2d_backward(_c(dy), _c(x), _c(w), stride, padding, need_dx)
    return (dx if need_dx else None), dw, db


# ---- max-pool ------------------------------------------------------------------------------

@overload
def max_pool2d_forward(x: DeviceArray, size: Size = 2, stride: Size | None = None) -> tuple[DeviceArray, DeviceArray]:
    ...
@overload
def max_pool2d_forward(x: FloatArray, size: Size = 2, stride: Size | None = None) -> tuple[FloatArray, IntArray]:
    ...
def max_pool2d_forward(x: Array, size: Size = 2, stride: Size | None = None) -> tuple[Array, IntArray | DeviceArray]:
    """Max-pooling over size×size windows ("ignore border": partial windows are dropped).

    x (N, C, H, W); size and stride are an int or an (h, w) pair; stride defaults to size.
    Returns (y, argmax), both (N, C, P, Q) with P = (H - size_h) // stride_h + 1; argmax
    (int64) is the flat index h·W + w of each maximum inside its (H, W) plane.
    """
    return _kernels("max_pool2d_forward", "x", x).max_pool2d_forward(_c(x), size, stride)


def max_pool2d_backward(dy: ArrayT, argmax: Labels, x_shape: Sequence[int]) -> ArrayT:
    """Gradient of ``max_pool2d_forward``: routes dy (N, C, P, Q) to the argmax positions.

    Returns dx of shape ``x_shape`` (overlapping windows add up).
    """
    k = _kernels("max_pool2d_backward", "dy argmax", dy, argmax)
    return k.max_pool2d_backward(_c(dy), _int64(argmax), x_shape)


# ---- softmax + negative log-likelihood -----------------------------------------------------

def softmax_nll_forward(logits: ArrayT, labels: Labels) -> tuple[float, ArrayT]:
    """Softmax followed by the mean negative log-likelihood of ``labels``.

    logits (N, n_classes); labels (N,) integers in [0, n_classes).
    Returns (loss, probs): the mean loss as a Python float and probs (N, n_classes).
    Stable for large logits (max-subtraction).
    """
    k = _kernels("softmax_nll_forward", "logits labels", logits, labels)
    return k.softmax_nll_forward(_c(logits), _int64(labels))


def softmax_nll_backward(probs: ArrayT, labels: Labels) -> ArrayT:
    """Gradient of the mean loss with respect to the logits: (probs - onehot(labels)) / N."""
    k = _kernels("softmax_nll_backward", "probs labels", probs, labels)
    return k.softmax_nll_backward(_c(probs), _int64(labels))


# ---- activations ---------------------------------------------------------------------------

def activation_forward(name: str, x: ArrayT, alpha: float = 0.01) -> ArrayT:
    """Elementwise activation ``name`` (sigmoid, tanh, relu, leaky_relu, linear) of x.

    ``alpha`` is the negative slope of leaky_relu (ignored by the others).
    """
    return _kernels("activation_forward", "x", x).activation_forward(_c(x), name, alpha)


def activation_backward(name: str, y: ArrayT, dy: ArrayT, alpha: float = 0.01) -> ArrayT:
    """Gradient of ``activation_forward`` expressed through its output y: returns dx."""
    return _kernels("activation_backward", "y dy", y, dy).activation_backward(_c(y), _c(dy), name, alpha)


# ---- dropout -------------------------------------------------------------------------------

def dropout_forward(x: ArrayT, p: float, seed: int) -> tuple[ArrayT, ArrayT]:
    """Inverted dropout: zero each element with probability p, scale the rest by 1/(1-p).

    ``seed`` (an int in [0, 2**64)) fixes the mask; every backend draws the same mask.
    Returns (y, mask) with mask holding 0 or 1/(1-p) in x's dtype.
    """
    return _kernels("dropout_forward", "x", x).dropout_forward(_c(x), p, seed)


def dropout_backward(dy: ArrayT, mask: ArrayT) -> ArrayT:
    """Gradient of ``dropout_forward``: dx = dy * mask."""
    return _kernels("dropout_backward", "dy mask", dy, mask).dropout_backward(_c(dy), _c(mask))


# ---- parameter updates (in place) ----------------------------------------------------------

def sgd_update(param: ArrayT, grad: ArrayT, lr: float, momentum: float = 0.0, velocity: ArrayT | None = None,
               nesterov: bool = False, weight_decay: float = 0.0) -> None:
    """One fused SGD step, in place: ``param`` (and ``velocity``) are overwritten.

    g = grad + weight_decay·param; with a velocity buffer: v = momentum·v + g and the step
    uses v (or g + momentum·v with ``nesterov``); param -= lr·step. ``velocity`` is required
    when momentum > 0 (start it at zeros).
    """
    k = _kernels("sgd_update", "param grad velocity", param, grad, velocity)
    k.sgd_update(_in_place("sgd_update", "param", param), _in_place("sgd_update", "velocity", velocity), _c(grad),
                 lr, momentum, nesterov, weight_decay)


def adam_update(param: ArrayT, grad: ArrayT, m: ArrayT, v: ArrayT, step: int, lr: float = 1e-3, beta1: float = 0.9,
                beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0) -> None:
    """One fused Adam step, in place on ``param``, ``m`` and ``v`` (start m, v at zeros).

    ``step`` counts from 1 and sets the bias corrections 1 - beta**step.
    """
    k = _kernels("adam_update", "param grad m v", param, grad, m, v)
    k.adam_update(*(_in_place("adam_update", n, a) for n, a in (("param", param), ("m", m), ("v", v))), _c(grad), lr,
                  beta1, beta2, eps, weight_decay, step)


# ---- fused MLP training step ---------------------------------------------------------------

def mlp_train_step(x: ArrayT, labels: Labels, ws: Sequence[ArrayT], bs: Sequence[ArrayT], activations: Sequence[str],
                   lr: float, weight_decay: float = 0.0, alpha: float = 0.01) -> float:
    """One SGD step of an MLP in a single call: Dense layers ``a_l = act_l(a_{l-1} @ w_l + b_l)``,
    a softmax-NLL head on the last layer's output, then ``w_l -= lr·(dw_l + weight_decay·w_l)``
    and ``b_l -= lr·db_l``, in place. Returns the mean loss before the update.

    x (N, n_0); labels (N,) integers in [0, n_L); ws[l] (n_l, n_{l+1}) and bs[l] (n_{l+1},)
    writable C-contiguous arrays of x's dtype; activations one name per layer. The result is
    the layer-by-layer path's (linear_forward, activation_forward, softmax_nll_forward/backward,
    activation_backward, linear_backward, sgd_update), which the numba and numpy backends compose
    and the cpp backend runs in one call: bit-identical for a first layer of at most 16 outputs,
    to rounding for wider ones (cpp/mlp.cpp computes those in column chunks on its threads; the
    same bits for any thread count). A loss that is not finite is returned with nothing updated.
    """
    ws, bs = _listed(ws), _listed(bs)
    params = (*ws, *bs) if isinstance(ws, list) and isinstance(bs, list) else ()
    def names():
        return " ".join(["x", "labels"] + [f"ws[{i}]" for i in range(len(ws))] + [f"bs[{i}]" for i in range(len(bs))]
                        if params else ["x", "labels"])

    k = _kernels("mlp_train_step", names, x, labels, *params)
    if params:
        ws = [_in_place("mlp_train_step", f"ws[{i}]", w) for i, w in enumerate(ws)]
        bs = [_in_place("mlp_train_step", f"bs[{i}]", b) for i, b in enumerate(bs)]
    return k.mlp_train_step(ws, bs, _listed(activations), _c(x), _int64(labels), lr, weight_decay, alpha)


# ---- recurrent (Elman) network -------------------------------------------------------------

def rnn_forward(x: ArrayT, h0: ArrayT, w_xh: ArrayT, w_hh: ArrayT, b_h: ArrayT, activation: str = "tanh") -> ArrayT:
    """Elman RNN over a whole sequence: h_t = act(x_t·w_xh + h_{t-1}·w_hh + b_h), h_{-1} = h0.

    Time-major: x (T, N, D), h0 (N, H), w_xh (D, H), w_hh (H, H), b_h (H,); activation is
    tanh, sigmoid, relu or linear. Returns every hidden state, h_all (T, N, H); the time loop
    runs inside the kernel.
    """
    k = _kernels("rnn_forward", "x h0 w_xh w_hh b_h", x, h0, w_xh, w_hh, b_h)
    return k.rnn_forward(_c(x), _c(h0), _c(w_xh), _c(w_hh), _c(b_h), activation)


def rnn_backward(dh_all: ArrayT, x: ArrayT, h_all: ArrayT, h0: ArrayT, w_xh: ArrayT, w_hh: ArrayT,
                 activation: str = "tanh", bptt_steps: int | None = None, clip: float | None = None
                 ) -> tuple[ArrayT, ArrayT, ArrayT, ArrayT, ArrayT]:
    """Backpropagation through time for ``rnn_forward``: returns (dx, dh0, dw_xh, dw_hh, db_h).

    dh_all (T, N, H) is the gradient of the loss with respect to every hidden state (zeros
    except the last step for a many-to-one model); h_all is the output of ``rnn_forward``.
    With dz_t the gradient with respect to the pre-activation of step t:

    * ``bptt_steps`` None or 0 (or >= T): full BPTT,
      dz_t = (dh_all_t + dz_{t+1}·w_hhᵀ) ⊙ act'(h_t).
    * ``bptt_steps`` = k >= 1: truncated BPTT(k) (Williams & Peng): the gradient of the loss
      at each step s flows back through at most k steps, reaching the pre-activations of
      steps s, s-1, ..., s-k+1 and no earlier ones. So k = 1 keeps no gradient through
      w_hh's recurrence (dz_t = dh_all_t ⊙ act'(h_t)), and every step is treated alike
      (unlike chunked truncation, where the steps at the start of a chunk see further back).

    Then dx_t = dz_t·w_xhᵀ, dh0 = dz_0·w_hhᵀ, dw_xh = Σ_t x_tᵀ·dz_t,
    dw_hh = Σ_t h_{t-1}ᵀ·dz_t (h_{-1} = h0) and db_h = Σ_t Σ_n dz_t.

    ``clip`` None: no clipping. ``clip`` = c > 0: global-norm clipping of the parameter
    gradients (Pascanu et al. 2013): when the 2-norm of (dw_xh, dw_hh, db_h) taken together
    exceeds c, all three are scaled by c / norm; dx and dh0 are never clipped. Clipping is
    per call: a model with several layers clips each layer's gradients separately.
    """
    k = _kernels("rnn_backward", "dh_all x h_all h0 w_xh w_hh", dh_all, x, h_all, h0, w_xh, w_hh)
    return k.rnn_backward(_c(h_all), _c(dh_all), _c(x), _c(h0), _c(w_xh), _c(w_hh), activation, bptt_steps, clip)
