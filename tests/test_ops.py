"""One driver for op × backend × {forward, gradient, bad input, determinism}.

Cases (inputs, forward, backward) are in opcases.py. The NumPy reference backend is the
oracle; the reference itself is checked against finite differences like every backend.
"""
import contextlib
import importlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import deepnum
from deepnum import _core, cuda, ops
from gradcheck import numeric_gradient
from opcases import CASES, Case, mutate_array, rng_of

HOST_BACKENDS = ["cpp", "numba", "numpy"]  # never skipped: a missing build is a failure
# cuda computes on device arrays: the driver copies inputs to the device and outputs back (on_backend).
CUDA = pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(not cuda.is_available(),
                                                                       reason=str(cuda.unavailable_reason()))])
BACKENDS = [CUDA] + HOST_BACKENDS
needs_gpu = pytest.mark.skipif(not cuda.is_available(), reason=str(cuda.unavailable_reason()))
needs_emulated = pytest.mark.skipif(not cuda.is_emulated(),
                                    reason="not the emulated CUDA build (DEEPNUM_CUDA=EMULATE)")
TOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}
GRADIENT_CASES = [name for name, case in CASES.items() if case.backward is not None]


def to_device(v):
    """numpy arrays (integers as int64) to DeviceArrays, in dicts, tuples and lists too; the rest (and 0-d
    arrays: the cotangent of a scalar loss stays a host scale factor) unchanged."""
    if isinstance(v, np.ndarray) and v.ndim > 0:
        return cuda.DeviceArray.from_numpy(v.astype(np.int64) if v.dtype.kind in "iu" else v)
    if isinstance(v, dict):
        return {k: to_device(a) for k, a in v.items()}
    if isinstance(v, (tuple, list)) and any(isinstance(a, np.ndarray) for a in v):
        return type(v)(to_device(a) for a in v)
    return v


def to_host(v):
    if isinstance(v, cuda.DeviceArray):
        return v.to_numpy()
    if isinstance(v, dict):
        return {k: to_host(a) for k, a in v.items()}
    if isinstance(v, tuple):
        return tuple(to_host(a) for a in v)
    return v


def on_backend(case, backend):
    """``case`` with numpy in and out on every backend: for cuda, inputs go to the device and results back."""
    if backend != "cuda":
        return case
    def backward(kw, outs, cots):
        return to_host(case.backward(to_device(kw), to_device(outs), to_device(cots)))

    return Case(case.name, case.draw, lambda kw: to_host(case.forward(to_device(kw))),
                backward if case.backward else None, case.diff_outputs, case.wrt)


def selected(backend):
    """use_backend for a CPU backend; nothing for cuda, which the DeviceArrays choose."""
    return contextlib.nullcontext() if backend == "cuda" else deepnum.use_backend(backend)


def call_on(backend, op, *args, **kwargs):
    """ops.<op>(*args) on ``backend`` with numpy arguments and results (copied through the device for cuda)."""
    with selected(backend):
        if backend == "cuda":
            return to_host(op(*to_device(args), **kwargs))
        return op(*args, **kwargs)


def run(case, backend, kw):
    with selected(backend):
        return on_backend(case, backend).forward(kw)


def assert_same(got, want, what, dtype, exact=False):
    """Check a tuple of outputs: type and shape and dtype first, then values."""
    assert len(got) == len(want), f"{what}: {len(got)} outputs, expected {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        where = f"{what}, output {i}"
        if isinstance(w, float):
            assert isinstance(g, float), f"{where}: got {type(g).__name__}, expected float"
            g, w = np.float64(g), np.float64(w)
        else:
            assert isinstance(g, np.ndarray), f"{where}: got {type(g).__name__}"
            assert g.shape == w.shape, f"{where}: shape {g.shape}, expected {w.shape}"
            assert g.dtype == w.dtype, f"{where}: dtype {g.dtype}, expected {w.dtype}"
        if exact or g.dtype.kind in "iu":
            np.testing.assert_array_equal(g, w, err_msg=where)
            continue
        tol = TOL[np.dtype(dtype)]
        finite = np.abs(w[np.isfinite(w)]) if np.ndim(w) else np.abs(w[None][np.isfinite(w)])
        scale = max(1.0, float(finite.max())) if finite.size else 1.0
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol * scale, equal_nan=True, err_msg=where)


def bits(outs):
    return [np.asarray(o).tobytes() for o in outs]


def describe(kw):
    return ", ".join(f"{k}={v.shape}" if isinstance(v, np.ndarray) else f"{k}={v!r}" for k, v in kw.items())


# ---- forward ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", list(CASES))
@given(data=st.data())
def test_forward(op, backend, dtype, data):
    case = CASES[op]
    kw = case.draw(data, dtype, small=False)
    assert_same(run(case, backend, kw), run(case, "numpy", kw), f"{op} forward [{describe(kw)}]", dtype)


# ---- gradients -------------------------------------------------------------------------------

def finite_difference(case, kw, name, cots, h=1e-6):
    def loss():
        outs = case.forward(kw)
        return sum(float(np.sum(np.asarray(outs[j]) * c)) for j, c in zip(case.diff_outputs, cots))

    return numeric_gradient(loss, kw[name], h)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", GRADIENT_CASES)
@given(data=st.data())
def test_gradient(op, backend, data):
    case = on_backend(CASES[op], backend)
    kw = case.draw(data, np.float64, small=True)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="cotangent seed"))
    with selected(backend):
        outs = case.forward(kw)
        cots = [rng.standard_normal(np.shape(outs[j])) for j in case.diff_outputs]
        grads = case.backward(kw, outs, cots)
        for name in case.wrt(kw):
            numeric = finite_difference(case, kw, name, cots)
            assert grads[name].shape == numeric.shape, f"{op} backward, input {name}: shape"
            scale = max(float(np.abs(numeric).max()), 1e-3)
            err = float(np.abs(grads[name] - numeric).max()) / scale
            assert err < 1e-6, f"{op} backward, input {name} [{describe(kw)}]: relative error {err:.2e}"


# ---- bad input -------------------------------------------------------------------------------

FLOAT_MUTATIONS = ["ndim_up", "ndim_down", "dim_change", "zero_dim", "int32", "float16", "complex64",
                   "other_float", "fortran", "strided", "nan", "list"]
INT_MUTATIONS = ["ndim_up", "dim_change", "float64", "out_of_range", "strided"]


def mutate(a, how, data):
    return mutate_array(a, how, np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="mutation seed")))


