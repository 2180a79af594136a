"""Layers: ``forward(x, train)`` and ``backward(dy)`` on top of :mod:`deepnum.ops`.

A layer keeps what its backward needs from the last forward, returns ``dx`` from
``backward(dy, need_dx=True)`` and fills ``grads`` (same keys as ``params``; written with ``=``,
never accumulated). With ``need_dx=False`` (the first layer of a model: nothing needs the
gradient of the data) a layer may skip dx and return None. A model is a list of layers (:class:`deepnum.models.Sequential`).

Randomness (initialisation, dropout masks) comes from the model's random generator
(:func:`deepnum.init.generator`) handed to the layer, never from global state. Arrays are created,
moved and reshaped only through the array namespace ``xp`` the model hands to ``build``
(``deepnum.ops.array_namespace``; host arrays until then) and computed on only through
:mod:`deepnum.ops`: no NumPy here, so one layer class runs on any backend. Initial values are drawn
on the host by :mod:`deepnum.init` and moved once with ``xp.from_host``.
"""
from __future__ import annotations

import numbers
from typing import TYPE_CHECKING

from . import ops
from .init import INITS, init_array

if TYPE_CHECKING:
    from ._typing import Integer, Size


def _check_activation(layer, activation):
    if activation not in ops.ACTIVATIONS:
        raise ValueError(f"{layer}: unknown activation {activation!r}; choose one of {sorted(ops.ACTIVATIONS)}")


def _is_integer(v):
    """A Python or NumPy integer, not a bool."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _check_count(op, name, v, minimum):
    """A call's count argument (batch_size, epochs): an integer >= minimum, else a ValueError naming
    the call and the argument: "predict: batch_size must be an integer >= 1, got 0"."""
    if not _is_integer(v) or v < minimum:
        raise ValueError(f"{op}: {name} must be an integer >= {minimum}, got {v!r}")


def _check_sizes(layer, minimum=1, **sizes):
    """Each size a Python or NumPy integer >= minimum (a tuple or list: each entry), else TypeError/ValueError."""
    for name, v in sizes.items():
        for item in (v if isinstance(v, (tuple, list)) else (v,)):
            if not _is_integer(item):
                raise TypeError(f"{layer}: {name} must be an integer, got {v!r}")
            if item < minimum:
                raise ValueError(f"{layer}: {name} must be >= {minimum}, got {v!r}")


def _check_probability(layer, name, p):
    if not 0 <= p < 1:
        raise ValueError(f"{layer}: {name} must be in [0, 1), got {p}")


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


class Layer:
    """Base class: no parameters, identity config."""

    params: dict
    grads: dict
    xp = ops.array_namespace()  # host arrays, until the model's build() gives its namespace

    def __init__(self) -> None:
        self.params, self.grads = {}, {}

    def build(self, rng, dtype, xp=None):
        """Create the parameters (called once by the model with its generator, its dtype and its
        array namespace; without ``xp``, on the host)."""
        if xp is not None:
            self.xp = xp

    def _parameter(self, initial):
        """A parameter on this layer's side from its initial host values (see :mod:`deepnum.init`)."""
        return self.xp.from_host(initial)

    def config(self):
        """Constructor arguments, JSON-serialisable: ``type(self)(**config())`` rebuilds the layer."""
        return {}


