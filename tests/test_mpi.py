"""Data-parallel training over MPI (deepnum.mpi): 2 ranks through the mpirun next to sys.executable (the
mpich wheel of the test extra) against single-process training at the same global batch; resuming from
a checkpoint only rank 0 wrote; the pieces (shares, packing, the replica check) with a fake communicator.

This file is also the script the ranks run: ``mpirun -n 2 python tests/test_mpi.py PHASE DIR``.
A missing mpi4py or mpirun fails these tests (they are in the test extra), it does not skip them.
"""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deepnum import cli, models, training
from deepnum.optim import SGD, Adam

MPIRUN = Path(sys.executable).with_name("mpirun")
RANKS = 2
# name: (model, optimiser, global batch, epochs, shuffle); float64 so that the sums in another order agree
# closely. b7 splits 4 + 3 rows; b1 leaves rank 1 without rows (it still takes part in the Allreduce).
CASES = {
    "mlp-sgd-b7-shuffle": (lambda: models.MLP([6, 5, 3], "tanh", seed=3, dtype="float64"),
                           lambda: SGD(0.2, l2=1e-3), 7, 3, True),
    "conv-adam-b4": (lambda: models.ConvNet((1, 6, 6), [(2, 3, 2)], [4], n_out=3, activation="relu", seed=1,
                                            dtype="float64"), lambda: Adam(0.01), 4, 2, False),
    "mlp-momentum-b1": (lambda: models.MLP([6, 4, 3], "relu", seed=2, dtype="float64"),
                        lambda: SGD(0.05, momentum=0.9), 1, 1, True),
}
RESUMED = "mlp-sgd-b7-shuffle"  # also run for 1 epoch (rank 1 seeded otherwise), then resumed in a second mpirun


def case_data(name):
    n_in = 36 if name.startswith("conv") else 6
    rng = np.random.default_rng(len(name))
    x, y = rng.standard_normal((30, n_in)), rng.integers(0, 3, 30)
    return (x, y), (x[:9] + 0.1, y[:9])


def train_case(name, model, epochs=None, checkpoint=None):
    """Train ``model`` (a Sequential, or a DataParallel of the case's model) as case ``name`` says."""
    _, optimizer, batch, case_epochs, shuffle = CASES[name]
    train, valid = case_data(name)
    return training.fit(model, train, epochs or case_epochs, batch, optimizer(), validation=valid, shuffle=shuffle,
                        checkpoint=checkpoint)


def _worker(phase, out):
    """One rank's part: every case (and the first epoch of RESUMED) in phase "train", the rest of RESUMED
    in phase "resume". Each rank runs in its own directory, so files that rank 1 wrote would show there;
    results (parameters, history) go to out/results."""
    from mpi4py import MPI

    from deepnum.mpi import DataParallel

    rank = MPI.COMM_WORLD.Get_rank()
    if phase == "train":
        _diverge(out, rank, DataParallel)
    runs = ([(name, name, None) for name in CASES] + [(RESUMED, "part", 1)] if phase == "train"
            else [(RESUMED, "part", None)])
    for name, label, epochs in runs:
        directory = out / f"rank{rank}" / label
        directory.mkdir(parents=True, exist_ok=True)
        os.chdir(directory)
        model = CASES[name][0]()
        if label == "part":  # another seed on rank 1: rank 0's parameters and generator are broadcast
            model = models.MLP([6, 5, 3], "tanh", seed=3 + rank, dtype="float64")
        history = train_case(name, DataParallel(model, MPI.COMM_WORLD), epochs, checkpoint="checkpoint.npz")
        np.savez(out / "results" / f"{label}-{phase}-rank{rank}.npz", history=json.dumps(history),
                 **model.state_dict())


