"""Training: the minibatch loop that drives a model (:func:`fit`), when to validate and when to stop
(:class:`EarlyStopping`), and the callbacks around the loop: progress (:class:`Progress`), stopping
on a loss that is not finite (:class:`StopOnNaN`) and checkpoints (:class:`Checkpointing`).

The loop drives any model with ``train_step(xb, yb)`` (a loss that is not finite raises
:class:`TrainingDiverged` and leaves the parameters as they were), ``evaluate(data)``,
``state_dict()`` / ``load_state_dict()``, ``architecture()``, ``parameters()``, an ``optimizer``, an
``epoch`` counter, ``rng``, the generator it draws from, its array namespace ``xp``, ``place(x, y)``
(the data on the model's side) and ``to(device)``: :class:`deepnum.models.Sequential` is one. A model may
also bring the callbacks it runs with, ``fit_callbacks(checkpoint, verbose, callbacks)`` in place of
:func:`standard_callbacks`'s (:class:`deepnum.mpi.DataParallel`: progress and files on one process). No NumPy
here: the data sets are placed on the model's side once per run, and minibatches are cut from them with
its namespace (``rows`` views in order; ``take_rows`` of a permutation placed there once per epoch).
"""
from __future__ import annotations

import contextlib
import os
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from . import checkpoint as ckpt
from .nn import _check_count
from .optim import SGD

if TYPE_CHECKING:
    from ._typing import Inputs
    from .optim import Optimizer


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite (``loss``); from :func:`fit`, the message names the epoch and batch."""

    def __init__(self, message, loss=None):
        super().__init__(message)
        self.loss = loss


class History(dict):
    """Per-epoch records (lists keyed by name) and the best-validation summary."""

    def log(self, **values):
        """Append each value to the list under its name."""
        for k, v in values.items():
            self.setdefault(k, []).append(v)


def accuracies(history):
    """'validation accuracy V%, test accuracy T%' from a run's ``history`` (a :class:`History` or its dict): the
    best validation epoch's and the test set's there, of those the run had."""
    errors = (("validation", history.get("best_valid_error")), ("test", history.get("test_error")))
    return ", ".join(f"{name} accuracy {100 * (1 - e):.2f}%" for name, e in errors if e is not None) or \
        "no validation or test set"


class EarlyStopping:
    """When to validate and when to stop, and the best validation error so far.

    Without ``patience``: validate once per epoch (network3) and never stop early. With
    ``patience`` (in iterations), the DeepLearningTutorials' rule: validate every
    min(n_batches, patience // 2) iterations; a new best error that is also below
    ``improvement_threshold`` × the previous best raises patience to iteration ×
    ``patience_increase`` (if that is more); stop once the iteration reaches patience.
    Iterations count minibatches from 0 over the whole run. ``state_dict()`` is plain JSON values.
    """

    def __init__(self, patience: int | None = None, patience_increase: float = 2, improvement_threshold: float = 0.995
                 ) -> None:
        self.initial_patience, self.patience = patience, patience
        self.patience_increase, self.improvement_threshold = patience_increase, improvement_threshold
        self.best_error, self.best_iteration, self.stopped = math.inf, -1, False

    def config(self):
        """The rule (JSON values): what a resumed run must match."""
        return {"patience": self.initial_patience, "patience_increase": self.patience_increase,
                "improvement_threshold": self.improvement_threshold}

    def validates(self, iteration, n_batches):
        """Whether to validate after ``iteration`` in epochs of ``n_batches`` minibatches."""
        p = self.initial_patience
        return (iteration + 1) % (n_batches if p is None else max(1, min(n_batches, p // 2))) == 0

    def update(self, iteration, error):
        """Record the validation error after ``iteration``; True when it is the best so far."""
        if not error < self.best_error:
            return False
        if self.patience is not None and error < self.best_error * self.improvement_threshold:
            self.patience = max(self.patience, iteration * self.patience_increase)
        self.best_error, self.best_iteration = error, iteration
        return True

    def stops(self, iteration):
        """Whether training ends after ``iteration``: patience is reached (and stays so: ``stopped``)."""
        if self.patience is not None and self.patience <= iteration:
            self.stopped = True
        return self.stopped

    def state_dict(self):
        # the keys checkpoints have always had
        """The rule's progress as JSON values (patience now, best error and iteration, whether it
        stopped), as checkpoints record it."""
        return {"patience": self.patience, "best": self.best_error if math.isfinite(self.best_error) else None,
                "best_iter": self.best_iteration, "done": self.stopped}

    def load_state_dict(self, state):
        """Continue from a :meth:`state_dict`."""
        self.patience, self.best_iteration, self.stopped = state["patience"], state["best_iter"], state["done"]
        self.best_error = math.inf if state["best"] is None else state["best"]


class Run:
    """One :func:`fit` call, as callbacks see it: the model, the history so far, the early-stopping
    rule, the parameters of the best validation so far (``best``, a ``state_dict()``: NumPy copies) and
    the test error there, and the sizes of the loop."""

    def __init__(self, model, n_train, batch_size, shuffle, has_validation, early_stopping):
        self.model, self.n_train, self.batch_size, self.shuffle = model, n_train, batch_size, shuffle
        self.n_batches, self.has_validation, self.early_stopping = n_train // batch_size, has_validation, early_stopping
        self.history, self.best, self.test_error = History(), None, None

    def setup(self):
        """What a checkpoint of this run records and a resumed run must match (all but the epochs)."""
        return {"n_train": self.n_train, "batch_size": int(self.batch_size), "shuffle": bool(self.shuffle),
                **self.early_stopping.config(), "validation": self.has_validation,
                "optimizer": self.model.optimizer.config()}


# ---- callbacks -------------------------------------------------------------------------------

class Callback:
    """Hooks around the loop of :func:`fit`; each gets the :class:`Run` and does nothing by default.
    ``on_batch_end`` gets the batch index in the epoch and its loss, ``on_epoch_end`` the epoch's record."""

    def on_fit_start(self, run):
        """Called once, before the first epoch (after the run's setup)."""
        pass

    def on_epoch_start(self, run):
        """Called before each epoch's first batch."""
        pass

    def on_batch_end(self, run, batch, loss):
        """Called after each training batch with its index in the epoch and its loss."""
        pass

    def on_epoch_end(self, run, record):
        """Called after each epoch with its record (epoch, train_loss, valid_loss and valid_error
        with validation, epoch_seconds), once ``run.history`` holds it."""
        pass


