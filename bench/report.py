"""The results as JSON (every sample summary) and as a markdown report: machine, the issue's
targets with the measured values beside them, then the end-to-end and micro tables."""
import json
import re
from pathlib import Path

IMPLS = {"cpp": "deepnum cpp", "numba": "deepnum numba", "numpy": "hand NumPy", "torch": "PyTorch"}
SPEEDUPS = (("cpp", "numpy"), ("cpp", "torch"), ("numba", "numpy"), ("numba", "torch"))

# Issue 4's targets (2-core machine, float32, 2 threads)
EPOCH_TARGETS = (  # (workload, benchmark name, PyTorch and hand NumPy as measured in the issue, target seconds)
    ("logistic 784→10, batch 600", "epoch logistic b600", "0.06–0.08 s", "—", 0.025),
    ("FC 784-100-10 sigmoid, batch 10", "epoch fc-sigmoid b10", "1.8–2.0 s", "0.6 s", 0.3),
    ("MLP 784-500-10 tanh, batch 20", "epoch mlp b20", "2.1–2.5 s", "4.0 s", 1.0),
    ("n3-relu (conv20-pool-conv40-pool-FC100-softmax), batch 10", "epoch n3-relu b10", "19–20 s", "—", 4.0),
    ("n3-relu, batch 100", "epoch n3-relu b100", "11 s", "—", 3.5),
)
KERNEL_TARGETS = (  # (kernels, pattern on benchmark names, compared with, minimum speed-up of deepnum cpp)
    ("GEMM 512–2048 square", r"^gemm (512|1024|2048)x\S+ a\.b$", "numpy", 0.9),
    ("GEMM at the seed Dense shapes, incl. the transposed operands of backward", r"^gemm \S+ (x\.w|dy\.wT|xT\.dy)$",
     "numpy", 1.0),
    ("conv2d fwd+bwd, batch 10, n3 shapes", r"^conv2d N10 .* fwd\+bwd$", "torch", 3.0),
    ("max-pool fwd+bwd", r"^max_pool2d .* fwd\+bwd$", "numpy", 5.0),
    ("softmax-NLL fwd+bwd", r"^softmax_nll .* fwd\+bwd$", "numpy", 3.0),
)


# Issue 17's ratios, the same on every machine class: (what, epoch benchmarks, deepnum's implementation, the other one,
# minimum speed-up)
RATIO_TARGETS = (
    ("n3-relu at batch 10", r"^epoch n3-relu b10$", "cpp", "torch", 3.0),
    ("n3-relu at batch 100", r"^epoch n3-relu b100$", "cpp", "torch", 2.0),
    ("numba on every seed workload", r"^epoch ", "numba", "numpy", 1.0),
    ("numba on every seed workload", r"^epoch ", "numba", "cpp", 0.5),
)

GAPS = Path(__file__).with_name("GAPS.md")  # causes and next steps of the unmet targets, written by hand (the
# AVX-512 machine's; python -m bench --gaps names another machine's)


def fmt_time(seconds):
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    return f"{seconds * 1e3:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def _cell(row):
    if row is None:
        return "—"
    spread = (row["q3"] - row["q1"]) / 2 / row["median"]
    return f"{fmt_time(row['median'])} ±{spread:.0%}"


def _speedup(impls, mine, other):
    """How many times faster ``mine`` ran than ``other`` (their median times, same run)."""
    if mine in impls and other in impls:
        return impls[other]["median"] / impls[mine]["median"]
    return None


def _x(ratio):
    return "—" if ratio is None else f"{ratio:.3g}×"


def _table(header, lines):
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + \
           ["| " + " | ".join(line) + " |" for line in lines] + [""]


def _group(rows, kind):
    """{(name, threads): {impl: row}}, benchmarks in the order they ran, then by thread count."""
    groups = {}
    for row in rows:
        if row["kind"] == kind:
            groups.setdefault((row["name"], row["threads"]), {})[row["impl"]] = row
    order = {name: i for i, name in enumerate(dict.fromkeys(name for name, _ in groups))}
    return dict(sorted(groups.items(), key=lambda item: (order[item[0][0]], item[0][1])))


