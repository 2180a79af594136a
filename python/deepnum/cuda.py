"""The CUDA side of deepnum: device arrays and device discovery (experimental, not yet run on a GPU).

``DeviceArray`` is a C-contiguous array in GPU memory (``deepnum._cuda``, freed with its last
handle)::

    d = DeviceArray.from_numpy(x)        # host -> device
    y = ops.gemm(d, d)                   # device arrays in, a DeviceArray out: the array picks the backend
    y.to_numpy()                         # device -> host (also y.numpy())

It has ``shape``, ``dtype``, ``size``, ``ndim``, ``nbytes``, ``copy()``, ``len()``, the views
``rows(start, stop)`` and ``reshape(shape)``, ``__cuda_array_interface__`` and DLPack's
``__dlpack__``/``__dlpack_device__`` (so PyTorch, CuPy, JAX and Numba can use it without a copy:
``torch.from_dlpack(d)``), and the constructors ``empty(shape, dtype)`` and ``zeros(shape, dtype)``.
``from_dlpack(t)`` goes the other way: a DeviceArray over a GPU tensor's memory, no copy. Without a usable device every constructor raises RuntimeError with the
CUDA error; nothing crashes. The backend itself lives in ``deepnum._cudabackend``.
"""
from ._cudabackend import DeviceArray, device_name, from_dlpack, is_available, is_emulated, unavailable_reason

__all__ = ["DeviceArray", "from_dlpack", "is_available", "is_emulated", "unavailable_reason", "device_name"]
