"""End-to-end: seconds per 50,000-sample training epoch of the seed recipes, on synthetic data of
MNIST's shape (784 features, 10 classes).

deepnum runs ``model.train_step`` (cpp and numba backends); hand NumPy and PyTorch train the same
network from the same initial weights with the same SGD (``baselines.NumpyNet``, ``TorchNet``).
Before timing, one step of each is checked against deepnum's NumPy reference backend (loss and
parameter updates). The samples timed (a whole epoch, or a fraction in --quick) are timed in
segments, each scaled to a 50,000-sample epoch: their median and spread are reported.
"""
import re
import time
from contextlib import nullcontext

import numpy as np

import deepnum
from deepnum import recipes

from . import baselines as bl
from .micro import DEEPNUM
from .report import fmt_time
from .timing import assert_close, summary

EPOCH = 50_000
WORKLOADS = (  # (label, recipe, batch size)
    ("logistic", "logistic", 600),
    ("fc-sigmoid", "n3-shallow", 10),  # FC 784-100-10 sigmoid
    ("mlp", "mlp", 20),  # 784-500-10 tanh
    ("n3-relu", "n3-relu", 10),  # conv20-pool-conv40-pool-FC100-softmax, relu
    ("n3-relu", "n3-relu", 100),
)


def _trainer(impl, recipe, batch, lr=None):
    """The recipe's model and SGD (optionally with another learning rate) for ``impl``."""
    model = recipe.build(0, "cpu")
    model.optimizer = recipe.make_optimizer(batch, EPOCH)
    model.optimizer.lr = lr or model.optimizer.lr
    if impl == "numpy":
        return bl.NumpyNet(model, model.optimizer.lr, model.optimizer.l2)
    if impl == "torch":
        return bl.TorchNet(model, model.optimizer.lr, model.optimizer.l2)
    return model


def _one_step(trainer, x, y):
    """The loss of one step and the change it made to every parameter (with lr 1: the gradient,
    plus weight decay, large enough to compare in float32)."""
    before = trainer.state_dict()
    loss = trainer.train_step(x, y)
    return (loss, *(p - before[k] for k, p in sorted(trainer.state_dict().items())))


def _timed_pass(trainer, x, y, batch, scale):
    start = time.perf_counter()
    for i in range(0, len(x), batch):
        trainer.train_step(x[i:i + batch], y[i:i + batch])
    return (time.perf_counter() - start) * scale


def workload_inputs(workloads, mode, only):
    """For each (label, recipe name, batch) of ``workloads`` whose row name matches ``only``: its name, the
    recipe, random MNIST-shaped data of whole segments (``mode``'s samples), the segment length, the factor from
    a segment to a whole epoch, and the reference's one step at lr 1 that each implementation is checked against."""
    rng = np.random.default_rng(0)
    for label, recipe_name, batch in workloads:
        name = f"epoch {label} b{batch}"
        if only and not re.search(only, name):
            continue
        recipe = recipes.RECIPES[recipe_name]
        per_segment = max(1, min(mode.epoch_samples, EPOCH) // mode.epoch_segments // batch) * batch
        n = per_segment * mode.epoch_segments
        x, y = rng.random((n, 784), dtype=np.float32), rng.integers(0, 10, n)
        scale = (EPOCH // batch) / (per_segment // batch)  # whole batches, as fit() runs them
        with deepnum.use_backend("numpy"):
            want = _one_step(_trainer("reference", recipe, batch, lr=1.0), x[:batch], y[:batch])
        yield name, label, recipe_name, recipe, batch, x, y, n, per_segment, scale, want


def run(mode, only, impls, log):
    """Check and time every workload whose name matches ``only``: one row per (workload, impl)."""
    rows = []
    for name, label, recipe_name, recipe, batch, x, y, n, per_segment, scale, want in \
            workload_inputs(WORKLOADS, mode, only):
        medians = {}
        for impl in impls:
            with deepnum.use_backend(impl) if impl in DEEPNUM else nullcontext():
                got = _one_step(_trainer(impl, recipe, batch, lr=1.0), x[:batch], y[:batch])
                assert_close(got, want, f"{name} [{impl}] one step", rtol=1e-2)
                trainer = _trainer(impl, recipe, batch)
                trainer.train_step(x[:batch], y[:batch])  # warm-up
                times = [_timed_pass(trainer, x[i:i + per_segment], y[i:i + per_segment], batch, scale)
                         for i in range(0, n, per_segment)]
            rows.append({"kind": "epoch", "name": name, "workload": label, "recipe": recipe_name, "batch": batch,
                         "impl": impl, "samples": n, "scale": scale, **summary(times)})
            medians[impl] = rows[-1]["median"]
        log(f"{name:<36} " + "  ".join(f"{impl} {fmt_time(t)}" for impl, t in medians.items())
            + f"  (per epoch, from {n} samples)")
    return rows
