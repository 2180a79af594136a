"""Models on the device: the device argument, the array functions of the device namespace (cuda/arrays.cu)
against the host's, every recipe's model trained on cuda against the cpp run, shuffled minibatches through the
device gather, checkpoints moving between the devices, and the dataset copied to the device once per run.

Without a device, the argument checks still run (``_spec`` arrays hold no memory, and every check comes before
the output is allocated); the rest is marked ``gpu`` and runs on a GPU or on the emulated build."""
import contextlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import deepnum
from deepnum import _cudabackend, cli, cuda, models, ops, recipes
from deepnum._host import HOST
from deepnum.models import Sequential
from deepnum.optim import SGD, Adam
from test_cuda import _cuda_module
from test_ops import emulated_limits, needs_emulated

needs_gpu = pytest.mark.skipif(not cuda.is_available(), reason=str(cuda.unavailable_reason()))
no_gpu = pytest.mark.skipif(cuda.is_available(), reason="a CUDA device is present")
gpu = [pytest.mark.gpu, needs_gpu]
DEVICE = _cudabackend.DEVICE


# ---- the device argument (no GPU needed) -------------------------------------------------------

def test_device_must_be_cpu_or_cuda():
    with pytest.raises(ValueError, match=r"^Sequential: device must be 'cpu' or 'cuda', got 'gpu'$"):
        models.MLP([3, 2], device="gpu")
    model = models.LogisticRegression(3, 2)
    assert model.device == "cpu" and model.to("cpu") is model
    with pytest.raises(ValueError, match=r"^Sequential.to: device must be 'cpu' or 'cuda', got 0$"):
        model.to(0)
    with pytest.raises(ValueError, match="Sequential.to: device must be"):
        model.fit((np.zeros((4, 3), np.float32), np.zeros(4, np.int64)), 1, 2, device="tpu")


@no_gpu
def test_cuda_without_a_device_names_the_reason():
    reason = cuda.unavailable_reason()
    for make in (lambda: models.MLP([3, 2], device="cuda"), lambda: models.LeNet(device="cuda"),
                 lambda: models.LogisticRegression(3, 2).to("cuda"),
                 lambda: recipes.RECIPES["seq-mnist"].build(0, "cuda")):
        with pytest.raises(RuntimeError, match="device 'cuda' is unavailable: ") as e:
            make()
        assert reason in str(e.value)


@no_gpu
def test_train_backend_cuda_without_a_device_says_why(tmp_path):
    with pytest.raises(SystemExit, match="deepnum train --backend cuda: ") as e:
        cli.main(["train", "moons", "--backend", "cuda", "--out", str(tmp_path), "--quiet"])
    assert cuda.unavailable_reason() in str(e.value)


def test_state_dict_is_numpy_copies():
    model = models.MLP([3, 4, 2], init="normal")
    state = model.state_dict()
    assert all(type(a) is np.ndarray for a in state.values())
    state["0.w"][...] = 7
    assert not np.any(model.layers[0].params["w"] == 7)


def test_optimizer_state_for_an_unknown_parameter_is_refused():
    model = models.MLP([3, 4, 2])
    with pytest.raises(ValueError, match=r"Adam.load_state_dict: state 5.w.m belongs to no parameter \(the model "
                                         r"has 0.w, 0.b, 1.w, 1.b\)"):
        Adam().load_state_dict({"5.w.m": np.zeros((3, 4), np.float32)}, model.parameters())


# ---- the array functions' checks, on _spec arrays (no GPU needed) ------------------------------

