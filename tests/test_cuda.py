"""The CUDA backend: what can be checked without a GPU (build, import, errors, host copies of the
per-element arithmetic) and, marked ``gpu``, what needs one. The op × backend driver in
test_ops.py runs every op on "cuda" too when a device is present."""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import deepnum
from deepnum import _cudabackend, _host
from deepnum import _reference as ref
from deepnum import cuda, ops

needs_gpu = pytest.mark.skipif(not cuda.is_available(), reason=str(cuda.unavailable_reason()))
no_gpu = pytest.mark.skipif(cuda.is_available(), reason="a CUDA device is present")
gpu = [pytest.mark.gpu, needs_gpu]


# ---- build and import (no GPU needed) --------------------------------------------------------

def test_cuda_module_is_built_where_nvcc_is():
    """With nvcc on this machine the build must have produced deepnum._cuda (AUTO = ON when found)."""
    if not (shutil.which("nvcc") or os.path.exists("/usr/local/cuda/bin/nvcc")):
        pytest.skip("no nvcc here: deepnum._cuda is optional")
    import deepnum._cuda as module

    assert hasattr(module, "DeviceArray") and hasattr(module, "gemm")


def _cuda_module():
    try:
        from deepnum import _cuda as module
    except ImportError as e:
        pytest.skip(f"deepnum._cuda is not built: {e}")
    return module


def test_cudart_is_linked_statically():
    module = _cuda_module()
    if shutil.which("ldd") is None:
        pytest.skip("no ldd")
    deps = subprocess.run(["ldd", module.__file__], capture_output=True, text=True, check=True).stdout
    assert "libcudart" not in deps, deps
    assert "libcuda.so" not in deps, deps  # the driver is loaded lazily by cudart, if at all


def test_every_kernel_is_bound():
    """Every reference kernel but mlp_train_step (which deepnum.cuda composes from the others) is an op of _cuda."""
    module = _cuda_module()
    kernels = [n for n in dir(ref) if callable(getattr(ref, n)) and not n.startswith("_")
               and n not in ("dropout_uniform", "mlp_train_step") and getattr(ref, n).__module__ == ref.__name__]
    missing = [n for n in kernels if not hasattr(module, n) or n not in module.OPS]
    assert not missing, missing


@no_gpu
def test_without_a_device_cuda_is_not_listed():
    assert "cuda" not in deepnum.backends()
    assert not cuda.is_available()
    assert cuda.unavailable_reason()


def test_device_arrays_choose_the_cuda_backend():
    """The arrays' type picks the backend, whatever use_backend selected: DeviceArrays (here _spec arrays,
    which need no GPU) go to cuda — without a device, its entry points are unavailable; a NumPy array
    in the same call is a TypeError naming one of each, on every op and in the array namespace."""
    spec = _cuda_module()._spec
    a, x = spec((2, 3), np.float32), np.ones((2, 3), np.float32)
    for backend in ("cpp", "numba", "numpy"):
        with deepnum.use_backend(backend):
            if not cuda.is_available():
                with pytest.raises(ValueError, match="the 'cuda' backend is unavailable: no CUDA device"):
                    ops.gemm(a, a, trans_b=True)
            with pytest.raises(TypeError, match="gemm: b is a deepnum.cuda.DeviceArray but a is a numpy.ndarray"):
                ops.gemm(x, a, trans_b=True)
            with pytest.raises(TypeError, match=r"mlp_train_step: ws\[0\] is a deepnum.cuda.DeviceArray but x is"):
                ops.mlp_train_step(x, np.zeros(2, np.int64), [spec((3, 2))], [np.zeros(2, np.float32)], ["linear"], 0.1)
    assert ops.array_namespace(a, a) is _cudabackend.DEVICE and ops.array_namespace(x) is _host.HOST
    with pytest.raises(TypeError, match="array_namespace: arrays on the device .* and on the host"):
        ops.array_namespace(x, a)


def test_the_namespaces_offer_the_same_functions():
    public = lambda ns: {n for n in dir(ns) if not n.startswith("_")}  # noqa: E731
    assert public(_host.HOST) == public(_cudabackend.DEVICE)
    assert _host.HOST.name == "cpu" and _cudabackend.DEVICE.name == "cuda"


def test_use_backend_does_not_select_cuda():
    """DeviceArrays choose the cuda backend; use_backend chooses among the CPU backends and says so."""
    start = deepnum.get_backend()
    with pytest.raises(ValueError, match="use_backend: 'cuda' is chosen by the arrays, not selected"):
        deepnum.use_backend("cuda")
    assert deepnum.get_backend() == start


@no_gpu
@pytest.mark.parametrize("make", [lambda: cuda.DeviceArray.from_numpy(np.ones(3)),
                                  lambda: cuda.DeviceArray.empty((2, 3), np.float32),
                                  lambda: cuda.DeviceArray.zeros(4, np.float64)],
                         ids=["from_numpy", "empty", "zeros"])
