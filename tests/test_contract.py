"""The op contract (cpp/contract.h), tested on the compiled modules directly, not through deepnum.ops.

* The op tables: ``OPS`` of ``_core`` and ``_contract`` name exactly the kernels of ``_reference`` (``_cuda``'s
  lacks mlp_train_step); the constants are the same in every module.
* A bad-input driver: for every op, valid raw arguments, then one mutated argument. ``_core`` and ``_contract``
  either raise the same exception with the same message "<op>: ...", or both succeed, and then ``_core``'s result
  is the reference kernel's run on the argument tuple ``_contract`` returned. ``_cuda``, on ``_spec`` arrays (no
  memory), raises what ``_core`` raises (the array type's name aside) for every fault that is not about memory
  layout, and RuntimeError where ``_core`` accepted the call (the allocation, or a kernel, finds no memory).
* The four classes of escapes the fuzz of the old code found, explicitly.
"""
import copy
import os
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from deepnum import _contract as con
from deepnum import _core as core
from deepnum import _backend, _compose
from deepnum import _reference as ref
from opcases import mutate_array


def _cuda():
    """deepnum._cuda is built wherever nvcc is (CMake's DEEPNUM_CUDA=AUTO): its absence is a failure."""
    from deepnum import _cuda as module  # noqa: PLC0415

    return module


def reference_kernels():
    return {n for n in dir(ref) if callable(getattr(ref, n)) and not n.startswith("_") and n != "dropout_uniform"
            and getattr(getattr(ref, n), "__module__", None) == ref.__name__}


# ---- the tables ----------------------------------------------------------------------------

def test_ops_are_the_reference_kernels():
    kernels = reference_kernels()
    assert "gemm" in kernels and "mlp_train_step" not in kernels  # composed by deepnum._compose instead
    assert set(core.OPS) == kernels | {"mlp_train_step"}
    assert con.OPS == core.OPS
    assert _cuda().OPS == {k: v for k, v in core.OPS.items() if k != "mlp_train_step"}
    assert callable(_cuda().check_mlp_train_step)  # the checks of the op the device composes
    for module in (core, con, _cuda()):
        assert all(callable(getattr(module, name)) for name in module.OPS)
    assert set(core.RETURNS_LOSS) == {"softmax_nll_forward", "mlp_train_step"} == set(con.RETURNS_LOSS)


def test_constants_are_the_same_everywhere():
    assert core.ACTIVATIONS == {"linear": 0, "sigmoid": 1, "tanh": 2, "relu": 3, "leaky_relu": 4}
    assert core.RNN_ACTIVATIONS == ("linear", "sigmoid", "tanh", "relu")
    for module in (con, _cuda()):
        assert module.ACTIVATIONS == core.ACTIVATIONS and module.RNN_ACTIVATIONS == core.RNN_ACTIVATIONS
    assert ref.ACTIVATIONS == core.ACTIVATIONS


@pytest.mark.skipif(shutil.which("nm") is None, reason="no nm")
def test_no_kernel_symbol_is_exported():
    """_core and _cuda define the same deepnum:: kernels; both are loaded in one process, so neither may export them."""
    for module in (core, con, _cuda()):
        out = subprocess.run(["nm", "-D", "--defined-only", "-C", module.__file__], capture_output=True, text=True,
                             check=True).stdout
        leaked = [line for line in out.splitlines() if "deepnum::" in line]
        assert not leaked, (module.__name__, leaked[:5])


@pytest.mark.skipif(shutil.which("ldd") is None, reason="no ldd")
def test_contract_module_needs_no_openmp_or_cuda():
    deps = subprocess.run(["ldd", con.__file__], capture_output=True, text=True, check=True).stdout
    assert not any(lib in deps for lib in ("libgomp", "libomp", "libiomp", "cuda")), deps


# ---- valid arguments, drawn ----------------------------------------------------------------

def _rng(data):
    return np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))


def _n(data, label, lo=1, hi=4):
    return data.draw(st.integers(lo, hi), label=label)