def _bad_calls(spec):
    f32, i64 = np.float32, np.int64
    return [
        ("take_rows", (np.zeros((3, 2), f32), np.zeros(2, i64)), TypeError,
         "take_rows: a must be a deepnum.cuda.DeviceArray, got numpy.ndarray"),
        ("take_rows", (spec((3, 2)), spec(2, f32)), TypeError,
         "take_rows: index must be int64 on the device, got float32"),
        ("take_rows", (spec((3, 2)), np.zeros(2, f32)), TypeError,
         "take_rows: index must be an integer array, got float32"),
        ("take_rows", (spec((3, 2)), spec((2, 1), i64)), ValueError,
         r"take_rows: index must be 1-D, got shape \(2, 1\)"),
        ("take_rows", (spec((3, 2)), np.zeros((1, 2), i64)), ValueError,
         r"take_rows: index must be 1-D, got shape \(1, 2\)"),
        ("take_rows", (spec(()), spec(2, i64)), ValueError,
         r"take_rows: a must have at least 1 dimension, got shape \(\)"),
        ("swap01", (spec(4),), ValueError, r"swap01: a must have at least 2 dimensions, got shape \(4,\)"),
        ("swap01", ([1, 2],), TypeError, "swap01: a must be a deepnum.cuda.DeviceArray, got list"),
        ("last_step", (spec((2, 3)), 0), ValueError, "last_step: steps must be >= 1, got 0"),
        ("argmax", (spec((3, 0)),), ValueError, r"argmax: the last axis of a is empty, shape \(3, 0\)"),
        ("argmax", (spec((3, 2), i64),), TypeError, "argmax: a must be float32 or float64, got int64"),
        ("softmax", (spec(()),), ValueError, r"softmax: z must have at least 1 dimension, got shape \(\)"),
        ("positive", (spec(3, np.int32),), TypeError, "positive: z must be float32 or float64, got int32"),
        ("count_unequal", (spec(3, i64), spec(4, i64)), ValueError,
         r"count_unequal: a has shape \(3,\) but b has shape \(4,\)"),
        ("count_unequal", (spec(3, np.int32), spec(3, i64)), TypeError,
         "count_unequal: a must be int64, float32 or float64, got int32"),
        ("count_unequal", (spec(3, i64), np.zeros(3, i64)), TypeError,
         "count_unequal: b must be a deepnum.cuda.DeviceArray, got numpy.ndarray"),
        ("concat", ([],), ValueError, "concat: needs at least one array"),
        ("concat", (spec((2, 3)),), TypeError, "concat: arrays must be a sequence of deepnum.cuda.DeviceArrays, got "
                                               "deepnum._cuda.DeviceArray"),
        ("concat", ([spec((2, 3)), spec((1, 4))],), ValueError,
         r"concat: arrays\[0\] has shape \(2, 3\) but arrays\[1\] has shape \(1, 4\) \(all but the first axis"),
        ("concat", ([spec((2, 3)), spec((1, 3), np.float64)],), TypeError, r"concat: arrays\[0\] is float32 but "
                                                                         r"arrays\[1\] is float64"),
        ("concat", ([spec((2, 3)), np.zeros((1, 3), f32)],), TypeError,
         r"concat: arrays\[1\] must be a deepnum.cuda.DeviceArray, got numpy.ndarray"),
        ("sigmoid_bce", (spec((2, 3)), spec((3, 2))), ValueError,
         r"sigmoid_bce: z has shape \(2, 3\) but y has shape \(3, 2\)"),
        ("sigmoid_bce", (spec(3), spec(3, np.float64)), TypeError,
         "sigmoid_bce: z and y must have one dtype, got float32 and float64"),
        ("sigmoid_bce_grad", (spec(3, i64), spec(3, i64)), TypeError,
         "sigmoid_bce_grad: probs must be float32 or float64, got int64"),
        ("add_l1", (spec(3), spec(2), 0.1), ValueError, r"add_l1: g has shape \(3,\) but p has shape \(2,\)"),
    ]


def test_array_functions_reject_bad_arguments_naming_the_function():
    module = _cuda_module()
    for name, args, error, message in _bad_calls(module._spec):
        with pytest.raises(error, match=message):
            getattr(module, name)(*args)
        with pytest.raises(error, match=message):  # the same through the namespace
            getattr(DEVICE, name)(*args)


@no_gpu
def test_array_functions_on_valid_spec_arrays_find_no_device():
    """A valid call passes every check and fails at its output allocation (no device), never crashing."""
    spec = _cuda_module()._spec
    for name, args in [("take_rows", (spec((3, 2)), spec(2, np.int64))), ("swap01", (spec((2, 3, 4)),)),
                       ("argmax", (spec((3, 2)),)), ("count_unequal", (spec(3, np.int64), spec(3))),
                       ("concat", ([spec((2, 3)), spec((1, 3))],)), ("sigmoid_bce", (spec(3), spec(3)))]:
        with pytest.raises(RuntimeError):
            getattr(DEVICE, name)(*args)