def contiguous(kw):
    return {k: np.ascontiguousarray(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", list(CASES))
@given(data=st.data())
def test_bad_input(op, backend, data):
    """A mutated input either raises ValueError/TypeError naming the op, or gives the reference's answer."""
    case, ref = on_backend(CASES[op], backend), CASES[op]
    dtype = data.draw(st.sampled_from([np.float32, np.float64]), label="dtype")
    kw = case.draw(data, dtype, small=True)
    stage = data.draw(st.sampled_from(["forward", "backward"] if case.backward else ["forward"]), label="stage")

    def call(c, args):
        return c.forward(args)

    target = kw
    if stage == "backward":
        outs = run(ref, "numpy", kw)
        cot_names = [f"d{j}" for j in case.diff_outputs]
        target = dict(zip(cot_names, (np.ones_like(np.asarray(outs[j])) for j in case.diff_outputs)))

        def call(c, cots):  # noqa: F811
            return tuple(v for _, v in sorted(c.backward(kw, outs, [cots[n] for n in cot_names]).items()))

        if isinstance(outs[case.diff_outputs[0]], float):  # a scalar loss has no shape to break
            target, call = kw, lambda c, args: c.forward(args)
    names = sorted(k for k, v in target.items() if isinstance(v, np.ndarray))
    name = data.draw(st.sampled_from(names), label="argument")
    arg = target[name]
    how = data.draw(st.sampled_from(INT_MUTATIONS if arg.dtype.kind in "iu" else FLOAT_MUTATIONS), label="mutation")
    bad = dict(target, **{name: mutate(arg, how, data)})
    with selected(backend):
        try:
            got = call(case, bad)
        except (ValueError, TypeError) as e:
            assert str(e).startswith(op), f"{op} {stage}: {how} on {name}: message does not name the op: {e}"
            return
    with deepnum.use_backend("numpy"):
        want = call(ref, contiguous(bad))
    assert_same(got, want, f"{op} {stage} after {how} on {name}", bad[name].dtype if how == "other_float" else dtype)


def f32(*shape):
    return np.ones(shape, dtype=np.float32)


BAD_CALLS = [
    ("stride 0", lambda: ops.conv2d_forward(f32(1, 1, 4, 4), f32(1, 1, 2, 2), stride=0), ValueError),
    ("negative padding", lambda: ops.conv2d_forward(f32(1, 1, 4, 4), f32(1, 1, 2, 2), padding=-1), ValueError),
    ("kernel > padded input", lambda: ops.conv2d_forward(f32(1, 1, 4, 4), f32(1, 1, 7, 2), padding=1), ValueError),
    ("channel mismatch", lambda: ops.conv2d_forward(f32(1, 2, 4, 4), f32(1, 3, 2, 2)), ValueError),
    ("stride triple", lambda: ops.conv2d_forward(f32(1, 1, 4, 4), f32(1, 1, 2, 2), stride=(1, 1, 1)), ValueError),
    ("stride float", lambda: ops.conv2d_forward(f32(1, 1, 4, 4), f32(1, 1, 2, 2), stride=1.5), TypeError),
    ("conv dy shape", lambda: ops.conv2d_backward(f32(1, 1, 2, 2), f32(1, 1, 4, 4), f32(1, 1, 2, 2)), ValueError),
    ("pool window > input", lambda: ops.max_pool2d_forward(f32(1, 1, 3, 3), size=4), ValueError),
    ("pool size 0", lambda: ops.max_pool2d_forward(f32(1, 1, 3, 3), size=0), ValueError),
    ("argmax out of range", lambda: ops.max_pool2d_backward(f32(1, 1, 1, 1), np.array([[[[9]]]]), (1, 1, 3, 3)),
     ValueError),
    ("argmax negative", lambda: ops.max_pool2d_backward(f32(1, 1, 1, 1), np.array([[[[-1]]]]), (1, 1, 3, 3)),
     ValueError),
    ("argmax float", lambda: ops.max_pool2d_backward(f32(1, 1, 1, 1), f32(1, 1, 1, 1), (1, 1, 3, 3)), TypeError),
    ("x_shape mismatch", lambda: ops.max_pool2d_backward(f32(1, 1, 1, 1), np.zeros((1, 1, 1, 1), np.int64),
                                                         (2, 1, 3, 3)), ValueError),
    ("label too big", lambda: ops.softmax_nll_forward(f32(2, 3), np.array([0, 3])), ValueError),
    ("label negative", lambda: ops.softmax_nll_backward(f32(2, 3), np.array([-1, 0])), ValueError),
    ("float labels", lambda: ops.softmax_nll_forward(f32(2, 3), np.array([0.0, 1.0])), TypeError),
    ("unknown activation", lambda: ops.activation_forward("gelu", f32(3)), ValueError),
    ("negative alpha", lambda: ops.activation_forward("leaky_relu", f32(3), alpha=-1.0), ValueError),
    ("dropout p = 1", lambda: ops.dropout_forward(f32(3), 1.0, 0), ValueError),
    ("dropout p nan", lambda: ops.dropout_forward(f32(3), float("nan"), 0), ValueError),
    ("dropout seed < 0", lambda: ops.dropout_forward(f32(3), 0.5, -1), ValueError),
    ("dropout seed >= 2**64", lambda: ops.dropout_forward(f32(3), 0.5, 2**64), ValueError),
    ("sgd momentum without velocity", lambda: ops.sgd_update(f32(3), f32(3), 0.1, momentum=0.9), ValueError),
    ("sgd lr nan", lambda: ops.sgd_update(f32(3), f32(3), float("nan")), ValueError),
    ("sgd non-contiguous param", lambda: ops.sgd_update(f32(3, 4)[:, ::2], f32(3, 2), 0.1), TypeError),
    ("sgd Fortran param", lambda: ops.sgd_update(np.asfortranarray(f32(3, 4)), f32(3, 4), 0.1), TypeError),
    ("sgd read-only param", lambda: ops.sgd_update(np.broadcast_to(f32(1), (3,)), f32(3), 0.1), TypeError),
    ("sgd float64 velocity", lambda: ops.sgd_update(f32(3), f32(3), 0.1, 0.9, np.zeros(3)), TypeError),
    ("sgd list param", lambda: ops.sgd_update([1.0, 2.0], f32(2), 0.1), TypeError),
    ("adam step 0", lambda: ops.adam_update(f32(3), f32(3), f32(3), f32(3), 0), ValueError),
    ("adam beta1 = 1", lambda: ops.adam_update(f32(3), f32(3), f32(3), f32(3), 1, beta1=1.0), ValueError),
    ("adam strided m", lambda: ops.adam_update(f32(3), f32(3), f32(6)[::2], f32(3), 1), TypeError),
    ("gemm inner mismatch", lambda: ops.gemm(f32(2, 3), f32(4, 2)), ValueError),
    ("linear bias shape", lambda: ops.linear_forward(f32(2, 3), f32(3, 4), f32(3)), ValueError),
    ("rnn leaky_relu", lambda: ops.rnn_forward(f32(2, 1, 3), f32(1, 4), f32(3, 4), f32(4, 4), f32(4), "leaky_relu"),
     ValueError),
    ("rnn x 2-D", lambda: ops.rnn_forward(f32(1, 3), f32(1, 4), f32(3, 4), f32(4, 4), f32(4)), ValueError),
    ("rnn x features", lambda: ops.rnn_forward(f32(2, 1, 2), f32(1, 4), f32(3, 4), f32(4, 4), f32(4)), ValueError),
    ("rnn w_hh not square", lambda: ops.rnn_forward(f32(2, 1, 3), f32(1, 4), f32(3, 4), f32(4, 5), f32(4)),
     ValueError),
    ("rnn h0 batch", lambda: ops.rnn_forward(f32(2, 1, 3), f32(2, 4), f32(3, 4), f32(4, 4), f32(4)), ValueError),
    ("rnn b_h shape", lambda: ops.rnn_forward(f32(2, 1, 3), f32(1, 4), f32(3, 4), f32(4, 4), f32(3)), ValueError),
    ("rnn h_all steps", lambda: ops.rnn_backward(f32(2, 1, 4), f32(2, 1, 3), f32(3, 1, 4), f32(1, 4), f32(3, 4),
                                                 f32(4, 4)), ValueError),
    ("rnn bptt_steps < 0", lambda: ops.rnn_backward(f32(2, 1, 4), f32(2, 1, 3), f32(2, 1, 4), f32(1, 4), f32(3, 4),
                                                    f32(4, 4), bptt_steps=-1), ValueError),
    ("rnn bptt_steps float", lambda: ops.rnn_backward(f32(2, 1, 4), f32(2, 1, 3), f32(2, 1, 4), f32(1, 4),
                                                      f32(3, 4), f32(4, 4), bptt_steps=2.0), TypeError),
    ("rnn clip 0", lambda: ops.rnn_backward(f32(2, 1, 4), f32(2, 1, 3), f32(2, 1, 4), f32(1, 4), f32(3, 4),
                                            f32(4, 4), clip=0), ValueError),
    ("rnn clip nan", lambda: ops.rnn_backward(f32(2, 1, 4), f32(2, 1, 3), f32(2, 1, 4), f32(1, 4), f32(3, 4),
                                              f32(4, 4), clip=float("nan")), ValueError),
]


# host backends only: the lambdas pass numpy arrays (the checks are the same Python code for cuda,
# which test_bad_input exercises on device arrays)
@pytest.mark.parametrize("backend", HOST_BACKENDS)
@pytest.mark.parametrize("what,call,error", BAD_CALLS, ids=[b[0] for b in BAD_CALLS])
def test_bad_call(backend, what, call, error):
    assert call.__code__.co_names[0] == "ops"
    op = call.__code__.co_names[1]  # the ops function the lambda calls
    with selected(backend), pytest.raises(error) as info:
        call()
    assert str(info.value).startswith(op), f"{what}: message does not name {op}: {info.value}"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("op", ["linear", "conv2d"])
def test_backward_without_dx(op, backend):
    """need_dx=False returns dx None and the same dw, db as the full backward."""
    rng = np.random.default_rng(3)
    if op == "linear":
        args = (rng.standard_normal((5, 3)), rng.standard_normal((5, 7)), rng.standard_normal((7, 3)))
        backward = ops.linear_backward
    else:
        args = (rng.standard_normal((2, 4, 3, 3)), rng.standard_normal((2, 3, 6, 6)),
                rng.standard_normal((4, 3, 2, 2)), 2)
        backward = ops.conv2d_backward
    dx, dw, db = call_on(backend, backward, *args)
    none, dw2, db2 = call_on(backend, backward, *args, need_dx=False)
    assert none is None and dx.shape == args[1].shape
    np.testing.assert_array_equal(dw2, dw)
    np.testing.assert_array_equal(db2, db)


# ---- determinism and large shapes -----------------------------------------------------------

@pytest.mark.parametrize("backend", ["cpp", "numba"])
@pytest.mark.parametrize("op", list(CASES))
@given(data=st.data())
def test_deterministic_across_threads(op, backend, data):
    """Same inputs give bit-identical outputs, run again and with 1 or 2 threads."""
    case = CASES[op]
    kw = case.draw(data, np.float32, small=False)
    threads = deepnum.get_num_threads()
    try:
        deepnum.set_num_threads(2)
        first, again = bits(run(case, backend, kw)), bits(run(case, backend, kw))
        deepnum.set_num_threads(1)
        single = bits(run(case, backend, kw))
    finally:
        deepnum.set_num_threads(threads)
    assert first == again, f"{op}: two runs differ"
    assert first == single, f"{op}: 1 and 2 threads differ"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", list(CASES))
@pytest.mark.gpu
@needs_gpu
@given(data=st.data())
def test_cuda_deterministic_across_reruns(op, dtype, data):
    """On the device, the same inputs give bit-identical outputs (no atomics, sums in a fixed order)."""
    case = on_backend(CASES[op], "cuda")
    kw = case.draw(data, dtype, small=False)
    assert bits(case.forward(kw)) == bits(case.forward(kw)), f"{op}: two runs differ [{describe(kw)}]"
    if case.backward is not None:
        outs = case.forward(kw)
        cots = [np.ones_like(np.asarray(outs[j])) for j in case.diff_outputs]
        once, again = case.backward(kw, outs, cots), case.backward(kw, outs, cots)
        assert all(bits([once[k]]) == bits([again[k]]) for k in once), f"{op} backward: two runs differ"


@contextlib.contextmanager
def emulated_limits(max_blocks, conv_chunk_elems):
    """The emulated build's grid cap and conv2d chunk size shrunk for the block (cuda/common.cuh's Limits)."""
    from deepnum import _cuda
    previous = _cuda._set_limits(max_blocks, conv_chunk_elems)
    try:
        yield
    finally:
        _cuda._set_limits(*previous)


@pytest.mark.parametrize("max_blocks, conv_chunk_elems", [(1, 1), (2, 50)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", list(CASES))
@pytest.mark.emulated
@needs_emulated
@given(data=st.data())
def test_cuda_past_the_grid_limits(op, dtype, max_blocks, conv_chunk_elems, data):
    """Every op with the grid capped at 1 or 2 blocks and conv2d's chunks at 1 image or a few: the driver's shapes
    then pass the limits in cuda/ (grid-stride tails past 256 or 512 elements, softmax's 4 rows per block, the
    bias-gradient blocks, conv2d's chunks of images); forward and backward match the reference. gemm's blockIdx.y
    loop and the column-sum blocks need more rows and columns: test_cuda_gemm_and_linear_past_the_grid_limits."""
    case = on_backend(CASES[op], "cuda")
    kw = case.draw(data, dtype, small=False)
    with emulated_limits(max_blocks, conv_chunk_elems):
        got = case.forward(kw)
        grads = None
        if case.backward is not None:
            cots = [np.ones_like(np.asarray(got[j])) for j in case.diff_outputs]
            grads = case.backward(kw, got, cots)
    ref = CASES[op]
    assert_same(got, run(ref, "numpy", kw), f"{op} forward, {max_blocks} blocks [{describe(kw)}]", dtype)
    if grads is not None:
        with deepnum.use_backend("numpy"):
            want = ref.backward(kw, ref.forward(kw), cots)
        assert_same(tuple(grads[k] for k in sorted(grads)), tuple(want[k] for k in sorted(want)),
                    f"{op} backward, {max_blocks} blocks [{describe(kw)}]", dtype)


@pytest.mark.parametrize("max_blocks", [1, 2])
@pytest.mark.parametrize("m", [65, 130, 200])
@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.emulated
@needs_emulated
def test_cuda_gemm_and_linear_past_the_grid_limits(m, trans_a, trans_b, max_blocks):
    """More 64-row tiles than grid.y (gemm's blockIdx.y loop) and more 32-column groups than blocks (linear's
    column sums), against float64 NumPy."""
    rng = np.random.default_rng(m)
    k, n = 19, 70
    a = rng.standard_normal((k, m) if trans_a else (m, k))
    b = rng.standard_normal((n, k) if trans_b else (k, n))
    want = (a.T if trans_a else a) @ (b.T if trans_b else b)
    with emulated_limits(max_blocks, 1 << 24):
        got = call_on("cuda", ops.gemm, a, b, trans_a, trans_b)
        x, w, dy = rng.standard_normal((m, k)), rng.standard_normal((k, n)), rng.standard_normal((m, n))
        y = call_on("cuda", ops.linear_forward, x, w, np.zeros(n))
        dx, dw, db = call_on("cuda", ops.linear_backward, dy, x, w)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    for g, w_ in ((y, x @ w), (dx, dy @ w.T), (dw, x.T @ dy), (db, dy.sum(0))):
        np.testing.assert_allclose(g, w_, rtol=1e-12, atol=1e-11)


def large_inputs(rng):
    """Shapes big enough to take the threaded and tiled paths (the seed models' sizes)."""
    n = 300_007  # above the elementwise threading threshold (cpp/parallel.h), not a multiple of any SIMD width
    x = rng.standard_normal(n).astype(np.float32)
    return {
        "gemm": lambda: ops.gemm(rng.standard_normal((203, 517)).astype(np.float32),
                                 rng.standard_normal((517, 301)).astype(np.float32)),
        "gemm_tt": lambda: ops.gemm(rng.standard_normal((517, 203)).astype(np.float32),
                                    rng.standard_normal((301, 517)).astype(np.float32), True, True),
        "gemm_one_tile": lambda: ops.gemm(rng.standard_normal((10, 787)).astype(np.float32),  # numba: two tiles of columns
                                          rng.standard_normal((787, 100)).astype(np.float32)),
        "linear_backward": lambda: ops.linear_backward(rng.standard_normal((600, 10)).astype(np.float32),
                                                       rng.standard_normal((600, 784)).astype(np.float32),
                                                       rng.standard_normal((784, 10)).astype(np.float32)),
        "conv2d": lambda: ops.conv2d_backward(rng.standard_normal((10, 40, 8, 8)).astype(np.float32),
                                              rng.standard_normal((10, 20, 12, 12)).astype(np.float32),
                                              rng.standard_normal((40, 20, 5, 5)).astype(np.float32)),
        "conv2d_chunks": lambda: ops.conv2d_backward(rng.standard_normal((37, 40, 8, 8)).astype(np.float32),
                                                     rng.standard_normal((37, 20, 12, 12)).astype(np.float32),
                                                     rng.standard_normal((40, 20, 5, 5)).astype(np.float32)),
        "conv2d_forward": lambda: ops.conv2d_forward(rng.standard_normal((10, 1, 28, 28)).astype(np.float32),
                                                     rng.standard_normal((20, 1, 5, 5)).astype(np.float32)),
        "conv2d_forward_taps": lambda: ops.conv2d_forward(rng.standard_normal((10, 20, 12, 12)).astype(np.float32),
                                                          rng.standard_normal((40, 20, 5, 5)).astype(np.float32)),
        "pool": lambda: ops.max_pool2d_forward(rng.standard_normal((30, 20, 24, 24)).astype(np.float32)),
        "softmax": lambda: ops.softmax_nll_forward(rng.standard_normal((600, 10)).astype(np.float32),
                                                   rng.integers(0, 10, 600)),
        "sigmoid": lambda: ops.activation_forward("sigmoid", x),
        "tanh_backward": lambda: ops.activation_backward("tanh", np.tanh(x), x),
        "dropout": lambda: ops.dropout_forward(x, 0.3, 12345),
        "adam": lambda: _adam_large(x),
        "rnn": lambda: _rnn_large(rng),
    }


def _adam_large(x):
    param, m, v = x.copy(), np.zeros_like(x), np.zeros_like(x)
    ops.adam_update(param, x, m, v, 3)
    return param, m, v


def _rnn_large(rng):
    """seq-MNIST's layer sizes (8 of its 28 steps), N large enough that the elementwise steps run
    threaded (N·H above the threshold of cpp/parallel.h)."""
    x = rng.standard_normal((8, 2100, 28)).astype(np.float32)
    h0 = np.zeros((2100, 128), np.float32)
    w_xh = (rng.standard_normal((28, 128)) / np.sqrt(28)).astype(np.float32)
    w_hh = (rng.standard_normal((128, 128)) * 0.5 / np.sqrt(128)).astype(np.float32)
    h_all = ops.rnn_forward(x, h0, w_xh, w_hh, np.zeros(128, np.float32))
    dh_all = rng.standard_normal(h_all.shape).astype(np.float32)
    return (h_all,) + ops.rnn_backward(dh_all, x, h_all, h0, w_xh, w_hh)


LARGE = list(large_inputs(np.random.default_rng(0)))


@pytest.mark.parametrize("backend", ["cpp", "numba"])
@pytest.mark.parametrize("name", LARGE)
def test_large_shapes(backend, name):
    def outputs(backend, threads):
        deepnum.set_num_threads(threads)
        with selected(backend):
            out = large_inputs(np.random.default_rng(1))[name]()
        return out if isinstance(out, tuple) else (out,)

    threads = deepnum.get_num_threads()
    try:
        got2, got1 = outputs(backend, 2), outputs(backend, 1)
    finally:
        deepnum.set_num_threads(threads)
    assert_same(got2, outputs("numpy", threads), f"{name} [{backend}]", np.float32)
    assert bits(got2) == bits(got1), f"{name} [{backend}]: 1 and 2 threads differ"


# ---- numerical edge cases --------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_nll_huge_logits(backend, dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [1e4, 1e4, -1e4]], dtype=dtype)
    labels = np.array([0, 1, 2])
    loss, probs = call_on(backend, ops.softmax_nll_forward, logits, labels)
    dlogits = call_on(backend, ops.softmax_nll_backward, probs, labels)
    assert np.isfinite(loss) and np.isfinite(probs).all() and np.isfinite(dlogits).all()
    np.testing.assert_allclose(loss, (0 + 2e4 + (2e4 + np.log(2))) / 3, rtol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_array_equal(probs, [[1, 0, 0], [0, 0, 1], [0.5, 0.5, 0]])  # e^-1e4 is 0, not a tiny number


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("shape", [(6, 1, 2), (9, 70, 5), (40, 3, 33), (70, 80, 90), (50, 70, 7), (5, 1100, 34)])
def test_gemm_nan_and_inf_stay_in_their_row(backend, trans_a, trans_b, shape):
    """A NaN or inf in row i of op(a) reaches row i of c only (in every block and path of the kernels: the
    shapes reach numba's dot loop with and without a copy, its panel products with b read in place and packed and
    their edge tiles, its transposed path for few columns, two k slices of the dot loop and of the panels, and the
    rows left after the groups of 4)."""
    M, K, N = shape
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((M, K)), rng.standard_normal((K, N))
    a[0, 0], a[M - 1, K - 1] = np.nan, np.inf
    c = call_on(backend, ops.gemm, np.ascontiguousarray(a.T) if trans_a else a,
                np.ascontiguousarray(b.T) if trans_b else b, trans_a, trans_b)
    assert np.isnan(c[0]).all() and not np.isfinite(c[M - 1]).any()
    np.testing.assert_allclose(c[1:M - 1], (a @ b)[1:M - 1], rtol=1e-12, atol=1e-12)


def test_numba_conv2d_in_chunks_of_images(monkeypatch):
    """numba's conv2d cuts a large batch into chunks of images (dw and db summed chunk after chunk): with one
    image per chunk it still gives the reference's outputs and gradients, with stride and padding."""
    monkeypatch.setattr(importlib.import_module("deepnum._numba.conv2d"), "CHUNK", 1)
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((5, 3, 9, 8)), rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
    dy = rng.standard_normal((5, 4, 5, 9))
    got, want = ({"y": call_on(backend, ops.conv2d_forward, x, w, b, (2, 1), (1, 1)),
                  "grads": call_on(backend, ops.conv2d_backward, dy, x, w, (2, 1), (1, 1))}
                 for backend in ("numba", "numpy"))
    np.testing.assert_allclose(got["y"], want["y"], rtol=1e-12, atol=1e-12)
    for g, r in zip(got["grads"], want["grads"]):
        np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("accumulate", [False, True])
def test_numba_gemm_of_one_tile_in_two_of_columns(accumulate):
    """numba's panel product of a single tile above MIN_PARALLEL (a small batch's x·w) is cut into two tiles of
    columns, one per thread: overwritten or added to, c is the product, K odd, the same bits on 1 and 2 threads."""
    g = importlib.import_module("deepnum._numba.gemm")
    rng = np.random.default_rng(7)
    a, b, c0 = rng.standard_normal((10, 787)), rng.standard_normal((787, 100)), rng.standard_normal((10, 100))
    assert 10 * 787 * 100 >= g.MIN_PARALLEL and 10 <= g.MB and 100 <= g.NB
    got = {}
    threads = deepnum.get_num_threads()
    try:
        for t in (1, 2):
            deepnum.set_num_threads(t)
            got[t] = c0.copy()
            g.gemm(got[t], a, b, False, False, accumulate)
    finally:
        deepnum.set_num_threads(threads)
    np.testing.assert_allclose(got[1], a @ b + (c0 if accumulate else 0), rtol=1e-12, atol=1e-11)
    assert got[1].tobytes() == got[2].tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a", [False, True])
def test_numba_gemm_panel_boundaries(trans_a, dtype):
    """numba's products with op(b) = b (register-tile panels; one row: a loop along b's rows): shapes on both sides
    of the register tile (MR rows, NR columns), the k slice (KC), the tiles (MB, NB) and the row count from which b
    is packed, overwritten and added to, against the reference, with 1 and 2 threads giving the same bits."""
    g = importlib.import_module("deepnum._numba.gemm")
    MR, NR = g.TILES[np.dtype(dtype)]
    rng = np.random.default_rng(11)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    threads = deepnum.get_num_threads()
    try:
        shapes = [(m, n, k) for m in (1, MR - 1, MR, MR + 1, g.PACK_B_ROWS + 1, g.MB + 1)
                  for n in (1, NR - 1, NR, NR + 1, g.NARROW + 1, g.NB + 1) for k in (1, 17, g.KC, g.KC + 1)]
        shapes.append((1, 301, 1103))  # one row above MIN_PARALLEL: its loop along b's rows in two tiles
        assert 301 * 1103 >= g.MIN_PARALLEL
        for m, n, k in shapes:
            a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
            b = rng.standard_normal((k, n)).astype(dtype)
            c0 = rng.standard_normal((m, n)).astype(dtype)
            want = (a.T if trans_a else a).astype(np.float64) @ b.astype(np.float64)
            scale = np.sqrt(k) * max(np.abs(want).max(), 1.0)
            for accumulate in (False, True):
                got = {}
                for t in (1, 2):
                    deepnum.set_num_threads(t)
                    got[t] = c0.copy()
                    g.gemm(got[t], a, b, trans_a, False, accumulate)
                where = f"m={m} n={n} k={k} accumulate={accumulate}"
                assert np.abs(got[1] - want - (c0 if accumulate else 0)).max() <= tol * scale, where
                assert got[1].tobytes() == got[2].tobytes(), f"{where}: 1 and 2 threads differ"
    finally:
        deepnum.set_num_threads(threads)


def test_numba_gemm_puts_the_slp_switch_back():
    """The micro-kernels are compiled with LLVM's SLP vectorizer on (_with_slp); Numba's switch is put back after,
    also when the compilation fails."""
    import numba

    g = importlib.import_module("deepnum._numba.gemm")
    before = numba.core.config.SLP_VECTORIZE
    assert g._with_slp(lambda: numba.core.config.SLP_VECTORIZE) == 1
    assert numba.core.config.SLP_VECTORIZE == before

    def fails():
        raise RuntimeError("compilation failed")
    with pytest.raises(RuntimeError, match="compilation failed"):
        g._with_slp(fails)
    assert numba.core.config.SLP_VECTORIZE == before


@pytest.mark.parametrize("shape, stride, padding", [
    ((3, 3, 9, 8, 4, 5, 5), (2, 1), (2, 3)),  # padding past the edge on both sides, stride in h
    ((2, 4, 7, 11, 3, 4, 5), (1, 3), (0, 1)),  # stride in w: the taps of a q read every third pixel
    ((1, 3, 5, 5, 2, 5, 5), 1, 0),  # kernel = input: one position
])
def test_numba_conv2d_forward_on_rows_of_taps(shape, stride, padding):
    """With C*R*S >= gemm.DOT_MIN taps, numba's forward lays the patches out as rows (one position's taps
    contiguous) for the dot products: stride, padding and a kernel the size of the input give the reference."""
    n, c, h, w, k, r, s = shape
    assert c * r * s >= importlib.import_module("deepnum._numba.gemm").DOT_MIN
    rng = np.random.default_rng(5)
    x, wt, b = rng.standard_normal((n, c, h, w)), rng.standard_normal((k, c, r, s)), rng.standard_normal(k)
    got, want = (call_on(backend, ops.conv2d_forward, x, wt, b, stride, padding) for backend in ("numba", "numpy"))
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


# ---- conv2d's Winograd path (cpp) -------------------------------------------------------------

# float32: the bound on max |got - exact| / max |exact| of each output on the Winograd path, where exact is the
# float64 reference on the same float32 inputs. Measured over 300 draws of winograd_sizes (median, max): y 8.0e-7,
# 1.5e-6; dx 7.4e-7, 1.6e-6; dw 1.6e-6, 3.5e-6; numba's im2col path on the same draws: y 2.2e-7, 5.4e-7; dx 1.2e-7,
# 2.8e-7; dw 1.2e-7, 2.8e-7. db is summed as on the im2col path.
WINOGRAD_F32_ERROR = {"y": 3e-6, "dx": 3e-6, "dw": 6e-6, "db": 1e-5}


def winograd_sizes(data):
    """(N, C, H, W, K, padding) that take the cpp backend's F(2x2, 5x5) path: 5x5 kernels at stride 1, channel
    counts at and around the SIMD widths, odd planes, padding 0-5 (past the kernel's reach); the fewest images that
    give the 64 tiles it needs, or a few more."""
    c = data.draw(st.sampled_from([4, 5, 7, 8, 9, 16, 17, 20]), label="C")
    k = data.draw(st.sampled_from([4, 5, 7, 8, 9, 16, 17, 40]), label="K")
    ph, pw = data.draw(st.integers(0, 5), label="pad_h"), data.draw(st.integers(0, 5), label="pad_w")
    h, w = (data.draw(st.integers(max(1, 5 - 2 * p), 14), label=name) for p, name in ((ph, "H"), (pw, "W")))
    tiles = (h + 2 * ph - 3) // 2 * ((w + 2 * pw - 3) // 2)
    n = data.draw(st.integers(-(-64 // tiles), -(-64 // tiles) + 3), label="N")
    assert _core.conv2d_winograd_applies(n, c, h, w, k, 5, 5, 1, 1, ph, pw), (n, c, h, w, k, ph, pw)
    return n, c, h, w, k, (ph, pw)


def conv2d_both_ways(backend, x, w, b, padding, dy):
    """(y, dx, dw, db) of conv2d at stride 1 on ``backend``."""
    return (call_on(backend, ops.conv2d_forward, x, w, b, 1, padding),
            *call_on(backend, ops.conv2d_backward, dy, x, w, 1, padding))


def winograd_inputs(data, dtype):
    n, c, h, w, k, padding = winograd_sizes(data)
    rng = rng_of(data)
    x, wt, b = (rng.standard_normal(s).astype(dtype) for s in ((n, c, h, w), (k, c, 5, 5), (k,)))
    dy = rng.standard_normal((n, k, h + 2 * padding[0] - 4, w + 2 * padding[1] - 4)).astype(dtype)
    return x, wt, b, padding, dy


@given(data=st.data())
def test_conv2d_winograd_float64(data):
    """In float64 the Winograd path gives the reference's y, dx, dw and db to 1e-12 (the reference is checked
    against finite differences by test_gradient)."""
    x, w, b, padding, dy = winograd_inputs(data, np.float64)
    assert_same(conv2d_both_ways("cpp", x, w, b, padding, dy), conv2d_both_ways("numpy", x, w, b, padding, dy),
                f"conv2d winograd float64 [x {x.shape}, w {w.shape}, padding {padding}]", np.float64)


@given(data=st.data())
def test_conv2d_winograd_float32_error(data):
    """float32 y, dx, dw and db on the Winograd path within WINOGRAD_F32_ERROR of the exact values, relative to the
    largest of each."""
    x, w, b, padding, dy = winograd_inputs(data, np.float32)
    got = conv2d_both_ways("cpp", x, w, b, padding, dy)
    exact = conv2d_both_ways("numpy", *(a.astype(np.float64) for a in (x, w, b)), padding, dy.astype(np.float64))
    for name, g, e in zip(("y", "dx", "dw", "db"), got, exact):
        err = float(np.abs(g - e).max() / np.abs(e).max())
        assert err < WINOGRAD_F32_ERROR[name], \
            f"conv2d winograd float32 {name} [x {x.shape}, w {w.shape}, padding {padding}]: relative error {err:.2e}"


def test_conv2d_winograd_deterministic_across_threads_and_chunks():
    """network3's second layer at batch 10 (two chunks) and 200 (25 chunks in 16 groups of dw partial sums):
    bit-identical with 1 and 2 threads, and as the reference to float32's tolerance."""
    rng = np.random.default_rng(5)
    w, b = rng.standard_normal((40, 20, 5, 5)).astype(np.float32), rng.standard_normal(40).astype(np.float32)
    for n in (10, 200):
        assert _core.conv2d_winograd_applies(n, 20, 12, 12, 40, 5, 5, 1, 1, 0, 0)
        x = rng.standard_normal((n, 20, 12, 12)).astype(np.float32)
        dy = rng.standard_normal((n, 40, 8, 8)).astype(np.float32)
        threads = deepnum.get_num_threads()
        try:
            deepnum.set_num_threads(2)
            two = conv2d_both_ways("cpp", x, w, b, 0, dy)
            deepnum.set_num_threads(1)
            one = conv2d_both_ways("cpp", x, w, b, 0, dy)
        finally:
            deepnum.set_num_threads(threads)
        assert bits(two) == bits(one), f"batch {n}: 1 and 2 threads differ"
        assert_same(two, conv2d_both_ways("numpy", x, w, b, 0, dy), f"conv2d winograd batch {n}", np.float32)


@pytest.mark.parametrize("where", ["x", "w", "dy"])
def test_conv2d_winograd_shapes_with_nan_and_inf_as_the_reference(where):
    """Non-finite inputs take the im2col path: inf stays inf (the transforms would make inf - inf) and a NaN
    reaches only the outputs whose window holds it (not the rest of a tile)."""
    rng = np.random.default_rng(6)
    x, w, b, dy = (rng.standard_normal(s) for s in ((4, 8, 11, 11), (8, 8, 5, 5), (8,), (4, 8, 7, 7)))
    assert _core.conv2d_winograd_applies(4, 8, 11, 11, 8, 5, 5, 1, 1, 0, 0)
    a = {"x": x, "w": w, "dy": dy}[where]
    a[0, 1, 3, 4], a[1, 2, 4, 0] = np.nan, np.inf
    got, want = conv2d_both_ways("cpp", x, w, b, 0, dy), conv2d_both_ways("numpy", x, w, b, 0, dy)
    for name, g, r in zip(("y", "dx", "dw", "db"), got, want):
        np.testing.assert_array_equal(np.isnan(g), np.isnan(r), err_msg=f"{name}: NaN positions")
        np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-12, err_msg=name)


def test_conv2d_winograd_applies_where_it_pays():
    """5x5 kernels at stride 1 with at least 4 channels in and out and 64 tiles of 2x2 outputs in the batch."""
    applies = _core.conv2d_winograd_applies
    assert applies(10, 20, 12, 12, 40, 5, 5, 1, 1, 0, 0)      # network3's second layer at batch 10: 160 tiles
    assert applies(100, 20, 12, 12, 40, 5, 5, 1, 1, 0, 0)
    assert not applies(10, 1, 28, 28, 20, 5, 5, 1, 1, 0, 0)   # its first layer: one input channel
    assert not applies(10, 3, 12, 12, 40, 5, 5, 1, 1, 0, 0)
    assert not applies(10, 20, 12, 12, 3, 5, 5, 1, 1, 0, 0)
    assert not applies(3, 20, 12, 12, 40, 5, 5, 1, 1, 0, 0)   # 48 tiles
    assert applies(4, 20, 12, 12, 40, 5, 5, 1, 1, 0, 0)       # 64
    assert not applies(10, 20, 12, 12, 40, 3, 3, 1, 1, 0, 0)
    assert not applies(10, 20, 12, 12, 40, 5, 5, 2, 1, 0, 0)
    assert not applies(10, 20, 12, 12, 40, 5, 3, 1, 1, 0, 0)


# ---- numba's conv2d backward by Winograd (deepnum._numba.conv2d_winograd) -------------------------------------

def numba_winograd():
    return importlib.import_module("deepnum._numba.conv2d_winograd")


def numba_winograd_inputs(data, dtype):
    """x, w, padding, dy at sizes where numba's backward takes its Winograd path: channel counts at and around its
    minimum and the SIMD widths, odd planes, padding 0-5, the fewest images that give its 256 tiles or a few more."""
    c = data.draw(st.sampled_from([16, 17, 20]), label="C")
    k = data.draw(st.sampled_from([16, 17, 40]), label="K")
    ph, pw = data.draw(st.integers(0, 5), label="pad_h"), data.draw(st.integers(0, 5), label="pad_w")
    h, w = (data.draw(st.integers(max(1, 5 - 2 * p), 13), label=name) for p, name in ((ph, "H"), (pw, "W")))
    tiles = (h + 2 * ph - 3) // 2 * ((w + 2 * pw - 3) // 2)
    minimum = numba_winograd().MIN_BATCH_TILES
    n = data.draw(st.integers(-(-minimum // tiles), -(-minimum // tiles) + 2), label="N")
    assert numba_winograd().applies(n, c, h, w, k, 5, 5, 1, 1, ph, pw), (n, c, h, w, k, ph, pw)
    rng = rng_of(data)
    x, wt = (rng.standard_normal(s).astype(dtype) for s in ((n, c, h, w), (k, c, 5, 5)))
    dy = rng.standard_normal((n, k, h + 2 * ph - 4, w + 2 * pw - 4)).astype(dtype)
    return x, wt, (ph, pw), dy


@settings(max_examples=20)
@given(data=st.data())
def test_numba_conv2d_winograd_backward_float64(data):
    """In float64 numba's Winograd backward gives the reference's dx, dw and db to 1e-12."""
    x, w, padding, dy = numba_winograd_inputs(data, np.float64)
    got, want = (call_on(b, ops.conv2d_backward, dy, x, w, 1, padding) for b in ("numba", "numpy"))
    assert_same(got, want, f"numba conv2d winograd float64 [x {x.shape}, w {w.shape}, padding {padding}]",
                np.float64)


@settings(max_examples=20)
@given(data=st.data())
def test_numba_conv2d_winograd_backward_float32_error(data):
    """float32 dx, dw and db of numba's Winograd backward within WINOGRAD_F32_ERROR of the exact values."""
    x, w, padding, dy = numba_winograd_inputs(data, np.float32)
    got = call_on("numba", ops.conv2d_backward, dy, x, w, 1, padding)
    exact = call_on("numpy", ops.conv2d_backward, *(a.astype(np.float64) for a in (dy, x, w)), 1, padding)
    for name, g, e in zip(("dx", "dw", "db"), got, exact):
        err = float(np.abs(g - e).max() / np.abs(e).max())
        assert err < WINOGRAD_F32_ERROR[name], \
            f"numba conv2d winograd float32 {name} [x {x.shape}, w {w.shape}, padding {padding}]: error {err:.2e}"


def test_numba_conv2d_winograd_backward_deterministic_across_threads_and_chunks():
    """network3's second layer at batch 20 (one chunk) and 100 (7 chunks, dU summed in chunk order), dx wanted
    and not: bit-identical with 1 and 2 threads, and as the reference to float32's tolerance."""
    rng = np.random.default_rng(7)
    w = rng.standard_normal((40, 20, 5, 5)).astype(np.float32)
    for n in (20, 100):
        assert numba_winograd().applies(n, 20, 12, 12, 40, 5, 5, 1, 1, 0, 0)
        x = rng.standard_normal((n, 20, 12, 12)).astype(np.float32)
        dy = rng.standard_normal((n, 40, 8, 8)).astype(np.float32)
        threads = deepnum.get_num_threads()
        try:
            deepnum.set_num_threads(2)
            two = call_on("numba", ops.conv2d_backward, dy, x, w, 1, 0)
            deepnum.set_num_threads(1)
            one = call_on("numba", ops.conv2d_backward, dy, x, w, 1, 0)
        finally:
            deepnum.set_num_threads(threads)
        assert bits(two) == bits(one), f"batch {n}: 1 and 2 threads differ"
        want = call_on("numpy", ops.conv2d_backward, dy, x, w, 1, 0)
        assert_same(two, want, f"numba conv2d winograd batch {n}", np.float32)
        no_dx = call_on("numba", ops.conv2d_backward, dy, x, w, 1, 0, need_dx=False)
        assert no_dx[0] is None and bits(no_dx[1:]) == bits(two[1:]), f"batch {n}: need_dx=False"


@pytest.mark.parametrize("where", ["x", "w", "dy"])
def test_numba_conv2d_winograd_backward_with_nan_and_inf_as_the_reference(where):
    """Non-finite inputs take numba's im2col backward: inf stays inf and a NaN reaches only what it touches."""
    rng = np.random.default_rng(8)
    x, w, dy = (rng.standard_normal(s) for s in ((16, 16, 12, 12), (16, 16, 5, 5), (16, 16, 8, 8)))
    assert numba_winograd().applies(16, 16, 12, 12, 16, 5, 5, 1, 1, 0, 0)
    a = {"x": x, "w": w, "dy": dy}[where]
    a[0, 1, 3, 4], a[1, 2, 4, 0] = np.nan, np.inf
    got, want = (call_on(b, ops.conv2d_backward, dy, x, w, 1, 0) for b in ("numba", "numpy"))
    for name, g, r in zip(("dx", "dw", "db"), got, want):
        np.testing.assert_array_equal(np.isnan(g), np.isnan(r), err_msg=f"{name}: NaN positions")
        np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-12, err_msg=name)


def test_numba_conv2d_winograd_applies_where_it_pays():
    """5x5 kernels at stride 1, at least 16 channels in and out and 256 tiles of 2x2 outputs in the batch: a part
    of the shapes where cpp's path applies."""
    applies = numba_winograd().applies
    assert applies(20, 20, 12, 12, 40, 5, 5, 1, 1, 0, 0)       # network3's second layer at batch 20: 320 tiles
    assert applies(16, 20, 12, 12, 40, 5, 5, 1, 1, 0, 0)       # 256
    assert not applies(15, 20, 12, 12, 40, 5, 5, 1, 1, 0, 0)   # 240
    assert not applies(20, 8, 12, 12, 40, 5, 5, 1, 1, 0, 0)
    assert not applies(20, 20, 12, 12, 15, 5, 5, 1, 1, 0, 0)
    assert not applies(20, 20, 12, 12, 40, 3, 3, 1, 1, 0, 0)
    assert not applies(20, 20, 12, 12, 40, 5, 5, 1, 2, 0, 0)
    assert applies(10, 20, 28, 28, 20, 5, 5, 1, 1, 0, 0)       # 1440 tiles
    shapes = [(n, c, h, h, k, 5, 5, 1, 1, p, p) for n in (1, 4, 16, 64) for c in (4, 16, 20) for k in (4, 16, 40)
              for h in (5, 8, 12, 28) for p in (0, 2)]
    for shape in shapes:
        assert not applies(*shape) or _core.conv2d_winograd_applies(*shape), shape


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("size, stride", [(2, 2), (3, 2), (2, 1)])
def test_max_pool_ties_nan_and_inf(backend, size, stride):
    """Windows with ties (the first in row-major order wins), NaN (the first NaN wins), inf - inf and -inf
    everywhere: argmax and y as the reference's, 2x2 windows at stride 2 (numba's branch-free rows) included."""
    x = np.random.default_rng(4).integers(-2, 3, (2, 3, 8, 10)).astype(np.float32)  # many ties
    x[0, 0, 0, 1] = x[0, 1, 3, 3] = x[0, 1, 2, 2] = np.nan
    x[1, 0, 4, 4], x[1, 0, 4, 5] = np.inf, -np.inf
    x[1, 2, :2, :2] = -np.inf
    got = call_on(backend, ops.max_pool2d_forward, x, size, stride)
    want = call_on("numpy", ops.max_pool2d_forward, x, size, stride)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[0], want[0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigmoid_saturates_without_nan(backend):
    x = np.array([-1e4, -100.0, 0.0, 100.0, 1e4])
    y = call_on(backend, ops.activation_forward, "sigmoid", x)
    np.testing.assert_allclose(y, [0, 0, 0.5, 1, 1], atol=1e-40)


@pytest.mark.parametrize("backend", BACKENDS)
def test_dropout_keeps_the_expected_fraction(backend):
    y, mask = call_on(backend, ops.dropout_forward, np.ones(200_000), 0.3, seed=7)
    kept = (mask > 0).mean()
    assert abs(kept - 0.7) < 0.005, kept
    np.testing.assert_allclose(mask[mask > 0], 1 / 0.7)
    np.testing.assert_array_equal(y, mask)


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool_nan_wins(backend):
    x = np.array([[[[1.0, np.nan], [5.0, 2.0]]]])
    y, argmax = call_on(backend, ops.max_pool2d_forward, x, 2)
    assert np.isnan(y[0, 0, 0, 0]) and argmax[0, 0, 0, 0] == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("backend", BACKENDS)
def test_max_pool_ties_and_nans_on_wide_planes(backend, dtype):
    """Planes for the vector 2x2 path (8 outputs at a time, then a group ending at the row's end; 4 outputs wide,
    two rows at a time and an odd last row), odd sizes, values drawn from a few (ties, signed zeros, NaNs anywhere
    in a window): the reference's choice."""
    rng = np.random.default_rng(3)
    values = np.array([-1.0, -0.0, 0.0, 2.0, np.nan], dtype)
    for h, w in ((3, 16), (5, 17), (7, 37), (24, 24), (8, 8), (7, 9), (3, 8)):
        x = values[rng.choice(len(values), (2, 3, h, w), p=[0.25, 0.2, 0.2, 0.25, 0.1])]
        for size in (2, 3):
            want = call_on("numpy", ops.max_pool2d_forward, x, size)
            got = call_on(backend, ops.max_pool2d_forward, x, size)
            np.testing.assert_array_equal(got[1], want[1], err_msg=f"argmax, {h}x{w}, size {size}")
            assert got[0].tobytes() == want[0].tobytes(), f"y, {h}x{w}, size {size}"


# ---- gemm paths ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("trans_a, trans_b", [(False, False), (True, False), (False, True), (True, True)])
def test_gemm_path_boundaries(trans_a, trans_b, dtype):
    """The C++ gemm picks a path from M, N and the layouts (direct, small M, transposed small M,
    skinny N, blocked): shapes on both sides of every threshold and SIMD width, against the
    reference, with 1 and 2 threads giving the same bits."""
    rng = np.random.default_rng(7)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    threads = deepnum.get_num_threads()
    try:
        for m in (1, 3, 4, 5, 12, 13, 31, 32, 33, 100):
            for n in (1, 3, 4, 10, 16, 17, 32, 33, 100):
                for k in (1, 15, 16, 17, 100):
                    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
                    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
                    want = (a.T if trans_a else a).astype(np.float64) @ (b.T if trans_b else b).astype(np.float64)
                    got = {}
                    for t in (1, 2):
                        deepnum.set_num_threads(t)
                        with deepnum.use_backend("cpp"):
                            got[t] = ops.gemm(a, b, trans_a, trans_b)
                    scale = np.sqrt(k) * np.abs(want).max(initial=1.0)
                    assert np.abs(got[1] - want).max() <= tol * scale, f"gemm m={m} n={n} k={k}"
                    assert got[1].tobytes() == got[2].tobytes(), f"gemm m={m} n={n} k={k}: 1 and 2 threads differ"
    finally:
        deepnum.set_num_threads(threads)