class Dense(Layer):
    """Fully connected layer y = act(dropout(x)·w + b), w shaped (n_in, n_out).

    x is (N, n_in), or (N, ..., n_in): leading axes are flattened into rows, so after an
    ``RNN(return_sequences=True)`` the same w and b act on every time step.

    ``p_dropout`` drops inputs during training (inverted dropout, as network3 does on its
    fully connected and softmax layers).
    """

    def __init__(self, n_in: Integer, n_out: Integer, activation: str = "linear", p_dropout: float = 0.0,
                 init: str = "glorot") -> None:
        super().__init__()
        _check_activation("Dense", activation)
        _check_sizes("Dense", n_in=n_in, n_out=n_out)
        _check_probability("Dense", "p_dropout", p_dropout)
        if init not in INITS:
            raise ValueError(f"Dense: unknown initialiser {init!r}; choose one of {INITS}")
        self.n_in, self.n_out, self.activation, self.p_dropout, self.init = n_in, n_out, activation, p_dropout, init

    def config(self):
        return dict(n_in=self.n_in, n_out=self.n_out, activation=self.activation, p_dropout=self.p_dropout,
                    init=self.init)

    def build(self, rng, dtype, xp=None):
        super().build(rng, dtype, xp)
        self.rng = rng
        self.params = {"w": self._parameter(init_array(self.init, (self.n_in, self.n_out), self.n_in, self.n_out,
                                                       rng, dtype, self.activation)),
                       "b": self.xp.zeros(self.n_out, dtype)}

    def forward(self, x, train):
        """y = act(dropout(x)·w + b) for x (N, ..., n_in); with ``train``, inputs are dropped with
        probability ``p_dropout`` (a fresh mask per call, from the model's generator)."""
        self.lead = x.shape[:-1]  # (N,) or, after RNN(return_sequences=True), (N, T): one row per time step
        x = self.xp.reshape(x, (-1, x.shape[-1]))
        self.mask = None
        if train and self.p_dropout > 0:
            x, self.mask = ops.dropout_forward(x, self.p_dropout, int(self.rng.integers(2**63)))
        self.x = x
        self.y = ops.activation_forward(self.activation, ops.linear_forward(x, self.params["w"], self.params["b"]))
        return self.xp.reshape(self.y, self.lead + (self.n_out,))

    def backward(self, dy, need_dx=True):
        """Fills ``grads`` (w, b) from dy, the gradient of the output; returns dx, shaped as x (None with
        ``need_dx=False``)."""
        dz = ops.activation_backward(self.activation, self.y, self.xp.reshape(dy, self.y.shape))
        dx, self.grads["w"], self.grads["b"] = ops.linear_backward(dz, self.x, self.params["w"], need_dx)
        if not need_dx:
            return None
        dx = dx if self.mask is None else ops.dropout_backward(dx, self.mask)
        return self.xp.reshape(dx, self.lead + (self.n_in,))


class Conv2D(Layer):
    """Convolution y = act(conv2d(x, w) + b), w shaped (c_out, c_in, kh, kw)."""

    def __init__(self, c_in: Integer, c_out: Integer, kernel: Size, stride: Size = 1, padding: Size = 0,
                 activation: str = "linear", init: str = "normal") -> None:
        super().__init__()
        _check_activation("Conv2D", activation)
        if init not in INITS:
            raise ValueError(f"Conv2D: unknown initialiser {init!r}; choose one of {INITS}")
        _check_sizes("Conv2D", c_in=c_in, c_out=c_out, kernel=_pair(kernel), stride=stride)
        _check_sizes("Conv2D", minimum=0, padding=padding)
        self.c_in, self.c_out, self.kernel = c_in, c_out, _pair(kernel)
        self.stride, self.padding, self.activation, self.init = stride, padding, activation, init

    def config(self):
        return dict(c_in=self.c_in, c_out=self.c_out, kernel=list(self.kernel), stride=self.stride,
                    padding=self.padding, activation=self.activation, init=self.init)

    def build(self, rng, dtype, xp=None):
        super().build(rng, dtype, xp)
        kh, kw = self.kernel
        fan_in, fan_out = self.c_in * kh * kw, self.c_out * kh * kw
        self.params = {"w": self._parameter(init_array(self.init, (self.c_out, self.c_in, kh, kw), fan_in, fan_out,
                                                       rng, dtype, self.activation)),
                       "b": self.xp.zeros(self.c_out, dtype)}

    def forward(self, x, train):
        """y = act(conv2d(x, w) + b) for x (N, c_in, H, W): (N, c_out, H', W')."""
        self.x = x
        z = ops.conv2d_forward(x, self.params["w"], self.params["b"], self.stride, self.padding)
        self.y = ops.activation_forward(self.activation, z)
        return self.y

    def backward(self, dy, need_dx=True):
        """Fills ``grads`` (w, b) from dy; returns dx (None with ``need_dx=False``)."""
        dz = ops.activation_backward(self.activation, self.y, dy)
        dx, self.grads["w"], self.grads["b"] = ops.conv2d_backward(dz, self.x, self.params["w"], self.stride,
                                                                   self.padding, need_dx)
        return dx


