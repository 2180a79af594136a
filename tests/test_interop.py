"""Interop with other libraries' arrays (README "Interop").

Device side, marked ``gpu`` (they run on the emulated build and on a GPU): DLPack both ways —
``DeviceArray.__dlpack__`` read back through ctypes structs written here from the DLPack 1.1 specification (an
independent check of cuda/dlpack.h's layout), ``deepnum.cuda.from_dlpack`` of deepnum's own arrays and of a
producer written here with ctypes whose deleter is counted, refusals, the stream argument. Marked ``gpu`` and
``real_gpu`` as well: PyTorch CUDA tensors in and out (torch has no CUDA on the emulated build, whose CI line
deselects ``real_gpu``). Host side, no GPU: ops on PyTorch CPU tensors, memoryview and array.array, the in-place
updates writing into the caller's memory, and the model layer's inputs.
"""
import array
import ctypes

import numpy as np
import pytest

import deepnum as dn
from deepnum import cuda, ops

needs_gpu = pytest.mark.skipif(not cuda.is_available(), reason=str(cuda.unavailable_reason()))
needs_emulated = pytest.mark.skipif(not cuda.is_emulated(),
                                    reason="not the emulated CUDA build (DEEPNUM_CUDA=EMULATE)")


# ---- DLPack 1.1 in ctypes (dmlc/dlpack include/dlpack/dlpack.h, v1.1) ---------------------------

class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", DLDevice), ("ndim", ctypes.c_int32), ("dtype", DLDataType),
                ("shape", ctypes.POINTER(ctypes.c_int64)), ("strides", ctypes.POINTER(ctypes.c_int64)),
                ("byte_offset", ctypes.c_uint64)]


DELETER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class DLManagedTensor(ctypes.Structure):
    _fields_ = [("dl_tensor", DLTensor), ("manager_ctx", ctypes.c_void_p), ("deleter", DELETER)]


class DLPackVersion(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32)]


class DLManagedTensorVersioned(ctypes.Structure):
    _fields_ = [("version", DLPackVersion), ("manager_ctx", ctypes.c_void_p), ("deleter", DELETER),
                ("flags", ctypes.c_uint64), ("dl_tensor", DLTensor)]


READ_ONLY, IS_COPIED = 1, 2
KDLCPU, KDLCUDA = 1, 2
DL_TYPES = {np.dtype(np.float32): (2, 32), np.dtype(np.float64): (2, 64), np.dtype(np.int64): (0, 64)}
NAMES = {False: b"dltensor", True: b"dltensor_versioned"}

_capi = ctypes.pythonapi
_capi.PyCapsule_New.restype = ctypes.py_object
_capi.PyCapsule_New.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
_capi.PyCapsule_GetName.restype = ctypes.c_char_p
_capi.PyCapsule_GetName.argtypes = [ctypes.py_object]
_capi.PyCapsule_GetPointer.restype = ctypes.c_void_p
_capi.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]


def _ptr(d):
    return d.__cuda_array_interface__["data"][0]


def _read_capsule(capsule):
    """(name, the managed tensor struct) of a DLPack capsule, read through the ctypes structs above (valid while the
    capsule lives)."""
    name = _capi.PyCapsule_GetName(capsule)
    managed = DLManagedTensorVersioned if name == NAMES[True] else DLManagedTensor
    return name, managed.from_address(_capi.PyCapsule_GetPointer(capsule, name))


