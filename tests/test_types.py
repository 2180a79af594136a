"""Type information: py.typed and the stubs of the compiled modules ship in the package; the stubs are exactly what
tools/stubs.py makes from the installed modules (so they cannot drift from the bindings); mypy finds no error in
the package and none in tests/typed_usage.py, the public API used as a user would, checked strictly; and that
example runs."""
import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import deepnum

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("deepnum_tools_stubs", REPO / "tools" / "stubs.py")
stubs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(stubs)
# where the installed package's files are (an editable install has two places: the sources and the built modules)
ROOTS = [Path(p) for p in importlib.util.find_spec("deepnum").submodule_search_locations]
REGENERATE = "the bindings changed: rebuild, run `python tools/stubs.py` and commit python/deepnum/*.pyi"


def _cuda_module():
    try:
        from deepnum import _cuda
    except ImportError:
        return None
    return _cuda


def test_py_typed_and_stubs_are_installed():
    for name in ("py.typed", "_core.pyi", "_contract.pyi", "_cuda.pyi"):
        assert any((root / name).is_file() for root in ROOTS), f"deepnum/{name} is not in the installed package {ROOTS}"


def _generated(tmp_path, module):
    stubs.generate(tmp_path, [module])
    return (tmp_path / "deepnum" / module.split(".")[1]).with_suffix(".pyi").read_text()


def _committed(module):
    return (REPO / "python" / "deepnum" / module.split(".")[1]).with_suffix(".pyi").read_text()


@pytest.mark.parametrize("module", ["deepnum._core", "deepnum._contract"])
def test_stubs_are_regenerated_exactly(tmp_path, module):
    assert _generated(tmp_path, module) == _committed(module), f"{module}: {REGENERATE}"


def test_cuda_stub_is_regenerated_exactly(tmp_path):
    cuda = _cuda_module()
    if cuda is None:
        pytest.skip(f"deepnum._cuda is not built here ({deepnum.cuda.unavailable_reason()}); its stub is the nvcc "
                    "build's")
    if cuda.EMULATED:
        pytest.skip("deepnum._cuda is the emulated build: test_emulated_cuda_stub checks it against the nvcc "
                    "build's stub")
    assert _generated(tmp_path, "deepnum._cuda") == _committed("deepnum._cuda"), f"deepnum._cuda: {REGENERATE}"


def _without_emulated_only(text):
    """The emulated _cuda's stub less what only that build has: its test-only functions, and EMULATED = True."""
    lines = text.splitlines(keepends=True)
    found = set()
    for node in reversed(ast.parse(text).body):
        if isinstance(node, ast.FunctionDef) and node.name in stubs.EMULATED_ONLY:
            found.add(node.name)
            del lines[node.lineno - 1:node.end_lineno]
    assert found == set(stubs.EMULATED_ONLY), f"the emulated _cuda lacks {set(stubs.EMULATED_ONLY) - found}"
    text = "".join(lines)
    assert text.count("\nEMULATED: bool = True\n") == 1, "the emulated _cuda's stub has no EMULATED: bool = True"
    return text.replace("\nEMULATED: bool = True\n", "\nEMULATED: bool = False\n")


@pytest.mark.emulated
def test_emulated_cuda_stub(tmp_path):
    cuda = _cuda_module()
    if cuda is None or not cuda.EMULATED:
        pytest.skip("needs the emulated deepnum._cuda (DEEPNUM_CUDA=EMULATE)")
    assert _without_emulated_only(_generated(tmp_path, "deepnum._cuda")) == _committed("deepnum._cuda"), (
        f"deepnum._cuda (emulated): more differs from the nvcc build's stub than {stubs.EMULATED_ONLY} and EMULATED; "
        f"{REGENERATE}")


def test_mypy_finds_no_error(tmp_path):
    # pyproject.toml's [tool.mypy]: the package (with the stubs) and tests/typed_usage.py, strictly; no cache kept
    result = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache")], cwd=REPO,
                            capture_output=True, text=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"mypy found errors:\n{output}"
    assert "Success: no issues found" in output, output


def test_typed_usage_runs(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "tests"))
    import typed_usage

    assert 0 <= typed_usage.main(tmp_path) <= 1