def _diverge(out, rank, DataParallel):
    """A global batch whose rows on rank 1 make the loss NaN: whether this rank raised TrainingDiverged and
    kept its parameters, to out/results/diverge-rank<r>.json."""
    model = models.MLP([6, 5, 3], "tanh", seed=0, dtype="float64")
    model.optimizer = SGD(0.1)
    before = model.state_dict()
    x, y = np.ones((4, 6)), np.zeros(4, np.int64)
    x[3, 0] = np.nan
    try:
        DataParallel(model).train_step(x, y)
        raised = False
    except training.TrainingDiverged:
        raised = True
    unchanged = all(np.array_equal(p, before[k]) for k, p in model.state_dict().items())
    (out / "results" / f"diverge-rank{rank}.json").write_text(json.dumps({"raised": raised, "unchanged": unchanged}))


def _load(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files if k != "history"}, json.loads(str(f["history"]))


def _mpirun_command(args):
    """mpirun ``args`` (1 thread a rank, at most 120 s); the finished process, after checking it succeeded."""
    assert MPIRUN.exists(), f"no mpirun beside {sys.executable}: python -m pip install '.[test]' (mpi4py, mpich)"
    assert importlib.util.find_spec("mpi4py"), "mpi4py is missing: python -m pip install '.[test]'"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run([str(MPIRUN), *map(str, args)], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, f"mpirun {' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}"
    return done


def _mpirun(phase, out):
    _mpirun_command(["-n", RANKS, sys.executable, __file__, phase, out])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("mpi")
    (out / "results").mkdir()
    _mpirun("train", out)
    _mpirun("resume", out)
    return out


def _same_history(got, want, rtol):
    for key in ("train_loss", "valid_loss", "valid_error", "best_valid_error", "best_iteration"):
        np.testing.assert_allclose(got[key], want[key], rtol=rtol, err_msg=key)


@pytest.mark.parametrize("name", CASES)
def test_two_ranks_train_as_one_process_at_the_same_global_batch(runs, name):
    model = CASES[name][0]()
    want = train_case(name, model)
    for rank in range(RANKS):
        params, history = _load(runs / "results" / f"{name}-train-rank{rank}.npz")
        assert sorted(params) == sorted(model.state_dict())
        for key, p in model.state_dict().items():
            np.testing.assert_allclose(params[key], p, rtol=1e-9, atol=1e-12, err_msg=f"{name} rank {rank} {key}")
        _same_history(history, want, rtol=1e-9)
        assert len(history["allreduce_seconds"]) == CASES[name][3]
        assert all(s >= 0 for s in history["allreduce_seconds"])
    ranks = [_load(runs / "results" / f"{name}-train-rank{r}.npz")[0] for r in range(RANKS)]
    assert all(np.array_equal(ranks[0][k], ranks[r][k]) for r in range(1, RANKS) for k in ranks[0])


def test_a_resumed_two_rank_run_ends_as_an_uninterrupted_one_and_only_rank_0_writes(runs):
    _, first_history = _load(runs / "results" / "part-train-rank0.npz")
    _, resumed_history = _load(runs / "results" / "part-resume-rank0.npz")
    whole, whole_history = _load(runs / "results" / f"{RESUMED}-train-rank0.npz")
    assert len(first_history["train_loss"]) == 1 and len(whole_history["train_loss"]) == CASES[RESUMED][3]
    for rank in range(RANKS):
        params, _ = _load(runs / "results" / f"part-resume-rank{rank}.npz")
        assert all(np.array_equal(params[k], whole[k]) for k in whole), f"rank {rank}"
    assert resumed_history["train_loss"] == whole_history["train_loss"]
    assert resumed_history["valid_loss"] == whole_history["valid_loss"]
    assert sorted(p.name for p in (runs / "rank0" / "part").iterdir()) == ["checkpoint.npz"]
    assert [p for p in (runs / "rank1").rglob("*") if p.is_file()] == []  # rank 1 read its checkpoint from rank 0


def test_a_loss_that_is_not_finite_on_one_rank_stops_every_rank_and_changes_nothing(runs):
    for rank in range(RANKS):
        assert json.loads((runs / "results" / f"diverge-rank{rank}.json").read_text()) == \
            {"raised": True, "unchanged": True}, f"rank {rank}"


def test_train_command_on_two_ranks_trains_as_one_process_and_writes_from_rank_0_only(tmp_path):
    from test_datasets_cli import tiny_idx_mnist

    data = tiny_idx_mnist(tmp_path / "data")  # 100 training images, 10,000 for validation
    common = ["train", "logistic", "--data", str(data), "--epochs", "2", "--batch-size", "25"]
    rank = [sys.executable, "-m", "deepnum.cli", *common, "--data-parallel", "--out"]  # each rank its own --out
    done = _mpirun_command(["-n", "1", *rank, str(tmp_path / "rank0"), ":", "-n", "1", *rank, str(tmp_path / "rank1")])
    assert done.stdout.count("epoch 2: training loss") == 1 and done.stdout.count("test accuracy") == 1, done.stdout
    assert not (tmp_path / "rank1").exists()
    assert cli.main([*common, "--out", str(tmp_path / "single"), "--quiet"]) == 0
    got, want = (models.Sequential.load(tmp_path / d / "weights.npz").state_dict() for d in ("rank0", "single"))
    for key, p in want.items():
        np.testing.assert_allclose(got[key], p, rtol=1e-4, atol=1e-6, err_msg=key)
    history = json.loads((tmp_path / "rank0" / "history.json").read_text())
    assert len(history["allreduce_seconds"]) == 2


# ---- the pieces, without mpirun ----------------------------------------------------------------

def test_shares_are_contiguous_cover_the_batch_and_differ_by_at_most_one_row():
    from deepnum.mpi import share

    for size in range(1, 5):
        for n in range(0, 11):
            bounds = [share(n, size, r) for r in range(size)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
            sizes = [hi - lo for lo, hi in bounds]
            assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)
    with pytest.raises(ValueError, match="share: rank 2 is not in"):
        share(5, 2, 2)


def test_pack_and_unpack_round_trip_with_a_scale():
    from deepnum.mpi import pack, unpack

    arrays = [np.arange(6.0).reshape(2, 3), np.array([7.0]), np.ones((2, 1, 2))]
    flat = np.full(12, np.nan)
    assert pack(arrays, flat, 0.5) == 11 and np.isnan(flat[-1])
    for a, v in zip(arrays, unpack(flat, [a.shape for a in arrays])):
        np.testing.assert_array_equal(v, a * 0.5)


class FakeComm:
    """allgather as if the other ranks reported ``others``."""

    def __init__(self, others):
        self.others = others

    def allgather(self, value):
        return [value, *self.others]


def test_replica_check_names_the_epoch_and_the_ranks_that_differ():
    from deepnum.mpi import ReplicasDiverged, check_replicas, checksum

    model = models.MLP([3, 2, 2], seed=0)
    mine = checksum(model)
    check_replicas(FakeComm([mine, mine]), model, "after epoch 3")
    model.rng.random()  # a generator out of step changes the checksum too
    assert checksum(model) != mine
    with pytest.raises(ReplicasDiverged, match=r"after epoch 3, .* of ranks 1, 2 differ from rank 0's"):
        check_replicas(FakeComm([mine, mine]), model, "after epoch 3")


def test_without_mpi4py_the_error_says_what_to_install(monkeypatch):
    from deepnum import mpi

    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(ImportError, match=r'pip install "deepnum\[mpi\]"'):
        mpi.mpi()


@pytest.mark.parametrize("recipe, why", [("moons", "full batch"), ("binary-addition", "single examples"),
                                         ("n3-ensemble", "one after another")])
def test_train_refuses_data_parallel_for_recipes_it_cannot_split(recipe, why, tmp_path):
    with pytest.raises(SystemExit, match=f"{recipe} --data-parallel: not supported: .*{why}"):
        cli.main(["train", recipe, "--data-parallel", "--out", str(tmp_path)])


def test_train_refuses_data_parallel_on_cuda(tmp_path):
    with pytest.raises(SystemExit, match="--data-parallel --backend cuda: not supported .*GPU-aware MPI"):
        cli.main(["train", "n3-relu", "--data-parallel", "--backend", "cuda", "--out", str(tmp_path)])


if __name__ == "__main__":
    _worker(sys.argv[1], Path(sys.argv[2]))