class Producer:
    """A DLPack producer we control: it exports ``backing`` (a DeviceArray, whose memory it keeps alive until its
    deleter runs) as a tensor of ``shape``, ``strides`` (elements; None: NULL), DLPack ``dtype`` (code, bits, lanes)
    and ``device``, and counts the calls of its deleter. ``versioned=False`` is a producer older than DLPack 1.0:
    its ``__dlpack__`` takes no max_version (from_dlpack must fall back)."""

    def __init__(self, backing, shape=None, strides=None, dtype=None, device=None, versioned=True, flags=0,
                 version=(1, 1), byte_offset=0):
        self.backing, self.versioned, self.deleted, self.calls = backing, versioned, 0, []
        shape = backing.shape if shape is None else shape
        dtype = DL_TYPES[backing.dtype] + (1,) if dtype is None else dtype
        self.device = (KDLCUDA, 0) if device is None else device
        self._shape = (ctypes.c_int64 * max(len(shape), 1))(*shape)
        self._strides = None if strides is None else (ctypes.c_int64 * max(len(strides), 1))(*strides)
        self._deleter = DELETER(self._delete)
        self.managed = (DLManagedTensorVersioned if versioned else DLManagedTensor)()
        if versioned:
            self.managed.version = DLPackVersion(*version)
            self.managed.flags = flags
        self.managed.deleter = self._deleter
        t = self.managed.dl_tensor
        t.data = _ptr(backing) - byte_offset
        t.device = DLDevice(*self.device)
        t.ndim = len(shape)
        t.dtype = DLDataType(*dtype)
        t.shape = self._shape
        t.strides = self._strides
        t.byte_offset = byte_offset

    def _delete(self, _):
        self.deleted += 1
        self.backing = None  # the memory may go now

    def __dlpack_device__(self):
        return self.device

    def capsule(self):
        return _capi.PyCapsule_New(ctypes.addressof(self.managed), NAMES[self.versioned], None)

    def __dlpack__(self, *, stream=None, **kwargs):
        if not self.versioned and kwargs:
            raise TypeError(f"__dlpack__() got unexpected keyword arguments {sorted(kwargs)}")
        self.calls.append(dict(stream=stream, **kwargs))
        return self.capsule()


def _c_strides(shape):
    """C-contiguous strides in elements, a 0-length axis counted as 1 (as PyTorch)."""
    return tuple(int(np.prod([max(n, 1) for n in shape[i + 1:]])) for i in range(len(shape)))


def _device(x):
    return cuda.DeviceArray.from_numpy(np.array(x, order="C"))


def _values(shape, dtype, seed=0):
    return np.random.default_rng(seed).integers(-50, 50, size=shape).astype(dtype)


# ---- DeviceArray.__dlpack__ ---------------------------------------------------------------------

