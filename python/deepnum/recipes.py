"""The seed experiments as recipes, with the seeds' hyper-parameters as defaults.

DeepLearningTutorials (DLT): ``logistic`` (logistic_sgd.py), ``mlp`` (mlp.py), ``lenet5``
(convolutional_mlp.py) — early stopping with patience, unshuffled minibatches.
Nielsen's network3.py, chapter 6: ``n3-shallow``, ``n3-conv``, ``n3-dbl-conv``, ``n3-relu``,
``n3-expanded``, ``n3-dropout``, ``n3-ensemble`` — a fixed number of epochs, test accuracy at the
best validation epoch. The intro tutorials: ``moons`` (a 2-D toy set, full-batch gradient
descent) and ``cnn-adam`` (the "deep MNIST" convnet trained with Adam).
"""
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from . import datasets, models, nn
from .optim import SGD, Adam


@dataclass
class Result:
    model: object
    history: dict
    test_error: Optional[float]
    train_error: Optional[float] = None


@dataclass
class Recipe:
    build: Callable  # seed -> model
    optimizer: Callable  # (batch_size, n_train) -> optimizer
    epochs: int
    batch_size: int
    patience: Optional[int] = None
    expand: bool = False  # train on network3's expanded (shifted) training set
    fit_options: dict = field(default_factory=dict)
    needs_mnist = True

    def run(self, data, seed=0, out=None, verbose=True, epochs=None, batch_size=None, **unused):
        train, valid, test = data
        if self.expand:
            train = datasets.expand_mnist(train, seed)
        batch_size = batch_size or self.batch_size
        model = self.build(seed)
        history = model.fit(train, epochs or self.epochs, batch_size, self.optimizer(batch_size, len(train[0])),
                            validation=valid, test=test, patience=self.patience, verbose=verbose,
                            **self.fit_options)
        if out is not None:
            model.save(out / "weights.npz")
        return Result(model, history, history.get("test_error"))


@dataclass
class EnsembleRecipe:
    """Train ``members`` copies of a recipe with seeds seed, seed+1, ... and let them vote."""

    member: Recipe
    members: int = 5
    needs_mnist = True

    def run(self, data, seed=0, out=None, verbose=True, **options):
        results = [self.member.run(data, seed + i, None, verbose, **options) for i in range(self.members)]
        ensemble = models.Ensemble([r.model for r in results])
        if out is not None:
            for i, r in enumerate(results):
                r.model.save(out / f"weights-{i}.npz")
        history = dict(results[0].history, member_test_errors=[r.test_error for r in results])
        return Result(ensemble, history, ensemble.evaluate(data[2])["error"])


@dataclass
class MoonsRecipe:
    """The intro tutorial: 200 moons points (noise 0.2), a 2-h-2 tanh net, full-batch gradient
    descent with ε = 0.01 and λ = 0.01 on the summed loss, 20000 passes; one net per hidden size."""

    hidden: tuple = (3,)
    epochs: int = 20000
    needs_mnist = False

    def run(self, data, seed=0, out=None, verbose=True, epochs=None, hidden=None, **unused):
        x, y = datasets.moons(200, 0.2, seed)
        n, nets = len(x), {}
        for h in hidden or self.hidden:
            model = models.Sequential([nn.Dense(2, h, "tanh", init="normal"), nn.Dense(h, 2, init="normal"),
                                       nn.SoftmaxNLL()], seed=seed)
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


def _n3_l2(lmbda, batch_size, n_train):
    # network3 adds 0.5·λ·Σw²/n_batches to each minibatch cost
    return lmbda * batch_size / n_train


def _n3_conv(seed, conv, activation, hidden=(100,), p_dropout=0.0):
    return models.ConvNet((1, 28, 28), conv, list(hidden), activation=activation, p_dropout=p_dropout, seed=seed)


def _cnn_adam(seed):
    layers = [models.Reshape((1, 28, 28)),
              nn.Conv2D(1, 32, 5, padding=2, activation="relu", init="he"), nn.MaxPool2D(2),
              nn.Conv2D(32, 64, 5, padding=2, activation="relu", init="he"), nn.MaxPool2D(2),
              nn.Flatten(), nn.Dense(64 * 7 * 7, 1024, "relu", init="he"),
              nn.Dense(1024, 10, init="glorot", p_dropout=0.5), nn.SoftmaxNLL()]
    return models.Sequential(layers, seed)


TWO_CONV = [(20, 5, 2), (40, 5, 2)]
N3_DROPOUT = Recipe(lambda seed: _n3_conv(seed, TWO_CONV, "relu", (1000, 1000), 0.5), lambda bs, n: SGD(0.03),
                    epochs=40, batch_size=10, expand=True)

RECIPES = {
    "logistic": Recipe(lambda seed: models.LogisticRegression(784, 10, seed=seed),
                       lambda bs, n: SGD(0.13), epochs=1000, batch_size=600, patience=5000),
    "mlp": Recipe(lambda seed: models.MLP([784, 500, 10], "tanh", seed=seed),
                  lambda bs, n: SGD(0.01, l2=2 * 1e-4), epochs=1000, batch_size=20, patience=10000),
    "lenet5": Recipe(lambda seed: models.LeNet(seed=seed), lambda bs, n: SGD(0.1), epochs=200, batch_size=500,
                     patience=10000),
    "n3-shallow": Recipe(lambda seed: models.MLP([784, 100, 10], "sigmoid", init="normal", seed=seed),
                         lambda bs, n: SGD(0.1), epochs=60, batch_size=10),
    "n3-conv": Recipe(lambda seed: _n3_conv(seed, TWO_CONV[:1], "sigmoid"), lambda bs, n: SGD(0.1),
                      epochs=60, batch_size=10),
    "n3-dbl-conv": Recipe(lambda seed: _n3_conv(seed, TWO_CONV, "sigmoid"), lambda bs, n: SGD(0.1),
                          epochs=60, batch_size=10),
    "n3-relu": Recipe(lambda seed: _n3_conv(seed, TWO_CONV, "relu"),
                      lambda bs, n: SGD(0.03, l2=_n3_l2(0.1, bs, n)), epochs=60, batch_size=10),
    "n3-expanded": Recipe(lambda seed: _n3_conv(seed, TWO_CONV, "relu"),
                          lambda bs, n: SGD(0.03, l2=_n3_l2(0.1, bs, n)), epochs=60, batch_size=10, expand=True),
    "n3-dropout": N3_DROPOUT,
    "n3-ensemble": EnsembleRecipe(N3_DROPOUT, members=5),
    "moons": MoonsRecipe(),
    "cnn-adam": Recipe(_cnn_adam, lambda bs, n: Adam(1e-4), epochs=20, batch_size=50, fit_options={"shuffle": True}),
}
