"""Smoke test of the benchmark harness (bench/): tiny sizes, in this process; no timing assertions."""
import json
from pathlib import Path

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