@pytest.mark.parametrize("max_version, name, version", [
    (None, b"dltensor", None), ((0, 8), b"dltensor", None), ((1, 0), b"dltensor_versioned", (1, 0)),
    ((1, 7), b"dltensor_versioned", (1, 1)), ((2, 0), b"dltensor_versioned", (1, 1))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("shape", [(), (0,), (5,), (2, 3, 4), (3, 0, 2)])
@pytest.mark.gpu
@needs_gpu
def test_dlpack_exports_the_array_as_the_spec_says(shape, dtype, max_version, name, version):
    """The capsule for the consumer's max_version: legacy 'dltensor' below 1.0 (or None), else 'dltensor_versioned'
    of version min(max_version, 1.1); the tensor is the array itself (same pointer, no copy), on (kDLCUDA, 0), with
    its shape, C-contiguous strides in elements, the DLPack dtype, byte_offset 0 and no flags."""
    d = _device(_values(shape, dtype))
    capsule = d.__dlpack__(max_version=max_version)
    got_name, m = _read_capsule(capsule)
    assert got_name == name
    if version is not None:
        assert (m.version.major, m.version.minor) == version
        assert m.flags == 0
    t = m.dl_tensor
    assert t.data + t.byte_offset == _ptr(d) and t.byte_offset == 0
    assert (t.device.device_type, t.device.device_id) == (KDLCUDA, 0) == d.__dlpack_device__()
    assert t.ndim == len(shape) and tuple(t.shape[i] for i in range(t.ndim)) == shape
    assert tuple(t.strides[i] for i in range(t.ndim)) == _c_strides(shape)
    assert (t.dtype.code, t.dtype.bits, t.dtype.lanes) == DL_TYPES[np.dtype(dtype)] + (1,)


@pytest.mark.gpu
@needs_gpu
def test_dlpack_copy_true_exports_a_copy_flagged_as_copied():
    x = _values((3, 4), np.float32)
    d = _device(x)
    capsule = d.__dlpack__(max_version=(1, 0), copy=True)
    _, m = _read_capsule(capsule)
    assert m.flags == IS_COPIED and m.dl_tensor.data != _ptr(d)
    np.testing.assert_array_equal(cuda.from_dlpack(Producer(_device(x))).to_numpy(), x)
    e = cuda.from_dlpack(d)  # copy=False and None share
    assert _ptr(e) == _ptr(d)
    capsule = d.__dlpack__(max_version=(1, 0), copy=False)
    _, m = _read_capsule(capsule)
    assert m.flags == 0 and m.dl_tensor.data == _ptr(d)


@pytest.mark.gpu
@needs_gpu
def test_dlpack_arguments_are_checked():
    d = _device(np.ones(3, np.float32))
    for stream in (None, 1, 2, -1):  # the legacy default stream (deepnum's), the per-thread one, no synchronisation
        d.__dlpack__(stream=stream)
    with pytest.raises(ValueError, match=r"DeviceArray.__dlpack__: stream 0 is not a CUDA stream"):
        d.__dlpack__(stream=0)
    with pytest.raises(ValueError, match=r"stream -2 is not a CUDA stream"):
        d.__dlpack__(stream=-2)
    with pytest.raises(TypeError, match=r"DeviceArray.__dlpack__: stream must be None or an int .*got str"):
        d.__dlpack__(stream="default")
    with pytest.raises(TypeError, match=r"max_version must be None or a pair of ints, got \[1, 0\]"):
        d.__dlpack__(max_version=[1, 0])
    with pytest.raises(TypeError, match=r"copy must be None, True or False, got int"):
        d.__dlpack__(copy=1)
    d.__dlpack__(dl_device=(KDLCUDA, 0))
    with pytest.raises(BufferError, match=r"DeviceArray.__dlpack__: cannot export to cpu \(DLPack device type 1, "
                                          r"id 0\): the array is on cuda \(DLPack device type 2, id 0\)"):
        d.__dlpack__(dl_device=(KDLCPU, 0))
    with pytest.raises(TypeError):
        d.__dlpack__(1)  # keyword-only, as the standard says
    from deepnum import _cuda
    with pytest.raises(RuntimeError, match="holds no memory"):
        _cuda._spec((2,), np.float32).__dlpack__()


@pytest.mark.emulated
@needs_emulated
def test_dlpack_stream_is_waited_on():
    """A consumer's stream other than deepnum's is made to wait for an event on deepnum's stream: the emulation knows
    only the default stream's handles, so another handle reaches cudaStreamWaitEvent and fails there."""
    d = _device(np.ones(3, np.float32))
    with pytest.raises(RuntimeError, match="cudaErrorInvalidResourceHandle"):
        d.__dlpack__(stream=0x12345)


# ---- from_dlpack --------------------------------------------------------------------------------

@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("shape", [(), (0,), (7,), (2, 3, 4), (1, 2, 1, 3, 1), (4, 0)])
def test_from_dlpack_of_a_device_array_shares_its_memory(shape, dtype):
    x = _values(shape, dtype)
    d = _device(x)
    e = cuda.from_dlpack(d)
    assert isinstance(e, cuda.DeviceArray) and e.shape == shape and e.dtype == dtype
    assert _ptr(e) == _ptr(d)
    np.testing.assert_array_equal(e.to_numpy(), x)
    if np.dtype(dtype).kind == "f" and x.size:  # writes through either are seen by both (the ops refuse size 0)
        ops.sgd_update(e, _device(np.ones(shape, dtype)), 1.0)
        np.testing.assert_array_equal(d.to_numpy(), x - 1)
        ops.sgd_update(d, _device(np.ones(shape, dtype)), 2.0)
        np.testing.assert_array_equal(e.to_numpy(), x - 3)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("versioned", [True, False])
def test_from_dlpack_calls_the_deleter_once_when_the_last_array_goes(versioned):
    """The imported array, its views, and a capsule re-exported from it (consumed or not) keep the producer's memory;
    the deleter runs exactly once, after the last of them. A producer of DLPack < 1.0 is asked again without
    max_version."""
    x = _values((4, 3), np.float32)
    p = Producer(_device(x), versioned=versioned)
    e = cuda.from_dlpack(p)
    assert p.calls[-1] == ({"stream": 1, "max_version": (1, 1)} if versioned else {"stream": 1})
    assert _ptr(e) == _ptr(p.backing)
    view, reshaped = e.rows(1, 3), e.reshape((12,))
    unconsumed = e.__dlpack__(max_version=(1, 0))
    again = cuda.from_dlpack(e)
    del e
    np.testing.assert_array_equal(view.to_numpy(), x[1:3])
    del view, reshaped
    assert p.deleted == 0
    del unconsumed  # never consumed: its capsule destructor lets go
    assert p.deleted == 0
    np.testing.assert_array_equal(again.to_numpy(), x)
    del again
    assert p.deleted == 1


@pytest.mark.gpu
@needs_gpu
def test_from_dlpack_takes_strides_of_size_one_dims_null_strides_and_a_byte_offset():
    x = _values((3, 1, 4), np.float64)
    for kw in ({"strides": (4, 999, 1)}, {"strides": None}, {"byte_offset": 256}):
        p = Producer(_device(x), **kw)
        e = cuda.from_dlpack(p)
        assert _ptr(e) == _ptr(p.backing)
        np.testing.assert_array_equal(e.to_numpy(), x)
        del e
        assert p.deleted == 1
    p = Producer(_device(np.zeros((0, 3), np.float32)), strides=(7, 5))  # size 0: strides do not matter
    assert cuda.from_dlpack(p).shape == (0, 3)


@pytest.mark.gpu
@needs_gpu
def test_the_ops_run_on_imported_arrays():
    """gemm on imported arrays against NumPy, and an in-place update that writes into the producer's memory."""
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((5, 7)), rng.standard_normal((7, 3))
    pa, pb = Producer(_device(a)), Producer(_device(b))
    da, db = cuda.from_dlpack(pa), cuda.from_dlpack(pb)
    np.testing.assert_allclose(ops.gemm(da, db).to_numpy(), a @ b, rtol=1e-12)
    ops.sgd_update(da, _device(np.ones_like(a)), 0.5)
    np.testing.assert_array_equal(pa.backing.to_numpy(), a - 0.5)
    y = ops.activation_forward("relu", cuda.from_dlpack(Producer(_device(a.astype(np.float32)))))
    np.testing.assert_array_equal(y.to_numpy(), np.maximum(a.astype(np.float32), 0))


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("dtype, name", [((0, 32, 1), "int32"), ((2, 16, 1), "float16"), ((4, 16, 1), "bfloat16"),
                                         ((6, 8, 1), "bool8"), ((5, 64, 1), "complex64"), ((1, 8, 1), "uint8"),
                                         ((2, 32, 4), "float32 x4 lanes"), ((10, 8, 1), "DLPack type code 10")])
def test_from_dlpack_refuses_other_dtypes(dtype, name):
    p = Producer(_device(np.zeros(4, np.float32)), dtype=dtype)
    with pytest.raises(TypeError, match=rf"^from_dlpack: dtype {name}.* is not supported \(deepnum's device arrays "
                                        r"are float32, float64 or int64\)$"):
        cuda.from_dlpack(p)
    assert p.deleted == 0  # not consumed: the capsule (here without a destructor) still owns it


@pytest.mark.gpu
@needs_gpu
def test_from_dlpack_refuses_without_copying():
    """Strided tensors, read-only ones, another device, another DLPack major version: refused with the reason, the
    capsule left unconsumed (it keeps its name; deepnum does not call the deleter)."""
    from deepnum import _cuda
    backing = _device(np.zeros((4, 6), np.float32))
    cases = [
        (Producer(backing, shape=(6, 4), strides=(1, 6)), ValueError,
         r"^from_dlpack: the tensor of shape \(6, 4\) has strides \(1, 6\) \(in elements\): not C-contiguous; "
         r"deepnum takes C-contiguous arrays only and does not copy"),
        (Producer(backing, shape=(4, 3), strides=(6, 2)), ValueError, "not C-contiguous"),
        (Producer(backing, flags=READ_ONLY), ValueError, r"^from_dlpack: the producer exported the tensor read-only"),
        (Producer(backing, device=(KDLCUDA, 3)), ValueError,
         r"^from_dlpack: the tensor is on cuda \(DLPack device type 2, id 3\) but deepnum uses CUDA device 0$"),
        (Producer(backing, version=(2, 0)), BufferError, r"^from_dlpack: the producer exported DLPack 2.0; "),
    ]
    for p, error, message in cases:
        with pytest.raises(error, match=message):
            cuda.from_dlpack(p)
        capsule = p.capsule()
        with pytest.raises(error, match=message):
            _cuda._from_dlpack(capsule)
        assert _capi.PyCapsule_GetName(capsule) == NAMES[True] and p.deleted == 0
    # a capsule that claims the host although the producer said CUDA
    lying = Producer(backing)
    lying.managed.dl_tensor.device = DLDevice(KDLCPU, 0)
    with pytest.raises(TypeError, match=r"^from_dlpack: the tensor is on cpu \(DLPack device type 1, id 0\), not on "
                                        r"a CUDA device"):
        cuda.from_dlpack(lying)
    consumed = Producer(backing).capsule()
    e = _cuda._from_dlpack(consumed)
    assert _capi.PyCapsule_GetName(consumed) == b"used_dltensor_versioned"
    with pytest.raises(ValueError, match=r"^from_dlpack: the DLPack capsule was already consumed"):
        _cuda._from_dlpack(consumed)
    del e
    with pytest.raises(TypeError, match=r"^from_dlpack: __dlpack__ returned int, not a DLPack capsule$"):
        _cuda._from_dlpack(3)


def test_from_dlpack_refuses_host_arrays_and_non_arrays():
    """No GPU needed: a NumPy (or any CPU) producer and an object without DLPack are TypeErrors before anything is
    exported."""
    with pytest.raises(TypeError, match=r"^from_dlpack: numpy.ndarray is on DLPack device \(1, 0\), not on a CUDA "
                                        r"device \(2, \.\.\.\): DeviceArray.from_numpy copies a host array"):
        cuda.from_dlpack(np.arange(3.0))
    with pytest.raises(TypeError, match=r"^from_dlpack: expected an object with __dlpack__ and __dlpack_device__ "
                                        r"\(DLPack\), got builtins.list$"):
        cuda.from_dlpack([1.0, 2.0])


# ---- PyTorch on a real GPU ------------------------------------------------------------------------

def _torch_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip(f"torch {torch.__version__} has no CUDA device")
    return torch


@pytest.mark.gpu
@pytest.mark.real_gpu
@needs_gpu
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_torch_cuda_tensors_in_and_out_without_copies(dtype):
    torch = _torch_cuda()
    t = torch.arange(24, device="cuda").to(getattr(torch, dtype)).reshape(2, 3, 4)
    d = cuda.from_dlpack(t)
    assert d.shape == (2, 3, 4) and d.dtype == np.dtype(dtype) and _ptr(d) == t.data_ptr()
    np.testing.assert_array_equal(d.to_numpy(), t.cpu().numpy())
    back = torch.from_dlpack(d)
    assert back.data_ptr() == t.data_ptr() and back.dtype == t.dtype and back.device == t.device
    del t  # d keeps torch's memory alive
    np.testing.assert_array_equal(d.to_numpy(), np.arange(24, dtype=dtype).reshape(2, 3, 4))
    mine = _device(np.arange(6, dtype=dtype).reshape(2, 3))
    out = torch.from_dlpack(mine)
    assert out.data_ptr() == _ptr(mine) and out.shape == (2, 3) and out.is_cuda
    np.testing.assert_array_equal(out.cpu().numpy(), np.arange(6, dtype=dtype).reshape(2, 3))
    del mine  # out keeps deepnum's memory alive
    np.testing.assert_array_equal(out.cpu().numpy(), np.arange(6, dtype=dtype).reshape(2, 3))


@pytest.mark.gpu
@pytest.mark.real_gpu
@needs_gpu
def test_ops_on_torch_cuda_tensors_write_through():
    torch = _torch_cuda()
    x = torch.randn(8, 5, device="cuda", dtype=torch.float64)
    w = torch.randn(5, 3, device="cuda", dtype=torch.float64)
    y = ops.gemm(cuda.from_dlpack(x), cuda.from_dlpack(w))
    torch.testing.assert_close(torch.from_dlpack(y), x @ w)
    before = w.clone()
    ops.sgd_update(cuda.from_dlpack(w), cuda.from_dlpack(torch.ones_like(w)), 0.25)
    torch.testing.assert_close(w, before - 0.25)  # deepnum wrote into torch's memory
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):  # work queued on another stream is ordered before deepnum's (stream=1 asked)
        z = torch.full((1000, 100), 3.0, device="cuda")
        dz = cuda.from_dlpack(z)
    assert float(ops.activation_forward("relu", dz).to_numpy().min()) == 3.0


@pytest.mark.gpu
@pytest.mark.real_gpu
@needs_gpu
def test_torch_cuda_refusals():
    torch = _torch_cuda()
    with pytest.raises(ValueError, match="from_dlpack: .* not C-contiguous"):
        cuda.from_dlpack(torch.zeros(3, 4, device="cuda").t())
    with pytest.raises(TypeError, match="from_dlpack: dtype float16"):
        cuda.from_dlpack(torch.zeros(3, device="cuda", dtype=torch.float16))
    with pytest.raises(TypeError, match="not on a CUDA device"):
        cuda.from_dlpack(torch.zeros(3))
    with pytest.raises(TypeError, match=r"gemm: a is a torch.Tensor on a GPU .*deepnum.cuda.from_dlpack\(a\)"):
        ops.gemm(torch.zeros(2, 2, device="cuda"), np.zeros((2, 2), np.float32))


# ---- host arrays of other libraries ------------------------------------------------------------

def test_ops_take_memoryview_and_array_array():
    a = array.array("d", [1.0, -2.0, 3.0, -4.0])
    y = ops.activation_forward("relu", a)
    assert type(y) is np.ndarray and y.dtype == np.float64
    np.testing.assert_array_equal(y, [1.0, 0.0, 3.0, 0.0])
    m = memoryview(np.arange(6, dtype=np.float32).reshape(2, 3))
    np.testing.assert_array_equal(ops.gemm(m, m, trans_b=True), np.asarray(m) @ np.asarray(m).T)
    strided = memoryview(np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2])  # copied to C order
    np.testing.assert_array_equal(ops.activation_forward("linear", strided), np.asarray(strided))
    with pytest.raises(TypeError, match="activation_forward: .*uint8"):
        ops.activation_forward("relu", memoryview(b"abcd"))


