"""The seed experiments as recipes, with the seeds' hyper-parameters as defaults.

DeepLearningTutorials (DLT): ``logistic`` (logistic_sgd.py), ``mlp`` (mlp.py), ``lenet5``
(convolutional_mlp.py) — early stopping with patience, unshuffled minibatches.
Nielsen's network3.py, chapter 6: ``n3-shallow``, ``n3-conv``, ``n3-dbl-conv``, ``n3-relu``,
``n3-expanded``, ``n3-dropout``, ``n3-ensemble`` — a fixed number of epochs, test accuracy at the
best validation epoch. The intro tutorials: ``moons`` (a 2-D toy set, full-batch gradient
descent), ``cnn-adam`` (the "deep MNIST" convnet trained with Adam) and ``binary-addition`` (an
Elman RNN adding 8-bit numbers bit by bit). ``seq-mnist``: MNIST read row by row by an RNN.
"""
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from . import checkpoint as checkpoint_module
from . import datasets, models, nn, ops, training
from .optim import SGD, Adam


@dataclass
class Result:
    """What a recipe's ``run`` returns: the trained ``model`` (an Ensemble for ``n3-ensemble``), its
    ``history`` and its test error (None where the recipe has no test set), and the training error where
    the recipe reports one (``moons``, ``binary-addition``)."""

    model: object
    history: dict
    test_error: Optional[float]
    train_error: Optional[float] = None


@dataclass
class Recipe:
    """A seed experiment: its model (``build``), its optimiser and training setup.

    ``settings`` are the optimiser's hyper-parameters in the seed's own terms, with the seed's values
    (``deepnum sweep --set NAME=...`` and ``run(settings=...)`` change them); ``optimizer`` is called
    with ``(batch_size, n_train, **settings)``."""

    build: Callable  # (seed, device) -> model
    optimizer: Callable  # (batch_size, n_train, **settings) -> optimizer
    epochs: int
    batch_size: int
    settings: dict
    patience: Optional[int] = None
    expand: bool = False  # train on network3's expanded (shifted) training set
    fit_options: dict = field(default_factory=dict)
    needs_mnist = True
    not_data_parallel = None  # why a recipe cannot train with data_parallel (--data-parallel); None: it can

    def run(self, data, seed=0, out=None, verbose=True, epochs=None, batch_size=None, checkpoint=None, device="cpu",
            settings=None, callbacks=(), data_parallel=None, **unused):
        """Train on data = (train, valid, test) (test may be None) on ``device`` ("cpu" or "cuda"); weights to
        ``out``/weights.npz;
        with ``checkpoint`` (a path) written after every epoch and resumed from if it exists. ``settings``
        overrides some of ``settings``; ``callbacks`` are passed to ``fit`` after the recipe's own. With
        ``data_parallel`` (an MPI communicator), every rank runs this: the model trains as a
        :class:`deepnum.mpi.DataParallel` across them (progress and checkpoints from rank 0; give
        ``out`` on rank 0 only)."""
        train, valid, test = data
        model = self.build(seed, device)
        for part, name in ((train, "training"), (valid, "validation"), (test, "test")):
            if part is not None:
                check_fits(model, part, name)
        if self.expand:
            train = datasets.expand_mnist(train, seed)
        batch_size = batch_size or self.batch_size
        trained = model
        if data_parallel is not None:
            from .mpi import DataParallel

            trained = DataParallel(model, data_parallel)
        options = dict(self.fit_options)
        options["callbacks"] = [*options.get("callbacks", ()), *callbacks]
        history = training.fit(trained, train, epochs or self.epochs, batch_size,
                               self.make_optimizer(batch_size, len(train[0]), settings), validation=valid, test=test,
                               early_stopping=training.EarlyStopping(self.patience), verbose=verbose,
                               checkpoint=checkpoint, **options)
        if self.patience is not None and test is not None and len(test[0]) % batch_size and len(test[0]) >= batch_size:
            # the DLT score whole minibatches only (logistic_sgd.py: 10000 // 600 * 600 = 9600 images)
            n = len(test[0]) // batch_size * batch_size
            history["test_images_whole_batches"] = n
            history["test_error_whole_batches"] = model.evaluate((test[0][:n], test[1][:n]))["error"]
        if out is not None:
            model.save(out / "weights.npz")
        return Result(model, history, history.get("test_error"))

    def make_optimizer(self, batch_size, n_train, settings=None):
        """The recipe's optimiser for minibatches of ``batch_size`` from ``n_train`` examples, with ``settings``
        (see :meth:`resolve`)."""
        return self.optimizer(batch_size, n_train, **self.resolve(settings))

    def resolve(self, settings=None):
        """The recipe's settings with ``settings`` (a dict, or None) in place of its defaults; a ValueError
        naming the recipe's settings for a name it does not have."""
        settings = dict(settings or {})
        unknown = sorted(set(settings) - set(self.settings))
        if unknown:
            raise ValueError(f"recipe settings: {', '.join(unknown)} is not a setting of this recipe "
                             f"(it has {', '.join(self.settings) or 'none'})")
        return {**self.settings, **settings}


