"""The ``deepnum`` command: ``train RECIPE``, ``sweep RECIPE``, ``evaluate WEIGHTS [WEIGHTS ...]``, ``info``."""
import argparse
import contextlib
import importlib.util
import os
import platform
import sys
import time
from pathlib import Path

import deepnum

from . import _backend, checkpoint, cuda, datasets, distributed, recipes, training
from . import sweep as sweeps
from .models import CheckpointMismatch, Ensemble, Sequential, TrainingDiverged


def _device(args, command):
    """The model's device for --backend (cuda: the model on the GPU, the CPU backend as it is); selects a CPU
    backend."""
    device = "cuda" if args.backend == "cuda" else "cpu"
    if device == "cuda" and not cuda.is_available():
        raise SystemExit(f"deepnum {command} --backend cuda: {cuda.unavailable_reason()}")
    if args.backend and device == "cpu":
        deepnum.use_backend(args.backend)
    return device


def _earlier_run(args, command, pattern):
    """Creates --out; the message that stops the command when an earlier run's checkpoints (``pattern``) are there
    without --resume, else None."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    earlier = sorted(str(p.relative_to(out)) for p in out.glob(pattern))
    if earlier and not args.resume:
        return (f"deepnum {command}: {out} holds {', '.join(earlier)} from an earlier run: pass --resume "
                f"to continue it, choose another --out, or delete the file")
    if args.resume and not earlier:
        print(f"deepnum {command}: no checkpoint in {out} to resume: starting from the beginning", file=sys.stderr)
    return None


def _valid_size(text):
    """--valid-size: a count (an int) or a fraction (a float in (0, 1))."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def _mnist(args):
    try:
        data = datasets.load(args.data, args.valid_size)
    except ValueError as e:
        raise SystemExit(f"deepnum {args.command}: {e}") from None
    if args.train_size:
        (x, y), valid, test = data
        data = ((x[:args.train_size], y[:args.train_size]), valid, test)
    return data


def _client(args, command):
    """A Dask client for --cluster (closed at the end of the ``with``), or None for no --cluster; and the
    checkpoint directory as the workers see it (--worker-checkpoints; default: --out for local:N, none for a
    scheduler's address)."""
    if args.cluster is None:
        if args.threads is not None or args.worker_checkpoints is not None:
            raise SystemExit(f"deepnum {command}: --threads and --worker-checkpoints go with --cluster")
        return contextlib.nullcontext(), Path(args.out)
    try:
        kind, _ = distributed.parse_cluster(args.cluster)
        context = distributed.cluster(args.cluster, args.threads)
    except ValueError as e:
        raise SystemExit(f"deepnum {command}: {e}") from None
    where = args.worker_checkpoints or (args.out if kind == "local" else None)
    return context, None if where is None else Path(where)


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
    if args.cluster is not None and args.data_parallel:
        raise SystemExit("deepnum train: --cluster (members as Dask tasks) and --data-parallel (one model over MPI "
                         "ranks) do not go together")
    comm = _communicator(args, recipe) if args.data_parallel else None
    root = comm is None or comm.Get_rank() == 0  # the process that prints and writes files
    device = _device(args, "train")
    if args.cluster is not None and not isinstance(recipe, recipes.EnsembleRecipe):
        raise SystemExit(f"deepnum train --cluster: {args.recipe} is one model; --cluster trains the members of an "
                         f"ensemble (n3-ensemble) as tasks; for several runs of one recipe see deepnum sweep")
    context, checkpoints = _client(args, "train")
    out = Path(args.out)
    problem = _earlier_run(args, "train", "checkpoint*.npz") if root else None
    if comm is not None:  # rank 0 looked at --out (no shared file system assumed): every rank stops, or none
        problem = comm.bcast(problem, root=0)
    if problem:
        raise SystemExit(problem if root else 1)
    data = _mnist(args) if recipe.needs_mnist else None
    options = (("epochs", args.epochs), ("batch_size", args.batch_size), ("hidden", args.hidden),
               ("updates", args.updates))
    overrides = {k: v for k, v in options if v is not None}
    start = time.perf_counter()
    try:
        with context as client:
            if client is not None:
                overrides["client"] = client
            if comm is not None:
                overrides["data_parallel"] = comm
            result = recipe.run(data, seed=args.seed, out=out if root else None, verbose=root and not args.quiet,
                                checkpoint=None if checkpoints is None else checkpoints / "checkpoint.npz",
                                device=device, **overrides)
    except TrainingDiverged as e:
        if root:
            print(f"deepnum train: {e}", file=sys.stderr)
        return 1
    except CheckpointMismatch as e:
        raise SystemExit(f"deepnum train --resume: {e}" if root else 1) from None
    except ValueError as e:  # the data do not fit the recipe, or a setting is out of range
        raise SystemExit(f"deepnum train {args.recipe}: {e}" if root else 1) from None
    except distributed.TasksFailed as e:
        print(f"deepnum train: {e}; the other members' weights are in {out}", file=sys.stderr)
        return 1
    if not root:
        return 0
    seconds = time.perf_counter() - start
    checkpoint.write_json(out / "history.json", dict(result.history, seconds=seconds))
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
    elif data is not None and data[2] is None:
        print(f"{training.accuracies(result.history)}; no test set in {args.data}")
    return 0