def test_ops_refuse_lists_and_scalars():
    for bad in ([[1.0, 2.0]], ((1.0,),), 3.0):
        with pytest.raises(TypeError, match=r"^gemm: a must be a numpy.ndarray, got (list|tuple|float)"):
            ops.gemm(bad, np.ones((2, 2)))


class OnlyArray:
    """An array that shows its values only through __array__ (a copy each time)."""

    def __init__(self, a):
        self.a = a

    def __array__(self, dtype=None, copy=None):
        return np.array(self.a, dtype=dtype, copy=True)


class Interface:
    """An array that exposes its memory through __array_interface__ (a view by definition)."""

    def __init__(self, a):
        self.a = a

    @property
    def __array_interface__(self):
        return self.a.__array_interface__


class GpuTensor(OnlyArray):
    """Another library's array on a GPU, as the host ops see it (no GPU needed)."""

    def __dlpack_device__(self):
        return (2, 0)

    def __dlpack__(self, **kw):
        raise AssertionError("not to be exported")


def test_in_place_updates_write_into_the_callers_memory_or_refuse():
    param = array.array("f", [1.0, 2.0, 3.0])  # the buffer protocol: a view
    ops.sgd_update(param, np.ones(3, np.float32), 0.5)
    assert list(param) == [0.5, 1.5, 2.5]
    backing = np.ones(4)
    ops.sgd_update(Interface(backing), OnlyArray(np.ones(4)), 0.25)  # grad is read: __array__ is fine there
    np.testing.assert_array_equal(backing, 0.75)
    with pytest.raises(TypeError, match=r"^sgd_update: param is a test_interop.OnlyArray that gives its memory only "
                                        r"through __array__, which may copy"):
        ops.sgd_update(OnlyArray(np.ones(3)), np.ones(3), 0.1)
    with pytest.raises(TypeError, match=r"^adam_update: v is a test_interop.OnlyArray"):
        ops.adam_update(np.ones(3), np.ones(3), np.zeros(3), OnlyArray(np.zeros(3)), 1)
    with pytest.raises(TypeError, match="sgd_update: param must be .*writable"):
        ops.sgd_update(memoryview(bytes(np.ones(2).tobytes())).cast("d"), np.ones(2), 0.1)


