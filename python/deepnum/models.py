"""Models: a :class:`Sequential` list of layers ending in an output head, its parameters and state,
saving and loading, and ready-made constructors for the seed models.

Training lives in :mod:`deepnum.training` (the loop, early stopping, callbacks; ``Sequential.fit``
calls it) and the file formats in :mod:`deepnum.checkpoint`. The names users of this module catch
or build on are re-exported here: ``TrainingDiverged``, ``History``, ``CheckpointMismatch``, and
:class:`deepnum.ensemble.Ensemble`. No NumPy here: a model's arrays are created and moved
through its array namespace ``xp``, the host's or the device's (``deepnum.ops.device_namespace`` of its
``device``).
"""
from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping

from . import checkpoint, nn, ops, training
from .checkpoint import CheckpointMismatch
from .ensemble import Ensemble
from .init import float_dtype, generator
from .nn import _check_count
from .training import History, TrainingDiverged

if TYPE_CHECKING:
    from ._typing import Array, DeviceArray, DTypeLike, FloatArray, Inputs, IntArray
    from .optim import Optimizer


class Reshape(nn.Layer):
    """``(N, prod(shape)) -> (N, *shape)``; a view, no copy (e.g. flat MNIST rows to images)."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def config(self):
        return dict(shape=list(self.shape))

    def forward(self, x, train):
        """x ``(N, prod(shape))`` as ``(N, *shape)``, a view."""
        self.x_shape = x.shape
        return self.xp.reshape(x, (x.shape[0],) + self.shape)

    def backward(self, dy, need_dx=True):
        """dy reshaped to the input's shape."""
        return self.xp.reshape(dy, self.x_shape)


LAYERS = dict(nn.LAYERS, Reshape=Reshape)
_HOST = ops.array_namespace()  # the host's namespace: state_dict() is NumPy arrays


