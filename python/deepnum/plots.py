"""Figures written by ``deepnum train`` (matplotlib, imported lazily; never shown). Host side: a model's arrays
and predictions (on either device) are drawn from NumPy copies."""
import numpy as np

from . import ops


def _host(a):
    return ops.array_namespace(a).to_host(a)


def _figure(*args, **kwargs):
    import matplotlib.pyplot as plt

    return plt, plt.figure(*args, **kwargs)


def curves(history, path):
    """Training loss and validation error per epoch."""
    plt, fig = _figure(figsize=(8, 3.2))
    ax = fig.add_subplot(1, 2, 1)
    ax.plot(history["epoch"], history["train_loss"])
    ax.set(xlabel="epoch", ylabel="training loss")
    if "valid_error" in history:
        ax = fig.add_subplot(1, 2, 2)
        ax.plot(history["epoch"], 100 * np.asarray(history["valid_error"]))
        ax.set(xlabel="epoch", ylabel="validation error (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def filters(model, path):
    """First-layer filters of a convolutional model (nothing is written for models without one)."""
    from .nn import Conv2D

    conv = next((layer for layer in model.layers if isinstance(layer, Conv2D)), None)
    if conv is None:
        return
    w = _host(conv.params["w"])[:, 0]
    cols = min(len(w), 10)
    rows = -(-len(w) // cols)
    plt, fig = _figure(figsize=(cols, rows))
    for i, f in enumerate(w):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(f, cmap="gray")
        ax.axis("off")
    fig.savefig(path, dpi=80)
    plt.close(fig)


def misclassified(predicted, test, path, limit=40):
    """The wrong test digits, each titled true→predicted (as in network3's chapter 6)."""
    x, y = test
    predicted = _host(predicted)
    wrong = np.flatnonzero(predicted != y)[:limit]
    cols = 10
    rows = max(1, -(-len(wrong) // cols))
    plt, fig = _figure(figsize=(cols, 1.2 * rows))
    for i, j in enumerate(wrong):
        ax = fig.add_subplot(rows, cols, i + 1)
        ax.imshow(x[j].reshape(28, 28), cmap="gray_r")
        ax.set_title(f"{y[j]}→{predicted[j]}", fontsize=9)
        ax.axis("off")
    fig.savefig(path, dpi=80)
    plt.close(fig)


def decision_boundaries(nets, x, y, path):
    """Decision regions of 2-D classifiers, one panel per hidden-layer size (the moons tutorial)."""
    plt, fig = _figure(figsize=(4 * min(len(nets), 4), 3.5 * -(-len(nets) // 4)))
    lo, hi = x.min(axis=0) - 0.5, x.max(axis=0) + 0.5
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
    for i, (h, net) in enumerate(nets.items()):
        ax = fig.add_subplot(-(-len(nets) // 4), min(len(nets), 4), i + 1)
        ax.contourf(gx, gy, _host(net.predict(grid)).reshape(gx.shape), alpha=0.4, cmap="coolwarm")
        ax.scatter(x[:, 0], x[:, 1], c=y, s=10, cmap="coolwarm")
        ax.set_title(f"hidden layer size {h}")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
