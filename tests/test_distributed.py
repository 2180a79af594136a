"""Training runs as tasks on Dask (deepnum.distributed, deepnum.sweep, ``--cluster``): on a cluster of 2 local
worker processes with 1 thread each, started once for the module, the results are bit for bit those of the same
runs one by one here at 1 thread; a worker killed mid-run is replaced and the run resumed; a run that keeps failing
is named and the others kept."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import cloudpickle
import numpy as np
import pytest

import deepnum
from deepnum import checkpoint, cli, distributed, models, recipes
from deepnum import sweep as sweeps
from deepnum.optim import SGD
from deepnum.training import Callback

from test_datasets_cli import tiny_idx_mnist

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module


@pytest.fixture(scope="module")
def client():
    with distributed.cluster("local:2", threads=1) as c:
        yield c


@pytest.fixture
def one_thread():
    before = deepnum.get_num_threads()
    deepnum.set_num_threads(1)
    yield
    deepnum.set_num_threads(before)


def tiny_data(n=64, seed=0):
    rng = np.random.default_rng(seed)

    def part(m):
        return rng.random((m, 64), dtype=np.float32), rng.integers(0, 10, m)

    return part(n), part(32), part(32)


def tiny_build(seed, device):
    # dropout and shuffling: the run draws from its generator, as n3-dropout does
    return models.ConvNet((1, 8, 8), [(3, 3, 2)], [12], activation="relu", p_dropout=0.3, seed=seed, device=device)


def tiny_recipe(epochs=2, **fit_options):
    return recipes.Recipe(tiny_build, lambda bs, n, lr: SGD(lr), epochs=epochs, batch_size=8, settings={"lr": 0.1},
                          fit_options={"shuffle": True, **fit_options})


def without_times(history):
    return {k: v for k, v in history.items() if k != "epoch_seconds"}


def same_weights(a, b):
    assert sorted(a) == sorted(b)
    for key in a:
        assert np.array_equal(a[key], b[key]), key


def test_an_ensemble_on_the_cluster_is_its_members_trained_one_by_one(client, one_thread, tmp_path):
    data, ensemble = tiny_data(), recipes.EnsembleRecipe(tiny_recipe(), members=3)
    here = ensemble.run(data, seed=4, out=tmp_path, verbose=False)
    (tmp_path / "cluster").mkdir()
    there = ensemble.run(data, seed=4, out=tmp_path / "cluster", verbose=False, client=client)
    assert there.test_error == here.test_error and without_times(there.history) == without_times(here.history)
    for i in range(3):
        _, a = checkpoint.read_weights(tmp_path / f"weights-{i}.npz", "test")
        _, b = checkpoint.read_weights(tmp_path / "cluster" / f"weights-{i}.npz", "test")
        same_weights(a, b)


def test_tasks_report_the_threads_their_worker_started_with(client):
    [trained] = distributed.map_recipes(client, [distributed.Task(tiny_recipe(epochs=1))], tiny_data())
    assert trained.threads == 1 and trained.resumed_after == 0 and trained.history["epoch"] == [1]


class KillOnFirstTry(Callback):
    """Kills its own process at the end of epoch 2 (after epoch 1's checkpoint, before epoch 2's) unless
    ``marker`` exists, which it creates: the first try dies, the retry goes through."""

    def __init__(self, marker):
        self.marker = marker

    def on_epoch_end(self, run, record):
        if run.model.epoch == 2 and not os.path.exists(self.marker):
            Path(self.marker).touch()
            os.kill(os.getpid(), signal.SIGKILL)


def test_a_worker_killed_mid_run_is_replaced_and_the_run_resumes_from_its_checkpoint(client, one_thread, tmp_path):
    data, marker = tiny_data(), tmp_path / "killed-once"
    doomed = distributed.Task(tiny_recipe(epochs=3, callbacks=[KillOnFirstTry(str(marker))]), seed=1)
    [trained] = distributed.map_recipes(client, [doomed], data, checkpoints=[tmp_path / "run" / "checkpoint.npz"])
    assert marker.exists(), "the first try was not killed"
    assert trained.resumed_after == 1  # the retry started from the checkpoint of epoch 1
    alone = distributed.train(distributed.Task(tiny_recipe(epochs=3), seed=1), data)
    same_weights(trained.params, alone.params)
    assert without_times(trained.history) == without_times(alone.history) and trained.test_error == alone.test_error


def test_a_member_that_keeps_failing_is_named_and_the_others_are_kept(client, tmp_path):
    def build(seed, device):
        if seed == 1:
            raise RuntimeError("member 1 cannot be built")
        return tiny_build(seed, device)

    member = recipes.Recipe(build, lambda bs, n, lr: SGD(lr), epochs=1, batch_size=8, settings={"lr": 0.1})
    with pytest.raises(distributed.TasksFailed, match=r"1 of 3 tasks failed \(member 1 seed 1: RuntimeError: member 1 "
                                                      r"cannot be built\)") as failed:
        recipes.EnsembleRecipe(member, members=3).run(tiny_data(), out=tmp_path, verbose=False, client=client)
    assert list(failed.value.failures) == ["member 1 seed 1"]
    assert failed.value.results[1] is None and failed.value.results[2].task.seed == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights-0.npz", "weights-2.npz"]


@pytest.fixture(scope="module")
def tiny_mnist(tmp_path_factory):
    return tiny_idx_mnist(tmp_path_factory.mktemp("data"), n_train=10300, n_test=100)  # 300 train, 10k validation


def test_a_sweep_on_the_cluster_writes_its_table_plot_and_runs(client, one_thread, tiny_mnist, tmp_path):
    from deepnum import datasets

    (x, y), valid, test = datasets.mnist(tiny_mnist)
    data = ((x[:100], y[:100]), (valid[0][:200], valid[1][:200]), test)
    settings = {"lr": [0.1, 3.0], "l2": [0, 0.1]}
    rows = sweeps.sweep(client, "n3-relu", settings, [0, 1], data, tmp_path, {"epochs": 1, "batch_size": 20})
    assert [r["setting"] for r in rows] == [{"lr": 0.1, "l2": 0}, {"lr": 0.1, "l2": 0.1}, {"lr": 3.0, "l2": 0},
                                            {"lr": 3.0, "l2": 0.1}]
    names = {"sweep.md", "sweep.csv", "sweep.png"} | {f"lr={lr}_l2={l2}_seed={s}" for lr in (0.1, 3.0)
                                                       for l2 in (0, 0.1) for s in (0, 1)}
    assert {p.name for p in tmp_path.iterdir()} == names
    alone = distributed.train(distributed.Task("n3-relu", 1, {"lr": 3.0, "l2": 0.1}, {"epochs": 1, "batch_size": 20}),
                              data)
    _, params = checkpoint.read_weights(tmp_path / "lr=3.0_l2=0.1_seed=1" / "weights.npz", "test")
    same_weights(params, alone.params)
    history = json.loads((tmp_path / "lr=3.0_l2=0.1_seed=1" / "history.json").read_text())
    assert history["threads"] == 1 and history["best_valid_error"] == alone.history["best_valid_error"]
    assert rows[3]["valid"][1] == 1 - alone.history["best_valid_error"] and rows[3]["test"][1] == 1 - alone.test_error
    table = (tmp_path / "sweep.md").read_text().splitlines()
    assert table[2] == ("| lr | l2 | validation | test | per seed (validation / test) "
                        "| seconds (the seeds together) |")
    assert len(table) == 4 + len(rows) and table[4].startswith("| 0.1 | 0 | ")
    lines = (tmp_path / "sweep.csv").read_text().splitlines()
    assert lines[0].startswith("lr,l2,seeds,valid_mean,valid_sd") and len(lines) == 1 + len(rows)


def test_the_train_command_runs_an_ensemble_on_a_local_cluster(one_thread, tiny_mnist, tmp_path, capsys):
    common = ["--data", str(tiny_mnist), "--epochs", "1", "--train-size", "30", "--quiet"]
    assert cli.main(["train", "n3-ensemble", "--out", str(tmp_path / "here")] + common) == 0
    here = capsys.readouterr().out.strip().splitlines()[-1]
    done = subprocess.run([sys.executable, "-m", "deepnum.cli", "train", "n3-ensemble", "--cluster", "local:2",
                           "--threads", "1", "--out", str(tmp_path / "there")] + common,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == here  # the ensemble's test accuracy
    for i in range(5):
        _, a = checkpoint.read_weights(tmp_path / "here" / f"weights-{i}.npz", "test")
        _, b = checkpoint.read_weights(tmp_path / "there" / f"weights-{i}.npz", "test")
        same_weights(a, b)
    assert sorted(p.name for p in (tmp_path / "there").glob("checkpoint-*.npz")) == [
        f"checkpoint-{i}.npz" for i in range(5)]


@pytest.mark.parametrize("argv, message", [
    (["train", "n3-relu", "--cluster", "local:2"], "n3-relu is one model; --cluster trains the members of an ensemble"),
    (["train", "n3-ensemble", "--cluster", "local:0"], "local:N needs a number of workers N >= 1"),
    (["train", "n3-ensemble", "--cluster", "somewhere"], "give local:N .* or a scheduler's address"),
    (["train", "n3-ensemble", "--threads", "2"], "--threads and --worker-checkpoints go with --cluster"),
    (["sweep", "n3-relu", "--set", "eta=0.1"], r"eta is not a setting of this recipe \(it has lr, l2\)"),
    (["sweep", "n3-relu", "--set", "lr=0.1,fast"], "--set lr=0.1,fast: 'fast' is not a number"),
    (["sweep", "n3-relu", "--set", "lr"], "--set lr: give NAME=V1,V2,..."),
    (["sweep", "n3-relu"], r"give at least one --set NAME=V1,V2,... \(n3-relu's settings: lr=0.03, l2=0.1; "),
])
def test_cluster_and_sweep_mistakes_are_named(argv, message, tmp_path):
    with pytest.raises(SystemExit, match=message):
        cli.main(argv + ["--out", str(tmp_path)])


def test_too_many_local_workers_for_the_cores_are_refused_unless_threads_are_given():
    n = (os.cpu_count() or 1) + 1
    with pytest.raises(ValueError, match=f"{n} workers on {n - 1} cores; use at most local:{n - 1}"):
        with distributed.cluster(f"local:{n}"):
            pass


def test_a_recipe_names_its_settings():
    assert recipes.RECIPES["n3-relu"].resolve({"lr": 0.1}) == {"lr": 0.1, "l2": 0.1}
    with pytest.raises(ValueError, match=r"momentum is not a setting of this recipe \(it has lr\)"):
        recipes.RECIPES["n3-dropout"].make_optimizer(10, 100, {"momentum": 0.9})
    with pytest.raises(ValueError, match="'moons' is not a recipe trained by minibatch SGD/Adam"):
        distributed.map_recipes(None, [distributed.Task("moons")], None)


def test_a_sweep_grid_varies_the_last_setting_fastest():
    assert sweeps.grid({"a": [1, 2], "b": [3, 4]}) == [{"a": 1, "b": 3}, {"a": 1, "b": 4}, {"a": 2, "b": 3},
                                                       {"a": 2, "b": 4}]
    assert sweeps.parse_values("lr=0.01,1,2e-3") == ("lr", [0.01, 1, 0.002])
    assert sweeps._sd([0.5]) == 0 and sweeps._sd([1.0, 2.0, 3.0]) == 1.0
