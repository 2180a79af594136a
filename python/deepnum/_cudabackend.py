"""The ``cuda`` backend's Python side: the compiled module deepnum._cuda, whether it can run here, the ops
composed from its kernels, and the array namespace of device arrays.

Backend layer: imports no ``deepnum.ops``, no model module and nothing from the package's ``__init__``.
"""
from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _compose
from ._host import HOST

_import_error: str | ImportError | None  # why deepnum._cuda is not there, or None
try:
    from . import _cuda
except ImportError as e:  # built without a CUDA compiler, or a broken build
    _cuda = None  # type: ignore[assignment]  # (mypy reads deepnum/_cuda.pyi, the nvcc build's)
    if importlib.util.find_spec("deepnum._cuda") is None:
        _import_error = "not built: no CUDA compiler was found at build time, or DEEPNUM_CUDA=OFF"
    else:
        _import_error = e
else:
    _import_error = None


if TYPE_CHECKING:
    from ._cuda import DeviceArray
elif _cuda is not None:
    DeviceArray = _cuda.DeviceArray
else:
    class DeviceArray:
        """Placeholder: deepnum was built without CUDA, so there are no device arrays."""

        def __init__(self, *args, **kwargs):
            raise RuntimeError(unavailable_reason())

        @staticmethod
        def empty(shape, dtype=None):
            """Raises RuntimeError: without CUDA there is no device memory (``zeros`` and ``from_numpy`` alike)."""
            raise RuntimeError(unavailable_reason())

        zeros = from_numpy = empty


def unavailable_reason() -> str | None:
    """Why the CUDA backend cannot be used here, or None when it can."""
    if _cuda is None:
        return f"deepnum._cuda is not built or failed to import ({_import_error})"
    count, reason = _cuda.device_status()
    return None if count > 0 else f"no CUDA device: {reason}"


def is_emulated() -> bool:
    """True when the loaded deepnum._cuda is the emulated build (DEEPNUM_CUDA=EMULATE: the CUDA kernels run on
    the CPU, for tests)."""
    return _cuda is not None and _cuda.EMULATED


def is_available() -> bool:
    """True when deepnum._cuda imported and at least one CUDA device is present."""
    return unavailable_reason() is None


_KDLCUDA = 2  # DLPack's device type of CUDA device memory


def from_dlpack(x: Any) -> DeviceArray:
    """A DeviceArray over the memory of ``x``, any object on a CUDA device with ``__dlpack__`` and
    ``__dlpack_device__`` (a PyTorch, CuPy or JAX GPU array, a DeviceArray): no copy. The DeviceArray (and every view
    of it) keeps the producer's memory alive and calls its DLPack deleter once, when the last of them is freed; writes
    through either are seen by both.

    The producer's ``__dlpack__`` is called with ``stream=1`` (the legacy default stream, on which deepnum runs) and
    ``max_version=(1, 1)`` (again without ``max_version`` for a producer older than DLPack 1.0), so the producer orders
    its pending work before deepnum's. Taken: float32, float64 and int64, C-contiguous, any rank, size 0 too.
    Refused, without a copy: an array not on a CUDA device or an object without DLPack (TypeError), another dtype
    (TypeError), a non-contiguous (strided) or read-only tensor (ValueError; make it contiguous first)."""
    if not (hasattr(x, "__dlpack__") and hasattr(x, "__dlpack_device__")):
        raise TypeError(f"from_dlpack: expected an object with __dlpack__ and __dlpack_device__ (DLPack), got "
                        f"{type(x).__module__}.{type(x).__qualname__}")
    device_type, device_id = x.__dlpack_device__()
    if device_type != _KDLCUDA:
        raise TypeError(f"from_dlpack: {type(x).__module__}.{type(x).__qualname__} is on DLPack device "
                        f"({int(device_type)}, {int(device_id)}), not on a CUDA device ({_KDLCUDA}, ...): "
                        "DeviceArray.from_numpy copies a host array to the device")
    reason = unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"from_dlpack: {reason}")
    try:
        capsule = x.__dlpack__(stream=1, max_version=(1, 1))
    except TypeError:  # a producer of DLPack < 1.0 takes no max_version (the array API standard's fallback)
        capsule = x.__dlpack__(stream=1)
    return _cuda._from_dlpack(capsule)


def device_name() -> str:
    """Name, compute capability and memory of device 0; raises RuntimeError without a device."""
    reason = unavailable_reason()
    if reason is not None:
        raise RuntimeError(reason)
    return _cuda.device_name(0)


class _Kernels:
    """The cuda backend's entry points: deepnum._cuda's (checked by the compiled contract, on DeviceArrays)
    and ``mlp_train_step`` composed from them (deepnum._compose)."""

    def __getattr__(self, op):
        return getattr(_cuda, op)

    def mlp_train_step(self, ws, bs, activations, x, labels, lr, weight_decay, alpha):
        _cuda.check_mlp_train_step(ws, bs, activations, x, labels, lr, weight_decay, alpha)
        return _compose.mlp_train_step(self, ws, bs, activations, x, labels, lr, weight_decay, alpha)


KERNELS = _Kernels()


# ---- the array namespace -----------------------------------------------------------------------

def _device_function(name):
    """deepnum._cuda.<name> (cuda/arrays.cu), documented as HOST.<name> is; looked up per call, so the namespace
    exists where deepnum._cuda is not built (a DeviceArray cannot exist there either)."""
    host_fn = getattr(HOST, name)

    def fn(*args):
        return getattr(_cuda, name)(*args)

    fn.__name__ = name
    fn.__doc__ = f"{host_fn.__doc__}\n\nOn the device: deepnum._cuda.{name} (cuda/arrays.cu)."
    return staticmethod(fn)


class DeviceArrays:
    """The array namespace of the ``cuda`` backend (the twin of ``deepnum._host.HostArrays``):
    DeviceArrays in GPU memory. Every function runs on the device (creation, copies, views, and the kernels of
    cuda/arrays.cu); the only copies to the host are the Python scalars that ``count_unequal`` and
    ``sigmoid_bce`` return, and ``from_host``/``to_host`` themselves. ``take_rows`` takes an int64 DeviceArray
    index (or a host one, copied per call) and checks it on the device."""

    name = "cuda"
    array_type = DeviceArray

    @staticmethod
    def empty(shape, dtype):
        return DeviceArray.empty(shape, dtype)

    @staticmethod
    def zeros(shape, dtype):
        return DeviceArray.zeros(shape, dtype)

    @staticmethod
    def from_host(a, dtype=None):
        """A device copy of the host array ``a`` (C order, converted to ``dtype`` if given)."""
        return DeviceArray.from_numpy(np.ascontiguousarray(a, dtype))

    @staticmethod
    def to_host(a):
        return a.to_numpy()

    @staticmethod
    def copy(a):
        return a.copy()

    @staticmethod
    def rows(a, start, stop):
        return a.rows(start, stop)

    @staticmethod
    def reshape(a, shape):
        return a.reshape(shape)

    take_rows = _device_function("take_rows")
    swap01 = _device_function("swap01")
    last_step = _device_function("last_step")
    argmax = _device_function("argmax")
    positive = _device_function("positive")
    count_unequal = _device_function("count_unequal")
    concat = _device_function("concat")
    softmax = _device_function("softmax")
    sigmoid_bce = _device_function("sigmoid_bce")
    sigmoid_bce_grad = _device_function("sigmoid_bce_grad")
    add_l1 = _device_function("add_l1")


DEVICE = DeviceArrays()