def test_a_gpu_array_on_the_host_side_points_to_from_dlpack():
    with pytest.raises(TypeError, match=r"^gemm: b is a test_interop.GpuTensor on a GPU \(DLPack device \(2, 0\)\): "
                                        r"deepnum.cuda.from_dlpack\(b\) makes it a DeviceArray without a copy$"):
        ops.gemm(np.ones((2, 2)), GpuTensor(np.ones((2, 2))))
    with pytest.raises(TypeError, match=r"^sgd_update: param is a test_interop.GpuTensor on a GPU"):
        ops.sgd_update(GpuTensor(np.ones(2)), np.ones(2), 0.1)


# ---- PyTorch CPU tensors (torch is in the test extra on Python 3.11) ---------------------------

def test_ops_on_torch_cpu_tensors_match_numpy():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((2, 3, 8, 8), (4, 3, 3, 3), (4,)))
    y = ops.conv2d_forward(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), padding=1)
    assert type(y) is np.ndarray
    np.testing.assert_array_equal(y, ops.conv2d_forward(x, w, b, padding=1))
    logits = rng.standard_normal((5, 4))
    labels = np.array([0, 3, 1, 2, 2], np.int32)
    loss, probs = ops.softmax_nll_forward(torch.from_numpy(logits), torch.from_numpy(labels))
    want = ops.softmax_nll_forward(logits, labels)
    assert loss == want[0]
    np.testing.assert_array_equal(probs, want[1])
    t = torch.from_numpy(rng.standard_normal((6, 4)))
    np.testing.assert_array_equal(ops.gemm(t.T, t), ops.gemm(t.numpy().T.copy(), t.numpy()))  # strided: C order
    with pytest.raises(TypeError, match="gemm: all arrays must share one dtype"):
        ops.gemm(torch.ones(2, 2), torch.ones(2, 2, dtype=torch.float64))