# ---- the array functions against the host's (GPU) ---------------------------------------------

ROWS = st.sampled_from([0, 1, 2, 7, 255, 256, 257, 600])
DTYPES = st.sampled_from([np.float32, np.float64])


def _dev(a):
    return cuda.DeviceArray.from_numpy(a)


def _same(got, want, exact=True):
    if isinstance(want, np.ndarray):
        got = got.to_numpy()
        assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, got.shape, want.dtype, want.shape)
        if exact:
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=2e-6 if want.dtype == np.float32 else 1e-14, atol=1e-30)
    else:
        assert type(got) is type(want) and (got == want if exact else np.isclose(got, want, rtol=1e-6)), (got, want)


@pytest.mark.gpu
@needs_gpu
@given(rows=ROWS, width=st.integers(1, 13), dtype=st.sampled_from([np.float32, np.float64, np.int64, np.uint8]),
       seed=st.integers(0, 2**16), index_on_device=st.booleans())
def test_take_rows_gathers_as_numpy(rows, width, dtype, seed, index_on_device):
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal((rows, width, 3)) * 50).astype(dtype)
    index = rng.integers(0, rows, rng.integers(0, 300)) if rows else np.zeros(0, np.int64)
    _same(DEVICE.take_rows(_dev(a), _dev(index) if index_on_device else index), HOST.take_rows(a, index))


@pytest.mark.gpu
@needs_gpu
def test_take_rows_names_a_bad_index():
    a = _dev(np.zeros((5, 2), np.float32))
    for bad, at in ((5, 3), (-1, 0)):
        index = np.array([0, 4, 1, 0, 2]) if at else np.array([bad, 0])
        index[at] = bad
        with pytest.raises(ValueError, match=rf"take_rows: index must lie in \[0, 5\), got {bad} at position {at}"):
            DEVICE.take_rows(a, _dev(index))


@pytest.mark.gpu
@needs_gpu
@given(a=st.integers(0, 40), b=st.integers(0, 9), inner=st.sampled_from([(), (1,), (3,), (2, 5)]),
       dtype=st.sampled_from([np.float32, np.float64, np.int64, np.int16]), seed=st.integers(0, 2**16))
def test_swap01_and_last_step_as_numpy(a, b, inner, dtype, seed):
    x = (np.random.default_rng(seed).standard_normal((a, b) + inner) * 100).astype(dtype)
    _same(DEVICE.swap01(_dev(x)), HOST.swap01(x))
    _same(DEVICE.last_step(_dev(x), 3), HOST.last_step(x, 3))


def _logits(rng, shape, dtype, ties):
    z = rng.standard_normal(shape) * 5
    if ties:  # repeated values and NaNs: the first maximum, and the first NaN, win
        z = np.round(z)
        z[rng.random(shape) < 0.05] = np.nan
    return z.astype(dtype)


@pytest.mark.gpu
@needs_gpu
@given(rows=ROWS, n=st.sampled_from([1, 2, 10, 33]), lead=st.sampled_from([(), (3,)]), dtype=DTYPES,
       ties=st.booleans(), seed=st.integers(0, 2**16))
def test_argmax_positive_softmax_as_numpy(rows, n, lead, dtype, ties, seed):
    z = _logits(np.random.default_rng(seed), (rows,) + lead + (n,), dtype, ties)
    _same(DEVICE.argmax(_dev(z)), HOST.argmax(z))
    _same(DEVICE.positive(_dev(z)), HOST.positive(z))
    with np.errstate(invalid="ignore"):
        want = HOST.softmax(z)
    _same(DEVICE.softmax(_dev(z)), want, exact=False)


@pytest.mark.gpu
@needs_gpu
@given(n=st.sampled_from([0, 1, 255, 256, 257, 1000, 5000]),
       dtypes=st.sampled_from([(np.int64, np.int64), (np.int64, np.float32), (np.float64, np.int64),
                               (np.float32, np.float32), (np.float32, np.float64)]),
       seed=st.integers(0, 2**16))
