"""Smoke test of the benchmark harness (bench/): tiny sizes, in this process; no timing assertions."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

import deepnum


def test_bench_smoke_writes_rows_and_report(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent))  # bench/ is not installed
    from bench import compare, report, run

    before = deepnum.get_num_threads()
    deepnum.set_num_threads(1)  # quickest, and least upset by a busy machine
    try:
        result = report.merge([run.measure("smoke", log=lambda line: None)], "smoke test")
    finally:
        deepnum.set_num_threads(before)
    report.write(result, tmp_path / "RESULTS.md", tmp_path / "RESULTS.json")

    rows = result["rows"]
    assert {"cpp", "numba", "numpy"} <= {row["impl"] for row in rows}
    assert {"gemm", "linear", "conv2d", "max_pool2d", "softmax_nll", "sigmoid", "relu", "dropout", "sgd",
            "adam"} <= {row["op"] for row in rows if row["kind"] == "micro"}
    assert len({row["name"] for row in rows if row["kind"] == "epoch"}) == 5
    assert all(row["median"] > 0 for row in rows)
    md = (tmp_path / "RESULTS.md").read_text()
    assert "## Targets" in md and "| epoch n3-relu b100 | " in md and "### conv2d" in md
    assert len(json.loads((tmp_path / "RESULTS.json").read_text())["rows"]) == len(rows)

    lines = compare.compare([tmp_path / "RESULTS.json"], [tmp_path / "RESULTS.json"])  # a run against itself
    assert "micro: geometric mean 1.000" in lines[1] and any("epoch n3-relu b100 [cpp, 1t]" in l for l in lines)
    outside = json.loads((tmp_path / "RESULTS.json").read_text())
    outside["environment"]["commit"] = None  # a run outside a git checkout
    (tmp_path / "outside.json").write_text(json.dumps(outside))
    assert "after (?, 1 files)" in compare.compare([tmp_path / "RESULTS.json"], [tmp_path / "outside.json"])[0]


def _timed(kind, name, impl, median, **extra):
    return {"kind": kind, "name": name, "impl": impl, "median": median, "q1": 0.9 * median, "q3": 1.1 * median,
            "min": 0.8 * median, "max": 1.2 * median, "repeats": 10, **extra}


def _epoch(name, batch, impl, median):
    return _timed("epoch", name, impl, median, batch=batch, samples=20_000, workload=name.split()[1])


def test_merge_keeps_each_benchmarks_median_round(tmp_path, monkeypatch):
    """python -m bench --rounds 3: per (benchmark, impl, threads), the round with the middle median is kept,
    with all three medians beside it; the report says how it was made and includes the --gaps text."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent))
    from bench import report

    env = {"date": "2026-12-07 06:00", "cpu": "a CPU", "simd": ["avx2", "fma"], "cores": 2, "load_average": 0.1,
           "python": "3.11", "numpy": "2.4", "blas": "openblas", "numba": "0.68", "torch": None,
           "deepnum": "0.1.0", "commit": "abc1234"}
    settings = {"repeats": 10, "min_time": 0.02, "epoch_segments": 5}

    def run(impl, median):
        return {"environment": env, "mode": "full", "settings": settings, "threads": 2,
                "rows": [_epoch("epoch logistic b600", 600, impl, median) | {"threads": 2}]}

    gaps = tmp_path / "GAPS-other.md"
    gaps.write_text("### Targets not met here\n\nBecause.")
    runs = [run("cpp", 0.012), run("numpy", 0.03), run("cpp", 0.010), run("numpy", 0.05), run("cpp", 0.011),
            run("numpy", 0.02)]
    result = report.merge(runs, "python -m bench --rounds 3", rounds=3, gaps=gaps)
    kept = {row["impl"]: row for row in result["rows"]}
    assert len(result["rows"]) == 2
    assert kept["cpp"]["median"] == 0.011 and kept["cpp"]["round_medians"] == [0.012, 0.010, 0.011]
    assert kept["numpy"]["median"] == 0.03
    md = report.markdown(result)
    assert "3 rounds of these processes" in md and "Because." in md
    assert "3 rounds" not in report.markdown(report.merge(runs[:2], "one round", gaps=gaps))
    assert "| numba on every seed workload |" not in md  # no numba rows, no numba targets

    report.write(result, tmp_path / "R.md", tmp_path / "R.json")
    gaps.write_text("### Targets not met here\n\nBecause, rewritten.")
    report.main([str(tmp_path / "R.json"), "--md", str(tmp_path / "again.md"), "--gaps", str(gaps)])
    again = (tmp_path / "again.md").read_text()
    assert "Because, rewritten." in again and "Because.\n" not in again
    assert again.replace("Because, rewritten.", "Because.") == md