def check_fits(model, data, name):
    """A one-line ValueError unless the examples of ``data`` = (x, y) (the ``name`` set) fit ``model``: its
    inputs take their shape, and its output has a class for every label. Runs one example forward, in
    evaluation mode (no random draw)."""
    x, y = data
    if len(x) == 0:
        raise ValueError(f"the {name} set is empty")
    try:
        logits = model.forward(x[:1])
    except (ValueError, TypeError) as e:
        raise ValueError(f"the {name} examples, of shape {tuple(x.shape[1:])}, do not fit the recipe's model "
                         f"({e})") from None
    classes, y = logits.shape[-1], ops.array_namespace(y).to_host(y)
    low, high = int(y.min()), int(y.max())
    if low < 0 or high >= classes:
        raise ValueError(f"the {name} labels lie in [{low}, {high}] but the recipe's model has {classes} classes "
                         f"(labels 0 to {classes - 1})")


@dataclass
class EnsembleRecipe:
    """Train ``members`` copies of a recipe with seeds seed, seed+1, ... and let them vote (majority).

    Member i is the model ``member.run`` trains with seed ``seed + i``: the members can as well be
    trained one by one (``deepnum train n3-dropout --seed i``) and voted by ``deepnum evaluate``, or as
    tasks on a Dask cluster (``client``; :mod:`deepnum.distributed`), with the same result bit for bit
    at the same thread count."""

    member: Recipe
    members: int = 5
    needs_mnist = True
    not_data_parallel = ("its members train one after another: train each one data-parallel "
                         "(deepnum train n3-dropout --data-parallel --seed i) and vote with deepnum evaluate")

    def run(self, data, seed=0, out=None, verbose=True, checkpoint=None, client=None, **options):
        """As :meth:`Recipe.run`; member i checkpoints to checkpoint-i.npz beside ``checkpoint`` (a path as the
        workers see it, with ``client``) and its weights go to ``out``/weights-i.npz as soon as it is trained, so
        that a stopped run keeps them. With ``client`` (a ``dask.distributed.Client``) the members train as tasks
        on its workers; a member that failed is named in :class:`deepnum.distributed.TasksFailed`, raised after
        the others' weights were written."""
        from . import distributed

        tasks = [distributed.Task(self.member, seed + i, options=options, name=f"member {i}")
                 for i in range(self.members)]
        checkpoints = [None if checkpoint is None else checkpoint.with_name(f"checkpoint-{i}.npz")
                       for i in range(self.members)]
        device = options.get("device", "cpu")

        def save(i, trained):
            if verbose and client is not None:
                resumed = f", resumed after epoch {trained.resumed_after}" if trained.resumed_after else ""
                print(f"member {i} (seed {seed + i}): {training.accuracies(trained.history)} in "
                      f"{trained.seconds:.0f} s with {trained.threads} threads{resumed}", flush=True)
            if out is not None:
                checkpoint_module.write_weights(out / f"weights-{i}.npz", trained.architecture, trained.params)

        results = distributed.map_recipes(client, tasks, data, checkpoints, save, verbose)
        ensemble = models.Ensemble([r.model(device) for r in results])
        history = dict(results[0].history, member_test_errors=[r.test_error for r in results])
        return Result(ensemble, history, None if data[2] is None else ensemble.evaluate(data[2])["error"])


