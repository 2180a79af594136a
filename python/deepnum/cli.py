"""The ``deepnum`` command: ``train RECIPE``, ``evaluate WEIGHTS [WEIGHTS ...]``, ``info``."""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import deepnum

from . import _backend, cuda, datasets, recipes
from .models import CheckpointMismatch, Ensemble, Sequential, TrainingDiverged


def _communicator(args, recipe):
    """MPI.COMM_WORLD for ``--data-parallel``, after refusing what it cannot serve."""
    if recipe.not_data_parallel:
        raise SystemExit(f"deepnum train {args.recipe} --data-parallel: not supported: {recipe.not_data_parallel}")
    if args.backend == "cuda":
        raise SystemExit("deepnum train --data-parallel --backend cuda: not supported (the ranks sum host buffers; "
                         "GPU-aware MPI is not implemented): choose a CPU backend")
    from .mpi import mpi

    try:
        return mpi().COMM_WORLD
    except ImportError as e:
        raise SystemExit(f"deepnum train --data-parallel: {e}") from None


def _train(args):
    recipe = recipes.RECIPES[args.recipe]
    comm = _communicator(args, recipe) if args.data_parallel else None
    root = comm is None or comm.Get_rank() == 0  # the process that prints and writes files
    device = "cuda" if args.backend == "cuda" else "cpu"  # cuda: the model on the GPU, the CPU backend as it is
    if device == "cuda" and not cuda.is_available():
        raise SystemExit(f"deepnum train --backend cuda: {cuda.unavailable_reason()}")
    if args.backend and device == "cpu":
        deepnum.use_backend(args.backend)
    out, problem = Path(args.out), None
    if root:
        out.mkdir(parents=True, exist_ok=True)
        earlier = sorted(p.name for p in out.glob("checkpoint*.npz"))
        if earlier and not args.resume:
            problem = (f"deepnum train: {out} holds {', '.join(earlier)} from an earlier run: pass --resume "
                       f"to continue it, choose another --out, or delete the file")
        if args.resume and not earlier:
            print(f"deepnum train: no checkpoint in {out} to resume: starting from the beginning", file=sys.stderr)
    if comm is not None:  # rank 0 looked at --out (no shared file system assumed): every rank stops, or none
        problem = comm.bcast(problem, root=0)
    if problem:
        raise SystemExit(problem if root else 1)
    data = datasets.mnist(args.data) if recipe.needs_mnist else None
    if args.train_size and data is not None:
        (x, y), valid, test = data
        data = ((x[:args.train_size], y[:args.train_size]), valid, test)
    options = (("epochs", args.epochs), ("batch_size", args.batch_size), ("hidden", args.hidden),
               ("updates", args.updates))
    overrides = {k: v for k, v in options if v is not None}
    start = time.perf_counter()
    try:
        result = recipe.run(data, seed=args.seed, out=out if root else None, verbose=root and not args.quiet,
                            checkpoint=out / "checkpoint.npz", device=device, data_parallel=comm, **overrides)
    except TrainingDiverged as e:
        if root:
            print(f"deepnum train: {e}", file=sys.stderr)
        return 1
    except CheckpointMismatch as e:
        raise SystemExit(f"deepnum train --resume: {e}" if root else 1) from None
    if not root:
        return 0
    seconds = time.perf_counter() - start
    (out / "history.json").write_text(json.dumps(dict(result.history, seconds=seconds), indent=1, default=float))
    if result.model is not None and data is not None:
        _plots(result, data, out)
    print(f"time: {seconds:.1f} s")
    if result.train_error is not None:
        print(f"training accuracy: {100 * (1 - result.train_error):.2f}%")
    if "test_error_whole_batches" in result.history:
        n, error = result.history["test_images_whole_batches"], result.history["test_error_whole_batches"]
        print(f"test error on the first {n} images (the DLT scores whole minibatches only): "
              f"{round(error * n)} misclassified ({100 * error:.6f}%)")
    if result.test_error is not None:
        print(f"test accuracy: {100 * (1 - result.test_error):.2f}% (error {100 * result.test_error:.2f}%)")
    return 0