def test_count_unequal_is_reduced_on_the_device(n, dtypes, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 3, n).astype(dtypes[0])
    b = rng.integers(0, 3, n).astype(dtypes[1])
    got = DEVICE.count_unequal(_dev(a), _dev(b))
    _same(got, HOST.count_unequal(a, b))


@pytest.mark.gpu
@needs_gpu
def test_count_unequal_and_sigmoid_bce_beyond_the_grid_cap():
    """More elements than blocks_for's cap × block size take the grid-stride loops, and the sums more partials
    than one block's threads (the emulated build shrinks the cap, so this stays small there)."""
    n = 3 * 256 + 1001 if cuda.is_emulated() else 256 * 65535 + 1000
    rng = np.random.default_rng(7)
    a, b = rng.integers(0, 2, n), rng.integers(0, 2, n)
    z, y = rng.standard_normal(n), rng.random(n)
    with emulated_limits(3, 1 << 24) if cuda.is_emulated() else contextlib.nullcontext():
        assert DEVICE.count_unequal(_dev(a), _dev(b)) == HOST.count_unequal(a, b)
        np.testing.assert_allclose(DEVICE.sigmoid_bce(_dev(z), _dev(y)), HOST.sigmoid_bce(z, y), rtol=1e-12)
        _same(DEVICE.take_rows(_dev(z), np.arange(n)[::-1].copy()), z[::-1].copy())
        _same(DEVICE.positive(_dev(z)), HOST.positive(z))


@pytest.mark.emulated
@needs_emulated
@pytest.mark.parametrize("max_blocks", [1, 2])
@given(rows=ROWS, n=st.sampled_from([1, 3, 10]), seed=st.integers(0, 2**16))
def test_array_functions_past_the_grid_cap(max_blocks, rows, n, seed):
    """Every array function with the grid capped at 1 or 2 blocks: the grid-stride loops of the per-row kernels
    (argmax, softmax: a thread per row) and of the gathers and transposes take their tails."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((rows, n, 3))
    y = (rng.random(z.shape) < 0.5).astype(z.dtype)
    index = rng.integers(0, rows, 2 * rows) if rows else np.zeros(0, np.int64)
    with emulated_limits(max_blocks, 1 << 24):
        _same(DEVICE.take_rows(_dev(z), _dev(index)), HOST.take_rows(z, index))
        _same(DEVICE.swap01(_dev(z)), HOST.swap01(z))
        _same(DEVICE.argmax(_dev(z)), HOST.argmax(z))
        _same(DEVICE.softmax(_dev(z)), HOST.softmax(z), exact=False)
        _same(DEVICE.positive(_dev(z)), HOST.positive(z))
        _same(DEVICE.sigmoid_bce_grad(_dev(z), _dev(y)), HOST.sigmoid_bce_grad(z, y))
        _same(DEVICE.add_l1(_dev(z), _dev(y), 0.5), HOST.add_l1(z, y, 0.5))
        _same(DEVICE.count_unequal(DEVICE.positive(_dev(z)), _dev(y)), HOST.count_unequal(HOST.positive(z), y))
        if rows:
            np.testing.assert_allclose(DEVICE.sigmoid_bce(_dev(z), _dev(y)), HOST.sigmoid_bce(z, y), rtol=1e-13)


@pytest.mark.gpu
@needs_gpu
@given(rows=ROWS, n=st.sampled_from([1, 4, 17]), dtype=DTYPES, seed=st.integers(0, 2**16))
def test_sigmoid_bce_grad_and_add_l1_as_numpy(rows, n, dtype, seed):
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal((rows, n)) * 4).astype(dtype)
    y = (rng.random((rows, n)) < 0.5).astype(dtype)
    p = rng.standard_normal((rows, n)).astype(dtype)
    p[rng.random(p.shape) < 0.2] = 0
    if rows:
        got = DEVICE.sigmoid_bce(_dev(z), _dev(y))
        assert type(got) is float
        np.testing.assert_allclose(got, HOST.sigmoid_bce(z, y), rtol=1e-6 if dtype == np.float32 else 1e-13)
        assert DEVICE.sigmoid_bce(_dev(z), _dev(y)) == got  # a fixed summation order
    _same(DEVICE.sigmoid_bce_grad(_dev(z), _dev(y)), HOST.sigmoid_bce_grad(z, y))
    _same(DEVICE.add_l1(_dev(z), _dev(p), 0.25), HOST.add_l1(z, p, 0.25))


@pytest.mark.gpu
@needs_gpu
@given(sizes=st.lists(st.sampled_from([0, 1, 3, 257]), min_size=1, max_size=4), width=st.integers(0, 5),
       dtype=st.sampled_from([np.float32, np.int64]))
def test_concat_as_numpy(sizes, width, dtype):
    parts = [np.arange(s * width, dtype=dtype).reshape(s, width) + i for i, s in enumerate(sizes)]
    _same(DEVICE.concat([_dev(p) for p in parts]), HOST.concat(parts))


# ---- models on the device (GPU) ---------------------------------------------------------------

def mnist_like(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n)


def _fit_both(build, train, optimizer, **fit):
    """The same model trained on cpp (host) and on cuda, each with a new optimizer(): (cpu model, its history,
    cuda model, its history)."""
    runs = []
    for device in ("cpu", "cuda"):
        model = build(device)
        assert model.device == device
        with deepnum.use_backend("cpp"):
            history = model.fit(train, optimizer=optimizer(), **fit)
        history.pop("epoch_seconds")
        runs += [model, history]
    return runs


def _assert_close(model, history, want_model, want_history, rtol, what):
    """Two runs' histories (but epoch_seconds) and parameters agree to rtol."""
    assert history.keys() == want_history.keys(), what
    for key in want_history:
        np.testing.assert_allclose(np.asarray(history[key], float), np.asarray(want_history[key], float),
                                   rtol=rtol, atol=rtol, err_msg=f"{what}: history {key}")
    a, b = want_model.state_dict(), model.state_dict()
    for key in a:
        np.testing.assert_allclose(b[key], a[key], rtol=rtol, atol=rtol, err_msg=f"{what}: parameter {key}")


