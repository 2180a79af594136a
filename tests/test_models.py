"""Layers, models and the trainer, on small synthetic data (CI never downloads)."""
import numpy as np
import pytest

import deepnum
from deepnum import checkpoint, models, nn
from deepnum.models import Sequential, TrainingDiverged
from deepnum.optim import SGD, Adam
from gradcheck import assert_model_gradients


def blobs(n=600, d=20, k=3, seed=0, dtype=np.float32):
    """k Gaussian clusters in d dimensions: an easy classification set."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((k, d)) * 3
    y = rng.integers(0, k, n)
    x = centers[y] + rng.standard_normal((n, d))
    return x.astype(dtype), y


def small_convnet(seed=0, dtype=np.float64, activation="tanh", p_dropout=0.0):
    return models.ConvNet((1, 6, 6), [(2, 3, 2)], [5], n_out=3, activation=activation, p_dropout=p_dropout,
                          seed=seed, dtype=dtype)


def model_zoo(dtype=np.float64):
    return {
        "logistic": lambda: models.LogisticRegression(36, 3, dtype=dtype),
        "mlp": lambda: models.MLP([36, 7, 5, 3], "sigmoid", init="normal", dtype=dtype),
        "convnet": lambda: small_convnet(dtype=dtype),
        "convnet-relu-dropout": lambda: small_convnet(activation="relu", p_dropout=0.3, dtype=dtype),
        "rnn": lambda: Sequential([models.Reshape((6, 6)), nn.RNN(6, 5, "tanh"), nn.Dense(5, 3), nn.SoftmaxNLL()],
                                  dtype=dtype),  # the 36 features read as 6 steps of 6
    }


def loss_of(model, x, y):
    model.forward(x, train=True)
    return model.layers[-1].loss(y)


@pytest.mark.parametrize("name", list(model_zoo()))
def test_model_gradient_matches_finite_differences(name):
    """Backprop through a whole model (float64, numpy backend) against central differences."""
    model = model_zoo()[name]()
    for _, _, p, _ in model.parameters():  # zero-initialised softmax layers would hide errors
        p[...] = np.random.default_rng(1).standard_normal(p.shape) * 0.5
    x, y = blobs(4, 36, 3, dtype=np.float64)
    state = model.rng.bit_generator.state  # dropout draws its mask from the model's generator

    def loss():
        model.rng.bit_generator.state = state
        return loss_of(model, x, y)

    with deepnum.use_backend("numpy"):
        assert_model_gradients(model, loss, name)


@pytest.mark.parametrize("backend", ["cpp", "numba", "numpy"])
@pytest.mark.parametrize("name", list(model_zoo()))
def test_training_backward_skips_only_the_input_gradient(name, backend):
    """A training step's backward skips the gradient of the data (the first layer's dx) and
    nothing else: the parameter gradients equal those of the full backward, bit for bit."""
    model = model_zoo()[name]()
    x, y = blobs(4, 36, 3, dtype=np.float64)
    with deepnum.use_backend(backend):
        loss_of(model, x, y)
        assert model.backward() is None
        skipped = {key: g.copy() for key, _, _, g in model.parameters()}
        assert model.backward(input_grad=True).shape == x.shape
        for key, _, _, g in model.parameters():
            np.testing.assert_array_equal(g, skipped[key], err_msg=f"{name}: parameter {key}")


@pytest.mark.parametrize("backend", ["cpp", "numba", "numpy"])
def test_fit_learns_blobs(backend):
    x, y = blobs(900, 36)
    train, valid = (x[:600], y[:600]), (x[600:], y[600:])
    with deepnum.use_backend(backend):
        model = models.MLP([36, 16, 3], "tanh", seed=3)
        history = model.fit(train, epochs=5, batch_size=20, optimizer=SGD(0.05, momentum=0.9), validation=valid,
                            test=valid, shuffle=True)
        assert model.evaluate(valid)["accuracy"] > 0.95
    assert len(history["train_loss"]) == 5 and history["train_loss"][-1] < history["train_loss"][0]
    assert history["test_error"] == history["best_valid_error"]


def test_fit_convnet_with_adam():
    x, y = blobs(400, 36)
    model = small_convnet(dtype=np.float32, activation="relu", p_dropout=0.2)
    model.fit((x, y), epochs=4, batch_size=10, optimizer=Adam(0.01), shuffle=True)
    assert model.evaluate((x, y))["accuracy"] > 0.9


def test_early_stopping_follows_the_tutorials():
    """patience in iterations: validation every min(n_batches, patience // 2) iterations, and
    the loop stops once the iteration count passes patience."""
    x, y = blobs(200, 36)
    model = models.LogisticRegression(36, 3)
    calls = []
    evaluate = model.evaluate
    model.evaluate = lambda data: calls.append(1) or evaluate(data)
    history = model.fit((x, y), epochs=50, batch_size=20, optimizer=SGD(0.0), validation=(x, y), patience=8)
    # lr 0: the first validation is the best; patience stays 8, so training stops at iteration 8
    # (epoch 1) after validating at iterations 3 and 7 (every 4), plus the epoch-end record.
    assert history["epoch"] == [1]
    assert history["best_iteration"] == 3
    assert len(calls) == 3


def test_same_seed_same_parameters():
    x, y = blobs(300, 36)

    def train():
        model = small_convnet(seed=5, dtype=np.float32, p_dropout=0.3)
        model.fit((x, y), epochs=2, batch_size=10, optimizer=SGD(0.05), shuffle=True)
        return model.state_dict()

    a, b = train(), train()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    other = small_convnet(seed=6, dtype=np.float32).state_dict()
    assert not all(np.array_equal(a[k], other[k]) for k in a)


@pytest.mark.parametrize("optimizer, patience", [(lambda: SGD(0.05, momentum=0.5), None),
                                                  (lambda: Adam(0.01), None),
                                                  (lambda: SGD(0.05, momentum=0.5, nesterov=True), 40),
                                                  (lambda: SGD(0.05), 24)])
def test_resume_from_checkpoint_is_bit_identical(tmp_path, optimizer, patience):
    """Parameters, optimiser state, shuffling and dropout draws, early-stopping state and history
    (but the epochs' seconds); a different training setup is refused, naming what differs."""
    x, y = blobs(300, 36)
    data = dict(validation=(x[:100], y[:100]), test=(x[100:200], y[100:200]), batch_size=10, shuffle=True,
                patience=patience)

    def fresh():
        return small_convnet(seed=2, dtype=np.float32, p_dropout=0.3)

    whole = fresh()
    expected = whole.fit((x, y), epochs=3, optimizer=optimizer(), **data)
    ckpt = tmp_path / "ckpt.npz"
    first = fresh()
    first.fit((x, y), epochs=1, optimizer=optimizer(), checkpoint=ckpt, **data)
    resumed = fresh()  # a new process would start here
    history = resumed.fit((x, y), epochs=3, optimizer=optimizer(), checkpoint=ckpt, **data)
    assert len(history.pop("epoch_seconds")) == len(expected.pop("epoch_seconds")) == len(history["epoch"])
    assert history == expected
    assert history["epoch"] == ([1, 2] if patience == 24 else [1, 2, 3])  # patience 24 stops in epoch 2
    a, b = whole.state_dict(), resumed.state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    other = Adam() if isinstance(optimizer(), SGD) else SGD(0.01)
    with pytest.raises(models.CheckpointMismatch, match="optimizer type: '(SGD|Adam)' in the checkpoint"):
        fresh().fit((x, y), epochs=3, optimizer=other, checkpoint=ckpt, **data)
    with pytest.raises(models.CheckpointMismatch, match="batch_size: 10 in the checkpoint, 20 now"):
        fresh().fit((x, y), epochs=3, optimizer=optimizer(), checkpoint=ckpt, **dict(data, batch_size=20))
    with pytest.raises(models.CheckpointMismatch, match="model seed: 2 in the checkpoint, 3 now"):
        small_convnet(seed=3, dtype=np.float32, p_dropout=0.3).fit((x, y), epochs=3, optimizer=optimizer(),
                                                                   checkpoint=ckpt, **data)


def test_early_stopping_raises_patience_only_on_significant_improvements():
    """The DLT rule on scripted validation errors: 200 examples in batches of 20 (10 a epoch),
    patience 10, so validation every min(10, 10 // 2) = 5 iterations (0-based 4, 9, 14, ...)."""
    x, y = blobs(200, 36)
    model = models.LogisticRegression(36, 3)
    script = iter([0.5, 0.4, 0.399, 0.45])
    model.evaluate = lambda data: {"loss": 1.0, "error": next(script)}
    history = model.fit((x, y), epochs=50, batch_size=20, optimizer=SGD(0.1), validation=(x, y), patience=10)
    # it 4: 0.5, first best, patience max(10, 4·2) = 10; it 9: 0.4 < 0.995·0.5, patience 18; it 14:
    # 0.399 is better but not by the threshold (0.398): best moves, patience stays; stop at it 18,
    # the 9th batch of epoch 2, whose record scores the parameters once more (0.45). Epoch 1's
    # record reuses the validation of its last iteration.
    assert history["best_iteration"] == 14 and history["best_valid_error"] == 0.399
    assert history["epoch"] == [1, 2] and history["valid_error"] == [0.4, 0.45]


def test_training_prints_a_progress_bar_on_a_terminal_and_a_line_per_epoch(capsys, monkeypatch):
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # the bar is drawn on terminals only
    x, y = blobs(100, 36)
    models.LogisticRegression(36, 3).fit((x, y), epochs=2, batch_size=10, optimizer=SGD(0.1), validation=(x, y),
                                         verbose=True)
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["epoch 1", "epoch 2"]
    assert "training loss" in lines[0] and "validation accuracy" in lines[0]
    assert "epoch 1:   0%|" in err and "| 0/10 [" in err  # tqdm's bar (its loss postfix shows on refreshes)


def test_nan_after_a_good_epoch_keeps_its_checkpoint(tmp_path):
    x, y = blobs(100, 36)
    ckpt = tmp_path / "ckpt.npz"
    model = models.MLP([36, 8, 3])
    one_epoch = models.MLP([36, 8, 3])
    one_epoch.fit((x, y), epochs=1, batch_size=10, optimizer=SGD(0.1))

    def poison(model, history):  # after epoch 1 (and before its checkpoint): a NaN in batch 6
        x[57] = np.nan

    with pytest.raises(TrainingDiverged, match=rf"epoch 2, batch 6; the last checkpoint \({ckpt}\) is kept"):
        model.fit((x, y), epochs=3, batch_size=10, optimizer=SGD(0.1), callbacks=[poison], checkpoint=ckpt)
    with np.load(ckpt) as f:
        assert all(np.array_equal(f[k], v) for k, v in one_epoch.state_dict().items())


def test_atomic_save_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    model = models.LogisticRegression(4, 2)
    path = tmp_path / "m.npz"
    model.save(path)
    before = path.read_bytes()

    def broken(f, **arrays):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.npz"]
    (tmp_path / "plain").write_bytes(b"")
    assert path.stat().st_mode == (tmp_path / "plain").stat().st_mode  # the umask's permissions, not 0600


def test_nan_loss_stops_with_epoch_and_batch(tmp_path):
    x, y = blobs(100, 36)
    x[57] = np.nan
    model = models.MLP([36, 8, 3])
    ckpt = tmp_path / "ckpt.npz"
    with pytest.raises(TrainingDiverged, match=r"epoch 1, batch 6"):
        model.fit((x, y), epochs=2, batch_size=10, optimizer=SGD(0.1), checkpoint=ckpt)
    assert not ckpt.exists()  # no epoch finished: nothing good to keep


def test_save_load_roundtrip(tmp_path):
    model = small_convnet(dtype=np.float32)
    x, y = blobs(50, 36)
    model.fit((x, y), epochs=1, batch_size=10, optimizer=SGD(0.1))
    model.save(tmp_path / "m.npz")
    loaded = Sequential.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.predict_proba(x), model.predict_proba(x))
    with np.load(tmp_path / "m.npz", allow_pickle=False) as f:  # plain arrays and JSON, no pickle
        assert "__architecture__" in f.files


def test_model_errors(tmp_path):
    with pytest.raises(ValueError, match="SoftmaxNLL"):
        Sequential([nn.Dense(3, 2)])
    with pytest.raises(ValueError, match="Dense: unknown activation"):
        nn.Dense(3, 2, "swish")
    x5, y5 = np.zeros((5, 3), np.float32), np.zeros(5, int)
    with pytest.raises(ValueError, match="batch_size"):
        models.LogisticRegression(3, 2).fit((x5, y5), 1, 10)
    for batch_size in (0, -5, 2.5):
        with pytest.raises(ValueError, match=r"fit: batch_size must be an integer >= 1"):
            models.LogisticRegression(3, 2).fit((x5, y5), 1, batch_size)
    with pytest.raises(ValueError, match="fit: epochs must be"):
        models.LogisticRegression(3, 2).fit((x5, y5), -1, 1)
    with pytest.raises(ValueError, match="fit: 5 training inputs but 4 targets"):
        models.LogisticRegression(3, 2).fit((x5, y5[:4]), 1, 1)
    with pytest.raises(ValueError, match="Ensemble: needs at least one member"):
        models.Ensemble([])
    with pytest.raises(ValueError, match="ConvNet: image"):
        models.ConvNet((1, 6, 6), [(2, 5, 2), (2, 3, 2)], [4])
    np.savez(tmp_path / "other.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="other.npz is not a deepnum model"):
        Sequential.load(tmp_path / "other.npz")


@pytest.mark.parametrize("call", ["predict", "predict_proba", "evaluate"])
def test_prediction_errors_name_the_call_and_the_argument(call):
    model = models.LogisticRegression(3, 2)
    x, y = np.zeros((5, 3), np.float32), np.zeros(5, np.int64)

    def run(x, y, **kwargs):
        return getattr(model, call)((x, y), **kwargs) if call == "evaluate" else getattr(model, call)(x, **kwargs)

    for batch_size in (0, -5, 2.5, True, "10"):
        with pytest.raises(ValueError, match=rf"^{call}: batch_size must be an integer >= 1, got {batch_size!r}$"):
            run(x, y, batch_size=batch_size)
    with pytest.raises(ValueError, match=rf"^{call}: x is empty \(0 examples\); give at least one$"):
        run(x[:0], y[:0])
    assert len(run(x, y, batch_size=np.int64(2)) if call != "evaluate" else x) == 5  # NumPy integers are fine
    if call == "evaluate":
        with pytest.raises(ValueError, match=r"^evaluate: needs as many targets as inputs; got 5 and 4$"):
            run(x, y[:4])


def test_model_dtype_is_a_name_or_a_numpy_dtype():
    assert models.MLP([3, 2], dtype="float64").dtype == np.float64
    assert models.MLP([3, 2], dtype=np.float32).predict_proba(np.zeros((2, 3))).dtype == np.float32
    with pytest.raises(TypeError, match="Sequential: dtype must be float32 or float64, got float16"):
        models.MLP([3, 2], dtype=np.float16)


@pytest.mark.parametrize("make, message", [
    (lambda: nn.Dense(0, 2), "Dense: n_in must be >= 1"),
    (lambda: nn.Dense(3, 2.5), "Dense: n_out must be an integer"),
    (lambda: nn.Dense(3, 2, p_dropout=1.0), r"Dense: p_dropout must be in \[0, 1\)"),
    (lambda: nn.Conv2D(1, 2, (3, 0)), "Conv2D: kernel must be >= 1"),
    (lambda: nn.Conv2D(1, 2, 3, stride=0), "Conv2D: stride must be >= 1"),
    (lambda: nn.Conv2D(1, 2, 3, padding=-1), "Conv2D: padding must be >= 0"),
    (lambda: nn.MaxPool2D(0), "MaxPool2D: size must be >= 1"),
    (lambda: nn.Dropout(-0.1), "Dropout: p must be in"),
    (lambda: nn.RNN(3, True), "RNN: n_hidden must be an integer"),
    (lambda: SGD(-0.1), "SGD: lr must be a number >= 0"),
    (lambda: SGD(0.1, momentum=1.0), r"SGD: momentum must be in \[0, 1\)"),
    (lambda: SGD(0.1, nesterov=True), "SGD: nesterov=True needs a momentum > 0"),
    (lambda: SGD(0.1, l2=-1), "SGD: l2 and l1 must be >= 0"),
    (lambda: Adam(beta2=1.0), "Adam: need 0 <= beta1, beta2 < 1"),
])
def test_constructors_reject_bad_arguments(make, message):
    with pytest.raises((TypeError, ValueError), match=message):
        make()


@pytest.mark.parametrize("l2, l1", [(0.3, 0.0), (0.0, 0.2), (0.3, 0.2)])
def test_penalties_act_on_weights_only_with_their_documented_scaling(l2, l1):
    """One SGD step: w -= lr·(g + l2·w + l1·sign(w)); biases get the bare gradient."""
    x, y = blobs(20, 36, dtype=np.float64)
    model = models.MLP([36, 6, 3], "tanh", dtype=np.float64)
    for _, _, p, _ in model.parameters():
        p += 0.1  # non-zero biases and softmax weights, so that a penalty on them would show
    model.forward(x, train=True)
    model.layers[-1].loss(y)
    model.backward()
    before = {k: (name, p.copy(), g.copy()) for k, name, p, g in model.parameters()}
    SGD(0.5, l2=l2, l1=l1).step(model.parameters(), 0)
    for key, _, p, _ in model.parameters():
        name, p0, g = before[key]
        penalty = l2 * p0 + l1 * np.sign(p0) if name == "w" else 0
        np.testing.assert_allclose(p, p0 - 0.5 * (g + penalty), rtol=1e-12, atol=1e-14)


def test_sgd_nesterov_and_heavy_ball_follow_their_formulas():
    """Two steps on fixed gradients: v = μv + g, then p -= lr·v (heavy ball) or lr·(g + μv)."""
    p0, g = np.array([1.0, -2.0, 3.0]), np.array([0.5, 0.25, -1.0])
    for nesterov in (False, True):
        p, v = p0.copy(), np.zeros(3)
        opt = SGD(0.1, momentum=0.9, nesterov=nesterov)
        for _ in range(2):
            opt.step([("0.w", "w", p, g)], 0)
        expected, v = p0.copy(), np.zeros(3)
        for _ in range(2):
            v = 0.9 * v + g
            expected -= 0.1 * (g + 0.9 * v if nesterov else v)
        np.testing.assert_allclose(p, expected, rtol=1e-12)


def test_learning_rate_schedule_is_a_function_of_the_epoch():
    x, y = blobs(40, 36)
    seen = []
    model = models.LogisticRegression(36, 3)
    model.fit((x, y), epochs=3, batch_size=20, optimizer=SGD(lambda epoch: seen.append(epoch) or 0.1))
    assert seen == [0, 0, 1, 1, 2, 2]


def test_ensemble_votes():
    x, y = blobs(300, 36)
    members = []
    for seed in range(3):
        m = models.MLP([36, 8, 3], seed=seed)
        m.fit((x, y), epochs=2, batch_size=10, optimizer=SGD(0.05), shuffle=True)
        members.append(m)
    votes = np.stack([m.predict(x) for m in members], axis=1)
    majority = models.Ensemble(members).predict(x)
    for row, choice in zip(votes, majority):
        counts = np.bincount(row, minlength=3)
        assert counts[choice] == counts.max() and choice == np.flatnonzero(counts == counts.max())[0]
    mean = models.Ensemble(members, vote="mean")
    np.testing.assert_array_equal(mean.predict(x), np.mean([m.predict_proba(x) for m in members], 0).argmax(1))
    assert models.Ensemble(members).evaluate((x, y))["accuracy"] > 0.9


# ---- the fused MLP step ----------------------------------------------------------------------

def _layer_by_layer_step(model, x, y):
    """What train_step does for models the fused step does not cover."""
    model.forward(x, train=True)
    loss = model.layers[-1].loss(y)
    model.backward()
    model.optimizer.step(model.parameters(), model.epoch)
    return loss


@pytest.mark.parametrize("backend", ["cpp", "numba", "numpy"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["linear", "sigmoid", "tanh", "relu", "leaky_relu"])
def test_fused_mlp_step_equals_layer_by_layer(activation, dtype, backend):
    """train_step of a Dense/SoftmaxNLL/SGD model runs as one ops.mlp_train_step call; with layers
    of at most one chunk (16 columns) it calls the same kernels in the same order, and the parameters
    it leaves are bit-identical to the layer-by-layer path's, step after step."""
    x, y = blobs(40, 13, 4, dtype=dtype)
    fused, plain = (models.MLP([13, 9, 17, 4], activation, init="normal", seed=3, dtype=dtype) for _ in range(2))
    for m in (fused, plain):
        m.optimizer = SGD(0.3, l2=0.01)
    assert fused._fused_mlp_step(x)
    with deepnum.use_backend(backend):
        for i in range(0, 40, 10):
            assert fused.train_step(x[i:i + 10], y[i:i + 10]) == _layer_by_layer_step(plain, x[i:i + 10], y[i:i + 10])
    for (key, _, p, _), (_, _, q, _) in zip(fused.parameters(), plain.parameters()):
        assert p.tobytes() == q.tobytes(), f"{backend} {activation}: parameter {key} differs"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_mlp_step_in_column_chunks(dtype):
    """A first layer wider than one chunk (16 columns) runs in column chunks, threads owning chunks:
    the parameters of the layer-by-layer path to rounding (a chunk's product may take another gemm
    path, summing in another order), and bit-identical for 1 and 2 threads."""
    x, y = blobs(128, 200, 10, dtype=dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    threads = deepnum.get_num_threads()
    try:
        for sizes in ([200, 100, 10], [200, 100, 70, 10]):
            runs = {}
            for name, nthreads in (("plain", 2), ("fused 1", 1), ("fused 2", 2)):
                deepnum.set_num_threads(nthreads)
                model = models.MLP(sizes, "tanh", init="normal", seed=4, dtype=dtype)
                model.optimizer = SGD(0.1, l2=0.001)
                for i in range(0, 128, 64):
                    step = _layer_by_layer_step if name == "plain" else type(model).train_step
                    step(model, x[i:i + 64], y[i:i + 64])
                runs[name] = model.state_dict()
            for key, p in runs["plain"].items():
                assert runs["fused 1"][key].tobytes() == runs["fused 2"][key].tobytes(), f"{sizes} {key}: threads"
                np.testing.assert_allclose(runs["fused 1"][key], p, rtol=tol, atol=tol, err_msg=f"{sizes} {key}")
    finally:
        deepnum.set_num_threads(threads)


@pytest.mark.parametrize("model, optimizer", [
    (lambda: models.MLP([4, 3, 2], p_dropout=0.5), SGD(0.1)),
    (lambda: models.MLP([4, 3, 2]), SGD(0.1, momentum=0.9)),
    (lambda: models.MLP([4, 3, 2]), SGD(0.1, l1=0.01)),
    (lambda: models.MLP([4, 3, 2]), Adam()),
    (lambda: Sequential([nn.Dense(4, 2), nn.SigmoidBCE()]), SGD(0.1)),
])
def test_fused_mlp_step_only_where_it_computes_the_same(model, optimizer):
    m = model()
    m.optimizer = optimizer
    assert not m._fused_mlp_step(np.zeros((2, 4), np.float32))


@pytest.mark.parametrize("backend", ["cpp", "numba", "numpy"])
def test_fused_mlp_step_leaves_parameters_on_divergence(backend):
    model = models.MLP([3, 4, 2], "relu", init="normal")
    model.optimizer = SGD(0.1)
    before = {k: p.copy() for k, _, p, _ in model.parameters()}
    x = np.array([[np.nan, 0, 0]], np.float32)
    with deepnum.use_backend(backend), pytest.raises(TrainingDiverged):
        model.train_step(x, np.array([1]))
    for k, _, p, _ in model.parameters():
        np.testing.assert_array_equal(p, before[k], err_msg=k)


def test_mlp_train_step_rejects_bad_arguments():
    from deepnum import ops
    x, y = np.zeros((5, 3), np.float32), np.zeros(5, np.int64)
    w1, b1, w2, b2 = (np.zeros(s, np.float32) for s in ((3, 4), (4,), (4, 2), (2,)))
    ok = dict(x=x, labels=y, ws=[w1, w2], bs=[b1, b2], activations=["tanh", "linear"], lr=0.1)
    bad = [
        (dict(ws=[w2, w1]), ValueError, r"ws\[0\] must be \(3, n_out\)"),
        (dict(bs=[b1, b1]), ValueError, r"bs\[1\] must have shape \(2,\)"),
        (dict(activations=["tanh"]), ValueError, "one entry per layer"),
        (dict(ws=[], bs=[], activations=[]), ValueError, "one entry per layer"),
        (dict(activations=["tanh", "softplus"]), ValueError, "unknown activation"),
        (dict(x=x.astype(np.float64)), TypeError, "one dtype"),
        (dict(ws=[w1, np.zeros((4, 1), np.float32)]), ValueError, r"bs\[1\] must have shape \(1,\)"),
        (dict(ws=[np.asfortranarray(np.zeros((3, 4), np.float32)), w2]), TypeError, "C-contiguous"),
        (dict(labels=np.full(5, 2)), ValueError, r"labels must lie in \[0, 2\)"),
        (dict(labels=y[:4]), ValueError, r"labels must have shape \(5,\)"),
        (dict(lr=-1.0), ValueError, "lr must be finite"),
        (dict(x=np.zeros((5, 3, 1), np.float32)), ValueError, "x must be 2-D"),
    ]
    for change, error, message in bad:
        with pytest.raises(error, match=message):
            ops.mlp_train_step(**{**ok, **change})
    ops.mlp_train_step(**ok)  # and the unchanged arguments are fine


@pytest.mark.parametrize("width", [3, 40])  # kernel by kernel, and in column chunks on the threads
def test_mlp_train_step_kernel_rejects_bad_labels_before_any_work(width):
    """The C++ kernel checks labels itself (the contract leaves that scan to it): a ValueError, parameters
    untouched, never an exception escaping a parallel region."""
    from deepnum import _core
    rng = np.random.default_rng(0)
    ws = [rng.standard_normal((300, width)).astype(np.float32), rng.standard_normal((width, 3)).astype(np.float32)]
    bs = [np.zeros(width, np.float32), np.zeros(3, np.float32)]
    before = [a.copy() for a in ws + bs]
    x = rng.random((64, 300), dtype=np.float32)
    for bad in (-1, 3):
        labels = np.zeros(64, np.int64)
        labels[17] = bad
        with pytest.raises(ValueError, match=f"got {bad} at row 17"):
            _core.mlp_train_step(ws, bs, ["tanh", "linear"], x, labels, 0.1, 0.0, 0.01)
    for a, b in zip(ws + bs, before):
        np.testing.assert_array_equal(a, b)


def test_the_model_api_is_at_the_top_level():
    import deepnum as dn

    assert all(hasattr(dn, name) for name in dn.__all__)
    assert dn.Sequential is models.Sequential and dn.nn is nn and dn.optim.Adam is Adam
    rng = np.random.default_rng(0)
    x, y = rng.random((64, 12), dtype=np.float32), rng.integers(0, 3, 64)
    model = dn.Sequential([dn.nn.Dense(12, 8, "relu"), dn.nn.Dense(8, 3), dn.nn.SoftmaxNLL()], seed=0)
    assert model.fit((x, y), epochs=2, batch_size=32, optimizer=dn.optim.Adam(1e-3))["epoch"] == [1, 2]
