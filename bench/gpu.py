"""GPU benchmarks (issue 13): deepnum's cuda backend against PyTorch on the same device, and training
epochs against PyTorch on the GPU and deepnum's cpp backend on the host.

    python -m bench.gpu --out FILE.json [--quick] [--device-check] [--only REGEX]
    python -m bench.gpu_report FILE.json --md RESULTS-gpu.md

Rows: fp32 gemm n×n×n (deepnum, torch.matmul with TF32 off, and with TF32 on); conv2d forward and
forward+backward at the seed convnets' layers (network3's 1→20 on 28×28 and 20→40 on 12×12, LeNet's
20→50 on 12×12; 5×5 kernels) against cuDNN; softmax-NLL forward and forward+backward against
cross_entropy; seconds per 50,000-sample epoch of the seed recipes (logistic b600, lenet5 b500,
n3-relu b10 and b100): deepnum through ``Sequential.fit(..., device="cuda")``, the same network in
PyTorch on the GPU (``baselines.TorchNet``, data on the device) and deepnum ``cpp`` on the host.

Method, the same for every library: the result is checked first (ops: ‖out − ref‖ / ‖ref‖ against
float64 PyTorch on the GPU where it sees one, else on the host; epochs: one step with lr 1 against the
NumPy reference backend, as bench.epochs does); one warm-up call; then ``repeats`` samples, each the
mean over enough calls to last ``min_time``, timed by the host clock between device synchronisations
(deepnum._cuda.synchronize, torch.cuda.synchronize). Epochs: the samples timed in segments (one
``fit`` epoch each, its copy of the segment to the device included), each scaled to 50,000 samples.
float32 throughout: TF32 is off (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
except in the gemm rows that say TF32; cuDNN picks its algorithms (torch.backends.cudnn.benchmark).

A row that cannot run here is kept with the reason (``skipped``): PyTorch without a GPU, deepnum's cuda
backend unavailable, or ``Sequential.fit`` without a ``device`` parameter. ``--device-check`` makes a
missing (or emulated) GPU an error instead, before anything is timed (the JSON then says why). The JSON is rewritten after each
group, so a run stopped by its time limit keeps what it measured (``complete`` is false then).
``--quick``: tiny sizes, 2 repeats, one batch per epoch segment: checks the harness (the test suite,
the emulated build), measures nothing useful.
"""
import argparse
import contextlib
import gc
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import deepnum
from deepnum import cuda, ops

from . import baselines as bl
from .epochs import _trainer, workload_inputs
from .run import environment
from .timing import summary

torch, F = bl.torch, bl.F


@dataclass
class Mode:
    gemm: tuple  # n of the n×n×n products
    conv: tuple  # (C, K, H = W) of the 5×5 convolutions
    conv_batches: tuple
    softmax: tuple  # (N, classes)
    repeats: int
    min_time: float  # seconds each sample lasts at least
    epoch_samples: int  # samples timed per workload and implementation (whole batches per segment)
    epoch_segments: int


MODES = {
    "full": Mode(gemm=(1024, 2048, 4096, 8192), conv=((1, 20, 28), (20, 40, 12), (20, 50, 12)),
                 conv_batches=(10, 100, 500), softmax=((10, 10), (100, 10), (600, 10), (10_000, 1000)),
                 repeats=10, min_time=0.05, epoch_samples=20_000, epoch_segments=5),
    "quick": Mode(gemm=(17, 65), conv=((1, 2, 8), (2, 3, 6)), conv_batches=(2,), softmax=((3, 10),),
                  repeats=2, min_time=0.0, epoch_samples=1, epoch_segments=2),
}
WORKLOADS = (  # (label, recipe, batch size): the targets and every recipe with batch >= 100
    ("logistic", "logistic", 600),
    ("lenet5", "lenet5", 500),
    ("n3-relu", "n3-relu", 10),
    ("n3-relu", "n3-relu", 100),
)
# Implementations: "cuda" (deepnum on DeviceArrays), "torch" (PyTorch on the GPU, TF32 off), "torch-tf32"
# (TF32 on), "cpp" (deepnum on the host: epochs only). Relative error allowed against float64:
TOLERANCE = {"cuda": 1e-4, "torch": 1e-4, "torch-tf32": 5e-3}


class Skip(Exception):
    """A row that cannot run here; the message says why."""


