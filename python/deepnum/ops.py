"""The public ops: checked entry points that dispatch to the active backend.

Every op accepts float32 or float64 arrays (all of one dtype) in C order, NCHW for images,
and returns new arrays of that dtype. Conversions, documented once here:

* Inputs that are not C-contiguous (Fortran order, strided views) are copied to C order;
  nothing else is converted: an integer, float16 or complex array is a TypeError, and
  float32 mixed with float64 is a TypeError (cast explicitly; no silent precision change).
* Labels may be any integer dtype and are converted to int64.
* The in-place updates (``sgd_update``, ``adam_update``) never copy: a parameter or state
  array that is not a writable, C-contiguous float array is a TypeError.

Bad shapes, sizes and ranges raise ValueError naming the op and the offending shapes.
NaN propagates as in NumPy (max-pool: a NaN in a window is its maximum).

With the ``cuda`` backend every array argument must be a ``deepnum.cuda.DeviceArray`` (always
C-contiguous; labels and argmax int64) and the results are DeviceArrays: data stays on the device.
The same checks apply; label and argmax ranges are checked on the device by the kernels.
"""
import math
import numbers
import operator

import numpy as np

from . import _backend
from ._host import HOST
from ._reference import ACTIVATIONS
array_cache = _backend.array_cache

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


# ---- argument checks -----------------------------------------------------------------------

def _shape(a):
    return str(tuple(a.shape))


def _is_array(a):
    """Whether ``a`` is an array of the active backend: numpy.ndarray, or DeviceArray for cuda."""
    return isinstance(a, np.ndarray) if _backend.name != "cuda" else isinstance(a, _backend.array_type("cuda"))


def _array_name():
    return "deepnum.cuda.DeviceArray" if _backend.name == "cuda" else "numpy.ndarray"


def _empty(like, shape=None, dtype=None):
    """An uninitialised array on the same side as ``like`` (host or device), like ``np.empty``."""
    shape = like.shape if shape is None else shape
    dtype = like.dtype if dtype is None else dtype
    return np.empty(shape, dtype) if isinstance(like, np.ndarray) else type(like).empty(shape, dtype)


def _float_array(op, name, a, ndim=None, dims=None):
    """Return ``a`` as a C-contiguous float32/float64 array, checking its ndim."""
    if not _is_array(a):
        raise TypeError(f"{op}: {name} must be a {_array_name()}, got {type(a).__name__}")
    if a.dtype not in _FLOATS:
        raise TypeError(f"{op}: {name} must be float32 or float64, got {a.dtype}")
    if ndim is not None and a.ndim != ndim:
        layout = f" {dims}" if dims else ""
        raise ValueError(f"{op}: {name} must be {ndim}-D{layout}, got shape {_shape(a)}")
    if a.size == 0:
        raise ValueError(f"{op}: {name} is empty, shape {_shape(a)}")
    return a if not isinstance(a, np.ndarray) or a.flags.c_contiguous else np.ascontiguousarray(a)


def _same_dtype(op, names, *arrays):
    """TypeError unless ``arrays`` (called ``names``, space-separated) share one dtype."""
    dtype = arrays[0].dtype
    for a in arrays:
        if a.dtype != dtype:
            desc = ", ".join(f"{k} {v.dtype}" for k, v in zip(names.split(), arrays))
            raise TypeError(f"{op}: all arrays must share one dtype, got {desc}")


def _same_shape(op, name, a, ref_name, ref):
    if a.shape != ref.shape:
        raise ValueError(f"{op}: {name} has shape {_shape(a)} but {ref_name} has shape {_shape(ref)}")


def _int(op, name, v, minimum):
    if type(v) is not int and (isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral)):
        raise TypeError(f"{op}: {name} must be an int, got {v!r}")
    v = operator.index(v)
    if v < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {v}")
    return v


def _pair(op, name, v, minimum):
    """An int or a pair of ints -> (v_h, v_w)."""
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {v!r}")
        return _int(op, name, v[0], minimum), _int(op, name, v[1], minimum)
    v = _int(op, name, v, minimum)
    return v, v


