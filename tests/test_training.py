"""The training module on its own: EarlyStopping on scripted validation errors, callbacks, and the
checkpoints written before the model/training split."""
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from deepnum import _core
from deepnum import models, nn, training
from deepnum.optim import SGD
from deepnum.training import EarlyStopping

DATA = Path(__file__).parent / "data"


def test_early_stopping_validates_every_min_of_an_epoch_and_half_the_patience():
    assert [i for i in range(30) if EarlyStopping(None).validates(i, 10)] == [9, 19, 29]  # once per epoch
    assert [i for i in range(30) if EarlyStopping(10).validates(i, 10)] == [4, 9, 14, 19, 24, 29]
    assert [i for i in range(8) if EarlyStopping(40).validates(i, 4)] == [3, 7]  # min(4, 20)
    assert all(EarlyStopping(1).validates(i, 10) for i in range(5))  # patience // 2 = 0: every iteration


def test_early_stopping_raises_patience_only_by_the_threshold():
    """The DLT rule: a new best moves best and best_iteration; patience becomes iteration × increase
    (if more) only when the error is also below threshold × best."""
    early = EarlyStopping(10, patience_increase=2, improvement_threshold=0.995)
    assert early.update(4, 0.5) and (early.patience, early.best_error, early.best_iteration) == (10, 0.5, 4)
    assert early.update(9, 0.4) and early.patience == 18  # 0.4 < 0.995 · 0.5
    assert early.update(14, 0.399) and early.patience == 18  # better, but not below 0.398
    assert (early.best_error, early.best_iteration) == (0.399, 14)
    assert not early.update(16, 0.45) and not early.update(17, math.nan) and early.best_iteration == 14
    assert not early.stops(17) and not early.stopped
    assert early.stops(18) and early.stopped and early.stops(19)


def test_early_stopping_without_patience_never_stops():
    early = EarlyStopping()
    assert early.update(9, 0.5) and early.update(19, 0.1) and early.patience is None
    assert not any(early.stops(i) for i in range(10_000))


def test_early_stopping_state_is_plain_json_and_round_trips():
    early = EarlyStopping(20, patience_increase=3, improvement_threshold=0.9)
    fresh = json.loads(json.dumps(early.state_dict()))
    assert fresh == {"patience": 20, "best": None, "best_iter": -1, "done": False}  # inf is written as None
    for it, err in ((4, 0.5), (9, 0.3), (14, 0.29)):
        early.update(it, err)
    early.stops(30)
    state = json.loads(json.dumps(early.state_dict()))
    assert state == {"patience": 27, "best": 0.29, "best_iter": 14, "done": True}
    copy = EarlyStopping(20, patience_increase=3, improvement_threshold=0.9)
    copy.load_state_dict(state)
    assert copy.state_dict() == early.state_dict() and copy.config() == early.config()
    copy.load_state_dict(fresh)
    assert copy.best_error == math.inf and not copy.stopped and copy.patience == 20
    assert copy.config() == {"patience": 20, "patience_increase": 3, "improvement_threshold": 0.9}


def test_fit_takes_callback_objects_and_functions():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((40, 4)).astype(np.float32), rng.integers(0, 2, 40)
    seen = []

    class Record(training.Callback):
        def on_epoch_start(self, run):
            seen.append(("start", run.model.epoch))

        def on_batch_end(self, run, batch, loss):
            seen.append(("batch", batch))

        def on_epoch_end(self, run, record):
            seen.append(("end", record["epoch"], len(run.history["train_loss"])))

    model = models.LogisticRegression(4, 2)
    model.fit((x, y), epochs=2, batch_size=20, optimizer=SGD(0.1),
              callbacks=[Record(), lambda m, h: seen.append(("function", m.epoch))])
    assert seen == [("start", 0), ("batch", 0), ("batch", 1), ("end", 1, 1), ("function", 1),
                    ("start", 1), ("batch", 0), ("batch", 1), ("end", 2, 2), ("function", 2)]


def test_mean_sums_as_numpy_does():
    rng = np.random.default_rng(5)
    for n in (1, 2, 7, 8, 9, 15, 16, 17, 100, 128, 129, 200, 1000, 1001):
        for _ in range(20):
            values = list(rng.random(n) * 10 ** rng.uniform(-3, 3, n))
            assert training._mean(values) == float(np.mean(values)), n