def _torch_gpu():
    return torch is not None and torch.cuda.is_available()


def why_not(impl):
    """Why ``impl`` cannot run here, or None."""
    if impl == "cuda":
        reason = cuda.unavailable_reason()
        return None if reason is None else f"deepnum's cuda backend is unavailable: {reason}"
    if impl in ("torch", "torch-tf32"):
        if torch is None:
            return "PyTorch is not installed"
        if _torch_gpu():
            return None
        return f"PyTorch {torch.__version__} " + (f"(CUDA {torch.version.cuda}) sees no GPU" if torch.version.cuda
                                                  else "is a CPU-only build")
    return None if "cpp" in deepnum.backends() else "deepnum's cpp backend is unavailable"


def device_problem():
    """Why there is no GPU to benchmark (deepnum's cuda backend on a real device, PyTorch seeing one), or None."""
    problems = [why_not(impl) for impl in ("cuda", "torch")]
    if cuda.is_available() and cuda.is_emulated():
        problems.append("deepnum._cuda is the emulated build (cuda.is_emulated()), not a GPU")
    return "; ".join(p for p in problems if p) or None


# ---- timing and checking ----------------------------------------------------------------------

def _sync(impl):
    if impl == "cuda":
        from deepnum import _cuda

        return _cuda.synchronize
    if impl.startswith("torch"):
        return torch.cuda.synchronize
    return lambda: None


def _seconds(fn, sync, number):
    gc.disable()
    try:
        sync()
        start = time.perf_counter()
        for _ in range(number):
            fn()
        sync()
        return time.perf_counter() - start
    finally:
        gc.enable()


def time_calls(fn, sync, mode):
    """Samples of the seconds per call of fn() (warmed up already) and the calls per sample."""
    first = _seconds(fn, sync, 1)
    number = max(1, math.ceil(mode.min_time / max(first, 1e-9)))
    samples = [first] if number == 1 else []
    while len(samples) < mode.repeats:
        samples.append(_seconds(fn, sync, number) / number)
    return samples, number


def _ref_device():
    return "cuda" if _torch_gpu() else "cpu"


def _as_ref(a):
    """An output (DeviceArray, NumPy array, tensor or float) as a float64 tensor on the reference device."""
    if isinstance(a, cuda.DeviceArray):
        a = a.to_numpy()
    if isinstance(a, np.ndarray):
        a = torch.from_numpy(a)
    if isinstance(a, float):
        a = torch.tensor(a)
    return a.detach().to(_ref_device(), torch.float64)


def relative_error(got, want):
    """max over the outputs of ‖got − want‖ / ‖want‖ (float64)."""
    got, want = (got, want) if isinstance(want, tuple) else ((got,), (want,))
    if len(got) != len(want):
        raise AssertionError(f"{len(got)} outputs, expected {len(want)}")
    errors = []
    for g, w in zip(got, want):
        g, w = _as_ref(g), _as_ref(w)
        if g.shape != w.shape:
            raise AssertionError(f"shape {tuple(g.shape)}, expected {tuple(w.shape)}")
        errors.append(float(torch.linalg.vector_norm(g - w) / torch.linalg.vector_norm(w)))
    return max(errors)


@contextlib.contextmanager
def torch_settings(tf32):
    """TF32 for matmul and cuDNN on or off, cuDNN choosing its algorithms; the old settings afterwards."""
    old = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
         torch.backends.cudnn.benchmark) = old


def _failed(e):
    return f"{type(e).__name__}: {e}"


def _cell(row, unit, scale):
    if "median" in row:
        return f"{row['impl']} {row['median'] * scale:.3g} {unit}"
    return f"{row['impl']} {'skipped' if 'skipped' in row else 'FAILED'}"


def run_op_case(kind, name, flop, want, fns, mode, log):
    """Check, warm up and time each implementation's fn (``fns``: {impl: fn}): one row each, timed, or
    ``skipped`` (cannot run here) or ``failed`` (wrong result or an error), with the reason."""
    rows = []
    for impl, fn in fns.items():
        row = {"kind": kind, "name": name, "impl": impl, "flop": flop}
        reason = why_not(impl)
        if reason:
            rows.append(dict(row, skipped=reason))
            continue
        try:
            with torch_settings(tf32=impl == "torch-tf32") if impl.startswith("torch") else contextlib.nullcontext():
                error = relative_error(fn(), want)  # also the warm-up
                if not error <= TOLERANCE[impl]:  # NaN fails too
                    raise AssertionError(f"relative error {error:.3g} > {TOLERANCE[impl]:g}")
                samples, number = time_calls(fn, _sync(impl), mode)
        except Exception as e:  # noqa: BLE001 - recorded, reported, and the run exits non-zero
            rows.append(dict(row, failed=_failed(e)))
            continue
        rows.append(dict(row, error=error, number=number, **summary(samples)))
    log(f"{name:<40} " + "  ".join(_cell(r, "ms", 1e3) for r in rows))
    return rows