def _ratio_line(what, group, threads, pattern, mine, other, target, target_text):
    """A target's row: the worst speed-up of ``mine`` over ``other`` among the benchmarks of ``group`` matching
    ``pattern`` at ``threads``, and how many meet ``target``; None where none was measured."""
    ratios = [(_speedup(impls, mine, other), name) for (name, t), impls in group.items()
              if t == threads and re.search(pattern, name)]
    ratios = [(r, name) for r, name in ratios if r is not None]
    if not ratios:
        return None
    worst, where = min(ratios)
    met = sum(r >= target for r, _ in ratios)
    return [what, target_text, f"{_x(worst)} ({where})", f"{met} of {len(ratios)}",
            "yes" if met == len(ratios) else "no"]


def _targets(groups, threads):
    out = [f"## Targets (issue 4), measured at {threads} thread{'s' * (threads > 1)}", ""]
    lines = []
    for workload, name, torch_then, numpy_then, target in EPOCH_TARGETS:
        impls = groups["epoch"].get((name, threads))
        if impls is None:
            continue
        cpp = impls.get("cpp")
        lines.append([workload, torch_then, numpy_then, f"≤ {target:g} s", _cell(cpp), _cell(impls.get("torch")),
                      _cell(impls.get("numpy")), _x(_speedup(impls, "cpp", "torch")),
                      "—" if cpp is None else ("yes" if cpp["median"] <= target else "no")])
    out += _table(["workload (s per epoch)", "PyTorch (issue)", "hand NumPy (issue)", "target", "deepnum cpp",
                   "PyTorch", "hand NumPy", "cpp vs PyTorch", "met"], lines)
    lines = [_ratio_line(kernels, groups["micro"], threads, pattern, "cpp", other, target,
                         f"≥ {target:g}× {IMPLS[other]}")
             for kernels, pattern, other, target in KERNEL_TARGETS]
    out += _table(["kernels (deepnum cpp)", "target", "worst case", "cases meeting it", "met"],
                  [line for line in lines if line])
    lines = [_ratio_line(what, groups["epoch"], threads, pattern, mine, other, target,
                         f"{IMPLS[mine]} ≥ {target:g}× {IMPLS[other]}")
             for what, pattern, mine, other, target in RATIO_TARGETS]
    lines = [line for line in lines if line]
    if lines:
        out += [f"Issue 17's ratios, at {threads} thread{'s' * (threads > 1)}:", ""]
        out += _table(["epochs", "target", "worst case", "cases meeting it", "met"], lines)
    return out


def _results(groups, extra=()):
    """One line per (benchmark, threads): the four times, the ``extra`` columns (header, cell
    function), then the speed-ups."""
    header = ["benchmark", "threads", *IMPLS.values(), *(h for h, _ in extra),
              *(f"{mine} ×{'NumPy' if other == 'numpy' else 'PyTorch'}" for mine, other in SPEEDUPS)]
    return _table(header, [[name, str(threads), *(_cell(impls.get(impl)) for impl in IMPLS),
                            *(cell(impls) for _, cell in extra),
                            *(_x(_speedup(impls, mine, other)) for mine, other in SPEEDUPS)]
                           for (name, threads), impls in groups.items()])


def _gflops(impl):
    def cell(impls):
        row = impls.get(impl)
        return "—" if row is None else f"{row['flop'] / row['median'] / 1e9:.1f}"
    return cell


def _samples(impls):
    return f"{next(iter(impls.values()))['samples']:,} samples"


