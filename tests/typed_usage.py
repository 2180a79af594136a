"""The public API used as a user would, checked by mypy in strict mode (tests/test_types.py; pyproject.toml's
[tool.mypy] overrides for this module): every call resolves to annotated signatures, and the results have the
types written here. test_types also runs ``main`` on tiny data, so these are the calls' real types too."""
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

import deepnum as dn
from deepnum import ops


def main(tmp: Path) -> float:
    """Builds, trains, saves, loads and scores a model on a two-moons .npz in ``tmp``; returns its test accuracy."""
    x, y = dn.datasets.moons(60, seed=1)
    np.savez(tmp / "moons.npz", x_train=x[:40], y_train=y[:40], x_test=x[40:], y_test=y[40:])
    (x_train, y_train), valid, (x_test, y_test) = dn.datasets.load(tmp / "moons.npz", valid_size=10)
    model = dn.Sequential([dn.nn.Dense(2, 8, "relu"), dn.nn.Dropout(0.1), dn.nn.Dense(8, 2), dn.nn.SoftmaxNLL()],
                          seed=0)
    history: dn.training.History = model.fit((x_train, y_train), epochs=2, batch_size=10, validation=valid,
                                             optimizer=dn.optim.Adam(1e-2), shuffle=True)
    model.fit((x_train, y_train), epochs=1, batch_size=10, optimizer=dn.optim.SGD(0.1, momentum=0.9),
              callbacks=[lambda m, h: None])
    assert model.epoch == 3 and len(history["train_loss"]) == 2
    model.save(tmp / "weights.npz")
    loaded = dn.Sequential.load(tmp / "weights.npz")
    predictions = loaded.predict(x_test)
    assert isinstance(predictions, np.ndarray)  # a cpu model's results are NumPy arrays
    scores: dict[str, float] = loaded.evaluate((x_test, y_test))
    loss: float = loaded.train_step(x_train[:10], y_train[:10]) if loaded.optimizer else 0.0

    images = np.random.default_rng(0).random((2, 1, 8, 8), dtype=np.float32)
    conv = dn.Sequential([dn.nn.Conv2D(1, 3, 3, padding=1, activation="tanh"), dn.nn.MaxPool2D(2), dn.nn.Flatten(),
                          dn.nn.Dense(48, 2), dn.nn.SoftmaxNLL()], dtype="float32")
    seq = dn.Sequential([dn.nn.RNN(2, 4, return_sequences=True), dn.nn.Dense(4, 1), dn.nn.SigmoidBCE()])
    assert conv.forward(images).shape == (2, 2) and seq.forward(np.zeros((3, 5, 2), np.float32)).shape == (3, 5, 1)

    w = np.ones((3, 1, 3, 3), np.float32)
    z: NDArray[np.floating] = ops.conv2d_forward(images, w, stride=1, padding=(1, 1))
    pooled, argmax = ops.max_pool2d_forward(z, 2)
    back: NDArray[np.floating] = ops.max_pool2d_backward(np.ones_like(pooled), argmax, z.shape)
    dx, dw, db = ops.conv2d_backward(back, images, w, padding=1)
    assert dx is not None and dw.shape == w.shape and db.shape == (3,) and argmax.dtype == np.int64
    value, probs = ops.softmax_nll_forward(ops.gemm(x_test, np.eye(2, dtype=np.float32)), y_test)
    with dn.use_backend("numpy"):
        assert dn.get_backend() == "numpy" and "numpy" in dn.backends()
    if dn.cuda.is_available():
        eye = dn.cuda.DeviceArray.from_numpy(np.eye(2, dtype=np.float32))
        on_device = ops.gemm(dn.cuda.DeviceArray.from_numpy(x_test), eye)
        assert on_device.to_numpy().shape == x_test.shape
    reason: str | None = dn.cuda.unavailable_reason()
    assert (reason is None) == dn.cuda.is_available() and dn.get_num_threads() >= 1
    return scores["accuracy"] + 0 * (value + loss + float(probs.sum()))
