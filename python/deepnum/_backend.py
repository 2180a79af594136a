"""Which backend runs an op: the registry of backends, the selected CPU backend, and the entry points of
the Python backends.

Every backend offers the ops of ``deepnum._contract.OPS`` as *entry points* with one signature: the
op's inputs (in its kernel's order), checked by the compiled contract (cpp/contract.h), returning
its outputs. ``deepnum.ops`` picks the backend by the arrays' type — NumPy arrays go to the
selected CPU backend (``cpp``, ``numba`` or ``numpy``), ``deepnum.cuda.DeviceArray``s to ``cuda``
— and nothing else dispatches.

* ``cpp``: deepnum._core, the C++ kernels behind the compiled contract.
* ``numba``, ``numpy``: :class:`PythonKernels` over the Numba twins (``deepnum._numba``) or the NumPy
  reference (``deepnum._reference``): deepnum._contract checks and allocates, the kernel fills.
* ``cuda``: deepnum._cuda (``deepnum._cudabackend``), listed only where a device is present.

Backend layer: imports no ``deepnum.ops``, no model module and nothing from the package's ``__init__``.
"""
import importlib.util
import os
import platform
import re
import warnings

from . import _compose, _contract
from . import _cudabackend as cuda

NAMES = ("cuda", "cpp", "numba", "numpy")
CPU_NAMES = NAMES[1:]

_core_error = None  # why deepnum._core failed to import, if it did
try:
    from . import _core
except ImportError as e:  # a broken or missing build: fall back, and say why
    _core, _core_error = None, e  # type: ignore[assignment]  # (mypy reads deepnum/_core.pyi)

_num_threads = None  # set by set_num_threads; applied to Numba when it loads


def _result(value, outputs):
    """What an entry point returns, as the compiled modules do: the kernel's value (a float) first if it
    has one, then the outputs; a single item alone, none as None."""
    items = ((float(value),) if value is not None else ()) + tuple(outputs)
    return items[0] if len(items) == 1 else (items or None)


class PythonKernels:
    """The entry points of a module of Python kernels (``deepnum._numba`` or ``deepnum._reference``): for
    each op, deepnum._contract checks the arguments and allocates the outputs, returning the kernel's
    argument tuple (outputs first), and the kernel fills the outputs. ``mlp_train_step`` is composed
    from the other entry points (``deepnum._compose``)."""

    def __init__(self, name, kernels):
        self.name, self.kernels = name, kernels
        for op, n_outputs in _contract.OPS.items():
            if op != "mlp_train_step":
                setattr(self, op, self._entry(getattr(_contract, op), getattr(kernels, op), n_outputs))

    @staticmethod
    def _entry(check, kernel, n_outputs):
        def entry(*args):
            kargs = check(*args)
            return _result(kernel(*kargs), kargs[:n_outputs])

        entry.__name__ = kernel.__name__
        return entry

    def mlp_train_step(self, ws, bs, activations, x, labels, lr, weight_decay, alpha):
        _contract.mlp_train_step(ws, bs, activations, x, labels, lr, weight_decay, alpha)
        return _compose.mlp_train_step(self, ws, bs, activations, x, labels, lr, weight_decay, alpha)

    def __repr__(self):
        return f"<deepnum {self.name} backend over {self.kernels.__name__}>"


_loaded: dict = {}


def available():
    """Names of the backends that can be used here, fastest first."""
    return [n for n in NAMES if (n == "cuda" and cuda.is_available()) or (n == "cpp" and _core is not None)
            or n == "numpy" or (n == "numba" and importlib.util.find_spec("numba") is not None)]


