"""Models: a :class:`Sequential` list of layers ending in an output head, its training loop
(minibatch SGD with the DeepLearningTutorials' early stopping), checkpoints and ready-made
constructors for the seed models.
"""
import contextlib
import json
import math
import os
import time
import uuid
from pathlib import Path

import numpy as np

from . import _backend, nn, ops
from .optim import SGD

_ARCH_KEY = "__architecture__"


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; the message names the epoch and batch."""


class CheckpointMismatch(ValueError):
    """A checkpoint was written by a different model or training setup than the one resuming it."""


class History(dict):
    """Per-epoch records (lists keyed by name) and the best-validation summary."""

    def log(self, **values):
        for k, v in values.items():
            self.setdefault(k, []).append(v)


class Reshape(nn.Layer):
    """(N, prod(shape)) -> (N, *shape); a view, no copy (e.g. flat MNIST rows to images)."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def config(self):
        return dict(shape=list(self.shape))

    def forward(self, x, train):
        self.x_shape = x.shape
        return x.reshape((x.shape[0],) + self.shape)

    def backward(self, dy, need_dx=True):
        return dy.reshape(self.x_shape)


LAYERS = dict(nn.LAYERS, Reshape=Reshape)


class Sequential:
    """Layers applied in order; the last is an output head (:class:`deepnum.nn.OutputHead`:
    ``SoftmaxNLL`` for class labels, ``SigmoidBCE`` for binary targets).

    ``seed`` drives every random draw (initialisation, shuffling, dropout masks): two models
    built and trained with the same seed and thread count end bit-identical.
    """

    def __init__(self, layers, seed=0, dtype=np.float32):
        layers = list(layers)
        if not layers or not isinstance(layers[-1], nn.OutputHead):
            raise ValueError("Sequential: the last layer must be an output head (SoftmaxNLL or SigmoidBCE)")
        self.layers, self.seed, self.dtype = layers, seed, np.dtype(dtype)
        self.rng = np.random.default_rng(seed)
        for layer in layers:
            layer.build(self.rng, self.dtype)
        self.optimizer = None
        self.epoch = 0

    # ---- computation -------------------------------------------------------------------

    def parameters(self):
        """Yields (key, name, param, grad) for every parameter; key is "<layer index>.<name>"."""
        for i, layer in enumerate(self.layers):
            for name, p in layer.params.items():
                yield f"{i}.{name}", name, p, layer.grads.get(name)

    def forward(self, x, train=False):
        """Logits for the batch x."""
        x = np.asarray(x, dtype=self.dtype)
        for layer in self.layers:
            x = layer.forward(x, train)
        return x

    def train_step(self, xb, yb):
        """One forward, backward and optimiser update on a minibatch; returns its loss."""
        if self.optimizer is None:
            raise RuntimeError("train_step: no optimizer; pass one to fit() or set model.optimizer")
        xb = np.asarray(xb, dtype=self.dtype)
        if self._fused_mlp_step(xb):
            dense = self.layers[:-1]
            loss = ops.mlp_train_step(xb, yb, [d.params["w"] for d in dense], [d.params["b"] for d in dense],
                                      [d.activation for d in dense], self.optimizer.learning_rate(self.epoch),
                                      self.optimizer.l2)
        else:
            with _backend.array_cache():
                self.forward(xb, train=True)
                loss = self.layers[-1].loss(yb)
                if math.isfinite(loss):
                    self.backward()
                    self.optimizer.step(self.parameters(), self.epoch)
        if not math.isfinite(loss):
            raise TrainingDiverged(f"loss is {loss}")
        return loss

    def _fused_mlp_step(self, xb):
        """Whether a step can run as one ops.mlp_train_step call (same result, far fewer calls):
        Dense layers without dropout, a softmax-NLL head, plain SGD with at most L2, 2-D input."""
        opt = self.optimizer
        return (type(opt) is SGD and opt.momentum == 0 and not opt.l1 and xb.ndim == 2
                and type(self.layers[-1]) is nn.SoftmaxNLL
                and all(type(layer) is nn.Dense and layer.p_dropout == 0 for layer in self.layers[:-1]))

    def backward(self, input_grad=False):
        """Gradients of the head's loss (after a training forward and ``loss``) for every
        parameter; with ``input_grad`` also the gradient of the input, which is returned.
        Without it, layers before the first one with parameters are skipped and that one does
        not compute its dx."""
        d = self.layers[-1].backward()
        first = 0 if input_grad else next((i for i, layer in enumerate(self.layers) if layer.params), 0)
        for i in range(len(self.layers) - 2, first - 1, -1):
            d = self.layers[i].backward(d, need_dx=input_grad or i > first)
        return d if input_grad else None

    def predict_proba(self, x, batch_size=1000):
        """Probabilities from the head (softmax or sigmoid of the logits), computed in batches."""
        head = self.layers[-1]
        return np.concatenate([head.probabilities(self.forward(x[i:i + batch_size]))
                               for i in range(0, len(x), batch_size)])

    def predict(self, x, batch_size=1000):
        """Predicted targets: class labels (SoftmaxNLL) or 0/1 (SigmoidBCE)."""
        head = self.layers[-1]
        return np.concatenate([head.predictions(self.forward(x[i:i + batch_size]))
                               for i in range(0, len(x), batch_size)])

    def evaluate(self, data, batch_size=1000):
        """Mean loss, accuracy and zero-one error on (x, y); errors are counted per target
        (per example for one label each, per time step or bit for sequence targets)."""
        x, y = data
        if len(x) == 0 or len(x) != len(y):
            raise ValueError(f"evaluate: needs as many targets as inputs, at least one; got {len(x)} and {len(y)}")
        head, total, wrong, count = self.layers[-1], 0.0, 0, 0
        for i in range(0, len(x), batch_size):
            xb, yb = x[i:i + batch_size], y[i:i + batch_size]
            logits = self.forward(xb)
            total += head.loss(yb) * len(xb)
            wrong += int((head.predictions(logits) != yb).sum())
            count += np.size(yb)
        return {"loss": total / len(x), "accuracy": 1 - wrong / count, "error": wrong / count}

    # ---- training ----------------------------------------------------------------------

    def fit(self, train, epochs, batch_size, optimizer=None, validation=None, test=None, patience=None,
            patience_increase=2, improvement_threshold=0.995, shuffle=False, callbacks=(), verbose=False,
            checkpoint=None):
        """Minibatch training; returns a :class:`History`.

        With ``validation``, the parameters of the best validation error are kept (restored at
        the end) and ``test`` is scored at that point. ``patience`` (in iterations) enables the
        DeepLearningTutorials' early stopping: validate every min(n_batches, patience // 2)
        iterations; an improvement below ``improvement_threshold`` × best raises patience to
        iteration × ``patience_increase``; stop once the iteration passes patience. Without
        it, validation runs once per epoch (network3). A trailing partial batch is dropped,
        as in the seeds. ``checkpoint`` (a path) is written atomically after every epoch and
        resumed from if it exists. ``callbacks`` are called as f(model, history) per epoch.
        """
        x, y = train
        if len(x) != len(y):
            raise ValueError(f"fit: {len(x)} training inputs but {len(y)} targets")
        for name, v, minimum in (("batch_size", batch_size, 1), ("epochs", epochs, 0)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
                raise ValueError(f"fit: {name} must be an integer >= {minimum}, got {v!r}")
        n_batches = len(x) // batch_size
        if n_batches == 0:
            raise ValueError(f"fit: batch_size {batch_size} exceeds the {len(x)} training examples")
        if optimizer is not None:
            self.optimizer = optimizer
        if self.optimizer is None:
            self.optimizer = SGD(0.1)
        frequency = n_batches if patience is None else max(1, min(n_batches, patience // 2))
        st = {"patience": patience, "best": np.inf, "best_iter": -1, "test_error": None, "done": False}
        history, best_params = History(), None
        setup = {"n_train": len(x), "batch_size": int(batch_size), "shuffle": bool(shuffle), "patience": patience,
                 "patience_increase": patience_increase, "improvement_threshold": improvement_threshold,
                 "validation": validation is not None, "optimizer": self.optimizer.config()}
        if checkpoint is not None and Path(checkpoint).exists():
            history, st, best_params = self._resume(checkpoint, setup)
            if verbose:
                print(f"resumed from {checkpoint} after epoch {self.epoch}"
                      + (" (early stopping had ended the run)" if st["done"] else ""), flush=True)
        progress = _progress(verbose)
        while self.epoch < epochs and not st["done"]:
            order = self.rng.permutation(len(x)) if shuffle else None
            losses, last_validation, start = [], None, time.perf_counter()
            bar = progress(range(n_batches), desc=f"epoch {self.epoch + 1}")
            for b in bar:
                idx = slice(b * batch_size, (b + 1) * batch_size)
                idx = order[idx] if shuffle else idx
                try:
                    losses.append(self.train_step(x[idx], y[idx]))
                except TrainingDiverged as e:
                    kept = (f"the last checkpoint ({checkpoint}) is kept" if checkpoint is not None
                            else "no checkpoint was being written")
                    raise TrainingDiverged(f"fit: {e} at epoch {self.epoch + 1}, batch {b + 1}; {kept}") from None
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix(loss=f"{losses[-1]:.4f}", refresh=False)
                it = self.epoch * n_batches + b
                if validation is not None and (it + 1) % frequency == 0:
                    last_validation = it, self.evaluate(validation)
                    err = last_validation[1]["error"]
                    if err < st["best"]:
                        if st["patience"] is not None and err < st["best"] * improvement_threshold:
                            st["patience"] = max(st["patience"], it * patience_increase)
                        st["best"], st["best_iter"] = err, it
                        best_params = {k: p.copy() for k, _, p, _ in self.parameters()}
                        st["test_error"] = None if test is None else self.evaluate(test)["error"]
                if st["patience"] is not None and st["patience"] <= it:
                    st["done"] = True
                    break
            self.epoch += 1
            record = {"epoch": self.epoch, "train_loss": float(np.mean(losses))}
            if validation is not None:  # the parameters of the epoch's last iteration, scored once
                scores = last_validation[1] if last_validation and last_validation[0] == it else self.evaluate(validation)
                record["valid_loss"], record["valid_error"] = scores["loss"], scores["error"]
            record["epoch_seconds"] = time.perf_counter() - start
            history.log(**record)
            if verbose:
                line = f"epoch {self.epoch}: training loss {record['train_loss']:.4f}"
                if validation is not None:
                    line += f", validation accuracy {100 * (1 - record['valid_error']):.2f}%"
                print(line, flush=True)
            for f in callbacks:
                f(self, history)
            if checkpoint is not None:
                self._write_checkpoint(checkpoint, history, st, best_params, setup)
        if best_params is not None:
            for key, _, p, _ in self.parameters():
                p[...] = best_params[key]
            history["best_valid_error"] = st["best"]
            history["best_iteration"] = st["best_iter"]
            history["test_error"] = st["test_error"]
        return history

    # ---- state -------------------------------------------------------------------------

    def architecture(self):
        return {"seed": self.seed, "dtype": self.dtype.name,
                "layers": [{"type": type(layer).__name__, **layer.config()} for layer in self.layers]}

    def state_dict(self):
        """Parameters keyed "<layer index>.<name>" (copies)."""
        return {k: p.copy() for k, _, p, _ in self.parameters()}

    def load_state_dict(self, state):
        for key, _, p, _ in self.parameters():
            if key not in state or state[key].shape != p.shape:
                raise ValueError(f"load_state_dict: missing or mis-shaped parameter {key}")
            p[...] = state[key]

    def save(self, path):
        """Write weights and architecture (JSON) to an .npz file, atomically. No pickle."""
        _atomic_savez(path, {_ARCH_KEY: np.array(json.dumps(self.architecture())), **self.state_dict()})

    @classmethod
    def load(cls, path):
        """Rebuild a model saved with :meth:`save`."""
        with np.load(path, allow_pickle=False) as f:
            if _ARCH_KEY not in f.files:
                raise ValueError(f"Sequential.load: {path} is not a deepnum model (no {_ARCH_KEY} entry)")
            arch = json.loads(str(f[_ARCH_KEY]))
            model = cls.from_architecture(arch)
            model.load_state_dict({k: f[k] for k in f.files if k != _ARCH_KEY})
        return model

    @classmethod
    def from_architecture(cls, arch):
        layers = [LAYERS[spec["type"]](**{k: v for k, v in spec.items() if k != "type"}) for spec in arch["layers"]]
        return cls(layers, seed=arch["seed"], dtype=arch["dtype"])

    def _write_checkpoint(self, path, history, st, best_params, setup):
        meta = {"architecture": self.architecture(), "epoch": self.epoch, "history": dict(history),
                "early_stopping": {k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                                   for k, v in st.items()},
                "rng": self.rng.bit_generator.state, "setup": setup}
        arrays = {_ARCH_KEY: np.array(json.dumps(meta, default=_json_default)), **self.state_dict()}
        arrays.update({f"opt:{k}": v for k, v in self.optimizer.state_dict().items()})
        if best_params is not None:
            arrays.update({f"best:{k}": v for k, v in best_params.items()})
        _atomic_savez(path, arrays)

    def _resume(self, path, setup):
        """Load a checkpoint written by the same architecture (seed included) and training setup
        (all but the number of epochs); anything else raises CheckpointMismatch naming it."""
        with np.load(path, allow_pickle=False) as f:
            meta = json.loads(str(f[_ARCH_KEY]))
            written = _flat_setup(meta["architecture"], meta.get("setup", {}))
            # as JSON gives it back: tuples as lists
            now = json.loads(json.dumps(_flat_setup(self.architecture(), setup), default=_json_default))
            differ = [f"{k}: {written.get(k)!r} in the checkpoint, {now.get(k)!r} now"
                      for k in sorted(set(written) | set(now)) if written.get(k) != now.get(k)]
            if differ:
                raise CheckpointMismatch(f"fit: checkpoint {path} was written by another model or training setup "
                                         f"({'; '.join(differ)})")
            self.load_state_dict({k: f[k] for k in f.files if ":" not in k and k != _ARCH_KEY})
            self.optimizer.load_state_dict({k[4:]: f[k] for k in f.files if k.startswith("opt:")})
            best = {k[5:]: f[k] for k in f.files if k.startswith("best:")} or None
        self.rng.bit_generator.state = meta["rng"]
        self.epoch = meta["epoch"]
        st = meta["early_stopping"]
        st["best"] = np.inf if st["best"] is None else st["best"]
        return History(meta["history"]), st, best


def _flat_setup(architecture, setup):
    """One flat dict of what a checkpoint must match: "model <key>", "<setup key>", "optimizer <key>"."""
    return {**{f"model {k}": v for k, v in architecture.items()},
            **{k: v for k, v in setup.items() if k != "optimizer"},
            **{f"optimizer {k}": v for k, v in setup.get("optimizer", {}).items()}}


def _json_default(v):
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    raise TypeError(f"cannot serialise {type(v).__name__}")


def _atomic_savez(path, arrays):
    """Write an .npz to a temporary file beside ``path``, flush it to disk and rename it over
    ``path``: a reader sees the old file or the new one, never a partial one."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:  # a new file (O_EXCL) with the umask's permissions
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _progress(verbose):
    if not verbose:
        return lambda it, desc=None: it
    from tqdm.auto import tqdm

    return lambda it, desc=None: tqdm(it, desc=desc, leave=False)


# ---- ready-made models -------------------------------------------------------------------

def LogisticRegression(n_in, n_out, seed=0, dtype=np.float32):
    """Softmax regression with zero-initialised weights (DLT logistic_sgd)."""
    return Sequential([nn.Dense(n_in, n_out, init="zeros"), nn.SoftmaxNLL()], seed, dtype)


def MLP(sizes, activation="tanh", p_dropout=0.0, init="glorot", seed=0, dtype=np.float32):
    """Hidden Dense layers of ``activation`` on sizes[:-1] → a zero-initialised softmax layer."""
    layers = [nn.Dense(a, b, activation, p_dropout, init) for a, b in zip(sizes[:-2], sizes[1:-1])]
    layers += [nn.Dense(sizes[-2], sizes[-1], init="zeros", p_dropout=p_dropout), nn.SoftmaxNLL()]
    return Sequential(layers, seed, dtype)


def ConvNet(image_shape, conv_layers, hidden, n_out=10, activation="sigmoid", p_dropout=0.0, init="normal",
            padding=0, seed=0, dtype=np.float32):
    """network3's composition: (ConvPool)* → FullyConnected* → Softmax.

    image_shape is (C, H, W); conv_layers a list of (n_filters, kernel, pool) triples; hidden a
    list of fully connected widths. Dropout (p_dropout) acts on the inputs of the fully
    connected and softmax layers, as in network3.
    """
    c, h, w = image_shape
    layers = [Reshape(image_shape)]
    for n_filters, kernel, pool in conv_layers:
        layers.append(nn.Conv2D(c, n_filters, kernel, 1, padding, activation, init))
        h, w = (h + 2 * padding - kernel + 1) // pool, (w + 2 * padding - kernel + 1) // pool
        if h < 1 or w < 1:
            raise ValueError(f"ConvNet: image {image_shape} is too small for the conv/pool layers {conv_layers}")
        layers.append(nn.MaxPool2D(pool))
        c = n_filters
    layers.append(nn.Flatten())
    n_in = c * h * w
    for width in hidden:
        layers.append(nn.Dense(n_in, width, activation, p_dropout, init))
        n_in = width
    layers += [nn.Dense(n_in, n_out, init="zeros", p_dropout=p_dropout), nn.SoftmaxNLL()]
    return Sequential(layers, seed, dtype)


def LeNet(seed=0, dtype=np.float32):
    """DLT convolutional_mlp LeNet5: conv 20 5×5, pool 2 → conv 50 5×5, pool 2 → 500 tanh → softmax."""
    return ConvNet((1, 28, 28), [(20, 5, 2), (50, 5, 2)], [500], activation="tanh", init="glorot", seed=seed,
                   dtype=dtype)


class Ensemble:
    """Several trained models voting: ``vote="majority"`` (plurality of predicted labels, ties to
    the smaller label) or ``"mean"`` (argmax of the mean probabilities)."""

    def __init__(self, members, vote="majority"):
        if vote not in ("majority", "mean"):
            raise ValueError(f"Ensemble: vote must be 'majority' or 'mean', got {vote!r}")
        self.members, self.vote = list(members), vote
        if not self.members:
            raise ValueError("Ensemble: needs at least one member")
        self.layers = self.members[0].layers  # for plots of the first member's filters

    def predict_proba(self, x, batch_size=1000):
        return np.mean([m.predict_proba(x, batch_size) for m in self.members], axis=0)

    def predict(self, x, batch_size=1000):
        if self.vote == "mean":
            return self.predict_proba(x, batch_size).argmax(axis=1)
        votes = np.stack([m.predict(x, batch_size) for m in self.members], axis=1)
        n_classes = int(votes.max()) + 1
        counts = np.stack([(votes == k).sum(axis=1) for k in range(n_classes)], axis=1)
        return counts.argmax(axis=1)

    def evaluate(self, data, batch_size=1000):
        x, y = data
        error = float((self.predict(x, batch_size) != y).mean())
        return {"accuracy": 1 - error, "error": error}