class MaxPool2D(Layer):
    """Max-pooling over size×size windows, ignoring partial windows at the border."""

    def __init__(self, size: Size = 2, stride: Size | None = None) -> None:
        super().__init__()
        _check_sizes("MaxPool2D", size=size, **({} if stride is None else {"stride": stride}))
        self.size, self.stride = size, stride

    def config(self):
        return dict(size=self.size, stride=self.stride)

    def forward(self, x, train):
        """The maximum of each window, (N, C, H', W'); the argmax is kept for backward."""
        self.x_shape = x.shape
        y, self.argmax = ops.max_pool2d_forward(x, self.size, self.stride)
        return y

    def backward(self, dy, need_dx=True):
        """dx: each window's gradient routed to its maximum, zeros elsewhere."""
        return ops.max_pool2d_backward(dy, self.argmax, self.x_shape)


class Flatten(Layer):
    """(N, ...) -> (N, prod(...)); a view, no copy."""

    def forward(self, x, train):
        """x (N, ...) as (N, prod(...)), a view."""
        self.x_shape = x.shape
        return self.xp.reshape(x, (x.shape[0], -1))

    def backward(self, dy, need_dx=True):
        """dy reshaped to the input's shape."""
        return self.xp.reshape(dy, self.x_shape)


class Dropout(Layer):
    """Inverted dropout with probability p during training; identity otherwise."""

    def __init__(self, p: float) -> None:
        super().__init__()
        _check_probability("Dropout", "p", p)
        self.p = p

    def config(self):
        return dict(p=self.p)

    def build(self, rng, dtype, xp=None):
        super().build(rng, dtype, xp)
        self.rng = rng

    def forward(self, x, train):
        """With ``train`` and p > 0: x with each element zeroed with probability p and the rest scaled
        by 1/(1 - p) (a fresh mask per call, from the model's generator); otherwise x itself."""
        self.mask = None
        if not train or self.p == 0:
            return x
        y, self.mask = ops.dropout_forward(x, self.p, int(self.rng.integers(2**63)))
        return y

    def backward(self, dy, need_dx=True):
        """dy through the last forward's mask (dy itself when nothing was dropped)."""
        return dy if self.mask is None else ops.dropout_backward(dy, self.mask)