def _plots(result, data, out):
    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: skipping curves.png, filters.png, misclassified.png "
              "(pip install 'deepnum[plot]')")
        return
    matplotlib.use("Agg")
    from . import plots

    plots.curves(result.history, out / "curves.png")
    plots.filters(result.model, out / "filters.png")
    plots.misclassified(result.model.predict(data[2][0]), data[2], out / "misclassified.png")


def _evaluate(args):
    members = [Sequential.load(path) for path in args.weights]
    _, _, (x, y) = datasets.mnist(args.data)
    if args.first is not None:
        if not 1 <= args.first <= len(x):
            raise SystemExit(f"deepnum evaluate: --first must be in [1, {len(x)}], got {args.first}")
        x, y = x[:args.first], y[:args.first]
    if len(members) == 1:
        model = members[0]
    else:
        for path, member in zip(args.weights, members):
            print(f"{path}: test accuracy {100 * member.evaluate((x, y))['accuracy']:.2f}%")
        model = Ensemble(members, vote=args.vote)
    scores = model.evaluate((x, y))
    errors = round(scores["error"] * len(x))
    print(f"test images: {len(x)}, misclassified: {errors} ({100 * errors / len(x):.6f}%)")
    if "loss" in scores:
        print(f"test loss {scores['loss']:.4f}")
    print(f"test accuracy: {100 * scores['accuracy']:.2f}% (error {100 * scores['error']:.2f}%)")
    return 0


def _info(args):
    print(f"deepnum {deepnum.__version__}")
    print(f"backends: {', '.join(deepnum.backends())} (active: {deepnum.get_backend()})")
    print(f"threads: {deepnum.get_num_threads()}")
    if "cpp" in _backend.available():
        print(f"CPU SIMD level: {_backend.load('cpp').simd_level()}")
    reason = cuda.unavailable_reason()
    if reason is not None:
        print(f"CUDA device: none ({reason})")
    else:
        print("CUDA device: cuda (emulated on the CPU)" if cuda.is_emulated() else f"CUDA device: {cuda.device_name()}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="deepnum", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a seed recipe")
    t.add_argument("recipe", choices=sorted(recipes.RECIPES))
    t.add_argument("--epochs", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--backend", choices=[b for b in deepnum.backends() if b != "cuda"] + ["cuda"],
                   help="the CPU backend to train on (default: cpp), or cuda: the model, its optimiser state and "
                        "the data on the GPU")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", default="runs/latest",
                   help="directory for weights, history, plots and checkpoint.npz (written after every epoch)")
    t.add_argument("--resume", action="store_true",
                   help="continue from --out's checkpoint (with a larger --epochs: train on for more epochs)")
    t.add_argument("--data", help="path of mnist.pkl.gz or a directory of IDX files")
    t.add_argument("--train-size", type=int, help="train on the first N examples only")
    t.add_argument("--hidden", type=lambda s: tuple(int(v) for v in s.split(",")),
                   help="moons: comma-separated hidden sizes, one decision boundary each; "
                        "binary-addition: the hidden size")
    t.add_argument("--updates", type=int, help="binary-addition: number of single-example SGD updates")
    t.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    t.add_argument("--data-parallel", action="store_true",
                   help="under mpirun/srun (pip install 'deepnum[mpi]'): every rank loads the data and trains on its "
                        "share of each minibatch, gradients summed by MPI; rank 0 prints and writes --out")
    t.set_defaults(func=_train)
    e = sub.add_parser("evaluate", help="score saved weights on the MNIST test set; several weights files vote")
    e.add_argument("weights", nargs="+", help="a weights .npz; with more than one, their ensemble is scored")
    e.add_argument("--vote", choices=("majority", "mean"), default="majority",
                   help="how several models vote: plurality of labels or argmax of mean probabilities")
    e.add_argument("--data")
    e.add_argument("--first", type=int, metavar="N",
                   help="score the first N test images only (the DeepLearningTutorials score whole minibatches: "
                        "10000 // 600 * 600 = 9600 for logistic_sgd.py)")
    e.set_defaults(func=_evaluate)
    i = sub.add_parser("info", help="version, backends, threads, SIMD level")
    i.set_defaults(func=_info)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
