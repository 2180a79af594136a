"""One benchmark run at one thread count, in this process (``python -m bench`` starts one per
count, with the thread environment variables set before NumPy loads):

    python -m bench.run OUT.json --threads 2 [--mode quick] [--only PATTERN] [--impls cpp,torch]

``python -m bench`` runs each implementation in a process of its own: OpenMP (deepnum's and
PyTorch's), Numba and OpenBLAS thread pools in one process keep spinning after their own work and
starve each other's threads on a small machine.
"""
import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numba
import numpy as np

import deepnum
from deepnum import _backend

from . import IMPLEMENTATIONS, THREAD_VARIABLES, epochs, micro
from .baselines import torch


@dataclass
class Mode:
    sizes: str  # a key of micro.SIZES
    repeats: int  # timed samples per micro case
    min_time: float  # seconds each sample lasts at least (calls are repeated within it)
    epoch_samples: int  # training samples timed per end-to-end workload (at least a batch a segment)
    epoch_segments: int  # timed separately, each scaled to a 50,000-sample epoch


MODES = {
    "full": Mode("full", repeats=10, min_time=0.02, epoch_samples=50_000, epoch_segments=5),
    "quick": Mode("full", repeats=3, min_time=0.002, epoch_samples=600, epoch_segments=3),
    "smoke": Mode("smoke", repeats=2, min_time=0.0, epoch_samples=1, epoch_segments=1),
}


def environment():
    """Machine, versions, commit and thread settings of this process."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    flags = re.search(r"^flags\s*:\s*(.*)$", cpuinfo, re.M)
    blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    blas_text = f"{blas.get('name')} {blas.get('version', '')}".strip()
    try:  # the kernels OpenBLAS picked for this CPU (OPENBLAS_CORETYPE overrides them)
        from threadpoolctl import threadpool_info

        core = next((i.get("architecture") for i in threadpool_info() if i.get("internal_api") == "openblas"), None)
        blas_text += f", {core} kernels" if core else ""
    except ImportError:
        pass
    if os.environ.get("OPENBLAS_CORETYPE"):
        blas_text += f", OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']}"
    commit = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    return {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "cpu": _backend.cpu_name(),
        "simd": [f for f in ("avx2", "fma", "avx512f") if flags and f in flags.group(1).split()],
        "cores": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas_text,
        "numba": numba.__version__,
        "torch": torch.__version__ if torch else None,
        "deepnum": deepnum.__version__,
        "commit": commit or None,
        "threads": {"deepnum": deepnum.get_num_threads(), "torch": torch.get_num_threads() if torch else None,
                    **{v: os.environ.get(v) for v in THREAD_VARIABLES}},
    }


def available_implementations():
    return [b for b in ("cpp", "numba") if b in deepnum.backends()] + ["numpy"] + (["torch"] if torch else [])


def measure(mode, only=None, log=print, impls=None):
    """Every benchmark whose name matches ``only``, at this process's thread count: the
    environment, the mode's settings and one row per (benchmark, implementation in ``impls``,
    default all available)."""
    env = environment()
    impls = [i for i in available_implementations() if impls is None or i in impls]
    threads = deepnum.get_num_threads()
    rows = micro.run(MODES[mode], only, impls, log) + epochs.run(MODES[mode], only, impls, log)
    return {"environment": env, "mode": mode, "settings": asdict(MODES[mode]), "threads": threads,
            "rows": [dict(row, threads=threads) for row in rows]}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.run",
                                     description="One benchmark run at one thread count (python -m bench runs these).")
    parser.add_argument("out", type=Path)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--mode", choices=MODES, default="full")
    parser.add_argument("--only")
    parser.add_argument("--impls", type=lambda s: s.split(","), help=f"subset of {','.join(IMPLEMENTATIONS)}")
    args = parser.parse_args(argv)
    deepnum.set_num_threads(args.threads)
    if torch:
        torch.set_num_threads(args.threads)
    result = measure(args.mode, args.only, lambda line: print(f"[{args.threads}t] {line}", file=sys.stderr, flush=True),
                     args.impls)
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