@dataclass
class MoonsRecipe:
    """The intro tutorial: 200 moons points (noise 0.2), a 2-h-2 tanh net, full-batch gradient
    descent with ε = 0.01 and λ = 0.01 on the summed loss, 20000 passes; one net per hidden size."""

    hidden: tuple = (3,)
    epochs: int = 20000
    needs_mnist = False
    not_data_parallel = "its 200 points in one full batch through a 2-h-2 net leave nothing worth splitting"

    def run(self, data, seed=0, out=None, verbose=True, epochs=None, hidden=None, device="cpu", **unused):
        """Train one net per hidden size (``hidden``, default: the recipe's ``hidden``) on 200 moons points drawn
        with ``seed`` (``data`` is not used); with ``out``, their decision boundaries to
        ``out``/decision_boundary.png. The result is the widest net, scored on its training points."""
        x, y = datasets.moons(200, 0.2, seed)
        n, nets = len(x), {}
        for h in hidden or self.hidden:
            model = models.Sequential([nn.Dense(2, h, "tanh", init="normal"), nn.Dense(h, 2, init="normal"),
                                       nn.SoftmaxNLL()], seed=seed, device=device)
            # the tutorial sums the loss over the batch: on the mean loss that is lr·n and λ/n
            model.fit((x, y), epochs or self.epochs, n, SGD(0.01 * n, l2=0.01 / n))
            nets[h] = model
            if verbose:
                print(f"hidden {h}: training accuracy {100 * model.evaluate((x, y))['accuracy']:.2f}%")
        if out is not None:
            from . import plots

            plots.decision_boundaries(nets, x, y, out / "decision_boundary.png")
        last = nets[max(nets)]
        return Result(last, {}, None, last.evaluate((x, y))["error"])


def _bits(v, n=8):
    """The n lowest bits of the integers v, least significant first: shape v.shape + (n,)."""
    return (np.asarray(v)[..., None] >> np.arange(n)) & 1


