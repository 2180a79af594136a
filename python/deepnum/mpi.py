"""Data-parallel training over MPI (mpi4py): ``pip install "deepnum[mpi]"``.

Every process (rank) holds the whole data set and the same model; :class:`DataParallel` wraps the
model so that :func:`deepnum.training.fit` drives it as it drives a model. Run the same script on
every rank::

    # mpirun -n 2 python train.py
    from mpi4py import MPI
    from deepnum import models, training
    from deepnum.mpi import DataParallel

    model = models.MLP([784, 100, 10], seed=0)
    history = training.fit(DataParallel(model, MPI.COMM_WORLD), train, epochs=10, batch_size=100,
                           validation=valid, shuffle=True, checkpoint="checkpoint.npz", verbose=True)
    if MPI.COMM_WORLD.Get_rank() == 0:
        model.save("weights.npz")

or from the command line, ``mpirun -n 2 deepnum train n3-relu --data-parallel --batch-size 100``.

One step (``DataParallel.train_step``) takes the *global* minibatch of N rows: rank r computes the
gradients of its contiguous share (:func:`share`: shares differ by at most one row; a rank with no
rows contributes zeros), scales them by n_r / N, packs them and its loss × n_r / N into one
contiguous buffer, and one ``Allreduce(MPI.IN_PLACE, buffer)`` sums them: every rank then holds the
gradient of the mean loss over all N rows, and applies the same optimiser step. The sum is taken in
the parameters' dtype (float32 models sum in float32, the loss included), so training equals
single-process training at the same global batch within that dtype's rounding, not bit for bit. A
global loss that is not finite raises TrainingDiverged on every rank, the parameters untouched.

At construction rank 0's parameters (one packed ``Bcast``) and generator state are broadcast, so the
ranks start equal whatever their seeds, and draw the same shuffling permutations from ``model.rng``
(the optimiser's state is not: it starts empty, or comes from a checkpoint). After every epoch
:class:`ReplicaCheck` compares a hash of every rank's parameters and generator state, and raises
:class:`ReplicasDiverged` naming the epoch and the ranks that differ. Validation and test scoring
run on the whole sets on every rank (identical parameters: identical early-stopping decisions, no
communication; not sped up). The seconds spent inside
``Allreduce`` are added up in ``allreduce_seconds`` and recorded per epoch in the history
(``history["allreduce_seconds"]``).

Dropout: a layer draws one seed per forward from ``model.rng`` whatever its number of rows, so the
generators stay in step; but every rank then draws the same masks for its own rows (those of the
first rows of a single-process batch), so a model with dropout trains correctly but does not equal
single-process training; the equality holds for models without dropout. Since a rank with no rows
runs no forward (and would fall out of step), a model with dropout needs a global batch of at least
one row per rank.

Files: only rank 0 prints progress and writes checkpoints (``fit(checkpoint=...)``); resuming,
rank 0 reads the checkpoint and broadcasts it (:class:`SharedCheckpointing`), so no shared file
system is needed. Other callbacks run on every rank (``DataParallel.rank`` says which). The model
stays on the host: GPU-aware MPI (device buffers in ``Allreduce``) is not supported.
"""
import hashlib
import json
import math
import time

import numpy as np

from . import nn, ops, training

__all__ = ["DataParallel", "ReplicaCheck", "ReplicasDiverged", "SharedCheckpointing", "share"]


def mpi():
    """mpi4py's ``MPI`` module (imported on first use, which initialises MPI), or an ImportError saying
    how to install it."""
    try:
        from mpi4py import MPI
    except ImportError as e:
        raise ImportError('deepnum.mpi needs mpi4py and an MPI: pip install "deepnum[mpi]" '
                          f"(or mpi4py built against the site's MPI); importing mpi4py failed: {e}") from e
    return MPI


class ReplicasDiverged(RuntimeError):
    """The ranks of a data-parallel run no longer hold the same parameters and generator state."""