def _normal(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def _distinct(rng, shape, dtype):
    n = int(np.prod(shape))
    return ((rng.permutation(n) - n / 2 + 0.5) * 0.05).reshape(shape).astype(dtype)


def _run_ref(name, *kargs):
    getattr(ref, name)(*kargs)
    return kargs


def gen_gemm(data, rng, dt):
    m, n, k = _n(data, "m"), _n(data, "n"), _n(data, "k")
    ta, tb = data.draw(st.booleans(), label="ta"), data.draw(st.booleans(), label="tb")
    return dict(a=_normal(rng, (k, m) if ta else (m, k), dt), b=_normal(rng, (n, k) if tb else (k, n), dt),
                trans_a=ta, trans_b=tb)


def gen_linear_forward(data, rng, dt):
    n, i, o = _n(data, "N"), _n(data, "n_in"), _n(data, "n_out")
    return dict(x=_normal(rng, (n, i), dt), w=_normal(rng, (i, o), dt), b=_normal(rng, o, dt))


def gen_linear_backward(data, rng, dt):
    n, i, o = _n(data, "N"), _n(data, "n_in"), _n(data, "n_out")
    return dict(dy=_normal(rng, (n, o), dt), x=_normal(rng, (n, i), dt), w=_normal(rng, (i, o), dt),
                need_dx=data.draw(st.booleans(), label="need_dx"))


def gen_mlp_train_step(data, rng, dt):
    sizes = [_n(data, f"n{l}") for l in range(data.draw(st.integers(2, 3), label="layers+1"))]
    n = _n(data, "N")
    acts = [data.draw(st.sampled_from(sorted(core.ACTIVATIONS)), label="act") for _ in sizes[1:]]
    return dict(ws=[_normal(rng, (a, b), dt) * 0.5 for a, b in zip(sizes, sizes[1:])],
                bs=[_normal(rng, b, dt) for b in sizes[1:]], activations=acts, x=_normal(rng, (n, sizes[0]), dt),
                labels=rng.integers(0, sizes[-1], n), lr=0.1, weight_decay=0.01, alpha=0.01)


def _conv_geometry(data):
    n, c, k = _n(data, "N", hi=2), _n(data, "C", hi=2), _n(data, "K", hi=2)
    h, w = _n(data, "H", hi=5), _n(data, "W", hi=5)
    ph, pw = _n(data, "ph", 0, 1), _n(data, "pw", 0, 1)
    r, s = _n(data, "R", 1, min(h + 2 * ph, 3)), _n(data, "S", 1, min(w + 2 * pw, 3))
    stride = data.draw(st.sampled_from([1, 2, (1, 2), [2, 1]]), label="stride")
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    p, q = (h + 2 * ph - r) // sh + 1, (w + 2 * pw - s) // sw + 1
    return (n, c, h, w), (k, c, r, s), (n, k, p, q), stride, ((ph, pw) if ph != pw else ph)


def gen_conv2d_forward(data, rng, dt):
    xs, ws, _, stride, padding = _conv_geometry(data)
    b = _normal(rng, ws[0], dt) if data.draw(st.booleans(), label="bias") else None
    return dict(x=_normal(rng, xs, dt), w=_normal(rng, ws, dt), b=b, stride=stride, padding=padding)


def gen_conv2d_backward(data, rng, dt):
    xs, ws, ys, stride, padding = _conv_geometry(data)
    return dict(dy=_normal(rng, ys, dt), x=_normal(rng, xs, dt), w=_normal(rng, ws, dt), stride=stride,
                padding=padding, need_dx=data.draw(st.booleans(), label="need_dx"))


def _pool_geometry(data, rng, dt):
    n, c, h, w = _n(data, "N", hi=2), _n(data, "C", hi=2), _n(data, "H", hi=5), _n(data, "W", hi=5)
    size = data.draw(st.sampled_from([1, 2, (1, 2), (2, 1)]).filter(
        lambda s: (s if isinstance(s, int) else s[0]) <= h and (s if isinstance(s, int) else s[1]) <= w), label="size")
    stride = data.draw(st.sampled_from([None, 1, 2, (2, 1)]), label="stride")
    return _distinct(rng, (n, c, h, w), dt), size, stride


def gen_max_pool2d_forward(data, rng, dt):
    x, size, stride = _pool_geometry(data, rng, dt)
    return dict(x=x, size=size, stride=stride)


def gen_max_pool2d_backward(data, rng, dt):
    x, size, stride = _pool_geometry(data, rng, dt)
    y, argmax = core.max_pool2d_forward(x, size, stride)
    return dict(dy=_normal(rng, y.shape, dt), argmax=argmax, x_shape=data.draw(
        st.sampled_from([tuple(x.shape), list(x.shape)]), label="x_shape type"))


def gen_softmax_nll_forward(data, rng, dt):
    n, k = _n(data, "N"), _n(data, "classes")
    return dict(logits=_normal(rng, (n, k), dt), labels=rng.integers(0, k, n))


def gen_softmax_nll_backward(data, rng, dt):
    n, k = _n(data, "N"), _n(data, "classes")
    p = np.abs(_normal(rng, (n, k), dt)) + dt(0.1)
    return dict(probs=(p / p.sum(axis=1, keepdims=True)).astype(dt), labels=rng.integers(0, k, n))


def _shape(data):
    return tuple(_n(data, "dim", hi=5) for _ in range(_n(data, "ndim", hi=3)))


def gen_activation_forward(data, rng, dt):
    return dict(x=_normal(rng, _shape(data), dt), name=data.draw(st.sampled_from(sorted(core.ACTIVATIONS))),
                alpha=data.draw(st.sampled_from([0.01, 0.5, 1])))


def gen_activation_backward(data, rng, dt):
    name = data.draw(st.sampled_from(sorted(core.ACTIVATIONS)))
    x = _normal(rng, _shape(data), dt)
    y = np.empty_like(x)
    ref.activation_forward(y, x, core.ACTIVATIONS[name], 0.2)
    return dict(y=y, dy=_normal(rng, x.shape, dt), name=name, alpha=0.2)


def gen_dropout_forward(data, rng, dt):
    return dict(x=_normal(rng, _shape(data), dt), p=data.draw(st.sampled_from([0.0, 0.5, 0.9])),
                seed=data.draw(st.integers(0, 2**64 - 1), label="dropout seed"))


def gen_dropout_backward(data, rng, dt):
    shape = _shape(data)
    return dict(dy=_normal(rng, shape, dt), mask=(rng.random(shape) > 0.5).astype(dt) * dt(2))


def gen_sgd_update(data, rng, dt):
    shape = _shape(data)
    momentum = data.draw(st.sampled_from([0.0, 0.9]), label="momentum")
    velocity = _normal(rng, shape, dt) if momentum or data.draw(st.booleans(), label="velocity") else None
    return dict(param=_normal(rng, shape, dt), velocity=velocity, grad=_normal(rng, shape, dt), lr=0.1,
                momentum=momentum, nesterov=bool(momentum) and data.draw(st.booleans(), label="nesterov"),
                weight_decay=data.draw(st.sampled_from([0.0, 0.01])))


def gen_adam_update(data, rng, dt):
    shape = _shape(data)
    return dict(param=_normal(rng, shape, dt), m=_normal(rng, shape, dt), v=np.abs(_normal(rng, shape, dt)),
                grad=_normal(rng, shape, dt), lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01,
                step=data.draw(st.integers(1, 10), label="step"))


def _rnn_inputs(data, rng, dt):
    t, n, d, h = _n(data, "T"), _n(data, "N"), _n(data, "D"), _n(data, "H")
    return dict(x=_normal(rng, (t, n, d), dt), h0=_normal(rng, (n, h), dt), w_xh=_normal(rng, (d, h), dt) * 0.5,
                w_hh=_normal(rng, (h, h), dt) * 0.5), data.draw(st.sampled_from(core.RNN_ACTIVATIONS))


def gen_rnn_forward(data, rng, dt):
    kw, act = _rnn_inputs(data, rng, dt)
    return dict(kw, b_h=_normal(rng, kw["w_xh"].shape[1], dt), activation=act)


def gen_rnn_backward(data, rng, dt):
    kw, act = _rnn_inputs(data, rng, dt)
    h_all = core.rnn_forward(**kw, b_h=np.zeros(kw["w_xh"].shape[1], dt), activation=act)
    t = kw["x"].shape[0]
    return dict(h_all=h_all, dh_all=_normal(rng, h_all.shape, dt), **kw, activation=act,
                bptt_steps=data.draw(st.sampled_from([None, 1, t, t + 3])), clip=data.draw(st.sampled_from([None, 0.5])))


GENERATORS = {name[4:]: fn for name, fn in globals().items() if name.startswith("gen_")}

# The kind of each argument, which picks its mutations.
KINDS = dict(
    gemm=dict(a="float", b="float", trans_a="bool", trans_b="bool"),
    linear_forward=dict(x="float", w="float", b="float"),
    linear_backward=dict(dy="float", x="float", w="float", need_dx="bool"),
    mlp_train_step=dict(ws="arrays", bs="arrays", activations="names", x="float", labels="labels", lr="real",
                        weight_decay="real", alpha="real"),
    conv2d_forward=dict(x="float", w="float", b="float?", stride="pair", padding="pair"),
    conv2d_backward=dict(dy="float", x="float", w="float", stride="pair", padding="pair", need_dx="bool"),
    max_pool2d_forward=dict(x="float", size="pair", stride="pair?"),
    max_pool2d_backward=dict(dy="float", argmax="index", x_shape="shape"),
    softmax_nll_forward=dict(logits="float", labels="labels"),
    softmax_nll_backward=dict(probs="float", labels="labels"),
    activation_forward=dict(x="float", name="name", alpha="real"),
    activation_backward=dict(y="float", dy="float", name="name", alpha="real"),
    dropout_forward=dict(x="float", p="real", seed="seed"),
    dropout_backward=dict(dy="float", mask="float"),
    sgd_update=dict(param="inplace", velocity="inplace?", grad="float", lr="real", momentum="real", nesterov="bool",
                    weight_decay="real"),
    adam_update=dict(param="inplace", m="inplace", v="inplace", grad="float", lr="real", beta1="real", beta2="real",
                     eps="real", weight_decay="real", step="int"),
    rnn_forward=dict(x="float", h0="float", w_xh="float", w_hh="float", b_h="float", activation="rnn_name"),
    rnn_backward=dict(h_all="float", dh_all="float", x="float", h0="float", w_xh="float", w_hh="float",
                      activation="rnn_name", bptt_steps="int?", clip="real?"),
)

# ---- mutations -----------------------------------------------------------------------------

ARRAY = ["ndim_up", "ndim_down", "dim_change", "zero_dim", "int32", "float16", "complex64", "other_float", "int64",
         "fortran", "strided", "readonly", "list"]
INDEX = ["ndim_up", "dim_change", "zero_dim", "float64", "int32", "out_of_range", "strided", "readonly", "list"]
LAYOUT = {"fortran", "strided", "readonly"}  # faults a DeviceArray cannot have
INTS = [True, 1.0, "1", [1], None, 2**63, 2**64, 2**63 - 1, -1, -(2**63) - 1, 0, np.int32(1)]
REALS = [True, "0.1", [0.1], None, float("nan"), float("inf"), -float("inf"), -1.0, 10**400, 1, np.float32(0.5), 0.0,
         1.0, 0.999]
MUTATIONS = {
    "float": ARRAY, "float?": ARRAY + [None], "inplace": ARRAY, "inplace?": ARRAY + [None], "labels": INDEX,
    "index": INDEX, "bool": [1, 0, "yes", None, np.bool_(True), False, True],
    "int": INTS, "int?": INTS, "seed": [True, 1.0, -1, 2**64, 2**64 - 1, 2**63, "7", None],
    "pair": INTS + [(1, 2, 3), (1,), (1, True), [2, 2**63], (1, "a"), (2**62, 1), "12"],
    "pair?": INTS + [(1, 2, 3), (1, 1.5)], "real": REALS, "real?": REALS,
    "name": ["gelu", 3, ["relu"], None, "RELU", "leaky_relu", b"relu"],
    "rnn_name": ["gelu", 3, ["tanh"], None, "leaky_relu", "tanh"],
    "shape": [5, "abcd", None, (1, 2, 3), "shape+1", "big", "huge", "bool", "float"],
    "arrays": ["element", "element", "not_a_list", "shorter", "tuple"],
    "names": ["unknown", "non_str", "not_a_list", "shorter"],
}


def mutate(kind, value, how, rng):
    if kind in ("float", "float?", "inplace", "inplace?", "labels", "index"):
        return None if how is None or value is None else mutate_array(value, how, rng)
    if kind == "shape":
        return {"shape+1": tuple(value) + (1,), "big": (value[0], value[1], 2**62, 1),
                "huge": (value[0], value[1], 2**40, 2**40), "bool": (value[0], value[1], True, 1),
                "float": (value[0], value[1], 2.0, 1)}.get(how, how)
    if kind == "arrays":
        if how == "not_a_list":
            return value[0]
        if how == "shorter":
            return value[:-1]
        if how == "tuple":
            return tuple(value)
        out = list(value)
        i = int(rng.integers(len(out)))
        out[i] = mutate_array(out[i], str(rng.choice(ARRAY)), rng)
        return out
    if kind == "names":
        if how == "not_a_list":
            return value[0]
        if how == "shorter":
            return value[:-1]
        out = list(value)
        out[int(rng.integers(len(out)))] = "gelu" if how == "unknown" else 1
        return out
    return how  # scalars: the mutation is the new value


# ---- the driver ----------------------------------------------------------------------------

def call(module, op, kw):
    try:
        return getattr(module, op)(**kw), None
    except Exception as e:  # noqa: BLE001 — compared below, whatever it is
        return None, e


def as_spec(cuda, v):
    if isinstance(v, np.ndarray):
        return cuda._spec(v.shape, v.dtype)
    if isinstance(v, (list, tuple)):
        return type(v)(as_spec(cuda, a) for a in v)
    return v


def expected(op, kargs):
    """The reference kernel run on _contract's tuple, returned as _core returns it (mlp_train_step: the
    composition of the numpy backend's entry points, deepnum._compose)."""
    if op == "mlp_train_step":
        ws, bs, codes, *rest = kargs
        names = {code: name for name, code in core.ACTIVATIONS.items()}
        return _compose.mlp_train_step(_backend.load("numpy"), ws, bs, [names[c] for c in codes], *rest)
    loss = getattr(ref, op)(*kargs)
    outs = list(kargs[:core.OPS[op]])
    if op in core.RETURNS_LOSS:
        outs.insert(0, loss)
    return None if not outs else outs[0] if len(outs) == 1 else tuple(outs)


def assert_close(got, want, dtype, what):
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want), (what, got, want)
        for i, (g, w) in enumerate(zip(got, want)):
            assert_close(g, w, dtype, f"{what}, output {i}")
        return
    if want is None or isinstance(want, float):
        assert type(got) is type(want), (what, got, want)
        if want is not None:
            np.testing.assert_allclose(got, want, rtol=1e-4 if dtype == np.float32 else 1e-10, err_msg=what)
        return
    assert isinstance(got, np.ndarray) and got.dtype == want.dtype and got.shape == want.shape, (what, got, want)
    if want.dtype.kind == "i":
        np.testing.assert_array_equal(got, want, err_msg=what)
    else:
        tol = dict(rtol=2e-4, atol=2e-5) if want.dtype == np.float32 else dict(rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(got, want, **tol, err_msg=what)


IN_PLACE = {"inplace", "inplace?", "arrays"}


def check_op(op, data, valid=False):
    rng = _rng(data)
    dtype = data.draw(st.sampled_from([np.float32, np.float64]), label="dtype")
    kw = GENERATORS[op](data, rng, dtype)
    name, how = None, None
    if not valid:
        name = data.draw(st.sampled_from(sorted(KINDS[op])), label="argument")
        how = data.draw(st.sampled_from(MUTATIONS[KINDS[op][name]]), label="mutation")
        kw[name] = mutate(KINDS[op][name], kw[name], how, rng)
    what = f"{op}: {how!r} on {name}"
    if any(isinstance(v, np.ndarray) and v.dtype == np.float32 for v in kw.values()):
        dtype = np.float32  # the tolerance of the least precise input
    kw_core, kw_con = copy.deepcopy(kw), copy.deepcopy(kw)
    got, err = call(core, op, kw_core)
    kargs, con_err = call(con, op, kw_con)
    if err is not None or con_err is not None:
        assert type(err) is type(con_err) and str(err) == str(con_err), (what, err, con_err)
        assert isinstance(err, (ValueError, TypeError)), (what, repr(err))
        assert str(err).startswith(op + ": "), (what, str(err))
        assert not valid, (what, err)
    else:
        assert isinstance(kargs, tuple), (what, kargs)
        assert_close(got, expected(op, kargs), dtype, what)
        for arg, kind in KINDS[op].items():  # the in-place updates
            if kind in IN_PLACE and kw_core[arg] is not None:
                for i, (a, b) in enumerate(zip(np.atleast_1d(kw_core[arg]) if kind != "arrays" else kw_core[arg],
                                               np.atleast_1d(kw_con[arg]) if kind != "arrays" else kw_con[arg])):
                    assert_close(np.asarray(a), np.asarray(b), dtype, f"{what}: {arg} updated in place ({i})")
    if isinstance(how, str) and (how in LAYOUT or how == "element"):
        return  # a DeviceArray is always C-contiguous and writable
    cuda = _cuda()
    device_op = op if op in cuda.OPS else f"check_{op}"  # composed on the device (_compose): its checks alone
    _, cuda_err = call(cuda, device_op, {k: as_spec(cuda, v) for k, v in kw.items()})
    data_fault = err is not None and any(m in str(err) for m in ("labels must lie in", "argmax must lie in"))
    if err is None or data_fault:  # accepted, or a fault in the data, which only the device kernel can find
        assert isinstance(cuda_err, RuntimeError if device_op == op else type(None)), (what, repr(cuda_err))
    else:
        assert type(cuda_err) is type(err), (what, repr(cuda_err), repr(err))
        device_message = str(err).replace("numpy.ndarray", "deepnum.cuda.DeviceArray").replace("got ndarray", "got DeviceArray")
        assert str(cuda_err) == device_message, (what, cuda_err, err)


@pytest.mark.parametrize("op", sorted(KINDS))
@given(data=st.data())
def test_bad_input(op, data):
    check_op(op, data)


@pytest.mark.parametrize("op", sorted(KINDS))
@given(data=st.data())
def test_valid_input(op, data):
    check_op(op, data, valid=True)


def test_every_op_has_a_generator():
    assert set(GENERATORS) == set(KINDS) == set(core.OPS)


# ---- the argument tuple and the return conventions, explicitly -------------------------------

def test_contract_returns_the_kernel_arguments():
    x, w = np.ones((1, 1, 4, 4), np.float32), np.ones((2, 1, 2, 2), np.float32)
    kargs = con.conv2d_forward(x, w, None, 2, (1, 0))
    assert len(kargs) == 8 and kargs[1] is x and kargs[2] is w and kargs[4:] == (2, 2, 1, 0)
    assert kargs[0].shape == (1, 2, 3, 2) and kargs[0].dtype == np.float32
    np.testing.assert_array_equal(kargs[3], np.zeros(2, np.float32))
    dx, dw, db, *_ = con.linear_backward(np.ones((3, 2)), np.ones((3, 4)), np.ones((4, 2)), False)
    assert dx.shape == (0, 0) and dw.shape == (4, 2) and db.shape == (2,)
    param = np.ones(3)
    assert con.sgd_update(param, None, np.ones(3), 0.1, 0, False, 0)[:2][0] is param
    assert con.sgd_update(param, None, np.ones(3), 0.1, 0, False, 0)[1].shape == (0,)
    assert con.activation_forward(np.ones(2), "tanh", 1)[2:] == (2, 1.0)
    kargs = con.rnn_backward(*(np.ones(s) for s in [(2, 1, 3), (2, 1, 3), (2, 1, 2), (1, 3), (2, 3), (3, 3)]),
                             "relu", 5, None)
    assert kargs[-3:] == (3, 0, 0.0)
    assert con.dropout_forward(np.ones(2), 0.5, 2**64 - 1)[-2:] == (0.5, 2**64 - 1)


def test_core_return_conventions():
    loss, probs = core.softmax_nll_forward(np.zeros((2, 4)), np.array([0, 3]))
    assert type(loss) is float and probs.shape == (2, 4)
    np.testing.assert_allclose(loss, np.log(4))
    assert core.sgd_update(np.ones(3), None, np.ones(3), 0.1, 0.0, False, 0.0) is None
    dx, dw, db = core.conv2d_backward(np.ones((1, 1, 3, 3)), np.ones((1, 1, 4, 4)), np.ones((1, 1, 2, 2)), 1, 0, False)
    assert dx.shape == (0, 0, 0, 0) and dw.shape == (1, 1, 2, 2) and db.shape == (1,)
    y, argmax = core.max_pool2d_forward(np.arange(16.0).reshape(1, 1, 4, 4), 2, None)
    assert argmax.dtype == np.int64 and y.shape == (1, 1, 2, 2)
    ws, bs = [np.ones((3, 2))], [np.zeros(2)]
    loss = core.mlp_train_step(ws, bs, ["relu"], np.ones((4, 3)), np.array([0, 0, 0, 1]), 0.1, 0.0, 0.01)
    assert type(loss) is float and not np.all(ws[0] == 1)


# ---- the four classes of escapes the old code had -------------------------------------------

@pytest.mark.parametrize("module", ["core", "contract", "cuda"])
def test_non_str_activation_names_are_type_errors(module):
    m = {"core": core, "contract": con, "cuda": None}[module] or _cuda()
    arr = (lambda a: a) if module != "cuda" else (lambda a: m._spec(a.shape, a.dtype))
    x = arr(np.ones(3))
    with pytest.raises(TypeError, match=r"^activation_forward: name must be a str, got \['relu'\]"):
        m.activation_forward(x, ["relu"], 0.01)
    with pytest.raises(TypeError, match="^activation_backward: name must be a str, got 4"):
        m.activation_backward(x, x, 4, 0.01)
    r = [arr(np.ones(s)) for s in [(2, 1, 3), (1, 4), (3, 4), (4, 4), (4,)]]
    with pytest.raises(TypeError, match="^rnn_forward: activation must be a str, got None"):
        m.rnn_forward(*r, None)
    with pytest.raises(ValueError, match=r"^rnn_forward: activation must be one of \['linear', 'sigmoid', 'tanh', "
                                         r"'relu'\], got 'leaky_relu'"):
        m.rnn_forward(*r, "leaky_relu")
    with pytest.raises(ValueError, match=r"^activation_forward: unknown activation 'gelu'; choose one of "
                                         r"\['leaky_relu', 'linear', 'relu', 'sigmoid', 'tanh'\]"):
        m.activation_forward(x, "gelu", 0.01)


def test_non_sequence_x_shape_is_a_type_error():
    dy, argmax = np.ones((1, 1, 1, 1)), np.zeros((1, 1, 1, 1), np.int64)
    for m in (core, con):
        with pytest.raises(TypeError, match="^max_pool2d_backward: x_shape must be a tuple or list of ints, got int"):
            m.max_pool2d_backward(dy, argmax, 5)
        with pytest.raises(TypeError, match="^max_pool2d_backward: x_shape must be an int, got 2.0"):
            m.max_pool2d_backward(dy, argmax, (1, 1, 2.0, 2))
    with pytest.raises(TypeError, match="^max_pool2d_backward: x_shape must be a tuple or list of ints, got int"):
        _cuda().max_pool2d_backward(_cuda()._spec((1, 1, 1, 1)), _cuda()._spec((1, 1, 1, 1), np.int64), 5)


def test_output_sizes_are_checked_before_allocation():
    x, w = np.ones((1, 1, 1, 6), np.float32), np.ones((1, 1, 2, 3), np.float32)
    for m in (core, con):
        with pytest.raises(ValueError, match="^conv2d_forward: y of shape .* would be too large to allocate"):
            m.conv2d_forward(x, w, None, 1, 2**31)
        with pytest.raises(ValueError, match="^conv2d_forward: kernel height: padding .* is too large"):
            m.conv2d_forward(x, w, None, 1, 2**63 - 1)
        with pytest.raises(ValueError, match="^max_pool2d_backward: dx of shape .* would be too large to allocate"):
            m.max_pool2d_backward(np.ones((1, 1, 1, 1)), np.zeros((1, 1, 1, 1), np.int64), (1, 1, 2**40, 2**40))
    cuda = _cuda()
    with pytest.raises(ValueError, match="^conv2d_forward: y of shape .* would be too large to allocate"):
        cuda.conv2d_forward(cuda._spec(x.shape), cuda._spec(w.shape), None, 1, 2**31)


@pytest.mark.parametrize("call, message", [
    (lambda m, a: m.conv2d_forward(a((1, 1, 4, 4)), a((1, 1, 2, 2)), None, 2**63, 0), "stride must be < 2\\*\\*63"),
    (lambda m, a: m.conv2d_forward(a((1, 1, 4, 4)), a((1, 1, 2, 2)), None, (1, 2**64), 0), "stride must be < 2\\*\\*63"),
    (lambda m, a: m.adam_update(a((3,)), a((3,)), a((3,)), a((3,)), 1e-3, 0.9, 0.999, 1e-8, 0.0, 2**63),
     "step must be < 2\\*\\*63"),
    (lambda m, a: m.dropout_forward(a((3,)), 0.5, 2**64), "seed must be < 2\\*\\*64"),
    (lambda m, a: m.dropout_forward(a((3,)), 0.5, -1), "seed must be >= 0"),
    (lambda m, a: m.rnn_backward(*(a(s) for s in [(2, 1, 3), (2, 1, 3), (2, 1, 2), (1, 3), (2, 3), (3, 3)]), "tanh",
                                 2**63, None), "bptt_steps must be < 2\\*\\*63"),
    (lambda m, a: m.max_pool2d_forward(a((1, 1, 4, 4)), 2**70, None), "size must be < 2\\*\\*63"),
], ids=["stride", "stride pair", "step", "seed", "seed negative", "bptt_steps", "pool size"])
def test_huge_ints_are_value_errors(call, message):
    cuda = _cuda()
    for m, a in ((core, np.ones), (con, np.ones), (cuda, lambda s: cuda._spec(s, np.float64))):
        with pytest.raises(ValueError, match=message):
            call(m, a)


@pytest.mark.parametrize("m", [core, con], ids=["core", "contract"])
def test_scalar_types(m):
    x = np.ones(3)
    with pytest.raises(TypeError, match="^conv2d_forward: stride must be an int or a pair of ints, got True"):
        m.conv2d_forward(np.ones((1, 1, 4, 4)), np.ones((1, 1, 2, 2)), None, True, 0)
    with pytest.raises(ValueError, match=r"^conv2d_forward: stride must be an int or a pair of ints, got \(1, 1, 1\)"):
        m.conv2d_forward(np.ones((1, 1, 4, 4)), np.ones((1, 1, 2, 2)), None, (1, 1, 1), 0)
    with pytest.raises(TypeError, match="^dropout_forward: seed must be an int, got True"):
        m.dropout_forward(x, 0.5, True)
    with pytest.raises(ValueError, match=r"^dropout_forward: p must be finite and in \[0.0, 1.0\), got nan"):
        m.dropout_forward(x, float("nan"), 0)
    with pytest.raises(ValueError, match=r"^sgd_update: lr must be finite and in \[0.0, inf\], got inf"):
        m.sgd_update(x.copy(), None, x, float("inf"), 0.0, False, 0.0)
    with pytest.raises(TypeError, match="^sgd_update: lr must be a real number, got True"):
        m.sgd_update(x.copy(), None, x, True, 0.0, False, 0.0)
    with pytest.raises(ValueError, match="^sgd_update: momentum=0.9, nesterov=False need a velocity array"):
        m.sgd_update(x.copy(), None, x, 0.1, 0.9, False, 0.0)
    with pytest.raises(TypeError, match=r"^sgd_update: param must be writable and C-contiguous \(it is updated in "
                                        r"place; a copy would be updated instead\)"):
        m.sgd_update(np.ones(6)[::2], None, x, 0.1, 0.0, False, 0.0)
    with pytest.raises(TypeError, match="^gemm: a must be a numpy.ndarray, got list"):
        m.gemm([[1.0]], np.ones((1, 1)), False, False)
    with pytest.raises(TypeError, match="^gemm: a must be float32 or float64, got int32"):
        m.gemm(np.ones((1, 1), np.int32), np.ones((1, 1)), False, False)
    with pytest.raises(TypeError, match="^gemm: all arrays must share one dtype, got a float32, b float64"):
        m.gemm(np.ones((1, 1), np.float32), np.ones((1, 1)), False, False)
    with pytest.raises(TypeError, match="^gemm: trans_a must be a bool, got 1"):
        m.gemm(np.ones((1, 1)), np.ones((1, 1)), 1, False)
    with pytest.raises(ValueError, match=r"^softmax_nll_forward: labels must lie in \[0, 3\), got 3 at row 1"):
        m.softmax_nll_forward(np.ones((2, 3)), np.array([0, 3]))
    with pytest.raises(TypeError, match="^softmax_nll_forward: labels must be int64, got int32"):
        m.softmax_nll_forward(np.ones((2, 3)), np.array([0, 1], np.int32))
    with pytest.raises(ValueError, match=r"^max_pool2d_backward: argmax must lie in \[0, 4\), got 4 at index 0"):
        m.max_pool2d_backward(np.ones((1, 1, 1, 1)), np.full((1, 1, 1, 1), 4), (1, 1, 2, 2))
    # numpy scalars are ints and reals, numpy bools are bools
    m.conv2d_forward(np.ones((1, 1, 4, 4)), np.ones((1, 1, 2, 2)), None, np.int32(2), (np.int64(1), 0))
    m.gemm(np.ones((1, 1)), np.ones((1, 1)), np.bool_(True), False)
    m.dropout_forward(x, np.float32(0.5), np.uint64(2**64 - 1))


# ---- DeviceArray views and spec arrays (no GPU needed) --------------------------------------

def test_device_array_views_of_spec_arrays():
    cuda = _cuda()
    a = cuda._spec((4, 3), np.float32)
    assert a.shape == (4, 3) and a.dtype == np.float32 and a.size == 12
    assert a.rows(1, 3).shape == (2, 3) and a.rows(0, 0).shape == (0, 3)
    assert a.reshape((2, -1)).shape == (2, 6) and a.reshape(12).shape == (12,) and a.reshape([3, 2, 2]).ndim == 3
    with pytest.raises(ValueError, match="^DeviceArray.reshape: cannot reshape size 12 into shape"):
        a.reshape((5, -1))
    with pytest.raises(ValueError, match="^DeviceArray.reshape: "):
        a.reshape((-1, -1))
    with pytest.raises(ValueError, match="^DeviceArray.rows: "):
        a.rows(2, 5)
    for use in (a.to_numpy, a.copy, lambda: a.__cuda_array_interface__, lambda: a.rows(1, 2).to_numpy()):
        with pytest.raises(RuntimeError, match="holds no memory"):
            use()
    if cuda.device_count() == 0:
        with pytest.raises(RuntimeError):  # a valid call: the output allocation finds no device
            cuda.gemm(a, cuda._spec((3, 2), np.float32), False, False)
    with pytest.raises(RuntimeError, match="holds no memory"):  # nothing allocated: the kernel's data pointer
        cuda.adam_update(a, a, a, a, 1e-3, 0.9, 0.999, 1e-8, 0.0, 1)
