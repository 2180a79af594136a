"""The markdown report of a ``python -m bench.gpu`` run: machine and versions, issue 13's targets with
the measured values beside them, then every row (rows that could not run, with the reason).

    python -m bench.gpu_report FILE.json --md RESULTS-gpu.md
"""
import argparse
import json
from pathlib import Path

from .report import _cell, _table

LABELS = {"cuda": "deepnum cuda", "torch": "PyTorch", "torch-tf32": "PyTorch TF32", "cpp": "deepnum cpp (host)"}


def _rows(result):
    """{(kind, name): {impl: row}} in the order the rows ran."""
    groups = {}
    for row in result["rows"]:
        groups.setdefault((row["kind"], row["name"]), {})[row["impl"]] = row
    return groups


def _time(row):
    if row is None:
        return "—"
    if "median" in row:
        return _cell(row)
    return "skipped" if "skipped" in row else "FAILED"


def _speedup(impls, mine, other):
    """``other``'s median ÷ ``mine``'s (> 1: mine is faster), or None where either has no time."""
    a, b = impls.get(mine, {}), impls.get(other, {})
    return b["median"] / a["median"] if "median" in a and "median" in b else None


def _x(ratio):
    return "—" if ratio is None else f"{ratio:.3g}×"


def _tflops(row):
    return f"{row['flop'] / row['median'] / 1e12:.3g}" if row and "median" in row and row.get("flop") else "—"


def _why(row):
    """Why a row has no time, or None."""
    if row is None:
        return "not in this run"
    return row.get("skipped") or (f"FAILED: {row['failed']}" if "failed" in row else None)


def _short(row, impl):
    """A target's cell for a row without a time: its reason stays in "Not measured"."""
    if row is None:
        return "not in this run"
    return f"{LABELS[impl]} {'skipped' if 'skipped' in row else 'FAILED'} (see Not measured)"


# ---- the targets (issue 13, on an H200) --------------------------------------------------------

def _gemm_target(groups):
    impls = groups.get(("gemm", "gemm 4096x4096x4096"), {})
    mine, cublas = impls.get("cuda"), impls.get("torch")
    for impl, row in (("cuda", mine), ("torch", cublas)):
        if _why(row):
            return _short(row, impl), "—"
    ratio = cublas["median"] / mine["median"]
    return (f"{ratio:.0%} of cuBLAS ({_tflops(mine)} vs {_tflops(cublas)} TFLOP/s)",
            "yes" if ratio >= 0.5 else "no")


def _epoch(groups, name):
    return groups.get(("epoch", name), {})


def _epoch_target(groups, name, limit):
    row = _epoch(groups, name).get("cuda")
    if _why(row):
        return _short(row, "cuda"), "—"
    return _cell(row), "yes" if row["median"] <= limit else "no"


def _logistic_target(groups):
    row = _epoch(groups, "epoch logistic b600").get("cuda")
    if _why(row):
        return _short(row, "cuda"), "—"
    rate = 1 / row["median"]
    return f"{rate:.3g} epochs/s ({_cell(row)} an epoch)", "yes" if rate >= 200 else "no"


def _faster_than_cpp_target(groups, workloads):
    cases, missing = [], []
    for label, _, batch in workloads:
        if batch < 100:
            continue
        name = f"epoch {label} b{batch}"
        impls = _epoch(groups, name)
        ratio = _speedup(impls, "cuda", "cpp")
        if ratio is None:
            impl = "cuda" if _why(impls.get("cuda")) else "cpp"
            missing.append(f"{name.removeprefix('epoch ')}: {_short(impls.get(impl), impl)}")
        else:
            cases.append((name, ratio))
    if missing or not cases:
        return "; ".join(missing) or "no workload with batch ≥ 100", "—"
    text = ", ".join(f"{name.removeprefix('epoch ')} {ratio:.3g}×" for name, ratio in cases)
    return text, "yes" if all(ratio > 1 for _, ratio in cases) else "no"


def targets(groups, workloads):
    lines = [["fp32 gemm 4096³ (TF32 off)", "≥ 50% of cuBLAS", *_gemm_target(groups)],
             ["n3-relu epoch, batch 10", "≤ 1 s", *_epoch_target(groups, "epoch n3-relu b10", 1.0)],
             ["n3-relu epoch, batch 100", "≤ 0.3 s", *_epoch_target(groups, "epoch n3-relu b100", 0.3)],
             ["logistic regression (batch 600)", "≥ 200 epochs/s", *_logistic_target(groups)],
             ["GPU training vs cpp on the host, every recipe with batch ≥ 100", "faster (cpp time ÷ GPU time > 1)",
              *_faster_than_cpp_target(groups, workloads)]]
    return ["## Targets (issue 13)", ""] + _table(["target", "wanted", "measured (deepnum cuda)", "met"], lines)


# ---- the tables ---------------------------------------------------------------------------------

def _op_table(groups, kind, impls, extra):
    lines = [[name, *(_time(row.get(i)) for i in impls), *(cell(row) for _, cell in extra)]
             for (k, name), row in groups.items() if k == kind]
    return _table(["benchmark", *(LABELS[i] for i in impls), *(h for h, _ in extra)], lines) if lines else []


