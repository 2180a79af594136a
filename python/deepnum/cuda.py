"""The CUDA side of deepnum: device arrays and device discovery (experimental, not yet run on a GPU).

``DeviceArray`` is a C-contiguous array in GPU memory (``deepnum._cuda``, freed with its last
handle)::

    d = DeviceArray.from_numpy(x)        # host -> device
    y = ops.gemm(d, d)                   # with deepnum.use_backend("cuda"): a DeviceArray
    y.to_numpy()                         # device -> host (also y.numpy())

It has ``shape``, ``dtype``, ``size``, ``ndim``, ``nbytes``, ``copy()``, ``len()`` and
``__cuda_array_interface__`` (so CuPy, Numba and PyTorch can use it without a copy), and the
constructors ``empty(shape, dtype)`` and ``zeros(shape, dtype)``. Without a usable device every
constructor raises RuntimeError with the CUDA error; nothing crashes.
"""
import importlib.util

from ._reference import _compose_mlp_train_step

try:
    from . import _cuda
except ImportError as e:  # built without a CUDA compiler, or a broken build
    _cuda = None
    if importlib.util.find_spec("deepnum._cuda") is None:
        _import_error = "not built: no CUDA compiler was found at build time, or DEEPNUM_CUDA=OFF"
    else:
        _import_error = e
else:
    _import_error = None

__all__ = ["DeviceArray", "is_available", "unavailable_reason", "device_name"]


if _cuda is not None:
    DeviceArray = _cuda.DeviceArray
    # the fused MLP step is a composition of the device kernels, as for the numba backend
    _cuda.mlp_train_step = _compose_mlp_train_step(_cuda)
else:
    class DeviceArray:
        """Placeholder: deepnum was built without CUDA, so there are no device arrays."""

        def __init__(self, *args, **kwargs):
            raise RuntimeError(unavailable_reason())

        @staticmethod
        def empty(shape, dtype=None):
            raise RuntimeError(unavailable_reason())

        zeros = from_numpy = empty


def unavailable_reason():
    """Why the CUDA backend cannot be used here, or None when it can."""
    if _cuda is None:
        return f"deepnum._cuda is not built or failed to import ({_import_error})"
    count, reason = _cuda.device_status()
    return None if count > 0 else f"no CUDA device: {reason}"


def is_available():
    """True when deepnum._cuda imported and at least one CUDA device is present."""
    return unavailable_reason() is None


def device_name():
    """Name, compute capability and memory of device 0; raises RuntimeError without a device."""
    reason = unavailable_reason()
    if reason is not None:
        raise RuntimeError(reason)
    return _cuda.device_name(0)
