"""Layers: ``forward(x, train)`` and ``backward(dy)`` on top of :mod:`deepnum.ops`.

A layer keeps what its backward needs from the last forward, returns ``dx`` from
``backward`` and fills ``grads`` (same keys as ``params``; written with ``=``, never
accumulated). A model is a list of layers (:class:`deepnum.models.Sequential`).

Randomness (initialisation, dropout masks) comes from a ``numpy.random.Generator`` handed
to the layer by the model, never from global state.
"""
import numpy as np

from . import ops
from ._reference import ACTIVATIONS

INITS = ("zeros", "glorot", "normal", "he")


def init_array(kind, shape, fan_in, fan_out, rng, dtype, activation="linear"):
    """Initial weights.

    zeros; glorot: U(±sqrt(6/(fan_in+fan_out))), ×4 for sigmoid (the Theano MLP tutorial);
    normal: N(0, 1/fan_in); he: N(0, 2/fan_in).
    """
    if kind == "zeros":
        return np.zeros(shape, dtype=dtype)
    if kind == "glorot":
        bound = np.sqrt(6.0 / (fan_in + fan_out)) * (4.0 if activation == "sigmoid" else 1.0)
        return rng.uniform(-bound, bound, shape).astype(dtype)
    if kind == "normal":
        return (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(dtype)
    if kind == "he":
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)
    raise ValueError(f"unknown initialiser {kind!r}; choose one of {INITS}")


def _check_activation(layer, activation):
    if activation not in ACTIVATIONS:
        raise ValueError(f"{layer}: unknown activation {activation!r}; choose one of {sorted(ACTIVATIONS)}")


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


class Layer:
    """Base class: no parameters, identity config."""

    params: dict
    grads: dict

    def __init__(self):
        self.params, self.grads = {}, {}

    def build(self, rng, dtype):
        """Create the parameters (called once by the model with its generator and dtype)."""

    def config(self):
        """Constructor arguments, JSON-serialisable: ``type(self)(**config())`` rebuilds the layer."""
        return {}


class Dense(Layer):
    """Fully connected layer y = act(dropout(x)·w + b), w shaped (n_in, n_out).

    ``p_dropout`` drops inputs during training (inverted dropout, as network3 does on its
    fully connected and softmax layers).
    """

    def __init__(self, n_in, n_out, activation="linear", p_dropout=0.0, init="glorot"):
        super().__init__()
        _check_activation("Dense", activation)
        if init not in INITS:
            raise ValueError(f"Dense: unknown initialiser {init!r}; choose one of {INITS}")
        self.n_in, self.n_out, self.activation, self.p_dropout, self.init = n_in, n_out, activation, p_dropout, init

    def config(self):
        return dict(n_in=self.n_in, n_out=self.n_out, activation=self.activation, p_dropout=self.p_dropout,
                    init=self.init)

    def build(self, rng, dtype):
        self.rng = rng
        self.params = {"w": init_array(self.init, (self.n_in, self.n_out), self.n_in, self.n_out, rng, dtype,
                                       self.activation),
                       "b": np.zeros(self.n_out, dtype=dtype)}

    def forward(self, x, train):
        self.mask = None
        if train and self.p_dropout > 0:
            x, self.mask = ops.dropout_forward(x, self.p_dropout, int(self.rng.integers(2**63)))
        self.x = x
        self.y = ops.activation_forward(self.activation, ops.linear_forward(x, self.params["w"], self.params["b"]))
        return self.y

    def backward(self, dy):
        dz = ops.activation_backward(self.activation, self.y, dy)
        dx, self.grads["w"], self.grads["b"] = ops.linear_backward(dz, self.x, self.params["w"])
        return dx if self.mask is None else ops.dropout_backward(dx, self.mask)


class Conv2D(Layer):
    """Convolution y = act(conv2d(x, w) + b), w shaped (c_out, c_in, kh, kw)."""

    def __init__(self, c_in, c_out, kernel, stride=1, padding=0, activation="linear", init="normal"):
        super().__init__()
        _check_activation("Conv2D", activation)
        if init not in INITS:
            raise ValueError(f"Conv2D: unknown initialiser {init!r}; choose one of {INITS}")
        self.c_in, self.c_out, self.kernel = c_in, c_out, _pair(kernel)
        self.stride, self.padding, self.activation, self.init = stride, padding, activation, init

    def config(self):
        return dict(c_in=self.c_in, c_out=self.c_out, kernel=list(self.kernel), stride=self.stride,
                    padding=self.padding, activation=self.activation, init=self.init)

    def build(self, rng, dtype):
        kh, kw = self.kernel
        fan_in, fan_out = self.c_in * kh * kw, self.c_out * kh * kw
        self.params = {"w": init_array(self.init, (self.c_out, self.c_in, kh, kw), fan_in, fan_out, rng, dtype,
                                       self.activation),
                       "b": np.zeros(self.c_out, dtype=dtype)}

    def forward(self, x, train):
        self.x = x
        z = ops.conv2d_forward(x, self.params["w"], self.params["b"], self.stride, self.padding)
        self.y = ops.activation_forward(self.activation, z)
        return self.y

    def backward(self, dy):
        dz = ops.activation_backward(self.activation, self.y, dy)
        dx, self.grads["w"], self.grads["b"] = ops.conv2d_backward(dz, self.x, self.params["w"], self.stride,
                                                                   self.padding)
        return dx


class MaxPool2D(Layer):
    """Max-pooling over size×size windows, ignoring partial windows at the border."""

    def __init__(self, size=2, stride=None):
        super().__init__()
        self.size, self.stride = size, stride

    def config(self):
        return dict(size=self.size, stride=self.stride)

    def forward(self, x, train):
        self.x_shape = x.shape
        y, self.argmax = ops.max_pool2d_forward(x, self.size, self.stride)
        return y

    def backward(self, dy):
        return ops.max_pool2d_backward(dy, self.argmax, self.x_shape)


class Flatten(Layer):
    """(N, ...) -> (N, prod(...)); a view, no copy."""

    def forward(self, x, train):
        self.x_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return dy.reshape(self.x_shape)


class Dropout(Layer):
    """Inverted dropout with probability p during training; identity otherwise."""

    def __init__(self, p):
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = p

    def config(self):
        return dict(p=self.p)

    def build(self, rng, dtype):
        self.rng = rng

    def forward(self, x, train):
        self.mask = None
        if not train or self.p == 0:
            return x
        y, self.mask = ops.dropout_forward(x, self.p, int(self.rng.integers(2**63)))
        return y

    def backward(self, dy):
        return dy if self.mask is None else ops.dropout_backward(dy, self.mask)


class SoftmaxNLL(Layer):
    """Output head: softmax of its input (logits) and the mean negative log-likelihood.

    ``forward`` returns probabilities; ``loss(labels)`` the loss of the last forward, and
    ``backward()`` the gradient of that loss with respect to the logits.
    """

    def forward(self, x, train):
        self.logits = x
        self.probs = None
        return x

    def loss(self, labels):
        self.labels = labels
        value, self.probs = ops.softmax_nll_forward(self.logits, labels)
        return value

    def backward(self, dy=None):
        return ops.softmax_nll_backward(self.probs, self.labels)


LAYERS = {cls.__name__: cls for cls in (Dense, Conv2D, MaxPool2D, Flatten, Dropout, SoftmaxNLL)}