def _sweep(args):
    recipe = recipes.RECIPES[args.recipe]
    if not isinstance(recipe, recipes.Recipe):
        raise SystemExit(f"deepnum sweep: {args.recipe} is not a recipe trained by minibatch SGD/Adam")
    if not args.set:
        raise SystemExit(f"deepnum sweep: give at least one --set NAME=V1,V2,... ({args.recipe}'s settings: "
                         f"{', '.join(f'{k}={v}' for k, v in recipe.settings.items())}; or epochs, batch_size)")
    device = _device(args, "sweep")
    options = {k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size)) if v is not None}
    if device != "cpu":
        options["device"] = device
    try:
        settings = dict(sweeps.parse_values(text) for text in args.set)
        seeds = [int(v) for v in args.seeds.split(",")]
        sweeps.runs(args.recipe, settings, seeds, options)
    except ValueError as e:
        raise SystemExit(f"deepnum sweep: {e}") from None
    context, checkpoints = _client(args, "sweep")
    out, problem = Path(args.out), _earlier_run(args, "sweep", "*/checkpoint.npz")
    if problem:
        raise SystemExit(problem)
    data = _mnist(args)
    start = time.perf_counter()
    try:
        with context as client:
            rows = sweeps.sweep(client, args.recipe, settings, seeds, data, out, options, checkpoints,
                                verbose=not args.quiet)
    except distributed.TasksFailed as e:
        print(f"deepnum sweep: {e}; the other runs are in {out}", file=sys.stderr)
        return 1
    print(sweeps.markdown(rows, list(settings), args.recipe, options), end="")
    print(f"time: {time.perf_counter() - start:.1f} s; table in {out / 'sweep.md'} and {out / 'sweep.csv'}, "
          f"plot in {out / 'sweep.png'}")
    return 0


def _plots(result, data, out):
    if importlib.util.find_spec("matplotlib") is None:
        print("matplotlib is not installed: skipping curves.png, filters.png, misclassified.png "
              "(pip install 'deepnum[plot]')")
        return
    from . import plots

    plots.curves(result.history, out / "curves.png")
    plots.filters(result.model, out / "filters.png")
    if data[2] is not None:
        plots.misclassified(result.model, data[2], out / "misclassified.png")


def _evaluate(args):
    members = [Sequential.load(path) for path in args.weights]
    _, _, test = datasets.load(args.data)
    if test is None:
        raise SystemExit(f"deepnum evaluate: {args.data} has no test set (x_test, y_test)")
    x, y = test
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
    print(f"CPU: {_backend.cpu_name()} ({platform.machine()}, {os.cpu_count()} logical cores)")
    if "cpp" in _backend.available():
        print(f"CPU SIMD level: {_backend.load('cpp').simd_level()}")
    print(f"OpenMP: {_backend.openmp()}")
    reason = cuda.unavailable_reason()
    if reason is not None:
        print(f"CUDA device: none ({reason})")
    else:
        print("CUDA device: cuda (emulated on the CPU)" if cuda.is_emulated() else f"CUDA device: {cuda.device_name()}")
    return 0


DATA_HELP = ("mnist.pkl.gz, a directory of MNIST IDX files, or an .npz with x_train, y_train (and optionally x_valid, "
             "y_valid, x_test, y_test); default: MNIST from the cache")


