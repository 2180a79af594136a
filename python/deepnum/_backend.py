"""Which kernel module is active, and how backends are found.

A backend is a module exposing every kernel of ``deepnum._reference`` with the same names
and signatures. ``deepnum.ops`` reads :data:`active` once per call; nothing else dispatches.
The ``cuda`` backend (deepnum._cuda, experimental) works on ``deepnum.cuda.DeviceArray``s: it is
listed only when the module imported and a device is present, and it is never the default.
"""
import importlib
import importlib.util
import os
import warnings

import numpy as np

from . import _cudabackend as cuda
from . import _reference

NAMES = ("cuda", "cpp", "numba", "numpy")

_modules = {"numpy": _reference}
_core_error = None  # why deepnum._core failed to import, if it did

try:
    from . import _core

    _modules["cpp"] = _core
except ImportError as e:  # a broken or missing build: fall back, and say why
    _core_error = e

_num_threads = None  # set by set_num_threads; applied to Numba when it loads


def available():
    """Names of the backends that can be used here, fastest first."""
    return [n for n in NAMES if n in _modules or (n == "numba" and importlib.util.find_spec("numba"))
            or (n == "cuda" and cuda.is_available())]


def array_type(name):
    """The array type backend ``name`` computes on: numpy.ndarray, or DeviceArray for cuda."""
    return cuda.DeviceArray if name == "cuda" else np.ndarray


def load(name):
    """Return the kernel module of backend ``name``, importing it on first use."""
    if name not in NAMES:
        raise ValueError(f"use_backend: unknown backend {name!r}; choose one of {list(NAMES)}")
    if name not in _modules:
        if name == "cpp":
            raise ValueError(f"use_backend: the 'cpp' backend is unavailable: deepnum._core failed to import ({_core_error})")
        if name == "cuda":
            reason = cuda.unavailable_reason()
            if reason is not None:
                raise ValueError(f"use_backend: the 'cuda' backend is unavailable: {reason}")
            _modules[name] = cuda._cuda
            return _modules[name]
        if importlib.util.find_spec("numba") is None:
            raise ValueError("use_backend: the 'numba' backend needs the numba package, which is not installed")
        module = importlib.import_module("deepnum._numba")
        if _num_threads is not None:
            module.set_num_threads(_num_threads)
        _modules[name] = module
    return _modules[name]


def _default():
    requested = os.environ.get("DEEPNUM_BACKEND")
    if requested:
        return requested
    if "cpp" in _modules:
        return "cpp"
    warnings.warn(f"deepnum: the C++ backend failed to import ({_core_error}); using the numba backend",
                  RuntimeWarning, stacklevel=3)
    return "numba"


name = _default()
active = load(name)


def select(new_name):
    """Make ``new_name`` the active backend."""
    global name, active
    active = load(new_name)
    name = new_name


class array_cache:
    """``with array_cache():`` NumPy allocates the arrays made inside through deepnum's cache of
    large blocks (cpp/array_cache.cpp), in this context only: a training step's outputs reuse the
    memory that the last step's freed instead of taking page faults on fresh memory. Arrays keep
    their allocator after the block ends. Nothing changes without the C++ module."""

    __slots__ = ("previous",)

    def __enter__(self):
        self.previous = _core.use_array_cache() if "cpp" in _modules else None
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            _core.restore_allocator(self.previous)




def set_num_threads(n):
    global _num_threads
    _num_threads = n
    if "cpp" in _modules:
        _core.set_num_threads(n)
    if "numba" in _modules:
        _modules["numba"].set_num_threads(n)


def get_num_threads():
    if _num_threads is not None:
        return _num_threads
    if "cpp" in _modules:
        return _core.get_num_threads()
    return os.cpu_count() or 1