# ---- the op cases -------------------------------------------------------------------------------

def _randn(rng, *shape):
    return rng.standard_normal(shape, dtype=np.float32)


def _device(a):
    return cuda.DeviceArray.from_numpy(a) if cuda.is_available() else None


def _tensor(a, grad=False):
    """``a`` on the GPU for the torch rows (None where PyTorch sees none)."""
    return torch.from_numpy(a).cuda().requires_grad_(grad) if _torch_gpu() else None


def _ref(a, grad=False):
    return torch.from_numpy(a).to(_ref_device(), torch.float64).requires_grad_(grad)


def gemm_cases(mode, rng):
    for n in mode.gemm:
        a, b = _randn(rng, n, n), _randn(rng, n, n)
        want = _ref(a) @ _ref(b)
        da, db, ta, tb = _device(a), _device(b), _tensor(a), _tensor(b)
        yield "gemm", f"gemm {n}x{n}x{n}", 2.0 * n**3, want, {
            "cuda": lambda: ops.gemm(da, db), "torch": lambda: torch.matmul(ta, tb),
            "torch-tf32": lambda: torch.matmul(ta, tb)}


def _conv_grads(y, inputs, dy):
    return (y.detach(), *torch.autograd.grad(y, inputs, dy))


def conv_cases(mode, rng):
    for (c, k, h), batch in ((s, b) for s in mode.conv for b in mode.conv_batches):
        x, w, b, dy = _randn(rng, batch, c, h, h), _randn(rng, k, c, 5, 5), _randn(rng, k), _randn(rng, batch, k, h - 4, h - 4)
        flop = 2.0 * batch * k * (h - 4) ** 2 * c * 25
        shape = f"N{batch} {c}x{h}x{h}->{k} k5"
        dx_, dw_, db_, ddy = (_device(a) for a in (x, w, b, dy))
        tx, tw, tb, tdy = (_tensor(a) for a in (x, w, b, dy))  # forward: no autograd graph
        gx, gw, gb = _tensor(x, True), _tensor(w, True), _tensor(b, True)
        rx, rw, rb = _ref(x, True), _ref(w, True), _ref(b, True)
        want = F.conv2d(rx, rw, rb)
        yield "conv2d", f"conv2d {shape} fwd", flop, want.detach(), {
            "cuda": lambda: ops.conv2d_forward(dx_, dw_, db_), "torch": lambda: F.conv2d(tx, tw, tb)}
        yield "conv2d", f"conv2d {shape} fwd+bwd", 3 * flop, _conv_grads(want, (rx, rw, rb), _ref(dy)), {
            "cuda": lambda: (ops.conv2d_forward(dx_, dw_, db_), *ops.conv2d_backward(ddy, dx_, dw_)),
            "torch": lambda: _conv_grads(F.conv2d(gx, gw, gb), (gx, gw, gb), tdy)}


def softmax_cases(mode, rng):
    for n, classes in mode.softmax:
        z, labels = _randn(rng, n, classes) * 3, rng.integers(0, classes, n)
        dz, dlabels = _device(z), _device(labels)
        tz, gz, tlabels = _tensor(z), _tensor(z, True), _tensor(labels)
        rz, rlabels = _ref(z, True), torch.from_numpy(labels).to(_ref_device())
        loss = F.cross_entropy(rz, rlabels)
        name = f"softmax_nll N{n}x{classes}"
        yield "softmax_nll", f"{name} fwd", None, loss.detach(), {
            "cuda": lambda: ops.softmax_nll_forward(dz, dlabels)[0],
            "torch": lambda: F.cross_entropy(tz, tlabels)}
        yield "softmax_nll", f"{name} fwd+bwd", None, torch.autograd.grad(loss, rz)[0], {
            "cuda": lambda: ops.softmax_nll_backward(ops.softmax_nll_forward(dz, dlabels)[1], dlabels),
            "torch": lambda: torch.autograd.grad(F.cross_entropy(gz, tlabels), gz)[0]}


