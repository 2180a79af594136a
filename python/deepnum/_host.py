"""The array namespace of the CPU backends: NumPy arrays in host memory (backend layer)."""
import numpy as np


class HostArrays:
    """The array namespace of the CPU backends (cpp, numba, numpy): NumPy arrays in host memory.

    Layers, optimisers and the training loop create, move and reduce their arrays only through a
    namespace like this one (``deepnum.ops.array_namespace(a)`` gives the one of ``a``), so the same
    model code runs on any backend; ``deepnum._cudabackend.DeviceArrays`` is the device twin.
    """

    name = "cpu"
    array_type = np.ndarray

    @staticmethod
    def empty(shape, dtype):
        return np.empty(shape, dtype)

    @staticmethod
    def zeros(shape, dtype):
        return np.zeros(shape, dtype)

    @staticmethod
    def from_host(a, dtype=None):
        """``a`` (a NumPy array or anything np.asarray takes) as a C-contiguous array of this side;
        no copy when it already is one of ``dtype``."""
        return np.ascontiguousarray(a, dtype)

    @staticmethod
    def to_host(a):
        """``a`` as a NumPy array (here: ``a`` itself)."""
        return a

    @staticmethod
    def copy(a):
        return a.copy()

    @staticmethod
    def rows(a, start, stop):
        """Rows [start, stop) of ``a``: a view, no copy."""
        return a[start:stop]

    @staticmethod
    def take_rows(a, index):
        """The rows ``index`` (a host integer array) of ``a``, gathered into a new array."""
        return a[index]

    @staticmethod
    def reshape(a, shape):
        """``a`` with a new shape (one entry may be -1): a view of the same data."""
        return a.reshape(shape)

    @staticmethod
    def swap01(a):
        """A C-contiguous copy of ``a`` with its first two axes swapped (batch-first <-> time-major)."""
        return np.ascontiguousarray(a.swapaxes(0, 1))

    @staticmethod
    def last_step(dy, steps):
        """(steps, *dy.shape) zeros but for the last step, which is ``dy`` (a many-to-one RNN's dh_all)."""
        out = np.zeros((steps,) + dy.shape, dy.dtype)
        out[-1] = dy
        return out

    @staticmethod
    def argmax(a):
        """Index of the largest entry along the last axis, int64."""
        return a.argmax(axis=-1)

    @staticmethod
    def positive(z):
        """1 where z > 0, else 0, int64 (binary predictions from logits)."""
        return (z > 0).astype(np.int64)

    @staticmethod
    def count_unequal(a, b):
        """How many entries of a and b differ, as a Python int."""
        return int((a != b).sum())

    @staticmethod
    def concat(arrays):
        """The arrays joined along the first axis."""
        return np.concatenate(arrays)

    @staticmethod
    def softmax(z):
        """Softmax along the last axis (max-subtracted)."""
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)

    @staticmethod
    def sigmoid_bce(z, y):
        """Mean binary cross-entropy of sigmoid(z) against targets y (same shape), computed stably
        from the logits: mean(max(z, 0) - z·y + log(1 + exp(-|z|))), as a Python float."""
        return float(np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))), dtype=np.float64))

    @staticmethod
    def sigmoid_bce_grad(probs, y):
        """Gradient of ``sigmoid_bce`` with respect to the logits, given probs = sigmoid(z)."""
        return (probs - y) / probs.dtype.type(probs.size)

    @staticmethod
    def add_l1(g, p, l1):
        """g + l1·sign(p): the gradient of an L1 penalty added to g (a new array)."""
        return g + p.dtype.type(l1) * np.sign(p)


HOST = HostArrays()
