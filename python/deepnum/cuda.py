"""The CUDA side of deepnum: device arrays and device discovery (experimental, not yet run on a GPU).

``DeviceArray`` is a C-contiguous array in GPU memory (``deepnum._cuda``, freed with its last
handle)::

    d = DeviceArray.from_numpy(x)        # host -> device
    y = ops.gemm(d, d)                   # device arrays in, a DeviceArray out: the array picks the backend
    y.to_numpy()                         # device -> host (also y.numpy())

It has ``shape``, ``dtype``, ``size``, ``ndim``, ``nbytes``, ``copy()``, ``len()``, the views
``rows(start, stop)`` and ``reshape(shape)``, and ``__cuda_array_interface__`` (so CuPy, Numba and
PyTorch can use it without a copy), and the constructors ``empty(shape, dtype)`` and
``zeros(shape, dtype)``. Without a usable device every constructor raises RuntimeError with the
CUDA error; nothing crashes. The backend itself lives in ``deepnum._cudabackend``.
"""
from ._cudabackend import DeviceArray, device_name, is_available, is_emulated, unavailable_reason

__all__ = ["DeviceArray", "is_available", "is_emulated", "unavailable_reason", "device_name"]