def _distinct_recipes():
    """The recipes trained by fit, one per (architecture, optimiser, patience, fit options): n3-expanded is
    n3-relu on other data, and n3-ensemble votes n3-dropout's."""
    seen = {}
    for name, r in recipes.RECIPES.items():
        if isinstance(r, recipes.Recipe):
            key = repr((r.build(0, "cpu").architecture(), r.make_optimizer(10, 20).config(), r.patience, r.fit_options))
            seen.setdefault(key, name)
    return list(seen.values())


MNIST_RECIPES = _distinct_recipes()


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("name", MNIST_RECIPES)
def test_each_recipe_trains_on_cuda_as_on_cpp(name):
    """One epoch of the recipe (its model, optimiser, patience and shuffling) on 20 MNIST-shaped images in
    batches of 10, with validation and test sets: cuda against cpp. In float64 (the recipe's architecture with
    another dtype), so the two agree to 1e-9 after the two steps (sums run in other orders). Small, because
    the emulated build runs every GPU thread on the CPU (cnn-adam and n3-dropout still take a minute there)."""
    recipe = recipes.RECIPES[name]
    arch = recipe.build(0, "cpu").architecture()
    train, valid, test = mnist_like(20, 1), mnist_like(10, 2), mnist_like(10, 3)
    cpu, history_cpu, dev, history_dev = _fit_both(
        lambda device: Sequential.from_architecture(dict(arch, dtype="float64"), device), train, epochs=1,
        batch_size=10, optimizer=lambda: recipe.make_optimizer(10, 20), validation=valid, test=test,
        patience=recipe.patience, **recipe.fit_options)
    _assert_close(dev, history_dev, cpu, history_cpu, 1e-9, name)
    assert history_dev["train_loss"][0] > 0


