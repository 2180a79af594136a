"""deepnum: a small, fast deep-learning library with compiled kernels.

Backends: ``cpp`` (C++ kernels, default), ``numba`` (Numba JIT twins) and ``numpy`` (the
reference). Choose one with :func:`use_backend` or the ``DEEPNUM_BACKEND`` environment
variable; the ops in :mod:`deepnum.ops` dispatch to it.
"""
from . import _backend, cuda, ops

__version__ = "0.1.0"
__all__ = ["ops", "backends", "use_backend", "get_backend", "set_num_threads", "get_num_threads", "__version__"]


def backends():
    """Names of the backends available here, e.g. ``['cpp', 'numba', 'numpy']``."""
    return _backend.available()


def get_backend():
    """Name of the active backend."""
    return _backend.name


class use_backend:
    """Select the backend ``name``: at once, and, used as a context manager, until the block ends.

    >>> deepnum.use_backend("numba")          # from now on
    >>> with deepnum.use_backend("numpy"):    # inside the block only
    ...     deepnum.ops.gemm(a, b)
    """

    def __init__(self, name):
        self._previous = _backend.name
        _backend.select(name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        _backend.select(self._previous)


def set_num_threads(n):
    """Use ``n`` threads in the compiled kernels (C++ OpenMP and Numba). Default: OMP_NUM_THREADS or all cores."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive int, got {n!r}")
    _backend.set_num_threads(n)


def get_num_threads():
    """Number of threads the compiled kernels use."""
    return _backend.get_num_threads()