def _real(op, name, v, lo=None, hi=None, hi_open=False):
    if type(v) is not float and (isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real)):
        raise TypeError(f"{op}: {name} must be a real number, got {v!r}")
    v = float(v)
    bad = not math.isfinite(v) or (lo is not None and v < lo) or (hi is not None and (v >= hi if hi_open else v > hi))
    if bad:
        rng = f"[{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}{')' if hi_open else ']'}"
        raise ValueError(f"{op}: {name} must be finite and in {rng}, got {v}")
    return v


def _labels(op, labels, n, n_classes):
    if not _is_array(labels) or labels.dtype.kind not in "iu":
        raise TypeError(f"{op}: labels must be an integer {_array_name()}, got "
                        f"{getattr(labels, 'dtype', type(labels).__name__)}")
    if labels.shape != (n,):
        raise ValueError(f"{op}: labels must have shape ({n},), got {_shape(labels)}")
    if not isinstance(labels, np.ndarray):  # device labels: int64, range checked by the kernel
        if labels.dtype != np.int64:
            raise TypeError(f"{op}: device labels must be int64, got {labels.dtype}")
        return labels
    if labels.dtype.kind == "u" and labels.max() >= n_classes:  # would wrap in the int64 conversion
        raise ValueError(f"{op}: labels must lie in [0, {n_classes}), got values in "
                         f"[{labels.min()}, {labels.max()}]")
    labels = np.ascontiguousarray(labels, dtype=np.int64)
    # The C++ kernels check the range themselves before any work (a ValueError naming the op, the label
    # and its row); the Numba and NumPy ones trust it. One reduction: a negative label reads as >= 2**63.
    if _backend.name != "cpp" and labels.view(np.uint64).max() >= n_classes:
        raise ValueError(f"{op}: labels must lie in [0, {n_classes}), got values in "
                         f"[{labels.min()}, {labels.max()}]")
    return labels


def _in_place(op, name, a):
    if not _is_array(a) or a.dtype not in _FLOATS:
        raise TypeError(f"{op}: {name} must be a float32 or float64 {_array_name()}, got "
                        f"{getattr(a, 'dtype', type(a).__name__)}")
    if isinstance(a, np.ndarray) and not (a.flags.c_contiguous and a.flags.writeable):
        raise TypeError(f"{op}: {name} must be writable and C-contiguous (it is updated in place; "
                        "a copy would be updated instead)")
    return a


def _conv_out(op, size, k, stride, pad, what):
    if size + 2 * pad < k:
        raise ValueError(f"{op}: {what} {k} is larger than the padded input {size + 2 * pad}")
    return (size + 2 * pad - k) // stride + 1


def array_namespace(*arrays):
    """The array namespace of the side ``arrays`` live on: ``HOST`` for NumPy arrays (and with no
    arrays), the device namespace for ``deepnum.cuda.DeviceArray``s. Layers, optimisers and training
    create and move arrays only through it (see docs/ARCHITECTURE.md)."""
    from ._cudabackend import DEVICE, DeviceArray

    on_device = [isinstance(a, DeviceArray) for a in arrays]
    if any(on_device):
        if not all(on_device):
            raise TypeError("array_namespace: numpy.ndarray and deepnum.cuda.DeviceArray mixed; move the arrays "
                            "to one side first")
        return DEVICE
    return HOST


# ---- GEMM and linear ---------------------------------------------------------------------

def gemm(a, b, trans_a=False, trans_b=False):
    """Matrix product ``op(a) @ op(b)``, where ``op`` transposes when ``trans_*`` is true.

    a is (M, K), or (K, M) with ``trans_a``; b is (K, N), or (N, K) with ``trans_b``.
    Returns c of shape (M, N).
    """
    op = "gemm"
    a = _float_array(op, "a", a, 2)
    b = _float_array(op, "b", b, 2)
    _same_dtype(op, "a b", a, b)
    m, k = a.shape[::-1] if trans_a else a.shape
    kb, n = b.shape[::-1] if trans_b else b.shape
    if k != kb:
        raise ValueError(f"{op}: inner dimensions differ: op(a) is ({m}, {k}), op(b) is ({kb}, {n}) "
                         f"(a {_shape(a)}, b {_shape(b)}, trans_a={trans_a}, trans_b={trans_b})")
    c = _empty(a, (m, n))
    _backend.active.gemm(c, a, b, bool(trans_a), bool(trans_b))
    return c


