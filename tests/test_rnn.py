"""The recurrent network beyond the op driver: truncated BPTT and clipping against the reference and
against their definitions, kernel-level checks, the RNN layer in models, and two tasks it must learn.

Forward, full-BPTT gradients (finite differences), bad input and determinism of ``rnn_forward`` /
``rnn_backward`` are covered by the "rnn" case of opcases.py in test_ops.py.
"""
import itertools

import numpy as np
import pytest

import deepnum
from deepnum import _backend, cli, models, nn, ops, recipes
from deepnum.optim import SGD, Adam
from gradcheck import assert_model_gradients
from test_ops import HOST_BACKENDS as BACKENDS, assert_same, bits  # cuda: numpy in, so host only (see cuda/README.md)

ACTIVATIONS = ["tanh", "sigmoid", "relu", "linear"]


def rnn_inputs(steps, n, d, h, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((steps, n, d)).astype(dtype)
    h0 = (rng.standard_normal((n, h)) * 0.5).astype(dtype)
    w_xh = (rng.standard_normal((d, h)) / np.sqrt(d)).astype(dtype)
    w_hh = (rng.standard_normal((h, h)) * 0.9 / np.sqrt(h)).astype(dtype)
    b_h = (rng.standard_normal(h) * 0.5).astype(dtype)
    dh_all = rng.standard_normal((steps, n, h)).astype(dtype)
    return x, h0, w_xh, w_hh, b_h, dh_all


def forward_backward(backend, x, h0, w_xh, w_hh, b_h, dh_all, activation, **options):
    with deepnum.use_backend(backend):
        h_all = ops.rnn_forward(x, h0, w_xh, w_hh, b_h, activation)
        return (h_all,) + ops.rnn_backward(dh_all, x, h_all, h0, w_xh, w_hh, activation, **options)


# ---- truncation and clipping ---------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (7, 3, 5, 9), (12, 2, 3, 17)])
def test_truncation_and_clipping_match_the_reference(shape, backend, dtype):
    args = rnn_inputs(*shape, dtype=dtype, seed=sum(shape))
    for i, (activation, k) in enumerate(itertools.product(ACTIVATIONS, (None, 1, 3, 5))):
        clip = (None, 0.3)[i % 2 ^ (i // 4) % 2]  # each activation and each k with and without clipping
        got = forward_backward(backend, *args, activation, bptt_steps=k, clip=clip)
        want = forward_backward("numpy", *args, activation, bptt_steps=k, clip=clip)
        assert_same(got, want, f"rnn {activation} bptt_steps={k} clip={clip} {shape}", dtype)


def window_gradients(x, h0, w_xh, w_hh, b_h, dh_all, activation, k):
    """BPTT(k) by its definition: the loss at step s sees steps s-k+1 .. s only, i.e. it is the full
    gradient of the same RNN restarted at step s-k+1 from the (constant) state h_{s-k}. Summed over s."""
    h_all = ops.rnn_forward(x, h0, w_xh, w_hh, b_h, activation)
    dx, dh0, dw_xh, dw_hh, db_h = (np.zeros_like(a) for a in (x, h0, w_xh, w_hh, b_h))
    for s in range(len(x)):
        lo = max(0, s - k + 1)
        start = h0 if lo == 0 else h_all[lo - 1]
        d = np.zeros_like(h_all[lo:s + 1])
        d[-1] = dh_all[s]
        gx, gh0, gwx, gwh, gb = ops.rnn_backward(d, x[lo:s + 1], h_all[lo:s + 1], start, w_xh, w_hh, activation)
        dx[lo:s + 1] += gx
        if lo == 0:
            dh0 += gh0
        dw_xh += gwx
        dw_hh += gwh
        db_h += gb
    return dx, dh0, dw_xh, dw_hh, db_h


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_truncated_bptt_is_a_window_of_k_steps(backend, activation):
    x, h0, w_xh, w_hh, b_h, dh_all = rnn_inputs(9, 2, 3, 4, seed=3)
    with deepnum.use_backend(backend):
        h_all = ops.rnn_forward(x, h0, w_xh, w_hh, b_h, activation)
        for k in (1, 2, 4, 8):
            got = ops.rnn_backward(dh_all, x, h_all, h0, w_xh, w_hh, activation, bptt_steps=k)
            want = window_gradients(x, h0, w_xh, w_hh, b_h, dh_all, activation, k)
            assert_same(got, want, f"BPTT({k}) {activation} [{backend}]", np.float64)
        full = ops.rnn_backward(dh_all, x, h_all, h0, w_xh, w_hh, activation)
        for k in (0, 9, 20):  # k >= T is full BPTT, bit for bit
            assert bits(ops.rnn_backward(dh_all, x, h_all, h0, w_xh, w_hh, activation, bptt_steps=k)) == bits(full)


@pytest.mark.parametrize("backend", BACKENDS)
def test_clip_scales_the_parameter_gradients_to_the_global_norm(backend):
    x, h0, w_xh, w_hh, b_h, dh_all = rnn_inputs(6, 4, 3, 5, seed=5)
    _, *free = forward_backward(backend, x, h0, w_xh, w_hh, b_h, dh_all, "tanh")
    norm = np.sqrt(sum(np.sum(g ** 2) for g in free[2:]))
    _, *clipped = forward_backward(backend, x, h0, w_xh, w_hh, b_h, dh_all, "tanh", clip=norm / 4)
    assert bits(clipped[:2]) == bits(free[:2])  # dx and dh0 are never clipped
    np.testing.assert_allclose(np.sqrt(sum(np.sum(g ** 2) for g in clipped[2:])), norm / 4, rtol=1e-12)
    for g, f in zip(clipped[2:], free[2:]):
        np.testing.assert_allclose(g, f / 4, rtol=1e-12, atol=1e-15)
    _, *loose = forward_backward(backend, x, h0, w_xh, w_hh, b_h, dh_all, "tanh", clip=norm * 1.01)
    assert bits(loose) == bits(free)


@pytest.mark.parametrize("backend", ["cpp", "numba"])
def test_truncated_and_clipped_backward_is_deterministic_across_threads(backend):
    """seq-MNIST sizes with N·H above the threading threshold."""
    args = rnn_inputs(28, 300, 28, 128, dtype=np.float32, seed=7)
    threads = deepnum.get_num_threads()
    try:
        runs = []
        for n in (2, 2, 1):
            deepnum.set_num_threads(n)
            runs.append(bits(forward_backward(backend, *args, "tanh", bptt_steps=5, clip=1.0)))
    finally:
        deepnum.set_num_threads(threads)
    assert runs[0] == runs[1] == runs[2]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_saturated_activations_stay_finite(backend, dtype):
    x, h0, w_xh, w_hh, b_h, dh_all = (a.astype(dtype) for a in rnn_inputs(5, 2, 3, 4, seed=9))
    for activation in ("tanh", "sigmoid"):
        got = forward_backward(backend, x * 1e4, h0, w_xh, w_hh, b_h, dh_all, activation)
        assert all(np.isfinite(g).all() for g in got), activation
        want = forward_backward("numpy", x * 1e4, h0, w_xh, w_hh, b_h, dh_all, activation)
        assert_same(got, want, f"saturated {activation}", dtype)


@pytest.mark.parametrize("backend", ["cpp", "numba"])
def test_float32_tanh_and_sigmoid_are_accurate(backend):
    """The float32 tanh and sigmoid of cpp and numba are polynomials: compare one RNN step and
    activation_forward against float64 NumPy."""
    z = np.concatenate([np.linspace(-30, 30, 100_001), [0.0, -0.0, 1e-30, -1e-30, np.inf, -np.inf, np.nan]])
    x = z.astype(np.float32).reshape(1, -1, 1)
    one = np.ones((1, 1), np.float32)
    with deepnum.use_backend(backend):
        tanh = ops.rnn_forward(x, np.zeros((x.shape[1], 1), np.float32), one, one * 0, np.zeros(1, np.float32))
        sigmoid = ops.rnn_forward(x, np.zeros((x.shape[1], 1), np.float32), one, one * 0, np.zeros(1, np.float32),
                                  "sigmoid")
        tanh_layer, sigmoid_layer = ops.activation_forward("tanh", x), ops.activation_forward("sigmoid", x)
    exact = x.astype(np.float64)
    with np.errstate(over="ignore"):
        for got, want in ((tanh, np.tanh(exact)), (sigmoid, 1 / (1 + np.exp(-exact))),
                          (tanh_layer, np.tanh(exact)), (sigmoid_layer, 1 / (1 + np.exp(-exact)))):
            np.testing.assert_allclose(got, want, rtol=4e-7, atol=1e-37)  # within 3 float32 ulp
            assert np.array_equal(np.isnan(got), np.isnan(exact))


# ---- kernel-level checks -------------------------------------------------------------------

def test_entry_points_check_their_arguments():
    """Every CPU backend's entry points (the compiled contract, tests/test_contract.py has the whole driver)
    refuse what the RNN kernels cannot take, with the op's name first."""
    x, h0, w_xh, w_hh, b_h, dh_all = rnn_inputs(3, 2, 3, 4)
    h_all = np.empty_like(dh_all)
    for name in BACKENDS:
        kernels = _backend.load(name)
        with pytest.raises(ValueError, match="^rnn_forward: activation must be one of .*got 'leaky_relu'"):
            kernels.rnn_forward(x, h0, w_xh, w_hh, b_h, "leaky_relu")
        with pytest.raises(TypeError, match="^rnn_backward: activation must be a str, got 7"):
            kernels.rnn_backward(h_all, dh_all, x, h0, w_xh, w_hh, 7, None, None)
        with pytest.raises(ValueError, match=r"^rnn_forward: w_hh must have shape \(4, 4\)"):
            kernels.rnn_forward(x, h0, w_xh, w_hh[:3], b_h, "tanh")
        with pytest.raises(TypeError, match="^rnn_forward: all arrays must share one dtype"):
            kernels.rnn_forward(x, h0.astype(np.float32), w_xh, w_hh, b_h, "tanh")
        with pytest.raises(TypeError, match="^rnn_forward: h0 must be C-contiguous"):
            kernels.rnn_forward(x, np.asfortranarray(h0), w_xh, w_hh, b_h, "tanh")
        with pytest.raises(ValueError, match="^rnn_backward: bptt_steps must be >= 0"):
            kernels.rnn_backward(h_all, dh_all, x, h0, w_xh, w_hh, "tanh", -1, None)
        with pytest.raises(ValueError, match="^rnn_backward: clip must be finite"):
            kernels.rnn_backward(h_all, dh_all, x, h0, w_xh, w_hh, "tanh", None, float("nan"))
        with pytest.raises(ValueError, match=r"^rnn_backward: h_all must have shape \(3, 2, 4\)"):
            kernels.rnn_backward(h_all[:2], dh_all, x, h0, w_xh, w_hh, "tanh", None, None)


# ---- the layer and the heads ---------------------------------------------------------------

def sequence_models(dtype=np.float64):
    return {
        "many-to-one": lambda: models.Sequential([nn.RNN(3, 5, "tanh"), nn.Dense(5, 4), nn.SoftmaxNLL()],
                                                 dtype=dtype),
        "many-to-many": lambda: models.Sequential([nn.RNN(3, 5, "sigmoid", return_sequences=True, init_hh="identity",
                                                          gain=0.5), nn.Dense(5, 4, "tanh"), nn.Dense(4, 4),
                                                   nn.SoftmaxNLL()], dtype=dtype),
        "stacked": lambda: models.Sequential([nn.RNN(3, 4, "relu", return_sequences=True, init_hh="glorot"),
                                              nn.RNN(4, 5, "tanh"), nn.Dense(5, 4), nn.SoftmaxNLL()], dtype=dtype),
        "bits": lambda: models.Sequential([nn.RNN(3, 5, "tanh", return_sequences=True), nn.Dense(5, 1),
                                           nn.SigmoidBCE()], dtype=dtype),
    }


def sequence_targets(name, rng, n, steps):
    if name == "many-to-many":
        return rng.integers(0, 4, (n, steps))
    if name == "bits":
        return rng.integers(0, 2, (n, steps, 1)).astype(np.float64)
    return rng.integers(0, 4, n)


@pytest.mark.parametrize("backend", ["cpp", "numpy"])  # the layers are the same on every backend; the
@pytest.mark.parametrize("name", list(sequence_models()))  # kernels are checked per backend in test_ops.py
def test_sequence_model_gradient_matches_finite_differences(name, backend):
    rng = np.random.default_rng(2)
    model = sequence_models()[name]()
    for _, _, p, _ in model.parameters():
        p[...] = rng.standard_normal(p.shape) * 0.5
    x = rng.standard_normal((3, 4, 3))  # (N, T, D), batch-first
    y = sequence_targets(name, rng, 3, 4)

    def loss():
        model.forward(x, train=True)
        return model.layers[-1].loss(y)

    with deepnum.use_backend(backend):
        d = assert_model_gradients(model, loss, name)
        assert d.shape == x.shape


def test_rnn_learns_to_remember_the_first_step():
    """Many-to-one: the label is the sign of the first input; 11 steps of noise follow it."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1200, 12, 2)).astype(np.float32)
    x[:, 1:, 0] = 0  # channel 0 carries the signal at step 0 only, channel 1 is noise throughout
    y = (x[:, 0, 0] > 0).astype(np.int64)
    model = models.Sequential([nn.RNN(2, 16, "tanh"), nn.Dense(16, 2), nn.SoftmaxNLL()], seed=1)
    model.fit((x[:1000], y[:1000]), epochs=20, batch_size=20, optimizer=Adam(0.01), shuffle=True)
    assert model.evaluate((x[1000:], y[1000:]))["accuracy"] > 0.9  # 0.995 here; chance is 0.5


def test_rnn_learns_to_echo_with_a_delay():
    """Many-to-many: at every step, output the symbol seen two steps earlier (0 before that)."""
    rng = np.random.default_rng(1)
    symbols = rng.integers(0, 3, (1200, 10))
    x = np.eye(3, dtype=np.float32)[symbols]  # one-hot (N, T, 3)
    y = np.zeros_like(symbols)
    y[:, 2:] = symbols[:, :-2]
    model = models.Sequential([nn.RNN(3, 24, "tanh", return_sequences=True), nn.Dense(24, 3), nn.SoftmaxNLL()],
                              seed=2)
    model.fit((x[:1000], y[:1000]), epochs=10, batch_size=20, optimizer=Adam(0.01), shuffle=True)
    scores = model.evaluate((x[1000:], y[1000:]))  # accuracy per time step
    assert scores["accuracy"] > 0.98
    assert model.predict(x[1000:]).shape == (200, 10)


def test_binary_addition_recipe_reaches_100_percent(tmp_path, capsys):
    assert cli.main(["train", "binary-addition", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    line = next(s for s in out.splitlines() if s.startswith("exact-sum accuracy on all 128×128 pairs"))
    assert ": 100.00% after 10000 single-example updates" in line
    assert sum(" + " in s and " = " in s for s in out.splitlines()) >= 3
    model = models.Sequential.load(tmp_path / "weights.npz")
    a, b, x = recipes.BinaryAdditionRecipe.all_pairs()
    assert np.array_equal(recipes.BinaryAdditionRecipe.sums(model, x), a + b)


def test_rnn_model_save_load_and_resume(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 5, 3)).astype(np.float32)
    y = rng.integers(0, 2, (40, 5, 1)).astype(np.float32)

    def fresh():
        return models.Sequential([nn.RNN(3, 6, "tanh", return_sequences=True, bptt_steps=3, clip=1.0),
                                  nn.Dense(6, 1), nn.SigmoidBCE()], seed=4)

    model = fresh()
    model.fit((x, y), epochs=2, batch_size=8, optimizer=SGD(0.1, momentum=0.5))
    model.save(tmp_path / "m.npz")
    loaded = models.Sequential.load(tmp_path / "m.npz")
    assert loaded.layers[0].config() == model.layers[0].config()
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))
    whole = fresh()
    whole.fit((x, y), epochs=3, batch_size=8, optimizer=SGD(0.1, momentum=0.5))
    first = fresh()
    first.fit((x, y), epochs=1, batch_size=8, optimizer=SGD(0.1, momentum=0.5), checkpoint=tmp_path / "c.npz")
    resumed = fresh()
    resumed.fit((x, y), epochs=3, batch_size=8, optimizer=SGD(0.1, momentum=0.5), checkpoint=tmp_path / "c.npz")
    a, b = whole.state_dict(), resumed.state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_sigmoid_bce_head():
    head = nn.SigmoidBCE()
    z = np.array([[-1e4, -30.0, -1.0, 0.0, 2.0, 40.0, 1e4]])
    y = np.array([[0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0]])
    head.forward(z, train=True)
    p = 1 / (1 + np.exp(-np.clip(z, -700, 700)))
    naive = -(y * np.log(np.maximum(p, 1e-300)) + (1 - y) * np.log(np.maximum(1 - p, 1e-300)))
    naive[0, 5] = 40.0  # log(1 - p) underflows in the naive form; the stable form gives 40 + log1p(e^-40)
    np.testing.assert_allclose(head.loss(y), naive.mean(), rtol=1e-12)
    np.testing.assert_allclose(head.backward(), (p - y) / z.size, rtol=1e-12, atol=1e-300)
    np.testing.assert_array_equal(head.predictions(z), [[0, 0, 0, 0, 1, 1, 1]])
    with pytest.raises(ValueError, match="SigmoidBCE: targets have shape"):
        head.loss(y[:, :3])


def test_rnn_layer_options_and_errors():
    rng = np.random.default_rng(0)
    for init_hh, gain in (("orthogonal", 1.0), ("orthogonal", 0.5), ("identity", 0.3)):
        layer = nn.RNN(4, 7, init_hh=init_hh, gain=gain)
        layer.build(rng, np.dtype(np.float64))
        w = layer.params["w_hh"]
        np.testing.assert_allclose(w @ w.T, gain ** 2 * np.eye(7), atol=1e-12)
        assert init_hh != "identity" or np.array_equal(w, gain * np.eye(7))
    with pytest.raises(ValueError, match="RNN: activation"):
        nn.RNN(2, 3, "leaky_relu")
    with pytest.raises(ValueError, match="RNN: init_hh"):
        nn.RNN(2, 3, init_hh="zeros")
    layer = nn.RNN(2, 3)
    layer.build(rng, np.dtype(np.float32))
    with pytest.raises(ValueError, match=r"RNN: input must be \(N, T, 2\)"):
        layer.forward(np.zeros((4, 5, 3), np.float32), train=False)
    with pytest.raises(ValueError, match="output head"):
        models.Sequential([nn.RNN(2, 3), nn.Dense(3, 1)])


def test_l2_decays_the_recurrent_weights_but_not_the_bias():
    model = models.Sequential([nn.RNN(2, 3, "tanh"), nn.Dense(3, 2), nn.SoftmaxNLL()], dtype=np.float64)
    rnn = model.layers[0]
    rnn.params["b"][...] = 1.0
    before = {k: v.copy() for k, v in rnn.params.items()}
    SGD(0.1, l2=0.5).step([(k, k, p, np.zeros_like(p)) for k, p in rnn.params.items()], 0)
    for k in ("w_xh", "w_hh"):
        np.testing.assert_allclose(rnn.params[k], before[k] * (1 - 0.1 * 0.5))
    np.testing.assert_array_equal(rnn.params["b"], before["b"])