@pytest.mark.gpu
@needs_gpu
def test_a_float32_recipe_on_cuda_as_on_cpp():
    """The mlp recipe as it is (float32): the same losses and weights to float32 rounding."""
    recipe = recipes.RECIPES["mlp"]
    cpu, history_cpu, dev, history_dev = _fit_both(lambda device: recipe.build(0, device), mnist_like(60, 4),
                                                   epochs=2, batch_size=20, optimizer=lambda: recipe.make_optimizer(20, 60),
                                                   validation=mnist_like(20, 5), patience=recipe.patience)
    _assert_close(dev, history_dev, cpu, history_cpu, 1e-4, "mlp float32")


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("name", ["moons", "binary-addition"])
def test_the_other_recipes_run_on_cuda_as_on_cpp(name):
    recipe = recipes.RECIPES[name]
    options = dict(epochs=30) if name == "moons" else dict(updates=10)
    if name == "binary-addition":
        recipe = recipes.BinaryAdditionRecipe(every=10)  # the exact-sum accuracy of the 10 updates, on the device
    results = {}
    for device in ("cpu", "cuda"):
        with deepnum.use_backend("cpp"):
            results[device] = recipe.run(None, seed=3, verbose=False, device=device, **options)
    cpu, dev = results["cpu"], results["cuda"]
    assert dev.model.device == "cuda"
    assert dev.train_error == pytest.approx(cpu.train_error, abs=1e-12)
    assert dev.history.keys() == cpu.history.keys()
    for key, value in cpu.history.items():
        if value is None:  # binary-addition's updates_to_100, not reached in 10 updates
            assert dev.history[key] is None, key
        else:
            np.testing.assert_allclose(dev.history[key], value, rtol=1e-4, err_msg=key)
    for key, p in cpu.model.state_dict().items():
        np.testing.assert_allclose(dev.model.state_dict()[key], p, rtol=1e-4, atol=1e-5, err_msg=key)


def small_convnet(device, dtype=np.float64):
    return models.ConvNet((1, 6, 6), [(2, 3, 2)], [5], n_out=3, activation="relu", p_dropout=0.3, seed=2,
                          dtype=dtype, device=device)