def _linear_args(op, x, w):
    x = _float_array(op, "x", x, 2, "(N, n_in)")
    w = _float_array(op, "w", w, 2, "(n_in, n_out)")
    if x.shape[1] != w.shape[0]:
        raise ValueError(f"{op}: x {_shape(x)} has {x.shape[1]} features but w {_shape(w)} expects {w.shape[0]}")
    return x, w


def linear_forward(x, w, b):
    """Dense layer ``y = x @ w + b``: x (N, n_in), w (n_in, n_out), b (n_out,) -> y (N, n_out)."""
    op = "linear_forward"
    x, w = _linear_args(op, x, w)
    b = _float_array(op, "b", b, 1)
    _same_dtype(op, "x w b", x, w, b)
    if b.shape != (w.shape[1],):
        raise ValueError(f"{op}: b must have shape ({w.shape[1]},), got {_shape(b)}")
    y = _empty(x, (x.shape[0], w.shape[1]))
    _backend.active.linear_forward(y, x, w, b)
    return y


def linear_backward(dy, x, w, need_dx=True):
    """Gradients of ``linear_forward``: returns (dx, dw, db) for upstream gradient dy (N, n_out).

    With ``need_dx=False`` dx is not computed and returned as None (a model's first layer); the
    kernel is handed a dx of size 0 (and of x's ndim), which every backend reads as "not wanted".
    """
    op = "linear_backward"
    x, w = _linear_args(op, x, w)
    dy = _float_array(op, "dy", dy, 2)
    _same_dtype(op, "dy x w", dy, x, w)
    if dy.shape != (x.shape[0], w.shape[1]):
        raise ValueError(f"{op}: dy must have shape {(x.shape[0], w.shape[1])}, got {_shape(dy)}")
    dx, dw, db = _empty(x, None if need_dx else (0,) * x.ndim), _empty(w), _empty(x, (w.shape[1],))
    _backend.active.linear_backward(dx, dw, db, dy, x, w)
    return (dx if need_dx else None), dw, db


# ---- conv2d --------------------------------------------------------------------------------

def _conv_args(op, x, w, stride, padding):
    x = _float_array(op, "x", x, 4, "(N, C, H, W)")
    w = _float_array(op, "w", w, 4, "(K, C, R, S)")
    sh, sw = _pair(op, "stride", stride, 1)
    ph, pw = _pair(op, "padding", padding, 0)
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"{op}: x {_shape(x)} has {x.shape[1]} channels but w {_shape(w)} expects {w.shape[1]}")
    p = _conv_out(op, x.shape[2], w.shape[2], sh, ph, "kernel height")
    q = _conv_out(op, x.shape[3], w.shape[3], sw, pw, "kernel width")
    return x, w, (sh, sw, ph, pw), (x.shape[0], w.shape[0], p, q)


def conv2d_forward(x, w, b=None, stride=1, padding=0):
    """2-D cross-correlation with zero padding.

    x (N, C, H, W), w (K, C, R, S), b (K,) or None; stride and padding are an int or an
    (h, w) pair. Returns y (N, K, P, Q) with P = (H + 2·pad_h - R) // stride_h + 1.
    """
    op = "conv2d_forward"
    x, w, geometry, y_shape = _conv_args(op, x, w, stride, padding)
    if b is None:
        b = np.zeros(w.shape[0], dtype=w.dtype) if isinstance(w, np.ndarray) else type(w).zeros(w.shape[0], w.dtype)
    b = _float_array(op, "b", b, 1)
    _same_dtype(op, "x w b", x, w, b)
    if b.shape != (w.shape[0],):
        raise ValueError(f"{op}: b must have shape ({w.shape[0]},), got {_shape(b)}")
    y = _empty(x, y_shape)
    _backend.active.conv2d_forward(y, x, w, b, *geometry)
    return y