def run_ops(cases, mode, only, log):
    rows = []
    for kind, name, flop, want, fns in cases:
        if only and not re.search(only, name):
            continue
        rows += run_op_case(kind, name, flop, want, fns, mode, log)
    return rows


# ---- training epochs ----------------------------------------------------------------------------

class FitTrainer:
    """A recipe's model (built as bench.epochs builds it, on the host) trained by ``Sequential.fit``, one
    epoch per call: on the GPU (``device="cuda"``: the first fit moves the model there) or on the host's
    selected backend."""

    def __init__(self, recipe, batch, device=None, lr=None):
        self.model, self.batch, self.device = _trainer("cpp", recipe, batch, lr), batch, device

    def epoch(self, x, y):
        """One epoch over (x, y); its training loss."""
        kw = {"device": self.device} if self.device else {}
        history = self.model.fit((x, y), 1, self.batch, **kw)
        return history["train_loss"][-1]

    def one_step(self, x, y):
        """The loss of one step and the change it made to every parameter (as bench.epochs._one_step;
        state_dict() is NumPy copies on either device)."""
        before = self.model.state_dict()
        loss = self.epoch(x[:self.batch], y[:self.batch])
        return (loss, *(p - before[k] for k, p in sorted(self.model.state_dict().items())))


class TorchGpuNet(bl.TorchNet):
    """bench.baselines.TorchNet on the GPU: the same network, initial weights and SGD; batches are
    tensors already on the device."""

    def __init__(self, model, lr, l2):
        super().__init__(model, lr, l2)
        self.net.cuda()  # moves the parameters in place: the optimiser and self.keys keep them

    def state_dict(self):
        return {k: (t.detach().cpu().numpy().T if transposed else t.detach().cpu().numpy()).copy()
                for k, (t, transposed) in self.keys.items()}

    def train_step(self, x, labels):
        self.opt.zero_grad()
        loss = F.cross_entropy(self.net(x), labels)
        loss.backward()
        self.opt.step()
        return loss.item()

    def epoch(self, x, y, batch):
        for i in range(0, len(x) - batch + 1, batch):
            self.train_step(x[i:i + batch], y[i:i + batch])

    def one_step(self, x, y, batch):
        before = self.state_dict()
        loss = self.train_step(x[:batch], y[:batch])
        return (loss, *(p - before[k] for k, p in sorted(self.state_dict().items())))


def _epoch_runner(impl, recipe, batch, x, y):
    """(one-step check, one epoch over rows [lo, hi)) for ``impl``; Skip where it cannot run."""
    reason = why_not(impl)
    if reason:
        raise Skip(reason)
    if impl == "torch":
        tx, ty = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()
        model = _trainer("cpp", recipe, batch)  # the initial weights and SGD settings to copy
        check = TorchGpuNet(model, 1.0, model.optimizer.l2).one_step(tx, ty, batch)
        net = TorchGpuNet(model, model.optimizer.lr, model.optimizer.l2)
        return check, lambda lo, hi: net.epoch(tx[lo:hi], ty[lo:hi], batch)
    device = "cuda" if impl == "cuda" else None
    check = FitTrainer(recipe, batch, device, lr=1.0).one_step(x, y)
    trainer = FitTrainer(recipe, batch, device)
    return check, lambda lo, hi: trainer.epoch(x[lo:hi], y[lo:hi])


def run_epochs(mode, only, log):
    rows = []
    for name, label, recipe_name, recipe, batch, x, y, n, per_segment, scale, want in \
            workload_inputs(WORKLOADS, mode, only):
        for impl in ("cuda", "torch", "cpp"):
            row = {"kind": "epoch", "name": name, "workload": label, "recipe": recipe_name, "batch": batch,
                   "impl": impl, "samples": n, "scale": scale}
            try:
                with torch_settings(tf32=False) if impl == "torch" else deepnum.use_backend("cpp"):
                    check, epoch = _epoch_runner(impl, recipe, batch, x, y)
                    error = relative_error(check, want)
                    if not error <= 1e-2:  # float32 against float32, as bench.epochs
                        raise AssertionError(f"one step: relative error {error:.3g} > 0.01")
                    epoch(0, batch)  # warm-up
                    sync = _sync(impl)
                    times = [_seconds(lambda: epoch(i, i + per_segment), sync, 1) * scale
                             for i in range(0, n, per_segment)]
            except Skip as e:
                rows.append(dict(row, skipped=str(e)))
            except Exception as e:  # noqa: BLE001 - recorded, reported, and the run exits non-zero
                rows.append(dict(row, failed=_failed(e)))
            else:
                rows.append(dict(row, error=error, threads=deepnum.get_num_threads() if impl == "cpp" else None,
                                 **summary(times)))
        log(f"{name:<40} " + "  ".join(_cell(r, "s", 1) for r in rows[-3:]) + f"  (per epoch, from {n} samples)")
    return rows