def share(n, size, rank):
    """The rows [lo, hi) of a global batch of ``n`` rows that ``rank`` of ``size`` trains on: contiguous,
    in rank order, the first n % size ranks one row more than the others."""
    if not 0 <= rank < size:
        raise ValueError(f"share: rank {rank} is not in [0, {size})")
    base, extra = divmod(n, size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (rank < extra)


def pack(arrays, out, scale=1.0):
    """Copy the arrays (any shapes) one after another into the flat array ``out``, times ``scale``
    (in ``out``'s dtype); returns the number of elements written."""
    at = 0
    for a in arrays:
        np.multiply(a.reshape(-1), scale, out=out[at:at + a.size])
        at += a.size
    return at


def unpack(flat, shapes):
    """Views of the flat array ``flat`` shaped as ``shapes``, one after another (no copies)."""
    views, at = [], 0
    for shape in shapes:
        n = math.prod(shape)
        views.append(flat[at:at + n].reshape(shape))
        at += n
    return views


def checksum(model):
    """A hash of the model's parameters (their bytes, in order) and of its generator's state."""
    h = hashlib.sha256()
    for key, _, p, _ in model.parameters():
        h.update(key.encode())
        h.update(np.ascontiguousarray(ops.placed(p, ops.array_namespace())).tobytes())
    h.update(json.dumps(model.rng.bit_generator.state, sort_keys=True).encode())
    return h.hexdigest()


def check_replicas(comm, model, when):
    """ReplicasDiverged (on every rank) unless every rank of ``comm`` holds the model's parameters and
    generator state bit for bit; ``when`` says at which point of training, for the message."""
    sums = comm.allgather(checksum(model))
    differ = [r for r, s in enumerate(sums) if s != sums[0]]
    if differ:
        raise ReplicasDiverged(f"DataParallel: {when}, the parameters or generator state of rank"
                               f"{'s' * (len(differ) > 1)} {', '.join(map(str, differ))} differ from rank 0's "
                               f"(checksums {', '.join(f'{r}: {s[:12]}' for r, s in enumerate(sums))})")


class ReplicaCheck(training.Callback):
    """After every epoch, ``check_replicas`` across ``comm``."""

    def __init__(self, comm):
        self.comm = comm

    def on_epoch_end(self, run, record):
        """Checks that every rank holds the same parameters (ReplicasDiverged if not)."""
        check_replicas(self.comm, run.model, f"after epoch {record['epoch']}")


class _AllreduceTime(training.Callback):
    """Records the seconds a :class:`DataParallel` spent inside Allreduce during each epoch
    (``history["allreduce_seconds"]``)."""

    def on_epoch_start(self, run):
        self.start = run.model.allreduce_seconds

    def on_epoch_end(self, run, record):
        record["allreduce_seconds"] = run.model.allreduce_seconds - self.start
        run.history.log(allreduce_seconds=record["allreduce_seconds"])


class SharedCheckpointing(training.Checkpointing):
    """:class:`deepnum.training.Checkpointing` for the ranks of ``comm``: rank 0 reads the checkpoint
    and broadcasts it (the :class:`deepnum.checkpoint.Checkpoint` pickled over MPI, never on disk; or the
    error reading it raised, which every rank then raises), every rank
    continues from it, and only rank 0 writes."""

    def __init__(self, path, verbose, comm):
        super().__init__(path, verbose)
        self.comm = comm

    def read(self, run):
        """The checkpoint as rank 0 read it, broadcast to every rank (None when there is none)."""
        got = None
        if self.comm.Get_rank() == 0:
            try:
                got = super().read(run)
            except Exception as e:  # noqa: BLE001 -- raised below on every rank, not only here
                got = e
        got = self.comm.bcast(got, root=0)
        if isinstance(got, Exception):
            raise got
        return got

    def on_epoch_end(self, run, record):
        """Rank 0 writes the checkpoint; the other ranks write nothing."""
        if self.comm.Get_rank() == 0:
            super().on_epoch_end(run, record)


def _draws_masks(model):
    """Whether a training forward of ``model`` draws dropout masks (and so a seed from its generator)."""
    return any(getattr(layer, "p_dropout", 0) > 0 or (isinstance(layer, nn.Dropout) and layer.p > 0)
               for layer in model.layers)


class DataParallel:
    """``model`` (a :class:`deepnum.models.Sequential` on the cpu) trained by the ranks of ``comm``
    (default ``MPI.COMM_WORLD``) on shares of each global minibatch; see the module's docstring.

    It has the protocol :func:`deepnum.training.fit` drives (the rest is ``model``'s): ``train_step``
    on the global batch, ``fit_callbacks`` (progress and checkpoint files on rank 0 only, checkpoints
    shared by broadcast, :class:`ReplicaCheck` and the per-epoch Allreduce seconds). ``rank`` and
    ``size`` are this process's rank and the number of ranks; ``allreduce_seconds`` the seconds spent
    inside Allreduce so far.
    """

    def __init__(self, model, comm=None):
        if getattr(model, "device", None) != "cpu":
            raise ValueError(f"DataParallel: the model must be on the cpu (GPU-aware MPI is not supported), "
                             f"got device {getattr(model, 'device', None)!r}")
        self.MPI = mpi()
        self.model, self.comm = model, self.MPI.COMM_WORLD if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.allreduce_seconds = 0.0
        self.shapes = [p.shape for _, _, p, _ in model.parameters()]
        n = sum(math.prod(s) for s in self.shapes)
        self.buffer = np.empty(n + 1, model.dtype)  # every gradient, then the loss
        self.draws_masks = _draws_masks(model)
        pack([p for _, _, p, _ in model.parameters()], self.buffer)
        self.comm.Bcast(self.buffer[:n], root=0)
        for p, v in zip([p for _, _, p, _ in model.parameters()], unpack(self.buffer, self.shapes)):
            p[...] = v
        model.rng.bit_generator.state = self.comm.bcast(model.rng.bit_generator.state, root=0)

    # ---- the model's side of the protocol ------------------------------------------------

    xp = property(lambda self: self.model.xp, doc="The model's array namespace (the host's).")
    rng = property(lambda self: self.model.rng, doc="The model's random generator (the same state on every rank).")
    epoch = property(lambda self: self.model.epoch, lambda self, v: setattr(self.model, "epoch", v),
                     doc="The model's epoch counter (read and set).")
    optimizer = property(lambda self: self.model.optimizer, lambda self, v: setattr(self.model, "optimizer", v),
                         doc="The model's optimiser (read and set).")

    def parameters(self):
        """The model's ``parameters()``."""
        return self.model.parameters()

    def state_dict(self):
        """The model's ``state_dict()`` (the same on every rank)."""
        return self.model.state_dict()

    def load_state_dict(self, state):
        """The model's ``load_state_dict(state)``."""
        self.model.load_state_dict(state)

    def architecture(self):
        """The model's ``architecture()``."""
        return self.model.architecture()

    def evaluate(self, data, batch_size=1000):
        """The model's scores on the whole of ``data``, computed on every rank (no communication)."""
        return self.model.evaluate(data, batch_size)

    def place(self, x, y=None):
        """The model's ``place(x, y)``."""
        return self.model.place(x, y)

    def to(self, device):
        """The model stays on the cpu: ``device`` "cpu" returns self, anything else is a ValueError."""
        if device != "cpu":
            raise ValueError(f"DataParallel.to: the model stays on the cpu (GPU-aware MPI is not supported), "
                             f"got {device!r}")
        return self

    # ---- training --------------------------------------------------------------------------

    def train_step(self, xb, yb):
        """One step on the global minibatch (xb, yb), the same on every rank: this rank's share of the
        gradient, one Allreduce, the optimiser's update; returns the global mean loss. A global loss that
        is not finite raises TrainingDiverged on every rank and leaves the parameters as they were."""
        model = self.model
        if model.optimizer is None:
            raise RuntimeError("DataParallel.train_step: no optimizer; pass one to fit() or set model.optimizer")
        if len(xb) != len(yb):
            raise ValueError(f"DataParallel.train_step: {len(xb)} inputs but {len(yb)} targets")
        n = len(xb)
        if self.draws_masks and n < self.size:
            raise ValueError(f"DataParallel.train_step: a model with dropout needs a global batch of at least one "
                             f"row per rank ({self.size}), got {n}")
        lo, hi = share(n, self.size, self.rank)
        buffer = self.buffer
        buffer[:] = 0  # what a rank without rows, or whose loss is not finite (no gradients), adds
        if hi > lo:
            xp = model.xp
            loss = model.gradients(xp.rows(xb, lo, hi), xp.rows(yb, lo, hi))
            weight = (hi - lo) / n
            if math.isfinite(loss):
                pack([g for _, _, _, g in model.parameters()], buffer, weight)
            buffer[-1] = loss * weight
        start = time.perf_counter()
        self.comm.Allreduce(self.MPI.IN_PLACE, buffer)
        self.allreduce_seconds += time.perf_counter() - start
        loss = float(buffer[-1])
        if not math.isfinite(loss):
            raise training.TrainingDiverged(f"loss is {loss}", loss)
        grads = iter(unpack(buffer, self.shapes))
        for layer in model.layers:
            for name in layer.params:
                layer.grads[name] = next(grads)  # views of the summed buffer
        with ops.array_cache():
            model.optimizer.step(model.parameters(), model.epoch)
        return loss

    def fit_callbacks(self, checkpoint, verbose, callbacks):
        """The callbacks :func:`deepnum.training.fit` runs: its standard ones, with progress and
        checkpoint writing on rank 0 only (:class:`SharedCheckpointing`), after ``callbacks`` the
        per-epoch Allreduce seconds and :class:`ReplicaCheck`."""
        verbose = verbose and self.rank == 0
        shared = None if checkpoint is None else SharedCheckpointing(checkpoint, verbose, self.comm)
        return training.standard_callbacks(checkpoint, verbose, [*callbacks, _AllreduceTime(), ReplicaCheck(self.comm)],
                                           shared)