def conv2d_backward(dy, x, w, stride=1, padding=0, need_dx=True):
    """Gradients of ``conv2d_forward``: returns (dx, dw, db) for upstream gradient dy (N, K, P, Q).

    With ``need_dx=False`` dx is not computed and returned as None (a model's first layer); the
    kernel is handed a dx of size 0 (and of x's ndim), which every backend reads as "not wanted".
    """
    op = "conv2d_backward"
    x, w, geometry, y_shape = _conv_args(op, x, w, stride, padding)
    dy = _float_array(op, "dy", dy, 4)
    _same_dtype(op, "dy x w", dy, x, w)
    if dy.shape != y_shape:
        raise ValueError(f"{op}: dy must have shape {y_shape} for x {_shape(x)} and w {_shape(w)}, got {_shape(dy)}")
    dx, dw, db = _empty(x, None if need_dx else (0,) * x.ndim), _empty(w), _empty(x, (w.shape[0],))
    _backend.active.conv2d_backward(dx, dw, db, dy, x, w, *geometry)
    return (dx if need_dx else None), dw, db


# ---- max-pool ------------------------------------------------------------------------------

def max_pool2d_forward(x, size=2, stride=None):
    """Max-pooling over size×size windows ("ignore border": partial windows are dropped).

    x (N, C, H, W); size and stride are an int or an (h, w) pair; stride defaults to size.
    Returns (y, argmax), both (N, C, P, Q) with P = (H - size_h) // stride_h + 1; argmax
    (int64) is the flat index h·W + w of each maximum inside its (H, W) plane.
    """
    op = "max_pool2d_forward"
    x = _float_array(op, "x", x, 4, "(N, C, H, W)")
    kh, kw = _pair(op, "size", size, 1)
    sh, sw = (kh, kw) if stride is None else _pair(op, "stride", stride, 1)
    n, c, h, w = x.shape
    shape = (n, c, _conv_out(op, h, kh, sh, 0, "window height"), _conv_out(op, w, kw, sw, 0, "window width"))
    y = _empty(x, shape)
    argmax = _empty(x, shape, np.int64)
    _backend.active.max_pool2d_forward(y, argmax, x, kh, kw, sh, sw)
    return y, argmax


def max_pool2d_backward(dy, argmax, x_shape):
    """Gradient of ``max_pool2d_forward``: routes dy (N, C, P, Q) to the argmax positions.

    Returns dx of shape ``x_shape`` (overlapping windows add up).
    """
    op = "max_pool2d_backward"
    dy = _float_array(op, "dy", dy, 4)
    x_shape = tuple(_int(op, "x_shape", s, 1) for s in x_shape)
    if len(x_shape) != 4 or x_shape[:2] != dy.shape[:2]:
        raise ValueError(f"{op}: x_shape {x_shape} must be (N, C, H, W) with N, C matching dy {_shape(dy)}")
    if not _is_array(argmax) or argmax.dtype.kind not in "iu":
        raise TypeError(f"{op}: argmax must be an integer {_array_name()}")
    _same_shape(op, "argmax", argmax, "dy", dy)
    plane = x_shape[2] * x_shape[3]
    if not isinstance(argmax, np.ndarray):  # device argmax: int64, range checked by the kernel
        if argmax.dtype != np.int64:
            raise TypeError(f"{op}: device argmax must be int64, got {argmax.dtype}")
    elif argmax.min() < 0 or argmax.max() >= plane:
        raise ValueError(f"{op}: argmax values must lie in [0, {plane}) for x_shape {x_shape}")
    else:
        argmax = np.ascontiguousarray(argmax, dtype=np.int64)
    dx = _empty(dy, x_shape)
    _backend.active.max_pool2d_backward(dx, dy, argmax)
    return dx


# ---- softmax + negative log-likelihood -----------------------------------------------------

def softmax_nll_forward(logits, labels):
    """Softmax followed by the mean negative log-likelihood of ``labels``.

    logits (N, n_classes); labels (N,) integers in [0, n_classes).
    Returns (loss, probs): the mean loss as a Python float and probs (N, n_classes).
    Stable for large logits (max-subtraction).
    """
    op = "softmax_nll_forward"
    logits = _float_array(op, "logits", logits, 2, "(N, n_classes)")
    labels = _labels(op, labels, *logits.shape)
    probs = _empty(logits)
    loss = _backend.active.softmax_nll_forward(probs, logits, labels)
    return float(loss), probs