# ---- the run --------------------------------------------------------------------------------------

def _nvidia_smi():
    """Driver and the CUDA version it supports, from nvidia-smi's header (None where there is none)."""
    if not shutil.which("nvidia-smi"):
        return {"driver": None, "driver_cuda": None}
    text = subprocess.run(["nvidia-smi"], capture_output=True, text=True).stdout
    driver, version = re.search(r"Driver Version:\s*(\S+)", text), re.search(r"CUDA Version:\s*(\S+)", text)
    return {"driver": driver and driver.group(1), "driver_cuda": version and version.group(1)}


def gpu_environment():
    env = environment()
    env.update(_nvidia_smi())
    env.update(
        device=cuda.device_name() if cuda.is_available() else None,
        device_unavailable=cuda.unavailable_reason(),
        emulated=cuda.is_emulated(),
        torch_cuda=torch.version.cuda if torch else None,
        torch_device=torch.cuda.get_device_name(0) if _torch_gpu() else None,
        cudnn=torch.backends.cudnn.version() if _torch_gpu() else None,
        commit=os.environ.get("DEEPNUM_COMMIT") or env["commit"],
    )
    return env


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the results as JSON")
    parser.add_argument("--quick", dest="mode", action="store_const", const="quick", default="full",
                        help="tiny sizes, 2 repeats: checks the harness, measures nothing useful")
    parser.add_argument("--device-check", action="store_true",
                        help="fail unless deepnum's cuda backend runs on a real GPU and PyTorch sees it")
    parser.add_argument("--only", metavar="REGEX", help="only the rows whose name matches, e.g. 'gemm|epoch'")
    args = parser.parse_args(argv)
    if os.environ.get("DEEPNUM_CUDA_SYNC", "0") not in ("", "0"):
        sys.exit("bench.gpu: DEEPNUM_CUDA_SYNC is set, so every launch waits for the GPU: unset it to benchmark")
    mode = MODES[args.mode]
    command = " ".join(["python -m bench.gpu", *(sys.argv[1:] if argv is None else argv)])
    result = {"command": command, "mode": args.mode, "settings": asdict(mode), "environment": gpu_environment(),
              "workloads": WORKLOADS, "rows": [], "complete": False}
    if args.device_check and device_problem():
        result["device_check"] = device_problem()
        args.out.write_text(json.dumps(result, indent=1))  # the report says why nothing was measured
        sys.exit(f"bench.gpu --device-check: no GPU to benchmark: {result['device_check']}")
    if torch is None:
        sys.exit("bench.gpu: needs PyTorch (python -m pip install '.[bench]')")

    def log(line):
        print(line, file=sys.stderr, flush=True)

    rng = np.random.default_rng(0)
    groups = [lambda: run_ops(gemm_cases(mode, rng), mode, args.only, log), lambda: run_epochs(mode, args.only, log),
              lambda: run_ops(conv_cases(mode, rng), mode, args.only, log),
              lambda: run_ops(softmax_cases(mode, rng), mode, args.only, log)]
    for i, group in enumerate(groups):
        result["rows"] += group()
        result["complete"] = i == len(groups) - 1
        args.out.write_text(json.dumps(result, indent=1))
    failed = [f"{r['name']} [{r['impl']}]: {r['failed']}" for r in result["rows"] if "failed" in r]
    log(f"wrote {args.out}" + "".join(f"\nFAILED {line}" for line in failed))
    if failed:
        sys.exit(f"bench.gpu: {len(failed)} row{'s' * (len(failed) > 1)} failed (see above)")
    return result


if __name__ == "__main__":
    main()
