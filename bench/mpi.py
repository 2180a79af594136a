"""Data-parallel training over MPI (issue 15): network3's n3-relu at global batch 100 on MNIST, one process
with 2 threads against ``mpirun -n 2`` ranks of 1 thread each (deepnum.mpi.DataParallel), the seconds
per epoch and those spent inside Allreduce, and a model of the communication at 8 and 64 ranks.

    python -m bench.mpi                       # 50,000 images, 3 epochs: writes bench/MPI.md and bench/MPI.json
    python -m bench.mpi --train-size 2000 --epochs 1 --md /tmp/mpi.md --json /tmp/mpi.json   # checks the harness
    python -m bench.mpi --model-only          # the model section alone (no training)

Each setting runs in a process of its own (the single process; the ranks under the mpirun beside
sys.executable) with the thread variables set before NumPy loads. Both train the same model from the same
initial parameters on the same unshuffled batches, without validation; before the times are reported,
the two runs' per-epoch training losses are checked to agree (float32: rtol 1e-3). The first epoch
(first touch of the arrays) is excluded from the medians when there is more than one. Run it on an otherwise
idle machine.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from . import THREAD_VARIABLES

ROOT = Path(__file__).resolve().parent.parent
RECIPE = "n3-relu"
BANDWIDTHS = (10, 100)  # Gbit/s
RANKS = (2, 8, 64)
LATENCY = 5e-6  # seconds per message: a few µs on InfiniBand, tens of µs over TCP on Ethernet
EPOCH = 50_000


def _worker(args):
    import deepnum
    from deepnum import datasets, recipes, training

    deepnum.set_num_threads(args.threads)
    (x, y), _, _ = datasets.mnist(args.data)
    x, y = x[:args.train_size], y[:args.train_size]
    recipe = recipes.RECIPES[RECIPE]
    model = recipe.build(0, "cpu")
    trained, comm = model, None
    if args.worker == "parallel":
        from deepnum.mpi import DataParallel, mpi

        comm = mpi().COMM_WORLD
        trained = DataParallel(model, comm)
    history = training.fit(trained, (x, y), args.epochs, args.batch, recipe.make_optimizer(args.batch, len(x)))
    mine = {key: history.get(key) for key in ("epoch_seconds", "allreduce_seconds", "train_loss")}
    ranks = [mine] if comm is None else comm.gather(mine, root=0)
    if comm is None or comm.Get_rank() == 0:
        from .run import environment

        Path(args.result).write_text(json.dumps({"ranks": ranks, "environment": environment()}))


def _launch(command, threads):
    env = dict(os.environ, **{v: str(threads) for v in THREAD_VARIABLES})
    if subprocess.run(command, env=env, cwd=ROOT).returncode:
        sys.exit(f"bench.mpi: {' '.join(command)} failed (see above)")


def _median(seconds):
    """The median epoch, the first (warm-up) left out when there are more."""
    return float(np.median(seconds[1:] if len(seconds) > 1 else seconds))


def parameter_count():
    from deepnum import recipes

    return sum(p.size for _, _, p, _ in recipes.RECIPES[RECIPE].build(0, "cpu").parameters())


def model_section(n_params, batch, compute_step=None, measured_ranks=None):
    """The communication model as markdown: bytes per step, ring-allreduce seconds per step at RANKS ×
    BANDWIDTHS, and, given ``compute_step`` (seconds of one rank's compute per step with
    ``measured_ranks`` ranks), the compute each rank would have at global batch ``batch`` (ideal split)."""
    size = 4 * (n_params + 1)  # float32 gradients and the loss
    lines = [
        "## How it would scale: a model", "",
        f"Each step sums one float32 buffer of the {n_params:,} parameters' gradients and the loss: "
        f"{size:,} bytes ({size / 1e6:.3g} MB), whatever the number of ranks R. A ring allreduce (what MPICH and "
        "Open MPI use for large buffers) sends and receives 2(R−1)/R × that per rank, in 2(R−1) messages, so "
        "per step it costs about 2(R−1)/R × bytes / bandwidth + 2(R−1) × latency. Latency here: "
        f"{LATENCY * 1e6:g} µs per message (InfiniBand is 1–2 µs, TCP over Ethernet 20–50 µs: multiply the "
        "latency column accordingly).", ""]
    header = ["ranks R", "bytes sent per rank", *(f"at {b} Gbit/s" for b in BANDWIDTHS), "latency term"]
    if compute_step is not None:
        header += [f"compute per rank at batch {batch} (ideal)", "efficiency at 10 Gbit/s"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in RANKS:
        sent = 2 * (r - 1) / r * size
        latency = 2 * (r - 1) * LATENCY
        cells = [str(r), f"{sent / 1e6:.3g} MB",
                 *(f"{(sent * 8 / (b * 1e9) + latency) * 1e3:.3g} ms" for b in BANDWIDTHS), f"{latency * 1e3:.3g} ms"]
        if compute_step is not None:
            compute = compute_step * measured_ranks / r
            comm = sent * 8 / (BANDWIDTHS[0] * 1e9) + latency
            cells += [f"{compute * 1e3:.3g} ms ({math.ceil(batch / r)} rows)", f"{compute / (compute + comm):.0%}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "The bandwidth columns include the latency term. The communication per step does not shrink with "
              "R while each rank's share of a fixed global batch does: at batch 100 and 64 ranks a rank has 1–2 "
              "rows, its compute nears or falls below the allreduce, and data parallelism stops paying; it scales with "
              "the global batch (weak scaling: rows per rank fixed) or with gradients summed over several "
              "steps. Compute per rank assumes an ideal split of the measured time (small batches run less "
              "efficiently, so it is optimistic)." if compute_step is not None else
              "The bandwidth columns include the latency term. `python -m bench.mpi` rewrites this file with the "
              "measured times and adds each rank's compute per step to this table."]
    return lines


def report(result):
    single, parallel = result["single"], result["parallel"]
    steps = result["train_size"] // result["batch"]
    t1, tp = _median(single["ranks"][0]["epoch_seconds"]), _median(parallel["ranks"][0]["epoch_seconds"])
    allreduce = [_median(r["allreduce_seconds"]) for r in parallel["ranks"]]
    env = single["environment"]
    scale = EPOCH / (steps * result["batch"])
    rows = [("1 process × 2 threads", t1, "—"),
            (f"{len(parallel['ranks'])} ranks × 1 thread", tp,
             ", ".join(f"rank {i}: {a:.3g} s ({a / tp:.0%})" for i, a in enumerate(allreduce)))]
    lines = ["# Data-parallel training over MPI", "",
             f"Produced by `{result['command']}` (from the repository root): {RECIPE} at global batch "
             f"{result['batch']}, {result['train_size']:,} MNIST training images ({steps} steps an epoch), "
             f"{result['epochs']} epoch{'s' * (result['epochs'] > 1)}, float32, no validation; median epoch (the first "
             "left out when there are more). The Allreduce seconds include waiting for the slower rank.", "",
             f"Machine: {env['cpu']}, {env['cores']} cores, load average {env['load_average']:.2f} at the start; "
             f"Python {env['python']}, NumPy {env['numpy']}, deepnum {env['deepnum']}, commit {env['commit']}.", "",
             "| setting | s per epoch | per 50,000 images | s in Allreduce per epoch | compute per step |",
             "|---|---|---|---|---|"]
    for label, t, a in rows:
        wait = 0 if a == "—" else allreduce[0]
        lines.append(f"| {label} | {t:.3g} s | {t * scale:.3g} s | {a} | {(t - wait) / steps * 1e3:.3g} ms |")
    lines += ["", f"Speed-up of the 2 ranks over the 2-thread process: {t1 / tp:.3g}×.", ""]
    compute_step = (tp - allreduce[0]) / steps
    return lines + model_section(result["n_params"], result["batch"], compute_step, len(parallel["ranks"]))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.mpi", description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-size", type=int, default=EPOCH, help="MNIST training images (default 50,000)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=100, help="the global batch (default 100)")
    parser.add_argument("--data", help="path of mnist.pkl.gz or a directory of IDX files (default: the cache)")
    parser.add_argument("--md", type=Path, default=ROOT / "bench" / "MPI.md")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "MPI.json")
    parser.add_argument("--model-only", action="store_true", help="write the model section alone to --md")
    parser.add_argument("--worker", choices=("single", "parallel"), help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(args)
    n_params = parameter_count()
    if args.model_only:
        args.md.write_text("\n".join(["# Data-parallel training over MPI", "", *model_section(n_params, args.batch)])
                           + "\n")
        print(f"wrote {args.md}")
        return None
    mpirun = Path(sys.executable).with_name("mpirun")
    if not mpirun.exists():
        sys.exit(f"bench.mpi: no mpirun beside {sys.executable}: python -m pip install '.[mpi]'")
    common = ["-m", "bench.mpi", "--train-size", str(args.train_size), "--epochs", str(args.epochs), "--batch",
              str(args.batch), *(["--data", args.data] if args.data else [])]
    result = {"command": " ".join(["python -m bench.mpi", *(sys.argv[1:] if argv is None else argv)]),
              "train_size": args.train_size, "epochs": args.epochs, "batch": args.batch, "n_params": n_params}
    with tempfile.TemporaryDirectory() as tmp:
        for setting, launcher, threads in (("single", [], 2), ("parallel", [str(mpirun), "-n", "2"], 1)):
            out = Path(tmp) / f"{setting}.json"
            _launch([*launcher, sys.executable, *common, "--worker", setting, "--threads", str(threads),
                     "--result", str(out)], threads)
            result[setting] = json.loads(out.read_text())
    want, got = result["single"]["ranks"][0]["train_loss"], result["parallel"]["ranks"][0]["train_loss"]
    np.testing.assert_allclose(got, want, rtol=1e-3, err_msg="bench.mpi: 2 ranks' training losses against 1 process")
    args.json.write_text(json.dumps(result, indent=1))
    args.md.write_text("\n".join(report(result)) + "\n")
    print(f"wrote {args.md} and {args.json}")
    return result


if __name__ == "__main__":
    main()