def test_without_a_device_constructors_raise_runtime_error(make):
    with pytest.raises(RuntimeError, match="CUDA|_cuda"):
        make()


@no_gpu
def test_without_a_device_device_name_raises():
    with pytest.raises(RuntimeError, match="no CUDA device|_cuda"):
        cuda.device_name()


def test_info_names_the_cuda_device_or_why_none():
    done = subprocess.run([sys.executable, "-m", "deepnum.cli", "info"], capture_output=True, text=True, check=True)
    line = [l for l in done.stdout.splitlines() if l.startswith("CUDA device:")]
    assert len(line) == 1, done.stdout
    if cuda.is_emulated():
        assert line[0] == "CUDA device: cuda (emulated on the CPU)"
    elif cuda.is_available():
        assert "compute capability" in line[0]
    else:
        assert line[0].startswith("CUDA device: none (") and cuda.unavailable_reason() in line[0]


def test_the_emulated_build_is_only_where_it_was_asked_for():
    """A normal install builds _cuda with nvcc (or not at all), never the emulation (DEEPNUM_CUDA=EMULATE, for tests);
    the emulated CI job says so with DEEPNUM_REQUIRE_GPU=emulated."""
    asked = os.environ.get("DEEPNUM_REQUIRE_GPU") == "emulated"
    assert cuda.is_emulated() == asked, ("the emulated _cuda is loaded: set DEEPNUM_REQUIRE_GPU=emulated to test it"
                                         if cuda.is_emulated() else "DEEPNUM_REQUIRE_GPU=emulated, but _cuda is not")


def test_device_status_never_raises():
    count, reason = _cuda_module().device_status()
    assert count >= 0 and (count > 0 or reason)


# ---- host copies of the per-element arithmetic (cuda/elementwise.h) vs the reference ---------

TOL = {np.float32: 2e-6, np.float64: 1e-14}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(ref.ACTIVATIONS))
def test_host_activations_match_reference(name, dtype):
    module = _cuda_module()
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.standard_normal(1000) * 4, [-1e4, -100.0, 0.0, 100.0, 1e4]]).astype(dtype)
    code, alpha = ref.ACTIVATIONS[name], 0.2
    want = np.empty_like(x)
    ref.activation_forward(want, x, code, alpha)
    y = module._host_activation_forward(x, code, alpha)
    assert y.dtype == dtype and y.shape == x.shape
    np.testing.assert_allclose(y, want, rtol=TOL[dtype], atol=TOL[dtype])
    dy = rng.standard_normal(x.shape).astype(dtype)
    want_dx = np.empty_like(x)
    ref.activation_backward(want_dx, want, dy, code, alpha)
    np.testing.assert_allclose(module._host_activation_backward(want, dy, code, alpha), want_dx,
                               rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("seed", [0, 1, 12345, 2**63 + 7, 2**64 - 1])
def test_host_dropout_uniform_is_the_reference_stream(seed):
    np.testing.assert_array_equal(_cuda_module()._host_dropout_uniform(seed, 10_001), ref.dropout_uniform(seed, 10_001))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [0.0, 0.3, 0.9])
def test_host_dropout_mask_equals_cpp(p, dtype):
    x = np.random.default_rng(1).standard_normal((37, 29)).astype(dtype)
    from deepnum import _core

    _, mask = _core.dropout_forward(x, p, 2**40 + 3)
    got = _cuda_module()._host_dropout_mask(x, p, 2**40 + 3)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, mask)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_host_sgd_step_matches_reference(momentum, nesterov, dtype):
    rng = np.random.default_rng(2)
    param, grad, vel = (rng.standard_normal(500).astype(dtype) for _ in range(3))
    want_p, want_v = param.copy(), vel.copy()
    ref.sgd_update(want_p, want_v if momentum else np.empty(0, dtype), grad, 0.1, momentum, nesterov, 0.01)
    got_v = vel.copy()
    _cuda_module()._host_sgd_update(param, got_v if momentum else None, grad, 0.1, momentum, nesterov, 0.01)
    np.testing.assert_allclose(param, want_p, rtol=TOL[dtype], atol=TOL[dtype])
    if momentum:
        np.testing.assert_allclose(got_v, want_v, rtol=TOL[dtype], atol=TOL[dtype])


