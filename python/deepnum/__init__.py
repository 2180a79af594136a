"""deepnum: a small, fast deep-learning library with compiled kernels.

The arrays choose where an op runs: NumPy arrays on the selected CPU backend — ``cpp`` (C++
kernels, default), ``numba`` (Numba JIT twins) or ``numpy`` (the reference), chosen with
:func:`use_backend` or the ``DEEPNUM_BACKEND`` environment variable — and
device arrays (``deepnum.cuda.DeviceArray``) on ``cuda``. See docs/ARCHITECTURE.md for the layers.

The model API at the top level: ``dn.Sequential`` of ``dn.nn`` layers (``Dense``, ``Conv2D``, ``MaxPool2D``,
``Flatten``, ``RNN``, ``Dropout``, and an output head ``SoftmaxNLL`` or ``SigmoidBCE``), trained by ``fit`` with
a ``dn.optim`` optimiser (``SGD``, ``Adam``); ``dn.models`` has the seed models, ``dn.training`` the loop and
its callbacks, ``dn.datasets`` MNIST and the toy sets::

    import deepnum as dn
    model = dn.Sequential([dn.nn.Dense(784, 100, "relu"), dn.nn.Dense(100, 10), dn.nn.SoftmaxNLL()], seed=0)
    model.fit((x, y), epochs=5, batch_size=32, optimizer=dn.optim.Adam(1e-3))
"""
from __future__ import annotations

from . import _backend, cuda, ops
from . import datasets, models, nn, optim, training
from .models import Sequential

__version__ = "0.1.0"
__all__ = ["ops", "cuda", "nn", "optim", "models", "training", "datasets", "Sequential", "backends", "use_backend",
           "get_backend", "set_num_threads", "get_num_threads", "__version__"]


def backends() -> list[str]:
    """Names of the backends available here, e.g. ``['cpp', 'numba', 'numpy']`` (``cuda`` first where a
    CUDA device is present)."""
    return _backend.available()


def get_backend() -> str:
    """Name of the selected CPU backend (the one that runs ops on NumPy arrays)."""
    return _backend.name


class use_backend:
    """Select the CPU backend ``name`` (``cpp``, ``numba`` or ``numpy``) for ops on NumPy arrays: at once,
    and, used as a context manager, until the block ends. ``cuda`` is not selected but chosen by the
    arrays: ops on device arrays (``deepnum.cuda.DeviceArray``) run there whatever is selected.

    >>> deepnum.use_backend("numba")          # from now on
    >>> with deepnum.use_backend("numpy"):    # inside the block only
    ...     deepnum.ops.gemm(a, b)
    """

    def __init__(self, name: str) -> None:
        self._previous = _backend.name
        _backend.select(name)

    def __enter__(self) -> use_backend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        _backend.select(self._previous)


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in the compiled kernels (C++ OpenMP and Numba). Default: OMP_NUM_THREADS or all cores."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive int, got {n!r}")
    _backend.set_num_threads(n)


def get_num_threads() -> int:
    """Number of threads the compiled kernels use."""
    return _backend.get_num_threads()