def blobs(n, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    return (rng.standard_normal((3, 36))[y] * 3 + rng.standard_normal((n, 36))).astype(np.float64), y


@pytest.mark.gpu
@needs_gpu
def test_shuffled_minibatches_are_gathered_on_the_device(monkeypatch):
    """shuffle=True: every batch is take_rows of a device index (the epoch's permutation, copied once),
    and training matches the host run."""
    module = _cuda_module()
    gather, indices = module.take_rows, []
    monkeypatch.setattr(module, "take_rows", lambda a, index: indices.append(type(index)) or gather(a, index))
    x, y = blobs(60)
    cpu, history_cpu, dev, history_dev = _fit_both(small_convnet, (x, y), epochs=2, batch_size=10,
                                                   optimizer=lambda: SGD(0.05, momentum=0.9), shuffle=True)
    assert indices == [cuda.DeviceArray] * (2 * 2 * 6)  # x and y, 6 batches, 2 epochs
    _assert_close(dev, history_dev, cpu, history_cpu, 1e-9, "shuffled")


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("shuffle", [False, True])
def test_the_data_sets_are_copied_to_the_device_once_per_run(monkeypatch, shuffle):
    """Train, validation and test: 6 host-to-device copies per run, whatever the epochs and batches; with
    shuffle, one more per epoch (the permutation); and at the end the best validation's parameters (host
    copies, a state_dict) back to the model, one copy each. Nothing per batch."""
    copies = []
    from_numpy = cuda.DeviceArray.from_numpy
    model = small_convnet("cuda")
    x, y = blobs(60)
    counting = staticmethod(lambda a: copies.append(a.shape) or from_numpy(a))
    monkeypatch.setattr(cuda.DeviceArray, "from_numpy", counting)
    model.fit((x, y), epochs=3, batch_size=10, optimizer=Adam(0.01), validation=blobs(20, 1), test=blobs(20, 2),
              shuffle=shuffle)
    data = [(60, 36), (60,), (20, 36), (20,), (20, 36), (20,)] + [(60,)] * 3 * shuffle
    parameters = [p.shape for _, _, p, _ in model.parameters()]
    assert sorted(copies) == sorted(data + parameters)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("first, then", [("cuda", "cpu"), ("cpu", "cuda")])
def test_a_checkpoint_written_on_one_device_resumes_on_the_other(tmp_path, first, then):
    """Adam (moments beside their parameters, the step counter on the host), dropout, shuffling and
    validation: epoch 1 on one device, epochs 2-3 resumed on the other, against 3 epochs on the cpu."""
    x, y = blobs(90)
    data = dict(validation=blobs(30, 1), test=blobs(30, 2), batch_size=10, shuffle=True)
    whole = small_convnet("cpu")
    with deepnum.use_backend("cpp"):
        expected = whole.fit((x, y), epochs=3, optimizer=Adam(0.01), **data)
        ckpt = tmp_path / "ckpt.npz"
        small_convnet(first).fit((x, y), epochs=1, optimizer=Adam(0.01), checkpoint=ckpt, **data)
        with np.load(ckpt) as f:
            assert all(type(f[k]) is np.ndarray for k in f.files)
        resumed = small_convnet(then)
        history = resumed.fit((x, y), epochs=3, optimizer=Adam(0.01), checkpoint=ckpt, **data)
    assert resumed.device == then
    for slots in resumed.optimizer.state.values():
        assert ops.array_namespace(slots["m"], slots["v"]).name == then and type(slots["t"]) is np.ndarray
    history.pop("epoch_seconds")
    expected.pop("epoch_seconds")
    _assert_close(resumed, history, whole, expected, 1e-9, f"{first} -> {then}")


@pytest.mark.gpu
@needs_gpu
def test_to_moves_parameters_gradients_and_optimizer_state():
    x, y = blobs(20)
    model = small_convnet("cpu")
    model.fit((x, y), epochs=1, batch_size=10, optimizer=Adam(0.01))
    before = model.state_dict()
    state = {k: v.copy() for k, v in model.optimizer.state_dict().items()}
    assert model.to("cuda") is model and model.device == "cuda"
    for _, _, p, g in model.parameters():
        assert isinstance(p, cuda.DeviceArray) and isinstance(g, cuda.DeviceArray)
    for key, a in model.optimizer.state_dict().items():
        assert isinstance(a, np.ndarray if key.endswith(".t") else cuda.DeviceArray), key
    model.to("cpu")
    for key, a in model.optimizer.state_dict().items():
        np.testing.assert_array_equal(a, state[key], err_msg=key)
    for key, p in model.state_dict().items():
        np.testing.assert_array_equal(p, before[key], err_msg=key)


@pytest.mark.gpu
@needs_gpu
def test_weights_saved_on_cuda_load_on_either_device(tmp_path):
    x, y = blobs(20)
    model = small_convnet("cuda", np.float32)
    model.fit((x.astype(np.float32), y), epochs=1, batch_size=10, optimizer=SGD(0.1))
    model.save(tmp_path / "m.npz")
    probs = model.predict_proba(x.astype(np.float32))
    assert isinstance(probs, cuda.DeviceArray)
    for device in ("cpu", "cuda"):
        loaded = Sequential.load(tmp_path / "m.npz", device=device)
        assert loaded.device == device
        got = loaded.predict_proba(x.astype(np.float32))
        np.testing.assert_allclose(ops.array_namespace(got).to_host(got), probs.to_numpy(), rtol=1e-5, atol=1e-6)
    assert isinstance(model.predict(x.astype(np.float32)), cuda.DeviceArray)
    assert model.evaluate((x.astype(np.float32), y)).keys() == {"loss", "accuracy", "error"}


@pytest.mark.gpu
@needs_gpu
def test_host_arrays_mixed_with_device_arrays_in_an_op_stay_a_type_error():
    model = small_convnet("cuda")
    w = model.layers[1].params["w"]
    with pytest.raises(TypeError, match="conv2d_forward: w is a deepnum.cuda.DeviceArray but x is a numpy.ndarray"):
        ops.conv2d_forward(np.zeros((1, 1, 6, 6)), w)
    with pytest.raises(TypeError, match="forward: a DeviceArray of float32 where float64 is needed"):
        model.forward(cuda.DeviceArray.from_numpy(np.zeros((1, 36), np.float32)))


@pytest.mark.gpu
@needs_gpu
def test_train_backend_cuda_trains_on_the_device(tmp_path, capsys):
    assert cli.main(["train", "moons", "--backend", "cuda", "--epochs", "5", "--hidden", "3", "--out", str(tmp_path),
                     "--quiet"]) == 0
    assert "training accuracy" in capsys.readouterr().out
    assert (tmp_path / "decision_boundary.png").exists()  # drawn from the device model's predictions