def _not_measured(groups):
    reasons = {}
    for (_, name), impls in groups.items():
        for impl, row in impls.items():
            if _why(row):
                reasons.setdefault((impl, _why(row)), []).append(name)
    return [f"- {LABELS[impl]}: {why} ({len(names)} row{'s' * (len(names) > 1)}: {', '.join(names)})"
            for (impl, why), names in reasons.items()]


def markdown(result):
    env, settings = result["environment"], result["settings"]
    groups = _rows(result)
    out = ["# deepnum on the GPU", "",
           f"Mode **{result['mode']}**, produced by `{result['command']}` (from the repository root); the report by "
           "`python -m bench.gpu_report`.", ""]
    if env["emulated"]:
        out += ["**Emulated build** (deepnum.cuda.is_emulated()): the cuda rows time the CPU emulation, not a GPU.", ""]
    if "device_check" in result:
        out += [f"**No GPU to benchmark** (`--device-check`): {result['device_check']}.", ""]
    elif not result["complete"]:
        out += [f"**Incomplete run**: it stopped after {len(result['rows'])} rows (time limit?); the rest is missing.",
                ""]
    device = env["device"] or f"none ({env['device_unavailable']})"
    out += _table(["", ""], [
        ["date", env["date"]],
        ["device", f"{device}; PyTorch sees {env['torch_device'] or 'no GPU'}"],
        ["driver", f"{env['driver'] or 'no nvidia-smi'} (CUDA {env['driver_cuda'] or '—'} supported)"],
        ["CUDA", f"PyTorch built for CUDA {env['torch_cuda'] or '—'}, cuDNN {env['cudnn'] or '—'}"],
        ["host", f"{env['cpu']}, {env['cores']} cores; deepnum cpp threads {env['threads']['deepnum']}"],
        ["versions", f"Python {env['python']}, NumPy {env['numpy']}, PyTorch {env['torch'] or 'not installed'}, "
                     f"deepnum {env['deepnum']}"],
        ["commit", env["commit"] or "unknown"],
        ["method", f"float32; every result checked first (ops: relative error against float64 PyTorch; epochs: one "
                   f"step with lr 1 against the NumPy reference); one warm-up; median of {settings['repeats']} samples "
                   f"of ≥ {settings['min_time'] * 1e3:g} ms, timed between device synchronisations; ± is half the "
                   f"interquartile range; TF32 off except in the TF32 column; cuDNN benchmark mode on. Epochs: the "
                   f"samples timed in {settings['epoch_segments']} segments (one fit epoch each, its copy to the "
                   f"device included), each scaled to 50,000 samples; cpp in the same process, on all cores"],
        ["speed-ups", "the other implementation's median time ÷ deepnum cuda's, same run: > 1 means deepnum cuda "
                      "is faster"],
    ])
    out += targets(groups, result["workloads"])
    out += ["## fp32 gemm (n×n×n)", ""]
    out += _op_table(groups, "gemm", ("cuda", "torch", "torch-tf32"), [
        ("deepnum TFLOP/s", lambda r: _tflops(r.get("cuda"))), ("cuBLAS TFLOP/s", lambda r: _tflops(r.get("torch"))),
        ("cuBLAS TF32 TFLOP/s", lambda r: _tflops(r.get("torch-tf32"))),
        ("deepnum ÷ cuBLAS speed", lambda r: "—" if _speedup(r, "cuda", "torch") is None
         else f"{_speedup(r, 'cuda', 'torch'):.0%}")])
    out += ["## conv2d against cuDNN (5×5 kernels; N batch, C×H×W->K)", ""]
    out += _op_table(groups, "conv2d", ("cuda", "torch"), [
        ("deepnum TFLOP/s", lambda r: _tflops(r.get("cuda"))), ("vs PyTorch", lambda r: _x(_speedup(r, "cuda", "torch")))])
    out += ["## softmax-NLL against cross_entropy (N × classes)", ""]
    out += _op_table(groups, "softmax_nll", ("cuda", "torch"), [("vs PyTorch", lambda r: _x(_speedup(r, "cuda", "torch")))])
    out += ["## Training: time per 50,000-sample epoch", ""]
    out += _op_table(groups, "epoch", ("cuda", "torch", "cpp"), [
        ("samples timed", lambda r: f"{next(iter(r.values()))['samples']:,}"), ("vs PyTorch", lambda r: _x(_speedup(r, "cuda", "torch"))), ("vs cpp", lambda r: _x(_speedup(r, "cuda", "cpp")))])
    missing = _not_measured(groups)
    if missing:
        out += ["## Not measured", ""] + missing + [""]
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_report", description=__doc__.split("\n\n")[0])
    parser.add_argument("json", type=Path, help="the output of python -m bench.gpu")
    parser.add_argument("--md", type=Path, required=True, help="the markdown report to write")
    args = parser.parse_args(argv)
    args.md.write_text(markdown(json.loads(args.json.read_text())))
    print(f"wrote {args.md}")


if __name__ == "__main__":
    main()