def softmax_nll_backward(probs, labels):
    """Gradient of the mean loss with respect to the logits: (probs - onehot(labels)) / N."""
    op = "softmax_nll_backward"
    probs = _float_array(op, "probs", probs, 2, "(N, n_classes)")
    labels = _labels(op, labels, *probs.shape)
    dlogits = _empty(probs)
    _backend.active.softmax_nll_backward(dlogits, probs, labels)
    return dlogits


# ---- activations ---------------------------------------------------------------------------

def _activation(op, name, alpha):
    if name not in ACTIVATIONS:
        raise ValueError(f"{op}: unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name], _real(op, "alpha", alpha, 0.0)


def activation_forward(name, x, alpha=0.01):
    """Elementwise activation ``name`` (sigmoid, tanh, relu, leaky_relu, linear) of x.

    ``alpha`` is the negative slope of leaky_relu (ignored by the others).
    """
    op = "activation_forward"
    code, alpha = _activation(op, name, alpha)
    x = _float_array(op, "x", x)
    y = _empty(x)
    _backend.active.activation_forward(y, x, code, alpha)
    return y


def activation_backward(name, y, dy, alpha=0.01):
    """Gradient of ``activation_forward`` expressed through its output y: returns dx."""
    op = "activation_backward"
    code, alpha = _activation(op, name, alpha)
    y = _float_array(op, "y", y)
    dy = _float_array(op, "dy", dy)
    _same_dtype(op, "y dy", y, dy)
    _same_shape(op, "dy", dy, "y", y)
    dx = _empty(y)
    _backend.active.activation_backward(dx, y, dy, code, alpha)
    return dx


# ---- dropout -------------------------------------------------------------------------------

def dropout_forward(x, p, seed):
    """Inverted dropout: zero each element with probability p, scale the rest by 1/(1-p).

    ``seed`` (an int in [0, 2**64)) fixes the mask; every backend draws the same mask.
    Returns (y, mask) with mask holding 0 or 1/(1-p) in x's dtype.
    """
    op = "dropout_forward"
    x = _float_array(op, "x", x)
    p = _real(op, "p", p, 0.0, 1.0, hi_open=True)
    seed = _int(op, "seed", seed, 0)
    if seed >= 2**64:
        raise ValueError(f"{op}: seed must be < 2**64, got {seed}")
    y, mask = _empty(x), _empty(x)
    _backend.active.dropout_forward(y, mask, x, p, seed)
    return y, mask


def dropout_backward(dy, mask):
    """Gradient of ``dropout_forward``: dx = dy * mask."""
    op = "dropout_backward"
    dy = _float_array(op, "dy", dy)
    mask = _float_array(op, "mask", mask)
    _same_dtype(op, "dy mask", dy, mask)
    _same_shape(op, "dy", dy, "mask", mask)
    dx = _empty(dy)
    _backend.active.dropout_backward(dx, dy, mask)
    return dx


# ---- parameter updates (in place) ----------------------------------------------------------

def sgd_update(param, grad, lr, momentum=0.0, velocity=None, nesterov=False, weight_decay=0.0):
    """One fused SGD step, in place: ``param`` (and ``velocity``) are overwritten.

    g = grad + weight_decay·param; with a velocity buffer: v = momentum·v + g and the step
    uses v (or g + momentum·v with ``nesterov``); param -= lr·step. ``velocity`` is required
    when momentum > 0 (start it at zeros).
    """
    op = "sgd_update"
    param = _in_place(op, "param", param)
    grad = _float_array(op, "grad", grad)
    lr = _real(op, "lr", lr, 0.0)
    momentum = _real(op, "momentum", momentum, 0.0)
    weight_decay = _real(op, "weight_decay", weight_decay, 0.0)
    if velocity is None:
        if momentum > 0 or nesterov:
            raise ValueError(f"{op}: momentum={momentum}, nesterov={nesterov} need a velocity array")
        velocity = _empty(param, (0,))
    else:
        velocity = _in_place(op, "velocity", velocity)
        _same_shape(op, "velocity", velocity, "param", param)
    if nesterov and momentum == 0:
        raise ValueError(f"{op}: nesterov needs momentum > 0")
    _same_dtype(op, "param grad velocity", param, grad, velocity)
    _same_shape(op, "grad", grad, "param", param)
    _backend.active.sgd_update(param, velocity, grad, lr, momentum, bool(nesterov), weight_decay)


def adam_update(param, grad, m, v, step, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
    """One fused Adam step, in place on ``param``, ``m`` and ``v`` (start m, v at zeros).

    ``step`` counts from 1 and sets the bias corrections 1 - beta**step.
    """
    op = "adam_update"
    param = _in_place(op, "param", param)
    m = _in_place(op, "m", m)
    v = _in_place(op, "v", v)
    grad = _float_array(op, "grad", grad)
    step = _int(op, "step", step, 1)
    lr = _real(op, "lr", lr, 0.0)
    beta1 = _real(op, "beta1", beta1, 0.0, 1.0, hi_open=True)
    beta2 = _real(op, "beta2", beta2, 0.0, 1.0, hi_open=True)
    eps = _real(op, "eps", eps, 0.0)
    if eps == 0:
        raise ValueError(f"{op}: eps must be > 0")
    weight_decay = _real(op, "weight_decay", weight_decay, 0.0)
    _same_dtype(op, "param grad m v", param, grad, m, v)
    for name, a in (("grad", grad), ("m", m), ("v", v)):
        _same_shape(op, name, a, "param", param)
    _backend.active.adam_update(param, m, v, grad, lr, beta1, beta2, eps, weight_decay, step)


# ---- fused MLP training step ---------------------------------------------------------------

def mlp_train_step(x, labels, ws, bs, activations, lr, weight_decay=0.0, alpha=0.01):
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
    op = "mlp_train_step"
    x = _float_array(op, "x", x, 2, "(N, n_in)")
    ws, bs, activations = list(ws), list(bs), list(activations)
    if not ws or len(bs) != len(ws) or len(activations) != len(ws):
        raise ValueError(f"{op}: ws, bs and activations need one entry per layer (at least one), got "
                         f"{len(ws)}, {len(bs)} and {len(activations)}")
    codes, n = [], x.shape[1]
    for i, (w, b, name) in enumerate(zip(ws, bs, activations)):
        w, b = _in_place(op, f"ws[{i}]", w), _in_place(op, f"bs[{i}]", b)
        if w.ndim != 2 or w.shape[0] != n:
            raise ValueError(f"{op}: ws[{i}] must be ({n}, n_out) to follow the previous layer, got {_shape(w)}")
        if b.shape != (w.shape[1],):
            raise ValueError(f"{op}: bs[{i}] must have shape ({w.shape[1]},), got {_shape(b)}")
        if w.dtype != x.dtype or b.dtype != x.dtype:
            raise TypeError(f"{op}: all arrays must share one dtype, got x {x.dtype}, ws[{i}] {w.dtype}, "
                            f"bs[{i}] {b.dtype}")
        if name not in ACTIVATIONS:
            raise ValueError(f"{op}: unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
        codes.append(ACTIVATIONS[name])
        n = w.shape[1]
    labels = _labels(op, labels, x.shape[0], n)
    lr = _real(op, "lr", lr, 0.0)
    weight_decay = _real(op, "weight_decay", weight_decay, 0.0)
    alpha = _real(op, "alpha", alpha, 0.0)
    return float(_backend.active.mlp_train_step(ws, bs, codes, x, labels, lr, weight_decay, alpha))


# ---- recurrent (Elman) network -------------------------------------------------------------

RNN_ACTIVATIONS = ("linear", "sigmoid", "tanh", "relu")


def _rnn_args(op, x, h0, w_xh, w_hh, activation):
    if activation not in RNN_ACTIVATIONS:
        raise ValueError(f"{op}: activation must be one of {list(RNN_ACTIVATIONS)}, got {activation!r}")
    x = _float_array(op, "x", x, 3, "(T, N, D)")
    h0 = _float_array(op, "h0", h0, 2, "(N, H)")
    w_xh = _float_array(op, "w_xh", w_xh, 2, "(D, H)")
    w_hh = _float_array(op, "w_hh", w_hh, 2, "(H, H)")
    _, n, d = x.shape
    h = w_xh.shape[1]
    if w_xh.shape[0] != d:
        raise ValueError(f"{op}: x {_shape(x)} has {d} features but w_xh {_shape(w_xh)} expects {w_xh.shape[0]}")
    if w_hh.shape != (h, h):
        raise ValueError(f"{op}: w_hh must have shape {(h, h)} for w_xh {_shape(w_xh)}, got {_shape(w_hh)}")
    if h0.shape != (n, h):
        raise ValueError(f"{op}: h0 must have shape {(n, h)} for x {_shape(x)} and w_xh {_shape(w_xh)}, "
                         f"got {_shape(h0)}")
    return x, h0, w_xh, w_hh, ACTIVATIONS[activation]


def rnn_forward(x, h0, w_xh, w_hh, b_h, activation="tanh"):
    """Elman RNN over a whole sequence: h_t = act(x_t·w_xh + h_{t-1}·w_hh + b_h), h_{-1} = h0.

    Time-major: x (T, N, D), h0 (N, H), w_xh (D, H), w_hh (H, H), b_h (H,); activation is
    tanh, sigmoid, relu or linear. Returns every hidden state, h_all (T, N, H); the time loop
    runs inside the kernel.
    """
    op = "rnn_forward"
    x, h0, w_xh, w_hh, code = _rnn_args(op, x, h0, w_xh, w_hh, activation)
    b_h = _float_array(op, "b_h", b_h, 1)
    _same_dtype(op, "x h0 w_xh w_hh b_h", x, h0, w_xh, w_hh, b_h)
    if b_h.shape != (w_xh.shape[1],):
        raise ValueError(f"{op}: b_h must have shape ({w_xh.shape[1]},), got {_shape(b_h)}")
    h_all = _empty(x, (x.shape[0], x.shape[1], w_xh.shape[1]))
    _backend.active.rnn_forward(h_all, x, h0, w_xh, w_hh, b_h, code)
    return h_all


def rnn_backward(dh_all, x, h_all, h0, w_xh, w_hh, activation="tanh", bptt_steps=None, clip=None):
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
    op = "rnn_backward"
    x, h0, w_xh, w_hh, code = _rnn_args(op, x, h0, w_xh, w_hh, activation)
    h_all = _float_array(op, "h_all", h_all, 3, "(T, N, H)")
    dh_all = _float_array(op, "dh_all", dh_all, 3, "(T, N, H)")
    _same_dtype(op, "dh_all x h_all h0 w_xh w_hh", dh_all, x, h_all, h0, w_xh, w_hh)
    shape = (x.shape[0], x.shape[1], w_xh.shape[1])
    for name, a in (("h_all", h_all), ("dh_all", dh_all)):
        if a.shape != shape:
            raise ValueError(f"{op}: {name} must have shape {shape} for x {_shape(x)} and w_xh {_shape(w_xh)}, "
                             f"got {_shape(a)}")
    bptt_steps = 0 if bptt_steps is None else _int(op, "bptt_steps", bptt_steps, 0)
    bptt_steps = 0 if bptt_steps >= x.shape[0] else bptt_steps  # k >= T is full BPTT
    if clip is None:
        clip = 0.0
    else:
        clip = _real(op, "clip", clip, 0.0)
        if clip == 0:
            raise ValueError(f"{op}: clip must be > 0 (or None for no clipping), got {clip}")
    dx, dh0, dw_xh, dw_hh = _empty(x), _empty(h0), _empty(w_xh), _empty(w_hh)
    db_h = _empty(x, (w_xh.shape[1],))
    _backend.active.rnn_backward(dx, dh0, dw_xh, dw_hh, db_h, h_all, dh_all, x, h0, w_xh, w_hh, code, bptt_steps,
                                 clip)
    return dx, dh0, dw_xh, dw_hh, db_h