def test_host_update_twins_reject_mismatched_arrays():
    module = _cuda_module()
    p = np.zeros(4, np.float32)
    with pytest.raises(TypeError, match="_host_sgd_update: velocity must be None or a C-contiguous array"):
        module._host_sgd_update(p, np.zeros(4), np.zeros(4, np.float32), 0.1, 0.9, False, 0.0)
    with pytest.raises(ValueError, match="_host_sgd_update: param, grad and velocity must have the same size"):
        module._host_sgd_update(p, np.zeros(3, np.float32), np.zeros(4, np.float32), 0.1, 0.9, False, 0.0)
    with pytest.raises(ValueError, match="_host_adam_update: param, m, v and grad must have the same size"):
        module._host_adam_update(p, p.copy(), p.copy(), np.zeros(5, np.float32), 0.1, 0.9, 0.999, 1e-8, 0.0, 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_host_adam_step_matches_reference(dtype):
    rng = np.random.default_rng(3)
    param, grad, m = (rng.standard_normal(500).astype(dtype) for _ in range(3))
    v = np.abs(rng.standard_normal(500)).astype(dtype)
    want = [a.copy() for a in (param, m, v)]
    ref.adam_update(want[0], want[1], want[2], grad, 1e-3, 0.9, 0.999, 1e-8, 0.01, 7)
    _cuda_module()._host_adam_update(param, m, v, grad, 1e-3, 0.9, 0.999, 1e-8, 0.01, 7)
    for got, w in zip((param, m, v), want):
        np.testing.assert_allclose(got, w, rtol=10 * TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_host_softmax_nll_matches_reference(scale, dtype):
    rng = np.random.default_rng(4)
    logits = (rng.standard_normal((33, 17)) * scale).astype(dtype)
    labels = rng.integers(0, 17, 33)
    want = np.empty_like(logits)
    want_loss = ref.softmax_nll_forward(want, logits, labels)
    loss, probs = _cuda_module()._host_softmax_nll_forward(logits, labels)
    np.testing.assert_allclose(probs, want, rtol=10 * TOL[dtype], atol=TOL[dtype])
    np.testing.assert_allclose(loss, want_loss, rtol=10 * TOL[dtype])


# ---- on a GPU -----------------------------------------------------------------------------

@pytest.mark.gpu
@needs_gpu
def test_device_array_round_trip_and_interface():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    d = cuda.DeviceArray.from_numpy(np.asfortranarray(x))
    assert d.shape == (3, 4) and d.dtype == np.float32 and d.size == 12 and d.ndim == 2 and len(d) == 3
    assert repr(d) == "DeviceArray(shape=(3, 4), dtype=float32)"
    np.testing.assert_array_equal(d.to_numpy(), x)
    np.testing.assert_array_equal(d.copy().numpy(), x)
    iface = d.__cuda_array_interface__
    assert iface["shape"] == (3, 4) and iface["typestr"] == "<f4" and iface["version"] == 3 and iface["data"][0]
    np.testing.assert_array_equal(cuda.DeviceArray.zeros((2, 2), np.float64).to_numpy(), np.zeros((2, 2)))


@pytest.mark.gpu
@needs_gpu
def test_ops_on_device_arrays_return_device_arrays():
    a = cuda.DeviceArray.from_numpy(np.ones((5, 3), np.float32))
    c = ops.gemm(a, a, trans_b=True)
    assert isinstance(c, cuda.DeviceArray) and c.shape == (5, 5)
    with pytest.raises(TypeError, match="gemm: b is a deepnum.cuda.DeviceArray but a is a numpy.ndarray"):
        ops.gemm(np.ones((2, 2), np.float32), a)
    with pytest.raises(ValueError, match="softmax_nll_forward"):
        ops.softmax_nll_forward(a, cuda.DeviceArray.from_numpy(np.array([0, 1, 2, 3, 4])))
    np.testing.assert_array_equal(c.to_numpy(), np.full((5, 5), 3, np.float32))


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (63, 65, 17), (64, 64, 16), (203, 301, 517), (1000, 10, 784)])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm_tile_edges_and_determinism(m, n, k, ta, tb):
    rng = np.random.default_rng(5)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
    da, db = cuda.DeviceArray.from_numpy(a), cuda.DeviceArray.from_numpy(b)
    first, again = ops.gemm(da, db, ta, tb).to_numpy(), ops.gemm(da, db, ta, tb).to_numpy()
    want = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64)
    np.testing.assert_allclose(first, want, rtol=1e-4, atol=1e-4 * np.sqrt(k))
    assert first.tobytes() == again.tobytes()


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bptt_steps, clip", [(1, None), (3, None), (5, 0.3), (None, 0.3), (3, 0.3)])
def test_rnn_truncation_and_clipping_on_the_device(bptt_steps, clip, dtype):
    """The op driver's rnn case runs full BPTT only: the device's stack of in-flight gradients
    (truncation) and its global-norm clip against the reference, for every activation."""
    from test_ops import call_on
    from test_rnn import rnn_inputs

    x, h0, w_xh, w_hh, b_h, dh_all = rnn_inputs(12, 3, 5, 9, dtype=dtype, seed=bptt_steps or 0)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    for activation in ("tanh", "sigmoid", "relu", "linear"):
        results = {}
        for backend in ("numpy", "cuda"):
            h_all = call_on(backend, ops.rnn_forward, x, h0, w_xh, w_hh, b_h, activation)
            results[backend] = (h_all,) + call_on(backend, ops.rnn_backward, dh_all, x, h_all, h0, w_xh, w_hh,
                                                  activation, bptt_steps=bptt_steps, clip=clip)
        for i, (got, want) in enumerate(zip(results["cuda"], results["numpy"])):
            np.testing.assert_allclose(got, want, **tol, err_msg=f"{activation}, output {i}")