class StopOnNaN(Callback):
    """Ends training on a loss that is not finite (its step changed nothing): TrainingDiverged naming
    the epoch and the batch, and whether a checkpoint (``checkpoint``, a path) is kept."""

    def __init__(self, checkpoint=None):
        self.checkpoint = checkpoint

    def on_batch_end(self, run, batch, loss):
        """Raises TrainingDiverged when ``loss`` is not finite."""
        if not math.isfinite(loss):
            kept = (f"the last checkpoint ({self.checkpoint}) is kept" if self.checkpoint is not None
                    else "no checkpoint was being written")
            raise TrainingDiverged(f"fit: loss is {loss} at epoch {run.model.epoch + 1}, batch {batch + 1}; {kept}",
                                   loss)


class Progress(Callback):
    """A tqdm bar per epoch (the last loss as its postfix) on stderr where it is a terminal, and a line per epoch
    on stdout."""

    def on_fit_start(self, run):
        """Imports tqdm."""
        from tqdm.auto import tqdm

        self.tqdm = tqdm

    def on_epoch_start(self, run):
        # disable=None: no bar where stderr is not a terminal (a log file gets the per-epoch lines only)
        """Opens the epoch's progress bar (none where stderr is not a terminal)."""
        self.bar = self.tqdm(total=run.n_batches, desc=f"epoch {run.model.epoch + 1}", leave=False, disable=None)

    def on_batch_end(self, run, batch, loss):
        """Advances the bar, the batch's loss as its postfix."""
        self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        self.bar.update()

    def on_epoch_end(self, run, record):
        """Closes the bar and prints the epoch's training loss (and validation accuracy)."""
        self.bar.close()
        line = f"epoch {record['epoch']}: training loss {record['train_loss']:.4f}"
        if "valid_error" in record:
            line += f", validation accuracy {100 * (1 - record['valid_error']):.2f}%"
        print(line, flush=True)