class RNN(Layer):
    """Elman recurrent layer over whole sequences: h_t = act(x_t·w_xh + h_{t-1}·w_hh + b), h_{-1} = 0.

    Batch-first at the layer boundary, like every layer (``Sequential`` takes batches on axis 0):
    the input is (N, T, n_in); the output is the last state (N, n_hidden) (many-to-one) or, with
    ``return_sequences``, every state (N, T, n_hidden) (many-to-many), on which a following
    ``Dense`` and head act time step by time step. The kernels are time-major (T, N, ·), each
    step reading one contiguous block, so the layer transposes on the way in and out.

    w_xh (n_in, n_hidden) is ``init`` (glorot; ×4 for sigmoid, like Dense); w_hh (n_hidden,
    n_hidden) is ``init_hh``: "orthogonal" (default), "identity" (IRNN) or "glorot", times
    ``gain`` for the first two; b starts at 0. ``bptt_steps`` (truncated BPTT(k)) and ``clip``
    (global norm of this layer's parameter gradients) are those of :func:`deepnum.ops.rnn_backward`.
    """

    def __init__(self, n_in: Integer, n_hidden: Integer, activation: str = "tanh", return_sequences: bool = False,
                 init_hh: str = "orthogonal", gain: float = 1.0, bptt_steps: int | None = None,
                 clip: float | None = None, init: str = "glorot") -> None:
        super().__init__()
        if activation not in ops.RNN_ACTIVATIONS:
            raise ValueError(f"RNN: activation must be one of {list(ops.RNN_ACTIVATIONS)}, got {activation!r}")
        if init_hh not in ("orthogonal", "identity", "glorot"):
            raise ValueError(f"RNN: init_hh must be 'orthogonal', 'identity' or 'glorot', got {init_hh!r}")
        if init not in INITS:
            raise ValueError(f"RNN: unknown initialiser {init!r}; choose one of {INITS}")
        _check_sizes("RNN", n_in=n_in, n_hidden=n_hidden)
        self.n_in, self.n_hidden, self.activation = n_in, n_hidden, activation
        self.return_sequences, self.init_hh, self.gain, self.init = bool(return_sequences), init_hh, gain, init
        self.bptt_steps, self.clip = bptt_steps, clip

    def config(self):
        return dict(n_in=self.n_in, n_hidden=self.n_hidden, activation=self.activation,
                    return_sequences=self.return_sequences, init_hh=self.init_hh, gain=self.gain,
                    bptt_steps=self.bptt_steps, clip=self.clip, init=self.init)

    def build(self, rng, dtype, xp=None):
        super().build(rng, dtype, xp)
        h = self.n_hidden
        w_hh = init_array(self.init_hh, (h, h), h, h, rng, dtype, self.activation,
                          gain=1.0 if self.init_hh == "glorot" else self.gain)
        w_xh = init_array(self.init, (self.n_in, h), self.n_in, h, rng, dtype, self.activation)
        self.params = {"w_xh": self._parameter(w_xh), "w_hh": self._parameter(w_hh), "b": self.xp.zeros(h, dtype)}

    def forward(self, x, train):
        """The last hidden state (N, n_hidden), or with ``return_sequences`` every state (N, T, n_hidden),
        for x (N, T, n_in), from h_{-1} = 0; a ValueError for an input of another shape."""
        if x.ndim != 3 or x.shape[2] != self.n_in:
            raise ValueError(f"RNN: input must be (N, T, {self.n_in}), got shape {x.shape}")
        p, xp, steps = self.params, self.xp, x.shape[1]
        self.x = xp.swap01(x)
        self.h0 = xp.zeros((x.shape[0], self.n_hidden), x.dtype)
        self.h_all = ops.rnn_forward(self.x, self.h0, p["w_xh"], p["w_hh"], p["b"], self.activation)
        if self.return_sequences:
            return xp.swap01(self.h_all)
        return xp.reshape(xp.rows(self.h_all, steps - 1, steps), self.h0.shape)  # the last state, a view

    def backward(self, dy, need_dx=True):
        """Backpropagation through time (truncated to ``bptt_steps``, gradients clipped to ``clip``):
        fills ``grads`` (w_xh, w_hh, b) from dy, the gradient of the output, and returns dx (N, T, n_in)."""
        xp = self.xp
        dh_all = xp.swap01(dy) if self.return_sequences else xp.last_step(dy, self.h_all.shape[0])
        p = self.params
        dx, _, self.grads["w_xh"], self.grads["w_hh"], self.grads["b"] = ops.rnn_backward(
            dh_all, self.x, self.h_all, self.h0, p["w_xh"], p["w_hh"], self.activation, self.bptt_steps, self.clip)
        return xp.swap01(dx)


