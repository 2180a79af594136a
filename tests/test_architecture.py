"""The layer rules of docs/ARCHITECTURE.md, checked on the package's import statements (all of them,
function-level imports included): ops contract -> backends -> ops -> layers -> model -> training ->
recipes/CLI, each importing only from the layers below it."""
import ast
import importlib.util
from pathlib import Path

import pytest

# where the package's files are (an editable install has two places), found without importing it
ROOTS = [Path(p).resolve() for p in importlib.util.find_spec("deepnum").submodule_search_locations]

BACKENDS = {"_backend", "_host", "_cudabackend", "_typing", "_compose", "_reference", "_numba", "_core", "_contract",
            "_cuda"}
OPS = {"ops"}
MODEL = {"init", "nn", "optim", "models", "training", "checkpoint", "ensemble", "mpi"}
FRONT = {"__init__", "cuda", "datasets", "recipes", "cli", "plots", "distributed", "sweep"}
NO_NUMPY = {"nn", "optim", "models", "training"}  # model state only through the array namespace


def module_name(path):
    """The layer unit of a file: its first component under the package (``_numba`` for _numba/gemm.py)."""
    return relative(path).with_suffix("").parts[0]


def relative(path):
    return next(path.relative_to(r) for r in ROOTS if path.is_relative_to(r))


def _is_module(dotted):
    parts = dotted.split(".")[1:]
    return bool(parts) and any(r.joinpath(*parts).with_suffix(".py").exists() or r.joinpath(*parts).is_dir()
                               or any(r.joinpath(*parts[:-1]).glob(parts[-1] + ".*")) for r in ROOTS)


def imports(path):
    """(first components of the deepnum modules, other top-level modules) that ``path`` imports;
    "__init__" stands for a name taken from the package itself."""
    rel = relative(path).with_suffix("").parts
    package = ["deepnum", *rel[:-1]] if rel[-1] != "__init__" else ["deepnum", *rel[:-1]]
    targets, outside = [], set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                (targets if alias.name.split(".")[0] == "deepnum" else [None]).append(alias.name)
                if alias.name.split(".")[0] != "deepnum":
                    outside.add(alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if node.module.split(".")[0] != "deepnum":
                    outside.add(node.module.split(".")[0])
                    continue
                base = node.module
            else:
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                targets.append(full if _is_module(full) else base)
    inside = set()
    for t in filter(None, targets):
        parts = t.split(".")
        inside.add(parts[1] if len(parts) > 1 else "__init__")
    return inside, outside


MODULES = {}
for p in sorted(p for r in ROOTS for p in r.rglob("*.py")):
    MODULES.setdefault(module_name(p), []).append(p)


def test_every_module_has_a_layer():
    assert set(MODULES) <= BACKENDS | OPS | MODEL | FRONT, set(MODULES) - (BACKENDS | OPS | MODEL | FRONT)


ALLOWED = {
    **{m: BACKENDS for m in BACKENDS},  # no ops, no model layer, nothing from the package's __init__
    "ops": BACKENDS,  # ops knows no model
    **{m: OPS | MODEL | {"_typing"} for m in MODEL},  # kernels only through ops; the type names from anywhere
}


@pytest.mark.parametrize("module", sorted(set(MODULES) & set(ALLOWED)))
def test_layer_rules(module):
    for path in MODULES[module]:
        inside, outside = imports(path)
        inside.discard(module)
        assert inside <= ALLOWED[module], f"{relative(path)} imports {sorted(inside - ALLOWED[module])}"
        if module in NO_NUMPY:
            assert "numpy" not in outside, f"{relative(path)} imports numpy: model state goes through ops.array_namespace"
