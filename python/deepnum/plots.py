"""Figures written by ``deepnum train`` (matplotlib, imported lazily; never shown). Host side: a model's arrays
and predictions (on either device) are drawn from NumPy copies. Figures are ``matplotlib.figure.Figure`` objects
saved by their own canvas: pyplot, its global state and its import (~0.2 s) are not needed to write a file."""
import numpy as np

from . import ops


def _host(a):
    return ops.array_namespace(a).to_host(a)


def _figure(**kwargs):
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def curves(history, path):
    """Training loss and validation error per epoch."""
    fig = _figure(figsize=(8, 3.2))
    ax = fig.add_subplot(1, 2, 1)
    ax.plot(history["epoch"], history["train_loss"], marker="o", markersize=3)  # a marker: one epoch is one point
    ax.set(xlabel="epoch", ylabel="training loss")
    if "valid_error" in history:
        ax = fig.add_subplot(1, 2, 2)
        ax.plot(history["epoch"], 100 * np.asarray(history["valid_error"]), marker="o", markersize=3)
        ax.set(xlabel="epoch", ylabel="validation error (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _mosaic(images, cols, pad, top, fill):
    """The (n, h, w) images tiled ``cols`` to a row with ``pad`` pixels between them and ``top`` more above
    each row (room for a title), on ``fill``; and the (x, y) pixel of the middle of the top of each tile."""
    n, h, w = images.shape
    rows = max(1, -(-n // cols))
    cell_h, cell_w = h + pad + top, w + pad
    out = np.full((rows * cell_h, cols * cell_w), fill, dtype=np.float32)
    at = []
    for i, image in enumerate(images):
        r, c = divmod(i, cols)
        y0, x0 = r * cell_h + top + pad // 2, c * cell_w + pad // 2
        out[y0:y0 + h, x0:x0 + w] = image
        at.append((x0 + w / 2, y0))
    return out, at


def _image_figure(mosaic, inches_per_pixel, cmap, vmin=None, vmax=None):
    """A figure of the mosaic alone (one axes, no frame), drawn as one image: one draw call instead of one
    axes per tile."""
    fig = _figure(figsize=(mosaic.shape[1] * inches_per_pixel, mosaic.shape[0] * inches_per_pixel))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(mosaic, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.axis("off")
    return fig, ax


def filters(model, path):
    """First-layer filters of a convolutional model (nothing is written for models without one), ten to a row,
    each scaled to its own range."""
    from .nn import Conv2D

    conv = next((layer for layer in model.layers if isinstance(layer, Conv2D)), None)
    if conv is None:
        return
    w = _host(conv.params["w"])[:, 0].astype(np.float32)
    lo, hi = w.min(axis=(1, 2), keepdims=True), w.max(axis=(1, 2), keepdims=True)
    scaled = (w - lo) / np.where(hi > lo, hi - lo, 1)
    mosaic, _ = _mosaic(scaled, min(len(w), 10), pad=max(1, w.shape[1] // 5), top=0, fill=1.0)
    fig, _ = _image_figure(mosaic, 1 / (w.shape[2] * 1.2), "gray", 0, 1)
    fig.savefig(path, dpi=80)


def misclassified(model, test, path, limit=40, chunk=2000):
    """The first ``limit`` test digits that ``model`` gets wrong, each titled true→predicted (as in network3's
    chapter 6). The model predicts ``chunk`` images at a time until it has that many wrong ones (with 2% error,
    a fifth of MNIST's test set), not the whole set."""
    x, y = test
    parts, n_wrong = [], 0
    for i in range(0, len(x), chunk):
        parts.append(_host(model.predict(x[i:i + chunk])))
        n_wrong += int(np.count_nonzero(parts[-1] != y[i:i + chunk]))
        if n_wrong >= limit:
            break
    predicted = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    wrong = np.flatnonzero(predicted != y[:len(predicted)])[:limit]
    digits = np.asarray(x)[wrong].reshape(-1, 28, 28)
    mosaic, at = _mosaic(digits, 10, pad=4, top=12, fill=0.0)
    fig, ax = _image_figure(mosaic, 1 / 40, "gray_r", 0, 1)
    for (cx, cy), j in zip(at, wrong):
        ax.text(cx, cy - 2, f"{y[j]}→{predicted[j]}", ha="center", va="bottom", fontsize=9)
    fig.savefig(path, dpi=80)


def decision_boundaries(nets, x, y, path):
    """Decision regions of 2-D classifiers, one panel per hidden-layer size (the moons tutorial)."""
    fig = _figure(figsize=(4 * min(len(nets), 4), 3.5 * -(-len(nets) // 4)))
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