class Sequential:
    """Layers applied in order; the last is an output head (:class:`deepnum.nn.OutputHead`:
    ``SoftmaxNLL`` for class labels, ``SigmoidBCE`` for binary targets).

    ``seed`` drives every random draw (initialisation, shuffling, dropout masks): two models
    built and trained with the same seed and thread count end bit-identical. ``dtype`` is
    "float32" or "float64" (or a NumPy dtype). ``device`` is "cpu" (NumPy arrays, the selected CPU
    backend) or "cuda" (DeviceArrays: parameters, gradients, optimiser state and the batches on the
    GPU); ``to(device)`` moves the model. Initial values are drawn on the host, so a model starts
    with the same parameters on either device.

    Inputs and targets may come from either side: ``forward``, ``train_step``, ``predict*`` and
    ``evaluate`` move them to the model's side (``place``; one copy per call for arrays of the other
    side), and ``fit`` does so once per run. What they return (logits, predictions) is on the
    model's side; ``state_dict()`` is always NumPy arrays.
    """

    layers: list[Any]  # nn.Layers (forward, backward), an nn.OutputHead last

    def __init__(self, layers: Iterable[nn.Layer], seed: int = 0, dtype: DTypeLike = "float32", device: str = "cpu"
                 ) -> None:
        layers = list(layers)
        if not layers or not isinstance(layers[-1], nn.OutputHead):
            raise ValueError("Sequential: the last layer must be an output head (SoftmaxNLL or SigmoidBCE)")
        self.layers, self.seed, self.dtype = layers, seed, float_dtype(dtype, "Sequential")
        self.xp = ops.device_namespace(device, "Sequential")
        self.rng = generator(seed)
        for layer in layers:
            layer.build(self.rng, self.dtype, self.xp)
        self.optimizer = None
        self.epoch = 0

    @property
    def device(self) -> str:
        """Where the model's arrays live: "cpu" or "cuda"."""
        return self.xp.name

    def to(self, device: str) -> Sequential:
        """Moves the parameters, their gradients and the optimiser's state to ``device`` ("cpu" or "cuda"; one
        copy each, none when the model is there already) and returns the model. What the layers kept of the
        last forward stays behind: run forward again before backward."""
        xp = ops.device_namespace(device, "Sequential.to")
        if xp is self.xp:
            return self
        for layer in self.layers:
            layer.params = {name: ops.placed(p, xp) for name, p in layer.params.items()}
            layer.grads = {name: ops.placed(g, xp) for name, g in layer.grads.items()}
            layer.xp = xp
        self.xp = xp
        if self.optimizer is not None:
            self.optimizer.place(self.parameters())
        return self

    def place(self, x: Inputs, y: Inputs | None = None) -> tuple[Any, Any]:
        """A data set (x, y; y may be None) on the model's side, as (x, y): ``fit`` does this once per run.
        On the cuda device, inputs x are copied there once in the model's dtype and targets y as the head takes
        them (class labels int64, binary targets in the model's dtype); DeviceArrays are used as they are. On
        the cpu, host data stay as they are (NumPy arrays, or row sources such as ``datasets.ShiftedImages``),
        each batch being converted when it is used, but for other libraries' arrays that expose their memory
        (a PyTorch CPU tensor), which become NumPy views of it (``ops.host_view``); DeviceArrays are copied to the
        host once."""
        if self.xp is _HOST and ops.array_namespace(x) is _HOST and ops.array_namespace(y) is _HOST:
            return ops.host_view(x), ops.host_view(y)
        return self._inputs(x, "Sequential.place"), None if y is None else self.layers[-1].place_targets(y, self.dtype)

    def _inputs(self, x, op):
        """The inputs x on the model's side, C-contiguous in its dtype (no copy when they are already)."""
        return ops.placed(x, self.xp, self.dtype, who=op)

    # ---- computation -------------------------------------------------------------------

    def parameters(self) -> Iterator[tuple[str, str, Array, Array | None]]:
        """Yields (key, name, param, grad) for every parameter; key is "<layer index>.<name>"."""
        for i, layer in enumerate(self.layers):
            for name, p in layer.params.items():
                yield f"{i}.{name}", name, p, layer.grads.get(name)

    def forward(self, x: Inputs, train: bool = False) -> Array:
        """Logits for the batch x (moved to the model's side in its dtype)."""
        x = self._inputs(x, "forward")
        for layer in self.layers:
            x = layer.forward(x, train)
        return x

    def train_step(self, xb: Inputs, yb: Inputs) -> float:
        """One forward, backward and optimiser update on a minibatch; returns its loss. A loss that
        is not finite raises TrainingDiverged and leaves the parameters as they were."""
        if self.optimizer is None:
            raise RuntimeError("train_step: no optimizer; pass one to fit() or set model.optimizer")
        xb, yb = self._inputs(xb, "train_step"), self.layers[-1].place_targets(yb, self.dtype)
        fused = self._fused_mlp_step(xb)
        if fused:
            dense = self.layers[:-1]
            loss = ops.mlp_train_step(xb, yb, [d.params["w"] for d in dense], [d.params["b"] for d in dense],
                                      [d.activation for d in dense], **fused)
        else:
            with ops.array_cache():
                loss = self._gradients(xb, yb)
                if math.isfinite(loss):
                    self.optimizer.step(self.parameters(), self.epoch)
        if not math.isfinite(loss):
            raise TrainingDiverged(f"loss is {loss}", loss)
        return loss

    def gradients(self, xb: Inputs, yb: Inputs) -> float:
        """Forward in training mode, the loss and backward on a minibatch, without an update: every
        parameter's gradient (the ``grad`` of ``parameters()``) is that of the mean loss over the rows of xb,
        and the loss is returned. A loss that is not finite is returned with the gradients left as they
        were (no backward). ``train_step`` is this and ``optimizer.step(parameters(), epoch)``;
        :class:`deepnum.mpi.DataParallel` sums these gradients across processes between the two."""
        xb, yb = self._inputs(xb, "gradients"), self.layers[-1].place_targets(yb, self.dtype)
        with ops.array_cache():
            return self._gradients(xb, yb)

    def _gradients(self, xb, yb):
        """``gradients`` on a minibatch already on the model's side (inside the caller's array_cache)."""
        self.forward(xb, train=True)
        loss = self.layers[-1].loss(yb)
        if math.isfinite(loss):
            self.backward()
        return loss

    def _fused_mlp_step(self, xb):
        """The optimiser's arguments for one ops.mlp_train_step call (same result, far fewer calls)
        when the step can run as one: Dense layers without dropout, a softmax-NLL head, 2-D input and
        an optimiser that says it fuses (``fused_mlp_step_args``: plain SGD with at most L2); else None."""
        if not (xb.ndim == 2 and type(self.layers[-1]) is nn.SoftmaxNLL
                and all(type(layer) is nn.Dense and layer.p_dropout == 0 for layer in self.layers[:-1])):
            return None
        return self.optimizer.fused_mlp_step_args(self.epoch)

    def backward(self, input_grad: bool = False) -> Array | None:
        """Gradients of the head's loss (after a training forward and ``loss``) for every
        parameter; with ``input_grad`` also the gradient of the input, which is returned.
        Without it, layers before the first one with parameters are skipped and that one does
        not compute its dx."""
        d = self.layers[-1].backward()
        first = 0 if input_grad else next((i for i, layer in enumerate(self.layers) if layer.params), 0)
        for i in range(len(self.layers) - 2, first - 1, -1):
            d = self.layers[i].backward(d, need_dx=input_grad or i > first)
        return d if input_grad else None

    def _batches(self, op, x, batch_size):
        """The rows of x (already on the model's side) in batches of batch_size (views), after checking both
        for ``op``."""
        _check_count(op, "batch_size", batch_size, 1)
        if len(x) == 0:
            raise ValueError(f"{op}: x is empty (0 examples); give at least one")
        return (self.xp.rows(x, i, min(i + batch_size, len(x))) for i in range(0, len(x), batch_size))

    def predict_proba(self, x: Inputs, batch_size: int = 1000) -> Array:
        """Probabilities from the head (softmax or sigmoid of the logits), computed in batches, on the model's side."""
        x, _ = self.place(x)
        head = self.layers[-1]
        batches = self._batches("predict_proba", x, batch_size)
        with training.naming("predict_proba", "x"), ops.array_cache():
            return self.xp.concat([head.probabilities(self.forward(xb)) for xb in batches])

    def predict(self, x: Inputs, batch_size: int = 1000) -> IntArray | DeviceArray:
        """Predicted targets, int64 on the model's side: class labels (SoftmaxNLL) or 0/1 (SigmoidBCE)."""
        x, _ = self.place(x)
        head = self.layers[-1]
        batches = self._batches("predict", x, batch_size)
        with training.naming("predict", "x"), ops.array_cache():
            return self.xp.concat([head.predictions(self.forward(xb)) for xb in batches])

    def evaluate(self, data: tuple[Inputs, Inputs], batch_size: int = 1000) -> dict[str, float]:
        """Mean loss, accuracy and zero-one error on (x, y); errors are counted per target
        (per example for one label each, per time step or bit for sequence targets). Losses and error counts
        are reduced on the model's side: only scalars come back."""
        x, y = data
        if len(x) != len(y):
            raise ValueError(f"evaluate: needs as many targets as inputs; got {len(x)} and {len(y)}")
        x, y = self.place(x, y)
        head, total, wrong, count = self.layers[-1], 0.0, 0, 0
        with ops.array_cache():  # a batch's activations reuse the last batch's memory (no page faults)
            for i, xb in enumerate(self._batches("evaluate", x, batch_size)):
                yb = self.xp.rows(y, i * batch_size, i * batch_size + len(xb))
                with training.naming("evaluate", f"rows {i * batch_size}:{i * batch_size + len(xb)} of data"):
                    logits = self.forward(xb)
                    total += head.loss(yb) * len(xb)
                    wrong += self.xp.count_unequal(head.predictions(logits), yb)
                count += yb.size
        return {"loss": total / len(x), "accuracy": 1 - wrong / count, "error": wrong / count}

    # ---- training ----------------------------------------------------------------------

    def fit(self, train: tuple[Inputs, Inputs], epochs: int, batch_size: int, optimizer: Optimizer | None = None,
            validation: tuple[Inputs, Inputs] | None = None, test: tuple[Inputs, Inputs] | None = None,
            patience: int | None = None, patience_increase: float = 2, improvement_threshold: float = 0.995,
            shuffle: bool = False, callbacks: Iterable[training.Callback | Callable[[Any, History], object]] = (),
            verbose: bool = False, checkpoint: str | os.PathLike[str] | None = None, device: str | None = None
            ) -> History:
        """Minibatch training for ``epochs`` more epochs (fit(epochs=k) twice trains 2k); returns a
        :class:`deepnum.training.History`. See :func:`deepnum.training.fit`.

        With ``validation``, the parameters of the best validation error are kept (restored at
        the end) and ``test`` is scored at that point. ``patience`` (in iterations) enables the
        DeepLearningTutorials' early stopping (:class:`deepnum.training.EarlyStopping`): validate every
        min(n_batches, patience // 2) iterations; an improvement below ``improvement_threshold`` × best
        raises patience to iteration × ``patience_increase``; stop once the iteration passes patience.
        Without it, validation runs once per epoch (network3). A trailing partial batch is dropped,
        as in the seeds. ``checkpoint`` (a path) is written atomically after every epoch and
        resumed from if it exists. ``callbacks`` are :class:`deepnum.training.Callback` objects or
        functions called as f(model, history) per epoch. ``device`` ("cpu" or "cuda"; default: the model's)
        moves the model there for the run (it stays there); the data sets are copied to the model's side once.
        """
        early_stopping = training.EarlyStopping(patience, patience_increase, improvement_threshold)
        return training.fit(self, train, epochs, batch_size, optimizer=optimizer, validation=validation, test=test,
                            early_stopping=early_stopping, shuffle=shuffle, callbacks=callbacks, verbose=verbose,
                            checkpoint=checkpoint, device=device)

    # ---- state -------------------------------------------------------------------------

    def architecture(self) -> dict[str, Any]:
        """The model's description as JSON values: seed, dtype and each layer's type and
        ``config()``; :meth:`save` writes it beside the weights and a checkpoint must match it."""
        return {"seed": self.seed, "dtype": self.dtype.name,
                "layers": [{"type": type(layer).__name__, **layer.config()} for layer in self.layers]}

    def state_dict(self) -> dict[str, FloatArray]:
        """Parameters keyed "<layer index>.<name>": NumPy copies, whatever the model's device."""
        return {k: ops.placed(p, _HOST, copy=True) for k, _, p, _ in self.parameters()}

    def load_state_dict(self, state: Mapping[str, Array]) -> None:
        """Parameters from ``state`` (NumPy arrays or DeviceArrays of the same shapes, as ``state_dict``
        gives them): copies on the model's side, in its dtype, replace the parameters."""
        for key, name, p, _ in self.parameters():
            if key not in state or state[key].shape != p.shape:
                raise ValueError(f"load_state_dict: missing or mis-shaped parameter {key}")
        for i, layer in enumerate(self.layers):
            for name, p in layer.params.items():
                layer.params[name] = ops.placed(state[f"{i}.{name}"], self.xp, p.dtype, copy=True,
                                                who="load_state_dict")

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write weights and architecture (JSON) to an .npz file, atomically. No pickle."""
        checkpoint.write_weights(path, self.architecture(), self.state_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str], device: str = "cpu") -> Sequential:
        """Rebuild a model saved with :meth:`save` (on either device), on ``device``."""
        arch, params = checkpoint.read_weights(path, "Sequential.load")
        model = cls.from_architecture(arch, device)
        model.load_state_dict(params)
        return model

    @classmethod
    def from_architecture(cls, arch: Mapping[str, Any], device: str = "cpu") -> Sequential:
        """A new model, with fresh parameters, from :meth:`architecture`'s description, on
        ``device``."""
        layers = [LAYERS[spec["type"]](**{k: v for k, v in spec.items() if k != "type"}) for spec in arch["layers"]]
        return cls(layers, seed=arch["seed"], dtype=arch["dtype"], device=device)


# ---- ready-made models -------------------------------------------------------------------

def LogisticRegression(n_in: int, n_out: int, seed: int = 0, dtype: DTypeLike = "float32", device: str = "cpu"
                       ) -> Sequential:
    """Softmax regression with zero-initialised weights (DLT logistic_sgd)."""
    return Sequential([nn.Dense(n_in, n_out, init="zeros"), nn.SoftmaxNLL()], seed, dtype, device)


def MLP(sizes: list[int], activation: str = "tanh", p_dropout: float = 0.0, init: str = "glorot", seed: int = 0,
        dtype: DTypeLike = "float32", device: str = "cpu") -> Sequential:
    """Hidden Dense layers of ``activation`` on sizes[:-1] → a zero-initialised softmax layer."""
    layers: list[nn.Layer] = [nn.Dense(a, b, activation, p_dropout, init) for a, b in zip(sizes[:-2], sizes[1:-1])]
    layers += [nn.Dense(sizes[-2], sizes[-1], init="zeros", p_dropout=p_dropout), nn.SoftmaxNLL()]
    return Sequential(layers, seed, dtype, device)


def ConvNet(image_shape: tuple[int, int, int], conv_layers: list[tuple[int, int, int]], hidden: list[int],
            n_out: int = 10, activation: str = "sigmoid", p_dropout: float = 0.0, init: str = "normal", padding: int = 0,
            seed: int = 0, dtype: DTypeLike = "float32", device: str = "cpu") -> Sequential:
    """network3's composition: (ConvPool)* → FullyConnected* → Softmax.

    image_shape is (C, H, W); conv_layers a list of (n_filters, kernel, pool) triples; hidden a
    list of fully connected widths. Dropout (p_dropout) acts on the inputs of the fully
    connected and softmax layers, as in network3.
    """
    c, h, w = image_shape
    layers: list[nn.Layer] = [Reshape(image_shape)]
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
    return Sequential(layers, seed, dtype, device)


def LeNet(seed: int = 0, dtype: DTypeLike = "float32", device: str = "cpu") -> Sequential:
    """DLT convolutional_mlp LeNet5: conv 20 5×5, pool 2 → conv 50 5×5, pool 2 → 500 tanh → softmax."""
    return ConvNet((1, 28, 28), [(20, 5, 2), (50, 5, 2)], [500], activation="tanh", init="glorot", seed=seed,
                   dtype=dtype, device=device)