class Checkpointing(Callback):
    """Resume from the checkpoint at ``path`` when it exists (the same model and training setup, else
    :class:`deepnum.checkpoint.CheckpointMismatch`); write it, atomically, after every epoch."""

    def __init__(self, path, verbose=False):
        self.path, self.verbose = path, verbose

    def on_fit_start(self, run):
        """Resumes ``run`` from the checkpoint at ``path`` when the file exists."""
        c = self.read(run)
        if c is not None:
            self.apply(run, c)

    def read(self, run):
        """The :class:`deepnum.checkpoint.Checkpoint` at ``path`` for ``run`` (CheckpointMismatch when another
        model or setup wrote it); None when there is no file."""
        if not Path(self.path).exists():
            return None
        return ckpt.read(self.path, run.model.architecture(), run.setup())

    def apply(self, run, c):
        """Continue ``run`` from the checkpoint ``c``: parameters, optimiser, generator, epoch, history, early
        stopping."""
        model = run.model
        model.load_state_dict(c.params)
        model.optimizer.load_state_dict(c.optimizer_state, model.parameters())
        model.rng.bit_generator.state = c.rng_state
        model.epoch = c.epoch
        run.history, run.best, run.test_error = History(c.history), c.best, c.test_error
        run.early_stopping.load_state_dict(c.early_stopping)
        if self.verbose:
            print(f"resumed from {self.path} after epoch {model.epoch}"
                  + (" (early stopping had ended the run)" if run.early_stopping.stopped else ""), flush=True)

    def on_epoch_end(self, run, record):
        """Writes the checkpoint (atomically): parameters, optimiser state, generator, epoch,
        history, early stopping and the best parameters so far."""
        model = run.model
        ckpt.write(self.path, model.architecture(), run.setup(),
                   ckpt.Checkpoint(model.epoch, run.history, run.early_stopping.state_dict(), run.test_error,
                                   model.rng.bit_generator.state, model.state_dict(), model.optimizer.state_dict(),
                                   run.best))


class _EveryEpoch(Callback):
    """A plain function f(model, history), called at the end of every epoch."""

    def __init__(self, f):
        self.f = f

    def on_epoch_end(self, run, record):
        self.f(run.model, run.history)


# ---- the loop ----------------------------------------------------------------------------------

def fit(model: Any, train: tuple[Inputs, Inputs], epochs: int, batch_size: int, optimizer: Optimizer | None = None,
        validation: tuple[Inputs, Inputs] | None = None, test: tuple[Inputs, Inputs] | None = None,
        early_stopping: EarlyStopping | None = None, shuffle: bool = False,
        callbacks: Iterable[Callback | Callable[[Any, History], object]] = (), verbose: bool = False,
        checkpoint: str | os.PathLike[str] | None = None, device: str | None = None) -> History:
    """Minibatch training of ``model`` on ``train`` = (x, y); returns a :class:`History`.

    ``early_stopping`` (an :class:`EarlyStopping`; default: no patience) says when to validate on
    ``validation`` and when to stop. With ``validation``, the parameters of the best validation error
    are kept (restored at the end) and ``test`` is scored at that point. ``epochs`` is the number of
    epochs this call trains: fit(epochs=k) twice trains 2k (``model.epoch`` counts them all). A call
    that resumes a checkpoint (``checkpoint``, a path that exists) ends where the run it continues
    would have: at the model's epoch at the call + ``epochs``, so a new model resuming a checkpoint of a
    10-epoch run trains the epochs that run had left. A trailing partial batch is dropped, as in the
    seeds; ``shuffle`` draws a permutation a epoch from ``model.rng``.

    An error of an op inside the loop (a ValueError or TypeError) is raised again naming ``fit`` and what
    it was doing (the training batch, or the validation or test set), with the op's error as its cause.

    ``device`` ("cpu" or "cuda"; None: the model's) moves the model there first (``model.to``; it stays
    there). ``train``, ``validation`` and ``test`` are copied to the model's side once per run (not per
    epoch or batch; not at all when they are there already); evaluation reduces losses and error counts
    there, and only scalars come back.

    Callbacks run in this order: :class:`StopOnNaN` (always), :class:`Progress` (with ``verbose``),
    ``callbacks`` (:class:`Callback` objects, or functions f(model, history) called after every epoch),
    and :class:`Checkpointing` (with ``checkpoint``, a path).
    """
    x, y = train
    if len(x) != len(y):
        raise ValueError(f"fit: {len(x)} training inputs but {len(y)} targets")
    if device is not None:
        model.to(device)
    _check_count("fit", "batch_size", batch_size, 1)
    _check_count("fit", "epochs", epochs, 0)
    n_batches = len(x) // batch_size
    if n_batches == 0:
        raise ValueError(f"fit: batch_size {batch_size} exceeds the {len(x)} training examples")
    if optimizer is not None:
        model.optimizer = optimizer
        optimizer.place(model.parameters())  # state it holds from another run, beside the parameters
    if model.optimizer is None:
        model.optimizer = SGD(0.1)
    early = EarlyStopping() if early_stopping is None else early_stopping
    run = Run(model, len(x), batch_size, shuffle, validation is not None, early)
    hooks = (model.fit_callbacks(checkpoint, verbose, callbacks) if hasattr(model, "fit_callbacks")
             else standard_callbacks(checkpoint, verbose, callbacks))
    x, y = model.place(x, y)
    validation = None if validation is None else model.place(*validation)
    test = None if test is None else model.place(*test)
    end = model.epoch + epochs  # before a checkpoint moves model.epoch on
    for h in hooks:
        h.on_fit_start(run)
    xp = model.xp
    while model.epoch < end and not early.stopped:
        order = xp.from_host(model.rng.permutation(len(x))) if shuffle else None
        losses, last_validation, start = [], None, time.perf_counter()
        for h in hooks:
            h.on_epoch_start(run)
        for b in range(n_batches):
            lo, hi = b * batch_size, (b + 1) * batch_size
            if shuffle:
                rows = xp.rows(order, lo, hi)
                xb, yb = xp.take_rows(x, rows), xp.take_rows(y, rows)
            else:
                xb, yb = xp.rows(x, lo, hi), xp.rows(y, lo, hi)
            try:
                with naming("fit", f"training batch {b + 1} of epoch {model.epoch + 1} "
                                   f"({'shuffled ' * shuffle}rows {lo}:{hi} of train)"):
                    loss = model.train_step(xb, yb)
            except TrainingDiverged as e:  # nothing was updated; StopOnNaN ends the run
                loss = math.nan if e.loss is None else e.loss
            for h in hooks:
                h.on_batch_end(run, b, loss)
            losses.append(loss)
            it = model.epoch * n_batches + b
            if validation is not None and early.validates(it, n_batches):
                with naming("fit", "validation"):
                    last_validation = it, model.evaluate(validation)
                if early.update(it, last_validation[1]["error"]):
                    run.best = model.state_dict()
                    with naming("fit", "test"):
                        run.test_error = None if test is None else model.evaluate(test)["error"]
            if early.stops(it):
                break
        model.epoch += 1
        record = {"epoch": model.epoch, "train_loss": _mean(losses)}
        if validation is not None:  # the parameters of the epoch's last iteration, scored once
            if last_validation and last_validation[0] == it:
                scores = last_validation[1]
            else:
                with naming("fit", "validation"):
                    scores = model.evaluate(validation)
            record["valid_loss"], record["valid_error"] = scores["loss"], scores["error"]
        record["epoch_seconds"] = time.perf_counter() - start
        run.history.log(**record)
        for h in hooks:
            h.on_epoch_end(run, record)
    if run.best is not None:
        model.load_state_dict(run.best)
        run.history["best_valid_error"] = early.best_error
        run.history["best_iteration"] = early.best_iteration
        run.history["test_error"] = run.test_error
    return run.history


