"""Hyper-parameter sweeps: a recipe trained on every combination of some settings × seeds
(``deepnum sweep``), as tasks (:mod:`deepnum.distributed`) on a Dask cluster or one by one here.

Each run's weights and history go to ``out/<setting>_seed=<seed>/``; the table of the settings (their
validation accuracy — at the best validation epoch — and the test accuracy there, mean ± the standard
deviation over the seeds; empty or – where the data has no test set) to ``out/sweep.md`` and ``out/sweep.csv``, and its plot to ``out/sweep.png``.
"""
import csv
import importlib.util
import io
import itertools
import json
import math
from pathlib import Path

from . import checkpoint, distributed, training


def parse_values(text, option="--set"):
    """``"lr=0.01,0.03"`` → ("lr", [0.01, 0.03]); integers stay integers."""
    name, sep, values = text.partition("=")
    if not sep or not name or not values:
        raise ValueError(f"{option} {text}: give NAME=V1,V2,...")

    def number(v):
        try:
            return int(v)
        except ValueError:
            try:
                return float(v)
            except ValueError:
                raise ValueError(f"{option} {text}: {v!r} is not a number") from None

    return name, [number(v) for v in values.split(",")]


def grid(settings):
    """Every combination of ``settings`` ({name: [values]}), as dicts, the last name varying fastest."""
    names = list(settings)
    return [dict(zip(names, values)) for values in itertools.product(*(settings[n] for n in names))]


def run_name(setting, seed):
    """The run's directory name, e.g. "lr=0.1_l2=0_seed=2"."""
    return "_".join([*(f"{k}={v}" for k, v in setting.items()), f"seed={seed}"])


def runs(recipe, settings, seeds, options=None):
    """The sweep's runs: (directory names, :class:`deepnum.distributed.Task` objects), setting by setting, seed by seed;
    a ValueError for a setting that ``recipe`` (a name) does not have."""
    names, tasks = [], []
    for setting in grid(settings):
        run_options = {**(options or {}), **{k: v for k, v in setting.items() if k in ("epochs", "batch_size")}}
        recipe_settings = {k: v for k, v in setting.items() if k not in ("epochs", "batch_size")}
        for seed in seeds:
            task = distributed.Task(recipe, seed, recipe_settings, run_options)
            task.resolved().resolve(task.settings)
            names.append(run_name(setting, seed))
            tasks.append(task)
    return names, tasks


def sweep(client, recipe, settings, seeds, data, out, options=None, checkpoints=None, verbose=False):
    """Train ``recipe`` (a name) for every combination of ``settings`` ({name: [values]}: the recipe's settings,
    or ``epochs``/``batch_size``) × ``seeds`` on ``client`` (None: here, one by one); write every run's files and
    the table (see the module's docstring) to ``out`` and return the table's rows (dicts). ``checkpoints``: the
    directory the workers write each run's checkpoint under (as they see it; None: no checkpoints)."""
    out = Path(out)
    combos = grid(settings)
    names, tasks = runs(recipe, settings, seeds, options)
    paths = None if checkpoints is None else [Path(checkpoints) / n / "checkpoint.npz" for n in names]

    def save(i, trained):
        run = out / names[i]
        run.mkdir(parents=True, exist_ok=True)
        checkpoint.write_weights(run / "weights.npz", trained.architecture, trained.params)
        checkpoint.write_json(run / "history.json", dict(trained.history, seconds=trained.seconds,
                                                          threads=trained.threads))
        if verbose:
            print(f"{names[i]}: {training.accuracies(trained.history)} ({trained.seconds:.0f} s)", flush=True)

    trained = distributed.map_recipes(client, tasks, data, paths, save, verbose=False)
    rows = summarise(combos, seeds, trained)
    checkpoint.write_text(out / "sweep.md", markdown(rows, list(settings), recipe, options or {}))
    checkpoint.write_text(out / "sweep.csv", to_csv(rows, list(settings)))
    plot(rows, list(settings), out / "sweep.png", recipe)
    return rows


