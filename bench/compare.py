"""python -m bench.compare: is a change no slower? Two sets of ``bench.run`` results, before and after,
compared row by row.

Each side is one or more JSON files written by ``python -m bench.run OUT.json ...`` (or ``python -m
bench``); run the two trees alternately on one machine, several rounds each, so that a busy or
drifting machine slows both alike. For each benchmark (name, implementation, threads) present on both
sides, the best median over a side's files is taken, and after/before is printed: the geometric mean
per thread count and kind (micro, epoch), every epoch row, and the slowest rows.

    python -m bench.compare --before base-*.json --after new-*.json
"""
import argparse
import json
import math
from pathlib import Path


def best(paths):
    """{(name, impl, threads): the smallest median over the files} and the files' commits."""
    rows, commits = {}, set()
    for path in paths:
        data = json.loads(Path(path).read_text())
        commits.add(data.get("environment", {}).get("commit") or "?")  # None: run outside a git checkout
        for r in data["rows"]:
            key = (r["name"], r["impl"], r["threads"], r["kind"])
            rows[key] = min(rows.get(key, math.inf), r["median"])
    return rows, commits


def compare(before, after):
    """Lines of the comparison of two lists of result files."""
    (old, old_commits), (new, new_commits) = best(before), best(after)
    keys = sorted(set(old) & set(new))
    if not keys:
        raise SystemExit("bench.compare: the two sides have no benchmark in common")
    ratio = {k: new[k] / old[k] for k in keys}
    lines = [f"after ({', '.join(sorted(new_commits))}, {len(after)} files) / before ({', '.join(sorted(old_commits))}, "
             f"{len(before)} files), best median of each side; < 1: after is faster"]
    for threads in sorted({k[2] for k in keys}):
        for kind in ("micro", "epoch"):
            group = [ratio[k] for k in keys if k[2] == threads and k[3] == kind]
            if group:
                mean = math.exp(sum(math.log(v) for v in group) / len(group))
                lines.append(f"{threads} thread(s), {kind}: geometric mean {mean:.3f} over {len(group)} rows")
    for k in keys:
        if k[3] == "epoch":
            lines.append(f"  {k[0]} [{k[1]}, {k[2]}t]: {old[k] * 1e3:.1f} ms -> {new[k] * 1e3:.1f} ms ({ratio[k]:.3f})")
    slowest = sorted(keys, key=lambda k: -ratio[k])[:5]
    lines.append("slowest rows: " + ", ".join(f"{k[0]} [{k[1]}, {k[2]}t] {ratio[k]:.2f}" for k in slowest))
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", nargs="+", required=True, type=Path, help="result files of the old tree")
    parser.add_argument("--after", nargs="+", required=True, type=Path, help="result files of the new tree")
    args = parser.parse_args(argv)
    print("\n".join(compare(args.before, args.after)))


if __name__ == "__main__":
    main()