def standard_callbacks(checkpoint, verbose, callbacks, checkpointing=None):
    """The callbacks of :func:`fit` in their order (see there); ``checkpointing`` (with ``checkpoint``) is the
    :class:`Checkpointing` callback to use, by default ``Checkpointing(checkpoint, verbose)``."""
    if checkpoint is not None and checkpointing is None:
        checkpointing = Checkpointing(checkpoint, verbose)
    return [StopOnNaN(checkpoint), *([Progress()] if verbose else []),
            *(f if isinstance(f, Callback) else _EveryEpoch(f) for f in callbacks),
            *([checkpointing] if checkpoint is not None else [])]


@contextlib.contextmanager
def naming(call, what):
    """A context manager: a ValueError or TypeError from the block is raised again as ``"<call>: <what>:
    <message>"`` (the user's call and argument first), the original as its cause; other errors pass
    through (TrainingDiverged is a FloatingPointError)."""
    try:
        yield
    except (ValueError, TypeError) as e:
        raise (ValueError if isinstance(e, ValueError) else TypeError)(f"{call}: {what}: {e}") from e


def _mean(values):
    """The mean of Python floats, summed as NumPy's ``np.mean`` sums a float64 array (pairwise, see
    _pairwise_sum), so that the recorded losses stay bit for bit those of earlier runs and checkpoints."""
    return (0.0 + _pairwise_sum(values, 0, len(values))) / len(values)


def _pairwise_sum(a, lo, n):
    """NumPy's pairwise_sum (its umath/loops_utils.h.src) of a[lo:lo + n]: below 8 terms in
    order; up to 128 in 8 interleaved partial sums, combined as a tree, then the remainder in order;
    above that, the two halves (split at a multiple of 8) summed alike and added."""
    if n < 8:
        total = -0.0
        for i in range(lo, lo + n):
            total += a[i]
        return total
    if n <= 128:
        r = list(a[lo:lo + 8])
        i = 8
        while i < n - n % 8:
            for j in range(8):
                r[j] += a[lo + i + j]
            i += 8
        total = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
        for k in range(lo + i, lo + n):
            total += a[k]
        return total
    half = n // 2
    half -= half % 8
    return _pairwise_sum(a, lo, half) + _pairwise_sum(a, lo + half, n - half)