def _cluster_options(parser, what):
    parser.add_argument("--cluster", metavar="local:N|tcp://HOST:PORT",
                        help=f"{what}: local:N starts N worker processes here and closes them at the end; an "
                             f"address connects to a running Dask scheduler (pip install 'deepnum[dask]')")
    parser.add_argument("--threads", type=int,
                        help="with --cluster local:N: the kernels' threads per worker (default: cores / N)")
    parser.add_argument("--worker-checkpoints", metavar="DIR",
                        help="with --cluster: the directory, as the workers see it, for each task's checkpoint "
                             "(default: --out for local:N; none for a scheduler's address: a task retried after "
                             "its worker died then starts again, with the same result)")


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
    t.add_argument("--data", help=DATA_HELP)
    t.add_argument("--valid-size", type=_valid_size, metavar="N|FRACTION",
                   help="for data without a validation set (IDX, .npz): the last N training rows, or that fraction "
                        "(default: 10,000 for IDX, 0.1 for .npz)")
    t.add_argument("--train-size", type=int, help="train on the first N examples only")
    t.add_argument("--hidden", type=lambda s: tuple(int(v) for v in s.split(",")),
                   help="moons: comma-separated hidden sizes, one decision boundary each; "
                        "binary-addition: the hidden size")
    t.add_argument("--updates", type=int, help="binary-addition: number of single-example SGD updates")
    t.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    _cluster_options(t, "n3-ensemble: train the members as tasks on a Dask cluster")
    t.add_argument("--data-parallel", action="store_true",
                   help="under mpirun/srun (pip install 'deepnum[mpi]'): every rank loads the data and trains on its "
                        "share of each minibatch, gradients summed by MPI; rank 0 prints and writes --out")
    t.set_defaults(func=_train)
    w = sub.add_parser("sweep", help="train a recipe for every combination of some settings and seeds; a table "
                                     "and a plot of their accuracies")
    w.add_argument("recipe", choices=sorted(k for k, v in recipes.RECIPES.items() if isinstance(v, recipes.Recipe)))
    w.add_argument("--set", action="append", metavar="NAME=V1,V2,...",
                   help="values of one of the recipe's settings (e.g. lr=0.01,0.03,0.1; n3 recipes: lr and l2 = "
                        "network3's lmbda), or of epochs or batch_size; repeat for a grid")
    w.add_argument("--seeds", default="0", help="comma-separated seeds, each setting trained with each")
    w.add_argument("--epochs", type=int)
    w.add_argument("--batch-size", type=int)
    w.add_argument("--backend", choices=[b for b in deepnum.backends() if b != "cuda"] + ["cuda"])
    w.add_argument("--out", default="runs/sweep",
                   help="directory for sweep.md, sweep.csv, sweep.png and a directory per run")
    w.add_argument("--resume", action="store_true", help="continue the runs from their checkpoints in --out")
    w.add_argument("--data", help=DATA_HELP)
    w.add_argument("--valid-size", type=_valid_size, metavar="N|FRACTION",
                   help="for data without a validation set: the last N training rows, or that fraction")
    w.add_argument("--train-size", type=int, help="train on the first N examples only")
    w.add_argument("--quiet", action="store_true", help="no line per finished run")
    _cluster_options(w, "run the grid as tasks on a Dask cluster (default: one run after another here)")
    w.set_defaults(func=_sweep)
    e = sub.add_parser("evaluate", help="score saved weights on the MNIST test set; several weights files vote")
    e.add_argument("weights", nargs="+", help="a weights .npz; with more than one, their ensemble is scored")
    e.add_argument("--vote", choices=("majority", "mean"), default="majority",
                   help="how several models vote: plurality of labels or argmax of mean probabilities")
    e.add_argument("--data", help=DATA_HELP)
    e.add_argument("--first", type=int, metavar="N",
                   help="score the first N test images only (the DeepLearningTutorials score whole minibatches: "
                        "10000 // 600 * 600 = 9600 for logistic_sgd.py)")
    e.set_defaults(func=_evaluate)
    i = sub.add_parser("info", help="version, backends, threads, CPU, SIMD level, OpenMP, CUDA device")
    i.set_defaults(func=_info)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
