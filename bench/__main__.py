"""python -m bench: run the benchmarks at each thread count and write the report."""
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from . import IMPLEMENTATIONS, THREAD_VARIABLES, report

ROOT = Path(__file__).resolve().parent.parent


def _run(threads, mode, only, impl):
    """The result of one ``bench.run`` process timing ``impl`` with ``threads`` threads everywhere."""
    env = dict(os.environ, **{v: str(threads) for v in THREAD_VARIABLES})
    if impl != "numpy":  # OpenBLAS threads spin after each call (here: the reference checks) and
        env.update(OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")  # would starve the timed threads
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.json"
        command = [sys.executable, "-m", "bench.run", str(out), "--threads", str(threads), "--mode", mode,
                   "--impls", impl]
        if subprocess.run(command + (["--only", only] if only else []), env=env, cwd=ROOT).returncode:
            sys.exit(f"bench: the run with {threads} threads failed (see above)")
        return json.loads(out.read_text())


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split(": ", 1)[1])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="mode", action="store_const", const="quick",
                      help="3 repeats and 600 samples of each epoch (scaled): meant to take under 2 minutes")
    mode.add_argument("--smoke", dest="mode", action="store_const", const="smoke",
                      help="tiny sizes, one batch per epoch: checks the harness, measures nothing useful")
    parser.add_argument("--threads", default="1,2", type=lambda s: [int(t) for t in s.split(",")],
                        help="comma-separated thread counts (default 1,2)")
    parser.add_argument("--only", metavar="PATTERN",
                        help="regular expression on benchmark names, e.g. 'conv2d|max_pool2d' or 'epoch n3'")
    parser.add_argument("--md", type=Path, default=ROOT / "bench" / "RESULTS.md",
                        help="markdown report (default bench/RESULTS.md)")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "RESULTS.json",
                        help="all results as JSON (default bench/RESULTS.json)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the processes (each thread count, each implementation) this many times in turn and "
                             "report each benchmark's median round: ratios that a machine's drift from minute to "
                             "minute does not skew (default 1)")
    parser.add_argument("--gaps", type=Path, default=report.GAPS,
                        help="the hand-written causes of the unmet targets that the report includes "
                             "(default bench/GAPS.md, written for the AVX-512 machine)")
    parser.set_defaults(mode="full")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    runs = [_run(t, args.mode, args.only, impl)
            for _ in range(args.rounds) for t in args.threads for impl in IMPLEMENTATIONS]
    result = report.merge(runs, " ".join(["python -m bench", *(sys.argv[1:] if argv is None else argv)]),
                          args.rounds, args.gaps)
    report.write(result, args.md, args.json)
    print(f"wrote {args.md} and {args.json}")
    return result


if __name__ == "__main__":
    main()