def summarise(combos, seeds, trained):
    """One row per setting: its validation and test accuracies per seed, their means and standard deviations."""
    rows = []
    for k, setting in enumerate(combos):
        runs = trained[k * len(seeds):(k + 1) * len(seeds)]
        valid = [1 - r.history["best_valid_error"] for r in runs]
        # without a test set (an .npz of one's own may have none): None in place of the test accuracies
        test = None if runs[0].test_error is None else [1 - r.test_error for r in runs]
        rows.append({"setting": setting, "seeds": list(seeds), "valid": valid, "test": test,
                     "valid_mean": _mean(valid), "valid_sd": _sd(valid), "test_mean": test and _mean(test),
                     "test_sd": test and _sd(test), "seconds": sum(r.seconds for r in runs)})
    return rows


def markdown(rows, names, recipe, options):
    """The text of ``sweep.md``: a Markdown table of ``rows`` (a row per setting, a column per name in ``names``),
    headed by the recipe and the run's ``options``; the best mean validation accuracy in bold."""
    best = max(range(len(rows)), key=lambda i: rows[i]["valid_mean"])
    run = ", ".join(f"{k}={v}" for k, v in options.items() if k != "device")
    lines = [f"Sweep of `{recipe}`{f' ({run})' if run else ''}: accuracy in %, mean ± standard deviation over "
             f"seeds {', '.join(map(str, rows[0]['seeds']))}; validation at the best validation epoch, test there. "
             f"**Bold**: the best mean validation accuracy.{'' if rows[0]['test'] else ' No test set (–).'}", "",
             "| " + " | ".join(names) + " | validation | test | per seed (validation / test) "
             "| seconds (the seeds together) |",
             "|" + "---|" * (len(names) + 4)]
    for i, r in enumerate(rows):
        valid = f"{100 * r['valid_mean']:.2f} ± {100 * r['valid_sd']:.2f}"
        tests = [None] * len(r["valid"]) if r["test"] is None else r["test"]
        per_seed = ", ".join(f"{100 * v:.2f} / {_percent(t)}" for v, t in zip(r["valid"], tests))
        test = "–" if r["test"] is None else f"{100 * r['test_mean']:.2f} ± {100 * r['test_sd']:.2f}"
        cells = [*(str(r["setting"][n]) for n in names), f"**{valid}**" if i == best else valid, test, per_seed,
                 f"{r['seconds']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_csv(rows, names):
    """The text of ``sweep.csv``: ``rows`` as CSV, a column per name in ``names``, then the seeds and the statistics."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*names, "seeds", "valid_mean", "valid_sd", "test_mean", "test_sd", "valid_per_seed",
                     "test_per_seed", "seconds"])
    for r in rows:
        writer.writerow([*(r["setting"][n] for n in names), " ".join(map(str, r["seeds"])),
                         *("" if r[k] is None else repr(r[k]) for k in ("valid_mean", "valid_sd", "test_mean",
                                                                          "test_sd")),
                         json.dumps(r["valid"]), "" if r["test"] is None else json.dumps(r["test"]),
                         f"{r['seconds']:.1f}"])
    return buffer.getvalue()


def plot(rows, names, path, recipe):
    """Each setting's accuracies: the seeds as dots, mean ± standard deviation as bars; validation and test."""
    if importlib.util.find_spec("matplotlib") is None:
        print(f"matplotlib is not installed: skipping {path} (pip install 'deepnum[plot]')")
        return
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(5.5, 1.3 * len(rows) + 2), 4.0))
    ax = fig.add_subplot()
    x = range(len(rows))
    for offset, key, label in ((-0.12, "valid", "validation"), (0.12, "test", "test")):
        if rows[0][key] is None:
            continue
        xs = [i + offset for i in x]
        ax.errorbar(xs, [100 * r[f"{key}_mean"] for r in rows], yerr=[100 * r[f"{key}_sd"] for r in rows],
                    fmt="o", capsize=4, label=f"{label} (mean ± sd)")
        for xi, r in zip(xs, rows):
            ax.plot([xi] * len(r[key]), [100 * v for v in r[key]], ".", color="grey", alpha=0.6)
    ax.set_xticks(list(x), ["\n".join(f"{n}={r['setting'][n]}" for n in names) for r in rows])
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"deepnum sweep {recipe}: {len(rows[0]['seeds'])} seeds per setting (grey: each)", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def _percent(accuracy):
    return "–" if accuracy is None else f"{100 * accuracy:.2f}"


def _mean(values):
    return math.fsum(values) / len(values)


def _sd(values):
    """The sample standard deviation (0 for one value)."""
    if len(values) < 2:
        return 0.0
    m = _mean(values)
    return math.sqrt(math.fsum((v - m) ** 2 for v in values) / (len(values) - 1))
