"""The seed experiments as recipes, with the seeds' hyper-parameters as defaults.

DeepLearningTutorials (DLT): ``logistic`` (logistic_sgd.py), ``mlp`` (mlp.py), ``lenet5``
(convolutional_mlp.py) — early stopping with patience, unshuffled minibatches.
Nielsen's network3.py, chapter 6: ``n3-shallow``, ``n3-conv``, ``n3-dbl-conv``, ``n3-relu`` —
a fixed number of epochs, test accuracy at the best validation epoch.
"""
from dataclasses import dataclass, field
from typing import Callable, Optional

from . import models
from .optim import SGD

N_TRAIN = 50_000


@dataclass
class Result:
    model: object
    history: dict
    test_error: Optional[float]

    def predict(self, x):
        return self.model.predict(x)


@dataclass
class Recipe:
    build: Callable  # seed -> model
    optimizer: Callable  # (batch_size, n_train) -> optimizer
    epochs: int
    batch_size: int
    patience: Optional[int] = None
    needs_mnist: bool = True
    fit_options: dict = field(default_factory=dict)

    def run(self, data, seed=0, out=None, verbose=True, epochs=None, batch_size=None):
        train, valid, test = data
        batch_size = batch_size or self.batch_size
        model = self.build(seed)
        history = model.fit(train, epochs or self.epochs, batch_size, self.optimizer(batch_size, len(train[0])),
                            validation=valid, test=test, patience=self.patience, verbose=verbose,
                            **self.fit_options)
        if out is not None:
            model.save(out / "weights.npz")
        return Result(model, history, history.get("test_error"))


def _n3_l2(lmbda, batch_size, n_train):
    # network3 adds 0.5·λ·Σw²/n_batches to each minibatch cost
    return lmbda * batch_size / n_train


def _n3_conv(seed, conv, activation):
    return models.ConvNet((1, 28, 28), conv, [100], activation=activation, seed=seed)


RECIPES = {
    "logistic": Recipe(lambda seed: models.LogisticRegression(784, 10, seed=seed),
                       lambda bs, n: SGD(0.13), epochs=1000, batch_size=600, patience=5000),
    "mlp": Recipe(lambda seed: models.MLP([784, 500, 10], "tanh", seed=seed),
                  lambda bs, n: SGD(0.01, l2=2 * 1e-4, l1=0.0), epochs=1000, batch_size=20, patience=10000),
    "lenet5": Recipe(lambda seed: models.LeNet(seed=seed), lambda bs, n: SGD(0.1), epochs=200, batch_size=500,
                     patience=10000),
    "n3-shallow": Recipe(lambda seed: models.MLP([784, 100, 10], "sigmoid", init="normal", seed=seed),
                         lambda bs, n: SGD(0.1), epochs=60, batch_size=10),
    "n3-conv": Recipe(lambda seed: _n3_conv(seed, [(20, 5, 2)], "sigmoid"), lambda bs, n: SGD(0.1),
                      epochs=60, batch_size=10),
    "n3-dbl-conv": Recipe(lambda seed: _n3_conv(seed, [(20, 5, 2), (40, 5, 2)], "sigmoid"),
                          lambda bs, n: SGD(0.1), epochs=60, batch_size=10),
    "n3-relu": Recipe(lambda seed: _n3_conv(seed, [(20, 5, 2), (40, 5, 2)], "relu"),
                      lambda bs, n: SGD(0.03, l2=_n3_l2(0.1, bs, n)), epochs=60, batch_size=10),
}