def test_in_place_updates_on_torch_cpu_tensors():
    torch = pytest.importorskip("torch")
    p = torch.ones(3, 2)
    v = torch.zeros(3, 2)
    ops.sgd_update(p, torch.full((3, 2), 2.0), 0.1, momentum=0.9, velocity=v)
    torch.testing.assert_close(p, torch.full((3, 2), 0.8))
    torch.testing.assert_close(v, torch.full((3, 2), 2.0))
    p, m, v = torch.ones(4, dtype=torch.float64), torch.zeros(4, dtype=torch.float64), torch.zeros(4,
                                                                                                   dtype=torch.float64)
    ops.adam_update(p, torch.ones(4, dtype=torch.float64), m, v, 1, lr=0.1)
    torch.testing.assert_close(p, torch.full((4,), 0.9, dtype=torch.float64))
    assert bool((m != 0).all()) and bool((v != 0).all())
    with pytest.raises(TypeError, match="sgd_update: param must be .*C-contiguous"):
        ops.sgd_update(torch.ones(3, 2).t(), torch.ones(2, 3), 0.1)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 5)).astype(np.float32)
    labels = rng.integers(0, 3, 8)
    ws = [torch.from_numpy(rng.standard_normal((5, 4)).astype(np.float32)), torch.zeros(4, 3)]
    bs = [torch.zeros(4), torch.zeros(3)]
    ws_np, bs_np = [w.numpy().copy() for w in ws], [b.numpy().copy() for b in bs]
    loss = ops.mlp_train_step(torch.from_numpy(x), torch.from_numpy(labels), ws, bs, ["tanh", "linear"], 0.1)
    assert loss == ops.mlp_train_step(x, labels, ws_np, bs_np, ["tanh", "linear"], 0.1)
    for got, want in zip(ws + bs, ws_np + bs_np):
        np.testing.assert_array_equal(got.numpy(), want)  # the tensors themselves were updated


def test_the_model_layer_takes_torch_cpu_tensors():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 6)).astype(np.float32)
    y = rng.integers(0, 3, 40)

    def run(xs, ys):
        model = dn.models.MLP([6, 5, 3], "tanh", seed=0)
        history = model.fit((xs, ys), epochs=2, batch_size=10, validation=(xs[:20], ys[:20]))
        return model, history

    model_t, history_t = run(torch.from_numpy(x), torch.from_numpy(y))
    model_n, history_n = run(x, y)
    assert history_t["train_loss"] == history_n["train_loss"]
    np.testing.assert_array_equal(model_t.predict(torch.from_numpy(x)), model_n.predict(x))
    assert model_t.evaluate((torch.from_numpy(x), torch.from_numpy(y))) == model_n.evaluate((x, y))
