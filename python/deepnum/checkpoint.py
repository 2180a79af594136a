"""The files a model and its training write: weights and training checkpoints, both ``.npz`` with
a JSON entry (never pickle), both written atomically. Host side: arrays reach the files as NumPy
arrays (``to_host`` of their namespace) and come back as NumPy arrays.

Weights (``Sequential.save``): the parameters keyed "<layer index>.<name>" and ``__architecture__``,
the JSON of ``model.architecture()``.

A checkpoint (``fit(..., checkpoint=path)``, after every epoch): the parameters as in a weights
file; "opt:<key>.<slot>" the optimiser's state; "best:<key>" the parameters of the best validation
error so far; and ``__architecture__`` the JSON of {"architecture", "epoch", "history",
"early_stopping" (``EarlyStopping.state_dict()`` and "test_error"), "rng" (the model generator's
state), "setup" (what resuming must match: training set size, batch size, shuffling, the
early-stopping rule, whether there is validation data, the optimiser's config)}. The layout is
that of the checkpoints written before the model/training split: they resume as they were
(tests/data/checkpoint-2c5dbcc.npz, bit for bit).
"""
import contextlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from . import ops

ARCH_KEY = "__architecture__"


class CheckpointMismatch(ValueError):
    """A checkpoint was written by a different model or training setup than the one resuming it."""


# ---- weights -------------------------------------------------------------------------------

def write_weights(path, architecture, params):
    """Weights and architecture (JSON) to an .npz file, atomically."""
    _atomic_savez(path, {ARCH_KEY: _json_array(architecture), **_to_host(params)})


def read_weights(path, op):
    """(architecture, params as NumPy arrays) of a file :func:`write_weights` wrote; a ValueError
    naming ``op`` (the caller) for any other file."""
    with np.load(path, allow_pickle=False) as f:
        if ARCH_KEY not in f.files:
            raise ValueError(f"{op}: {path} is not a deepnum model (no {ARCH_KEY} entry)")
        return json.loads(str(f[ARCH_KEY])), {k: f[k] for k in f.files if k != ARCH_KEY}


# ---- training checkpoints ------------------------------------------------------------------

@dataclass
class Checkpoint:
    """What a checkpoint holds, as :func:`read` returns it (arrays as NumPy arrays)."""

    epoch: int
    history: dict
    early_stopping: dict  # EarlyStopping.state_dict()
    test_error: Optional[float]
    rng_state: dict  # numpy.random.Generator.bit_generator.state
    params: dict
    optimizer_state: dict
    best: Optional[dict]  # the parameters at the best validation error, if there was one


def write(path, architecture, setup, ckpt):
    """Write the :class:`Checkpoint` ``ckpt`` of a model of ``architecture`` trained with ``setup``,
    atomically (a reader sees the previous checkpoint or this one)."""
    meta = {"architecture": architecture, "epoch": ckpt.epoch, "history": dict(ckpt.history),
            "early_stopping": {**ckpt.early_stopping, "test_error": ckpt.test_error},
            "rng": ckpt.rng_state, "setup": setup}
    arrays = {ARCH_KEY: _json_array(meta), **_to_host(ckpt.params)}
    arrays.update({f"opt:{k}": v for k, v in _to_host(ckpt.optimizer_state).items()})
    if ckpt.best is not None:
        arrays.update({f"best:{k}": v for k, v in _to_host(ckpt.best).items()})
    _atomic_savez(path, arrays)


def read(path, architecture, setup):
    """The :class:`Checkpoint` at ``path``, if it was written by the same architecture (seed included)
    and training setup (all but the number of epochs); else CheckpointMismatch naming each difference."""
    with np.load(path, allow_pickle=False) as f:
        meta = json.loads(str(f[ARCH_KEY]))
        compare(path, _flat_setup(meta["architecture"], meta.get("setup", {})), _flat_setup(architecture, setup))
        params = {k: f[k] for k in f.files if ":" not in k and k != ARCH_KEY}
        optimizer_state = {k[4:]: f[k] for k in f.files if k.startswith("opt:")}
        best = {k[5:]: f[k] for k in f.files if k.startswith("best:")} or None
    early_stopping = dict(meta["early_stopping"])
    test_error = early_stopping.pop("test_error", None)
    return Checkpoint(meta["epoch"], meta["history"], early_stopping, test_error, meta["rng"], params,
                      optimizer_state, best)


def compare(path, written, now):
    """CheckpointMismatch unless the flat setups ``written`` (as read back from JSON) and ``now`` agree;
    the message names every key that differs, with both values."""
    now = json.loads(json.dumps(now, default=_json_default))  # as JSON gives it back: tuples as lists
    differ = [f"{k}: {written.get(k)!r} in the checkpoint, {now.get(k)!r} now"
              for k in sorted(set(written) | set(now)) if written.get(k) != now.get(k)]
    if differ:
        raise CheckpointMismatch(f"fit: checkpoint {path} was written by another model or training setup "
                                 f"({'; '.join(differ)})")


def _flat_setup(architecture, setup):
    """One flat dict of what a checkpoint must match: "model <key>", "<setup key>", "optimizer <key>"."""
    return {**{f"model {k}": v for k, v in architecture.items()},
            **{k: v for k, v in setup.items() if k != "optimizer"},
            **{f"optimizer {k}": v for k, v in setup.get("optimizer", {}).items()}}


# ---- files ---------------------------------------------------------------------------------

def _to_host(arrays):
    return {k: ops.array_namespace(a).to_host(a) for k, a in arrays.items()}


def _json_array(value):
    return np.array(json.dumps(value, default=_json_default))


def _json_default(v):
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    raise TypeError(f"cannot serialise {type(v).__name__}")


def write_text(path, text):
    """Write ``text`` (UTF-8) to ``path``, atomically."""
    _atomic_write(path, lambda f: f.write(text.encode()))


def write_json(path, value):
    """Write ``value`` as JSON (NumPy scalars as numbers) to ``path``, atomically."""
    write_text(path, json.dumps(value, indent=1, default=_json_default))


def _atomic_savez(path, arrays):
    _atomic_write(path, lambda f: np.savez(f, **arrays))


def _atomic_write(path, write):
    """Call ``write(f)`` on a temporary file beside ``path``, flush it to disk and rename it over
    ``path``: a reader sees the old file or the new one, never a partial one."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:  # a new file (O_EXCL) with the umask's permissions
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