class OutputHead(Layer):
    """Base of the output heads, the last layer of a :class:`deepnum.models.Sequential`.

    ``forward`` passes its input (the logits) through; ``loss(targets)`` is the mean loss of
    the last forward and ``backward()`` its gradient with respect to the logits;
    ``probabilities(z)`` and ``predictions(z)`` map logits to probabilities and to predicted
    targets (compared with the targets for accuracy); ``place_targets(y, dtype)`` puts targets on
    the head's side as its loss takes them from logits of ``dtype``.
    """

    def forward(self, x, train):
        """The logits x themselves (kept for ``loss``)."""
        self.logits = x
        self.probs = None
        return x


class SoftmaxNLL(OutputHead):
    """Output head: softmax of its input (logits) and the mean negative log-likelihood.

    ``forward`` returns the logits; ``loss(labels)`` the loss of the last forward, and
    ``backward()`` the gradient of that loss with respect to the logits. Logits (N, ...,
    n_classes) with labels (N, ...) are one classification per leading index (e.g. per time
    step), the loss their mean.
    """

    def place_targets(self, labels, dtype):
        """Labels on this head's side: integer labels as int64, whatever ``dtype`` (see
        :func:`deepnum.ops.placed_labels`)."""
        return ops.placed_labels(labels, self.xp)

    def loss(self, labels):
        """The mean negative log-likelihood of ``labels`` (integer classes, the logits' shape without
        the last axis) under the softmax of the last forward's logits."""
        xp = self.xp
        self.labels = xp.reshape(self.place_targets(labels, self.logits.dtype), (-1,))
        value, self.probs = ops.softmax_nll_forward(xp.reshape(self.logits, (-1, self.logits.shape[-1])), self.labels)
        return value

    def backward(self, dy=None):
        """The gradient of the last ``loss`` with respect to the logits (``dy`` is not used: the head's
        loss is the end of the chain)."""
        return self.xp.reshape(ops.softmax_nll_backward(self.probs, self.labels), self.logits.shape)

    def probabilities(self, z):
        """Softmax of the logits z along the last axis."""
        return self.xp.softmax(z)

    def predictions(self, z):
        """The predicted class of each row of logits z: the argmax along the last axis, int64."""
        return self.xp.argmax(z)


class SigmoidBCE(OutputHead):
    """Output head for binary targets (e.g. the bits of a sum): a sigmoid per element and the
    binary cross-entropy, averaged over all elements.

    Targets have the logits' shape and hold 0 or 1 (any values in [0, 1] work). The loss is
    computed stably from the logits z, ``mean(max(z, 0) - z·y + log(1 + exp(-|z|)))``, and its
    gradient is (sigmoid(z) - y) / (number of elements). Predictions are z > 0.
    """

    def place_targets(self, targets, dtype):
        """Targets on this head's side, in the logits' ``dtype``."""
        return ops.placed(targets, self.xp, dtype, who="SigmoidBCE")

    def loss(self, targets):
        """The mean binary cross-entropy of ``targets`` (the logits' shape, values in [0, 1]) under the
        sigmoid of the last forward's logits; a ValueError for targets of another shape."""
        z, xp = self.logits, self.xp
        y = self.place_targets(targets, z.dtype)
        if y.shape != z.shape:
            raise ValueError(f"SigmoidBCE: targets have shape {y.shape}, the logits {z.shape}")
        self.targets = y
        self.probs = ops.activation_forward("sigmoid", z)
        return xp.sigmoid_bce(z, y)

    def backward(self, dy=None):
        """The gradient of the last ``loss`` with respect to the logits, (sigmoid(z) - y) / size (``dy``
        is not used)."""
        return self.xp.sigmoid_bce_grad(self.probs, self.targets)

    def probabilities(self, z):
        """The sigmoid of each logit in z."""
        return ops.activation_forward("sigmoid", z)  # which copies a non-contiguous z to C order

    def predictions(self, z):
        """1 where the logit is positive (probability above 0.5), else 0, int64."""
        return ops.array_namespace(z).positive(z)


LAYERS = {cls.__name__: cls for cls in (Dense, Conv2D, MaxPool2D, Flatten, Dropout, RNN, SoftmaxNLL, SigmoidBCE)}