@dataclass
class BinaryAdditionRecipe:
    """The intro RNN tutorial (iamtrask): add two 8-bit numbers, one bit per time step, least
    significant first. Input (a_t, b_t), target the bit t of a + b, with a and b drawn
    uniformly from [0, 128); an RNN of 16 sigmoid units with a sigmoid output per step
    (SigmoidBCE; the tutorial used squared error), trained by 10,000 single-example SGD updates
    with learning rate 0.1. Scored by the exact-sum accuracy over all 128 × 128 pairs."""

    updates: int = 10_000
    lr: float = 0.1
    hidden: int = 16
    every: int = 250  # updates between accuracy checks
    needs_mnist = False
    not_data_parallel = "its updates are single examples, which cannot be split across ranks"

    @staticmethod
    def build(seed, hidden=16, device="cpu"):
        """The model: an RNN of ``hidden`` sigmoid units over the 8 bit pairs, a Dense layer to one
        logit per step and a SigmoidBCE head."""
        return models.Sequential([nn.RNN(2, hidden, "sigmoid", return_sequences=True, init_hh="glorot"),
                                  nn.Dense(hidden, 1), nn.SigmoidBCE()], seed=seed, device=device)

    @staticmethod
    def all_pairs():
        """Every pair (a, b) of [0, 128)², as the integers a and b and the inputs (16384, 8, 2)
        float32, least significant bit first."""
        a, b = np.divmod(np.arange(128 * 128), 128)
        return a, b, np.stack([_bits(a), _bits(b)], axis=-1).astype(np.float32)

    @staticmethod
    def sums(model, x):
        """The integers the model writes for the inputs x (N, 8, 2) (host integers, wherever the model is)."""
        bits = model.predict(x, batch_size=len(x))
        return (ops.array_namespace(bits).to_host(bits)[..., 0] << np.arange(x.shape[1])).sum(axis=1)

    def run(self, data, seed=0, out=None, verbose=True, updates=None, hidden=None, device="cpu", **unused):
        """Train ``updates`` single-example SGD updates on random pairs drawn with ``seed`` (``data``
        is not used), checking the exact-sum accuracy over all pairs every ``every`` updates; weights to
        ``out``/weights.npz."""
        updates = updates or self.updates
        model = self.build(seed, hidden[0] if hidden else self.hidden, device)
        model.optimizer = SGD(self.lr)
        rng = np.random.default_rng(seed + 1)
        a_all, b_all, x_all = self.all_pairs()
        history, first = {"update": [], "exact_sum_accuracy": [], "loss": []}, None
        losses = []
        for u in range(1, updates + 1):
            a, b = rng.integers(0, 128, 2)
            x = np.stack([_bits(a), _bits(b)], axis=-1)[None].astype(np.float32)
            losses.append(model.train_step(x, _bits(a + b)[None, :, None].astype(np.float32)))
            if u % self.every == 0 or u == updates:
                accuracy = float((self.sums(model, x_all) == a_all + b_all).mean())
                history["update"].append(u)
                history["exact_sum_accuracy"].append(accuracy)
                history["loss"].append(float(np.mean(losses)))
                losses = []
                if accuracy == 1 and first is None:
                    first = u
                if verbose and u % 1000 == 0:
                    print(f"update {u}: loss {history['loss'][-1]:.4f}, exact-sum accuracy {100 * accuracy:.2f}%")
        accuracy = history["exact_sum_accuracy"][-1]
        history["updates_to_100"] = first
        if verbose:
            for a, b in rng.integers(0, 128, (4, 2)):
                c = int(self.sums(model, np.stack([_bits(a), _bits(b)], axis=-1)[None].astype(np.float32))[0])
                print(f"Pred: {_bits(c)[::-1]}  True: {_bits(a + b)[::-1]}  {a} + {b} = {c}"
                      + ("" if c == a + b else f"  (wrong: {a + b})"))
            reached = f"first reached after {first} updates" if first else "never reached"
            print(f"exact-sum accuracy on all 128×128 pairs of addends < 128: {100 * accuracy:.2f}% after "
                  f"{updates} single-example updates (100% {reached}, checked every {self.every})")
        if out is not None:
            model.save(out / "weights.npz")
        return Result(model, history, None, 1 - accuracy)


def _seq_mnist(seed, device):
    """MNIST read row by row: 28 steps of 28 pixels, 128 tanh units (orthogonal w_hh, gradients clipped
    to norm 1), softmax on the last state; Adam with lr 1e-3 · 0.9^epoch, minibatches of 50."""
    return models.Sequential([models.Reshape((28, 28)), nn.RNN(28, 128, "tanh", clip=1.0), nn.Dense(128, 10),
                              nn.SoftmaxNLL()], seed, device=device)


def _n3_l2(lmbda, batch_size, n_train):
    # network3 adds 0.5·λ·Σw²/n_batches to each minibatch cost
    return lmbda * batch_size / n_train


def _n3_conv(seed, device, conv, activation, hidden=(100,), p_dropout=0.0):
    return models.ConvNet((1, 28, 28), conv, list(hidden), activation=activation, p_dropout=p_dropout, seed=seed,
                          device=device)


