"""python -m bench.command: what the command costs around the epoch. In one run on this machine, the wall time of
``deepnum train RECIPE --epochs 1`` (a new process each time: imports, loading MNIST, the epoch, validation and
test scoring, progress, weights, plots) against the bench's epoch of the same recipe and batch size (the training
steps of ``python -m bench``'s epoch row, cpp backend), with the same thread count. Writes bench/COMMAND.md.

The command's first run on a machine also unpacks MNIST's arrays into the data directory (datasets.mnist): it is
run once before the timed runs.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import deepnum

from . import THREAD_VARIABLES, epochs
from .report import fmt_time
from .run import MODES, environment

ROOT = Path(__file__).resolve().parent.parent


def command_seconds(recipe, threads):
    """Wall seconds of one ``deepnum train RECIPE --epochs 1`` in a new process."""
    env = dict(os.environ, **{v: str(threads) for v in THREAD_VARIABLES})
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "deepnum.cli", "train", recipe, "--epochs", "1", "--out", out],
                       env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.command", description=__doc__.split(": ", 1)[1])
    parser.add_argument("--workload", default="n3-relu b10", help="an epoch row of the bench (default n3-relu b10)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each (default 3)")
    parser.add_argument("--md", type=Path, default=ROOT / "bench" / "COMMAND.md")
    args = parser.parse_args(argv)
    label, batch = args.workload.rsplit(" b", 1)
    recipe = next(r for lbl, r, b in epochs.WORKLOADS if lbl == label and b == int(batch))
    deepnum.set_num_threads(args.threads)
    command_seconds(recipe, args.threads)  # the first run unpacks MNIST; not timed
    bench, command = [], []
    for _ in range(args.repeats):  # alternated, so that a change in the machine's load falls on both
        row, = epochs.run(MODES["full"], f"^epoch {args.workload}$", ["cpp"], lambda line: None)
        bench.append(row["median"])
        command.append(command_seconds(recipe, args.threads))
    b, c = statistics.median(bench), statistics.median(command)
    env = environment()
    lines = [
        "# The command around the epoch",
        "",
        f"`python -m bench.command {' '.join(sys.argv[1:] if argv is None else argv)}`".replace(" `", "`"),
        f"on {env['cpu']} ({', '.join(env['simd']) or 'no AVX'}), {env['cores']} cores, {args.threads} threads, "
        f"{env['date']}, commit {env['commit']}, load average {env['load_average']:.2f} at the start.",
        "",
        f"| | {' | '.join(f'run {i + 1}' for i in range(args.repeats))} | median |",
        f"|---|{'---|' * (args.repeats + 1)}",
        f"| bench epoch {args.workload} (cpp, training steps) | {' | '.join(fmt_time(t) for t in bench)} | "
        f"{fmt_time(b)} |",
        f"| `deepnum train {recipe} --epochs 1` (wall) | {' | '.join(fmt_time(t) for t in command)} | {fmt_time(c)} |",
        "",
        f"The command takes **{c / b:.2f}×** the bench's epoch (target ≤ 1.15×).",
        "",
    ]
    args.md.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
