"""Training runs as tasks: ensembles and sweeps on Dask (``pip install "deepnum[dask]"``).

A :class:`Task` is a recipe (a name in ``deepnum.recipes.RECIPES`` or a :class:`~deepnum.recipes.Recipe`),
its settings, options and a seed. :func:`map_recipes` runs tasks on a ``dask.distributed.Client`` (or one by one
in this process, with ``client=None``). Inside the worker, :func:`train` builds the model and trains it, and
hands back plain values (:class:`Trained`: the architecture, the parameters as NumPy arrays, the history); the
client writes every file itself (``on_result``), atomically, so no filesystem is shared between them. The data
set is scattered to the workers once per :func:`map_recipes` call.

>>> from dask.distributed import Client
>>> from deepnum import datasets, distributed
>>> with Client("tcp://scheduler:8786") as client:
...     tasks = [distributed.Task("n3-relu", seed, {"lr": lr}, {"epochs": 3}) for lr in (0.01, 0.1) for seed in (0, 1)]
...     trained = distributed.map_recipes(client, tasks, datasets.mnist())

**Threads.** Training is deterministic for a seed and a thread count: a task trained on a worker whose kernels
use T threads is bit for bit the same run in this process with ``deepnum.set_num_threads(T)``. The threads of a
worker are set by its environment when it starts (OMP_NUM_THREADS and the BLAS' variables), never inside a task:
:func:`cluster` does so for the local workers it starts; Dask's own workers start with OMP_NUM_THREADS=1 unless
their environment says otherwise. Each :class:`Trained` says how many threads it was trained with.

**Faults.** A worker that dies in the middle of a task (killed, out of memory) is replaced by its nanny, and the
scheduler runs the task again (up to ``distributed.scheduler.allowed-failures`` times, 3 by default, then
``KilledWorker``). With ``checkpoints``, a path per task as the workers see it, a task writes a checkpoint after
every epoch and a retry resumes from the last one; a retry on a worker that cannot see that file (another
machine, no shared filesystem) starts the run again. Either way the result is the same, bit for bit: only time
is lost. A task that raises is not retried (training is deterministic, so it would raise again); when all tasks
have ended, :class:`TasksFailed` names each failed one, after ``on_result`` has been given every other result.
"""
import contextlib
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Optional, Union

import deepnum

from . import recipes
from .training import Callback

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


@dataclass(frozen=True)
class Task:
    """One training run: ``recipe`` (a name in RECIPES, or a Recipe object: sent to the workers by value) trained
    with ``seed``, its ``settings`` (see :meth:`deepnum.recipes.Recipe.resolve`) and ``options`` (``Recipe.run``'s
    epochs, batch_size, device); ``name`` for messages."""

    recipe: Union[str, recipes.Recipe]
    seed: int = 0
    settings: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    name: Optional[str] = None  # how messages call it (default: the recipe's name)

    def resolved(self):
        """The Recipe object; a ValueError for a name that is not a plain recipe."""
        if not isinstance(self.recipe, str):
            return self.recipe
        recipe = recipes.RECIPES.get(self.recipe)
        if not isinstance(recipe, recipes.Recipe):
            plain = sorted(k for k, v in recipes.RECIPES.items() if isinstance(v, recipes.Recipe))
            raise ValueError(f"Task: {self.recipe!r} is not a recipe trained by minibatch SGD/Adam "
                             f"(one of {', '.join(plain)})")
        return recipe

    @property
    def label(self):
        """e.g. "n3-relu lr=0.1 seed 2"."""
        name = self.name or (self.recipe if isinstance(self.recipe, str) else "recipe")
        return " ".join([name, *(f"{k}={v}" for k, v in self.settings.items()), f"seed {self.seed}"])


@dataclass
class Trained:
    """What a task hands back: plain values only."""

    task: Task
    architecture: dict
    params: dict  # NumPy arrays keyed as Sequential.state_dict()
    history: dict
    test_error: Optional[float]
    threads: int  # the kernels' threads in the process that trained it
    seconds: float
    resumed_after: int  # the epoch its checkpoint had reached when the run started (0: from the beginning)

    def model(self, device="cpu"):
        """The trained :class:`deepnum.models.Sequential`, on ``device``."""
        from .models import Sequential

        model = Sequential.from_architecture(self.architecture, device)
        model.load_state_dict(self.params)
        return model


class TasksFailed(RuntimeError):
    """Some tasks of :func:`map_recipes` failed: ``failures`` maps each one's label to its exception; ``results``
    holds the others' :class:`Trained` (None in place of a failed task)."""

    def __init__(self, failures, results):
        lines = "; ".join(f"{label}: {type(e).__name__}: {e}" for label, e in failures.items())
        super().__init__(f"map_recipes: {len(failures)} of {len(results)} tasks failed ({lines})")
        self.failures, self.results = failures, results


class _StartEpoch(Callback):
    """Notes the epoch the loop started from (after a checkpoint was resumed)."""

    epoch = None

    def on_epoch_start(self, run):
        if self.epoch is None:
            self.epoch = run.model.epoch


