"""Initial values of parameters, drawn on the host.

The model layer (nn, optim, models, training) imports no NumPy: its arrays live wherever its
array namespace puts them. Initial values are the exception: they are drawn here, on the host,
with the model's ``numpy.random.Generator`` (so the draws and their order are the same on every
backend), and a layer moves them to its side once with ``xp.from_host``.
"""
import numpy as np

INITS = ("zeros", "glorot", "normal", "he", "orthogonal", "identity")
FLOAT_DTYPES = ("float32", "float64")


def generator(seed):
    """The random generator a model draws everything from (initialisation, shuffling, dropout seeds)."""
    return np.random.default_rng(seed)


def float_dtype(dtype, who="float_dtype"):
    """``dtype`` (a name such as "float32", or a NumPy dtype or type) as a numpy.dtype; float32 and
    float64 only, else a TypeError naming ``who``."""
    d = np.dtype(dtype)
    if d.name not in FLOAT_DTYPES:
        raise TypeError(f"{who}: dtype must be float32 or float64, got {d.name}")
    return d


def init_array(kind, shape, fan_in, fan_out, rng, dtype, activation="linear", gain=1.0):
    """Initial weights, a host array of ``dtype``, times ``gain``.

    zeros; glorot: U(±sqrt(6/(fan_in+fan_out))), ×4 for sigmoid (the Theano MLP tutorial);
    normal: N(0, 1/fan_in); he: N(0, 2/fan_in); orthogonal: a random matrix with orthonormal
    rows or columns (Saxe et al. 2014: Q of the QR of a Gaussian matrix, signs fixed by R's
    diagonal); identity: ones on the diagonal (Le et al. 2015's IRNN).
    """
    a = _draw(kind, shape, fan_in, fan_out, rng, dtype, activation)
    if gain != 1:  # a factor of 1 changes no value
        a *= dtype.type(gain)
    return a


def _draw(kind, shape, fan_in, fan_out, rng, dtype, activation):
    if kind == "zeros":
        return np.zeros(shape, dtype=dtype)
    if kind == "identity":
        return np.eye(*shape, dtype=dtype)
    if kind == "orthogonal":
        a = rng.standard_normal((max(shape), min(shape)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))
        return (q if shape[0] >= shape[1] else q.T).astype(dtype)
    if kind == "glorot":
        bound = np.sqrt(6.0 / (fan_in + fan_out)) * (4.0 if activation == "sigmoid" else 1.0)
        return rng.uniform(-bound, bound, shape).astype(dtype)
    if kind == "normal":
        return (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(dtype)
    if kind == "he":
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)
    raise ValueError(f"unknown initialiser {kind!r}; choose one of {INITS}")