def test_a_checkpoint_written_before_the_split_resumes_bit_identically(tmp_path):
    """tests/data/checkpoint-2c5dbcc.npz: 2 of 3 epochs written by the code of 2c5dbcc on an AVX-512 machine
    (how: its .py beside it); resuming it must give what training all 3 epochs gave then: bit for bit where
    the kernels run at the SIMD level that wrote it, to float32 rounding at another level (other clones
    round the exp and the sums in another order)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1)
    ckpt = tmp_path / "checkpoint.npz"
    shutil.copyfile(DATA / "checkpoint-2c5dbcc.npz", ckpt)
    model = models.Sequential([nn.Dense(6, 5, "tanh", p_dropout=0.1), nn.Dense(5, 3), nn.SoftmaxNLL()], seed=3)
    history = model.fit((x, y), 3, 8, SGD(0.1, momentum=0.9), validation=(x[:16], y[:16]), patience=40,
                        shuffle=True, checkpoint=ckpt)
    with np.load(DATA / "checkpoint-2c5dbcc.npz") as f:
        written = json.loads(str(f["__architecture__"]))["history"]
    assert history["epoch"] == [1, 2, 3]
    assert history["epoch_seconds"][:2] == written["epoch_seconds"]  # epochs 1 and 2 came from the file
    exact = _core.simd_level() == "avx512"

    def same(got, want, what):
        if exact:
            assert got.dtype == want.dtype and got.tobytes() == want.tobytes(), what
        else:
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=what)

    with np.load(DATA / "checkpoint-2c5dbcc-expected.npz") as expected:
        params = model.state_dict()
        assert sorted(params) == sorted(k for k in expected.files if "." in k)
        for key, p in params.items():
            same(p, expected[key], key)
        assert history["best_valid_error"] == expected["best_valid_error"]
        assert history["best_iteration"] == expected["best_iteration"]
        same(np.array(history["train_loss"]), expected["train_loss"], "train_loss")


def _tiny(seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((40, 6), dtype=np.float32), rng.integers(0, 3, 40)


@pytest.mark.parametrize("shuffle", [False, True])
def test_fit_trains_epochs_more_each_call(shuffle):
    """fit(epochs=k) twice trains 2k epochs: the same parameters and per-epoch records as fit(epochs=2k) once
    (without validation: with it, each call ends on its best parameters)."""
    x, y = _tiny()
    once, twice = (models.MLP([6, 5, 3], seed=1) for _ in range(2))
    whole = once.fit((x, y), 4, 10, SGD(0.1), shuffle=shuffle)
    first = twice.fit((x, y), 2, 10, SGD(0.1), shuffle=shuffle)
    second = twice.fit((x, y), 2, 10, shuffle=shuffle)
    assert once.epoch == twice.epoch == 4 and first["epoch"] == [1, 2] and second["epoch"] == [3, 4]
    assert first["train_loss"] + second["train_loss"] == whole["train_loss"]
    for key, value in once.state_dict().items():
        np.testing.assert_array_equal(twice.state_dict()[key], value, err_msg=key)


@pytest.mark.parametrize("layers", ["dense", "conv"])  # the fused MLP step and the layer-by-layer one
def test_an_op_error_inside_fit_names_fit_and_the_batch_and_keeps_the_op_error_as_cause(layers):
    x, y = _tiny()
    y[13] = 3  # one label past the 3 classes, in the second batch
    model = (models.MLP([6, 5, 3]) if layers == "dense" else
             models.Sequential([models.Reshape((1, 2, 3)), nn.Conv2D(1, 2, 1), nn.Flatten(), nn.Dense(12, 3),
                                nn.SoftmaxNLL()]))
    with pytest.raises(ValueError, match=r"^fit: training batch 2 of epoch 1 \(rows 10:20 of train\): \w+: "
                                         r"labels must lie in \[0, 3\)") as e:
        model.fit((x, y), 1, 10, SGD(0.1))
    assert isinstance(e.value.__cause__, ValueError) and not str(e.value.__cause__).startswith("fit")
    with pytest.raises(ValueError, match=r"^fit: validation: evaluate: rows 0:40 of data: \w+: labels must lie"):
        models.MLP([6, 5, 3]).fit(_tiny(), 1, 10, validation=(x, y))
    with pytest.raises(ValueError, match=r"^predict: x: linear_forward: x \(4, 7\) has 7 features but w \(6, 5\)"):
        models.MLP([6, 5, 3]).predict(np.zeros((4, 7), np.float32))