def test_gpu_report_from_a_fake_run(tmp_path, monkeypatch):
    """bench.gpu_report on a made-up bench.gpu result: the targets, each table, and rows that did not run."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent.parent))
    from bench import gpu_report

    flop = 2.0 * 4096**3
    rows = [_timed("gemm", "gemm 4096x4096x4096", "cuda", 0.02, flop=flop),
            _timed("gemm", "gemm 4096x4096x4096", "torch", 0.008, flop=flop),
            _timed("gemm", "gemm 4096x4096x4096", "torch-tf32", 0.004, flop=flop),
            _epoch("epoch logistic b600", 600, "cuda", 0.004), _epoch("epoch logistic b600", 600, "cpp", 0.01),
            _epoch("epoch n3-relu b10", 10, "cuda", 1.5), _epoch("epoch n3-relu b10", 10, "torch", 2.0),
            _epoch("epoch n3-relu b100", 100, "cuda", 0.2), _epoch("epoch n3-relu b100", 100, "cpp", 0.9),
            {"kind": "epoch", "name": "epoch lenet5 b500", "impl": "cuda", "batch": 500, "samples": 20_000,
             "failed": "RuntimeError: CUDA error: out of memory"},
            _epoch("epoch lenet5 b500", 500, "cpp", 3.0),
            {"kind": "conv2d", "name": "conv2d N10 1x28x28->20 k5 fwd", "impl": "cuda", "flop": 1e8,
             "skipped": "deepnum's cuda backend is unavailable: no CUDA device"},
            _timed("conv2d", "conv2d N10 1x28x28->20 k5 fwd", "torch", 1e-4, flop=1e8)]
    env = {"date": "2026-12-01 12:00", "device": "NVIDIA H200 (compute capability 9.0, 139 GiB)",
           "device_unavailable": None, "emulated": False, "torch_device": "NVIDIA H200", "driver": "580.159.04",
           "driver_cuda": "13.0", "torch_cuda": "13.0", "cudnn": 91000, "cpu": "a CPU", "cores": 16,
           "threads": {"deepnum": 16}, "python": "3.12.3", "numpy": "2.5.2", "torch": "2.11.0", "deepnum": "0.1.0",
           "commit": "abc1234"}
    settings = {"repeats": 10, "min_time": 0.05, "epoch_samples": 20_000, "epoch_segments": 5}
    result = {"command": "python -m bench.gpu --out x.json", "mode": "full", "settings": settings,
              "environment": env, "rows": rows, "complete": False,
              "workloads": [["logistic", "logistic", 600], ["lenet5", "lenet5", 500], ["n3-relu", "n3-relu", 10],
                            ["n3-relu", "n3-relu", 100]]}
    (tmp_path / "gpu.json").write_text(json.dumps(result))
    gpu_report.main([str(tmp_path / "gpu.json"), "--md", str(tmp_path / "RESULTS-gpu.md")])
    md = (tmp_path / "RESULTS-gpu.md").read_text()

    assert "| device | NVIDIA H200 (compute capability 9.0, 139 GiB); PyTorch sees NVIDIA H200 |" in md
    assert "| driver | 580.159.04 (CUDA 13.0 supported) |" in md and "| commit | abc1234 |" in md
    assert "**Incomplete run**: it stopped after 13 rows" in md
    assert "| fp32 gemm 4096³ (TF32 off) | ≥ 50% of cuBLAS | 40% of cuBLAS (6.87 vs 17.2 TFLOP/s) | no |" in md
    assert "| n3-relu epoch, batch 10 | ≤ 1 s | 1.5 s ±10% | no |" in md
    assert "| n3-relu epoch, batch 100 | ≤ 0.3 s | 200 ms ±10% | yes |" in md
    assert "| logistic regression (batch 600) | ≥ 200 epochs/s | 250 epochs/s (4 ms ±10% an epoch) | yes |" in md
    assert ("| GPU training vs cpp on the host, every recipe with batch ≥ 100 | faster (cpp time ÷ GPU time > 1) | "
            "lenet5 b500: deepnum cuda FAILED (see Not measured) | — |") in md
    assert "| gemm 4096x4096x4096 | 20 ms ±10% | 8 ms ±10% | 4 ms ±10% | 6.87 | 17.2 | 34.4 | 40% |" in md
    assert "| epoch n3-relu b100 | 200 ms ±10% | — | 900 ms ±10% | 20,000 | — | 4.5× |" in md
    assert "- deepnum cuda: FAILED: RuntimeError: CUDA error: out of memory (1 row: epoch lenet5 b500)" in md
    assert "- deepnum cuda: deepnum's cuda backend is unavailable: no CUDA device (1 row: conv2d N10" in md


def test_gpu_bench_device_check_fails_clearly_without_a_gpu(tmp_path):
    """python -m bench.gpu --device-check exits 1 naming what is missing (no GPU, the emulated build, or
    no PyTorch or one without a GPU) before timing anything, and leaves a JSON that says so."""
    from deepnum import cuda

    if cuda.is_available() and not cuda.is_emulated():
        pytest.skip("a GPU is here: tools/gpu-check.sh runs the device check for real")
    out = tmp_path / "gpu.json"
    done = subprocess.run([sys.executable, "-m", "bench.gpu", "--quick", "--device-check", "--out", str(out)],
                          cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True)
    assert done.returncode == 1, done.stderr
    result = json.loads(out.read_text())
    assert result["rows"] == [] and result["device_check"]
    assert f"bench.gpu --device-check: no GPU to benchmark: {result['device_check']}" in done.stderr
    if not cuda.is_available():
        assert cuda.unavailable_reason() in result["device_check"]


def test_mpi_bench_runs_both_settings_on_a_tiny_set(tmp_path):
    """python -m bench.mpi end to end on 200 images: the single process, mpirun -n 2, and the report."""
    from test_datasets_cli import tiny_idx_mnist

    data = tiny_idx_mnist(tmp_path / "data", n_train=10200, n_test=10)
    md, js = tmp_path / "MPI.md", tmp_path / "MPI.json"
    done = subprocess.run([sys.executable, "-m", "bench.mpi", "--data", str(data), "--train-size", "200", "--epochs",
                           "1", "--md", str(md), "--json", str(js)], capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(js.read_text())
    assert result["n_params"] == 85670 and result["train_size"] == 200 and set(result) >= {"single", "parallel"}
    text = md.read_text()
    assert "| 1 process × 2 threads |" in text and "| 2 ranks × 1 thread |" in text and "| 64 |" in text