def markdown(result):
    env, settings, rows = result["environment"], result["settings"], result["rows"]
    groups = {kind: _group(rows, kind) for kind in ("epoch", "micro")}
    threads = 2 if 2 in result["threads"] else max(result["threads"])
    out = ["# deepnum benchmarks", "",
           f"Mode **{result['mode']}**, produced by `{result['command']}` (from the repository root).", ""]
    out += _table(["", ""], [
        ["date", env["date"]],
        ["machine", f"{env['cpu']} ({', '.join(env['simd']) or 'no AVX2'}), {env['cores']} cores, "
                    f"load average {env['load_average']:.2f} at the start"],
        ["versions", f"Python {env['python']}, NumPy {env['numpy']} ({env['blas']}), Numba {env['numba']}, "
                     f"PyTorch {env['torch'] or 'not installed'}, deepnum {env['deepnum']}"],
        ["commit", env["commit"] or "unknown"],
        ["threads", ", ".join(map(str, result["threads"])) + " — one process per count, with "
                    "deepnum.set_num_threads, torch.set_num_threads and OMP/OPENBLAS/MKL/NUMBA_NUM_THREADS set"],
        ["method", f"float32 throughout; each result checked against deepnum's NumPy reference before timing; "
                   f"warm-up (Numba compilation, first touch) excluded; micro: median of {settings['repeats']} "
                   f"samples of ≥ {settings['min_time'] * 1e3:g} ms each; epochs: the samples timed (column "
                   f"'measured on') in {settings['epoch_segments']} segments, each scaled to 50,000 samples, "
                   f"median; ± is half the interquartile range"
                   + (f"; {result['rounds']} rounds of these processes, in turn, and each benchmark's median round"
                      if result.get("rounds", 1) > 1 else "")],
        ["speed-ups", "the other implementation's median time ÷ deepnum's, both from this run: > 1 means deepnum "
                      "is faster"],
    ])
    out += _targets(groups, threads)
    if result.get("gaps"):
        out += [result["gaps"], ""]
    out += ["## End-to-end: time per 50,000-sample training epoch", ""]
    out += _results(groups["epoch"], [("measured on", _samples)])
    out += ["## Micro-benchmarks", "",
            "Shapes: gemm M×K×N (x.w, dy.wT, xT.dy are a dense layer's forward, dx and dw products); "
            "linear N batch, n_in->n_out; conv2d N batch, C×H×W->K filters, 5×5 kernels.", ""]
    for op in dict.fromkeys(row["op"] for row in rows if row["kind"] == "micro"):
        op_rows = [row for row in rows if row.get("op") == op]
        gflops = [("cpp GFLOP/s", _gflops("cpp")), ("NumPy GFLOP/s", _gflops("numpy"))] if op_rows[0]["flop"] else []
        out += [f"### {op}", ""] + _results(_group(op_rows, "micro"), gflops)
    return "\n".join(out)


def merge(runs, command, rounds=1, gaps=GAPS):
    """One result from the runs at each thread count (``bench.run.measure``). A benchmark measured in several
    rounds (``python -m bench --rounds``) keeps the round whose median is the median of the rounds' medians
    (the lower one of the middle two for an even count), with every round's median in ``round_medians``."""
    measured = {}
    for run in runs:
        for row in run["rows"]:
            measured.setdefault((row["kind"], row["name"], row["impl"], row["threads"]), []).append(row)
    rows = []
    for same in measured.values():
        kept = sorted(same, key=lambda row: row["median"])[(len(same) - 1) // 2]
        rows.append(kept if len(same) == 1 else {**kept, "round_medians": [row["median"] for row in same]})
    return {"command": command, "mode": runs[0]["mode"], "settings": runs[0]["settings"],
            "rounds": rounds,
            "threads": sorted({run["threads"] for run in runs}), "environment": runs[0]["environment"],
            "gaps": gaps.read_text().rstrip() if gaps and gaps.exists() else None, "rows": rows}


def write(result, md_path, json_path):
    md_path.write_text(markdown(result))
    json_path.write_text(json.dumps(result, indent=1))


def main(argv=None):
    """python -m bench.report RESULTS.json --md RESULTS.md [--gaps GAPS.md]: a run's report written again from its
    JSON, with the hand-written causes of its unmet targets taken from GAPS (edited after the run)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.report", description=main.__doc__.split(": ", 1)[1])
    parser.add_argument("json", type=Path)
    parser.add_argument("--md", type=Path, required=True)
    parser.add_argument("--gaps", type=Path)
    args = parser.parse_args(argv)
    result = json.loads(args.json.read_text())
    if args.gaps or "gaps" not in result:  # runs from before --gaps included bench/GAPS.md
        result["gaps"] = (args.gaps or GAPS).read_text().rstrip()
    write(result, args.md, args.json)


if __name__ == "__main__":
    main()