def train(task, data, checkpoint=None, verbose=False):
    """Train ``task`` on ``data`` = (train, valid, test) in this process (a worker's or the client's) and return
    :class:`Trained`. ``checkpoint``: a path, written after every epoch and resumed from if it exists."""
    start = time.perf_counter()
    recipe = task.resolved()
    if checkpoint is not None:
        os.makedirs(os.path.dirname(os.path.abspath(checkpoint)), exist_ok=True)
    started = _StartEpoch()
    result = recipe.run(data, seed=task.seed, verbose=verbose, checkpoint=checkpoint, settings=task.settings,
                        callbacks=[started], **task.options)
    model = result.model
    resumed_after = model.epoch if started.epoch is None else started.epoch
    return Trained(task, model.architecture(), model.state_dict(), dict(result.history), result.test_error,
                   deepnum.get_num_threads(), time.perf_counter() - start, resumed_after)


def map_recipes(client, tasks, data, checkpoints=None, on_result=None, verbose=False):
    """Train every :class:`Task` of ``tasks`` on ``data`` and return their :class:`Trained`, in the order of
    ``tasks``.

    ``client``: a ``dask.distributed.Client`` (the tasks run on its workers, the data scattered to each once), or
    None (one after another in this process, with ``verbose`` progress). ``checkpoints``: None, or one path per
    task (as the workers see it; None for a task without one). ``on_result(i, trained)`` is called here as each
    task ends, in the order they end: write files there. Tasks that failed raise :class:`TasksFailed` at the end.
    """
    tasks = list(tasks)
    for task in tasks:
        task.resolved()  # an unknown recipe fails here, before anything runs
    checkpoints = [None] * len(tasks) if checkpoints is None else list(checkpoints)
    if len(checkpoints) != len(tasks):
        raise ValueError(f"map_recipes: {len(checkpoints)} checkpoint paths for {len(tasks)} tasks")
    results, failures = [None] * len(tasks), {}

    def done(i, trained):
        results[i] = trained
        if on_result is not None:
            on_result(i, trained)

    if client is None:
        for i, (task, path) in enumerate(zip(tasks, checkpoints)):
            try:
                trained = train(task, data, path, verbose)
            except Exception as e:  # reported with the others at the end, as on a cluster
                failures[task.label] = e
                continue
            done(i, trained)
    else:
        from distributed import as_completed

        [data_future] = client.scatter([data], broadcast=True, hash=False)
        futures = {client.submit(train, task, data_future, path, pure=False,
                                 key=f"deepnum-train-{i}-{uuid.uuid4().hex[:8]}"): i
                   for i, (task, path) in enumerate(zip(tasks, checkpoints))}
        for future in as_completed(futures):
            i = futures[future]
            if future.status == "error":
                failures[tasks[i].label] = future.exception()
            else:
                done(i, future.result())
        client.cancel([data_future])
    if failures:
        raise TasksFailed(failures, results)
    return results


def parse_cluster(spec):
    """``local:N`` → ("local", N); a scheduler address (``tcp://HOST:PORT``, ``tls://…``) → ("address", spec)."""
    if spec.startswith("local:"):
        n = spec[len("local:"):]
        if not n.isdigit() or int(n) < 1:
            raise ValueError(f"--cluster {spec}: local:N needs a number of workers N >= 1")
        return "local", int(n)
    if "://" in spec:
        return "address", spec
    raise ValueError(f"--cluster {spec}: give local:N (N local worker processes) or a scheduler's address "
                     f"such as tcp://HOST:8786")


def cluster(spec, threads=None):
    """A context manager that gives a ``dask.distributed.Client`` for ``spec`` (see :func:`parse_cluster`), closed
    at the end of the block; mistakes in ``spec`` and ``threads`` are a ValueError at once.

    ``local:N`` starts N worker processes here (one task at a time each, no dashboard) and closes them at the
    end; their kernels use ``threads`` threads each (default: the cores divided among the workers, at least 1),
    set through each worker's environment when it starts. N workers above the cores is refused unless
    ``threads`` is given. A scheduler's address connects to that cluster, whose workers keep the threads
    they were started with."""
    try:
        import distributed
    except ImportError:
        raise RuntimeError('--cluster needs Dask: pip install "deepnum[dask]"') from None
    kind, value = parse_cluster(spec)
    if kind == "address":
        if threads is not None:
            raise ValueError(f"--cluster {spec}: --threads applies to local:N only; a running cluster's workers "
                             f"keep the threads they were started with (OMP_NUM_THREADS in their environment)")
        return distributed.Client(value)
    cores = os.cpu_count() or 1
    if threads is None:
        if value > cores:
            raise ValueError(f"--cluster {spec}: {value} workers on {cores} cores; use at most local:{cores}, or "
                             f"pass --threads 1 to oversubscribe")
        threads = max(1, cores // value)
    elif isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"--cluster {spec}: --threads must be a positive int, got {threads!r}")
    return _local_cluster(value, {name: str(threads) for name in THREAD_VARIABLES})


@contextlib.contextmanager
def _local_cluster(n_workers, env):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      env=env) as local, Client(local) as client:
        yield client