def _cnn_adam(seed, device):
    layers = [models.Reshape((1, 28, 28)),
              nn.Conv2D(1, 32, 5, padding=2, activation="relu", init="he"), nn.MaxPool2D(2),
              nn.Conv2D(32, 64, 5, padding=2, activation="relu", init="he"), nn.MaxPool2D(2),
              nn.Flatten(), nn.Dense(64 * 7 * 7, 1024, "relu", init="he"),
              nn.Dense(1024, 10, init="glorot", p_dropout=0.5), nn.SoftmaxNLL()]
    return models.Sequential(layers, seed, device=device)


TWO_CONV = [(20, 5, 2), (40, 5, 2)]
N3_DROPOUT = Recipe(lambda seed, device: _n3_conv(seed, device, TWO_CONV, "relu", (1000, 1000), 0.5),
                    lambda bs, n, lr: SGD(lr), epochs=40, batch_size=10, settings={"lr": 0.03}, expand=True)

RECIPES = {
    "logistic": Recipe(lambda seed, device: models.LogisticRegression(784, 10, seed=seed, device=device),
                       lambda bs, n, lr: SGD(lr), epochs=1000, batch_size=600, settings={"lr": 0.13}, patience=5000),
    "mlp": Recipe(lambda seed, device: models.MLP([784, 500, 10], "tanh", seed=seed, device=device),
                  lambda bs, n, lr, l2: SGD(lr, l2=2 * l2), epochs=1000, batch_size=20,
                  settings={"lr": 0.01, "l2": 1e-4}, patience=10000),  # l2: the DLT's L2_reg
    "lenet5": Recipe(lambda seed, device: models.LeNet(seed=seed, device=device), lambda bs, n, lr: SGD(lr),
                     epochs=200, batch_size=500, settings={"lr": 0.1}, patience=10000),
    "n3-shallow": Recipe(lambda seed, device: models.MLP([784, 100, 10], "sigmoid", init="normal", seed=seed,
                                                         device=device),
                         lambda bs, n, lr: SGD(lr), epochs=60, batch_size=10, settings={"lr": 0.1}),
    "n3-conv": Recipe(lambda seed, device: _n3_conv(seed, device, TWO_CONV[:1], "sigmoid"),
                      lambda bs, n, lr: SGD(lr), epochs=60, batch_size=10, settings={"lr": 0.1}),
    "n3-dbl-conv": Recipe(lambda seed, device: _n3_conv(seed, device, TWO_CONV, "sigmoid"),
                          lambda bs, n, lr: SGD(lr), epochs=60, batch_size=10, settings={"lr": 0.1}),
    # l2: network3's lmbda (the L2 coefficient of the cost over the whole training set)
    "n3-relu": Recipe(lambda seed, device: _n3_conv(seed, device, TWO_CONV, "relu"),
                      lambda bs, n, lr, l2: SGD(lr, l2=_n3_l2(l2, bs, n)), epochs=60, batch_size=10,
                      settings={"lr": 0.03, "l2": 0.1}),
    "n3-expanded": Recipe(lambda seed, device: _n3_conv(seed, device, TWO_CONV, "relu"),
                          lambda bs, n, lr, l2: SGD(lr, l2=_n3_l2(l2, bs, n)), epochs=60, batch_size=10,
                          settings={"lr": 0.03, "l2": 0.1}, expand=True),
    "n3-dropout": N3_DROPOUT,
    "n3-ensemble": EnsembleRecipe(N3_DROPOUT, members=5),
    "moons": MoonsRecipe(),
    "cnn-adam": Recipe(_cnn_adam, lambda bs, n, lr: Adam(lr), epochs=20, batch_size=50, settings={"lr": 1e-4},
                       fit_options={"shuffle": True}),
    "binary-addition": BinaryAdditionRecipe(),
    "seq-mnist": Recipe(_seq_mnist, lambda bs, n, lr, decay: Adam(lambda epoch: lr * decay ** epoch), epochs=30,
                        batch_size=50, settings={"lr": 1e-3, "decay": 0.9}, fit_options={"shuffle": True}),
}