def load(name):
    """The entry points of backend ``name`` (deepnum._core for cpp), importing it on first use."""
    if name in _loaded:
        return _loaded[name]
    if name not in NAMES:
        raise ValueError(f"use_backend: unknown backend {name!r}; choose one of {list(CPU_NAMES)}")
    if name == "cpp":
        if _core is None:
            raise ValueError(f"use_backend: the 'cpp' backend is unavailable: deepnum._core failed to import "
                             f"({_core_error})")
        backend = _core
    elif name == "cuda":
        reason = cuda.unavailable_reason()
        if reason is not None:
            raise ValueError(f"the 'cuda' backend is unavailable: {reason}")
        backend = cuda.KERNELS
    elif name == "numpy":
        from . import _reference

        backend = PythonKernels(name, _reference)
    else:
        if importlib.util.find_spec("numba") is None:
            raise ValueError("use_backend: the 'numba' backend needs the numba package, which is not installed")
        from . import _numba

        if _num_threads is not None:
            _numba.set_num_threads(_num_threads)
        backend = PythonKernels(name, _numba)
    _loaded[name] = backend
    return backend


def _default():
    requested = os.environ.get("DEEPNUM_BACKEND")
    if requested:
        return requested
    if _core is not None:
        return "cpp"
    warnings.warn(f"deepnum: the C++ backend failed to import ({_core_error}); using the numba backend",
                  RuntimeWarning, stacklevel=3)
    return "numba"


def select(new_name):
    """Make ``new_name`` the CPU backend that runs ops on NumPy arrays."""
    global name, active
    if new_name == "cuda":
        raise ValueError("use_backend: 'cuda' is chosen by the arrays, not selected: pass deepnum.cuda.DeviceArrays "
                         f"to the ops; use_backend chooses the CPU backend for NumPy arrays, one of {list(CPU_NAMES)}")
    active = load(new_name)
    name = new_name


name: str  # the selected CPU backend and its entry points, set by select
active: object
select(_default())


class array_cache:
    """``with array_cache():`` NumPy allocates the arrays made inside through deepnum's cache of
    large blocks (cpp/array_cache.cpp), in this context only: a training step's outputs reuse the
    memory that the last step's freed instead of taking page faults on fresh memory. Arrays keep
    their allocator after the block ends. Nothing changes without the C++ module."""

    __slots__ = ("previous",)

    def __enter__(self):
        self.previous = _core.use_array_cache() if _core is not None else None
        return self

    def __exit__(self, *exc):
        if self.previous is not None:
            _core.restore_allocator(self.previous)


def set_num_threads(n):
    global _num_threads
    _num_threads = n
    if n > 1 and _core is not None and not _core.openmp_version():
        warnings.warn(f"set_num_threads({n}): deepnum._core was built without OpenMP, so the cpp backend's kernels "
                      f"run on one thread (the numba backend uses {n})", RuntimeWarning, stacklevel=3)
    if _core is not None:
        _core.set_num_threads(n)
    if "numba" in _loaded:
        _loaded["numba"].kernels.set_num_threads(n)


def get_num_threads():
    if _num_threads is not None:
        return _num_threads
    if _core is not None:
        return _core.get_num_threads()
    return os.cpu_count() or 1


_OPENMP_RELEASES = {201307: "4.0", 201511: "4.5", 201811: "5.0", 202011: "5.1", 202111: "5.2", 202411: "6.0"}


def openmp():
    """The compiled kernels' OpenMP, in words: its version, or why there is none."""
    if _core is None:
        return "none (no deepnum._core)"
    version = _core.openmp_version()
    if not version:
        return "off (deepnum._core was built without it: the cpp kernels run on one thread)"
    return f"on (OpenMP {_OPENMP_RELEASES.get(version, '?')}, _OPENMP {version})"


def cpu_name():
    """The CPU's model name as the system reports it (/proc/cpuinfo on Linux, sysctl on macOS), else
    platform.processor(), else the machine type."""
    try:
        with open("/proc/cpuinfo") as f:
            found = re.search(r"^model name\s*:\s*(.+)$", f.read(), re.M)
        if found:
            return found.group(1).strip()
    except OSError:
        pass
    if platform.system() == "Darwin":
        import subprocess

        done = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True)
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
    return platform.processor() or platform.machine() or "unknown"
