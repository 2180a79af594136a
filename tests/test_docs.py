"""The documentation: the Sphinx build of docs/ (guide and API reference) passes with warnings as errors, and
every public name of the documented modules has a docstring."""
import importlib
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"

# The modules of the API reference (docs/api/): the public API.
MODULES = ["deepnum", "deepnum.nn", "deepnum.models", "deepnum.optim", "deepnum.init", "deepnum.training",
           "deepnum.checkpoint", "deepnum.ensemble", "deepnum.datasets", "deepnum.recipes", "deepnum.ops",
           "deepnum.cuda", "deepnum.distributed", "deepnum.sweep", "deepnum.mpi"]


def public_names(module):
    """The names ``module`` offers: its ``__all__``, else what it defines itself without a leading underscore
    (not what it imports)."""
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [name for name, value in vars(module).items() if not name.startswith("_")
            and getattr(value, "__module__", None) == module.__name__
            and (inspect.isclass(value) or inspect.isfunction(value))]


def undocumented(module):
    """``module.name`` and ``module.Class.method`` for each public function, class, method and property of
    ``module`` without a docstring (data, such as ops.ACTIVATIONS, carries none)."""
    missing = []
    for name in public_names(module):
        value = getattr(module, name)
        if not (inspect.isclass(value) or inspect.ismodule(value) or callable(value)):
            continue
        if not inspect.getdoc(value):
            missing.append(f"{module.__name__}.{name}")
        if inspect.isclass(value):
            for attr, member in vars(value).items():
                if attr.startswith("_") or not (callable(member) or isinstance(member, (property, staticmethod,
                                                                                         classmethod))):
                    continue
                if not inspect.getdoc(getattr(value, attr)):
                    missing.append(f"{module.__name__}.{name}.{attr}")
    return missing


@pytest.mark.parametrize("name", MODULES)
def test_every_public_name_has_a_docstring(name):
    module = importlib.import_module(name)
    assert inspect.getdoc(module), f"{name} has no module docstring"
    assert undocumented(module) == [], f"{name}: no docstring on {', '.join(undocumented(module))}"


def test_the_docstring_check_finds_a_missing_docstring():
    module = type(sys)("fake")
    exec("class Shown:\n    'A class.'\n    def method(self):\n        pass\n\ndef f():\n    'F.'\n", vars(module))
    module.Shown.__module__ = module.f.__module__ = "fake"
    assert undocumented(module) == ["fake.Shown.method"]


def test_the_docs_build_without_warnings(tmp_path):
    done = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "-d",
                           str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"sphinx-build failed:\n{done.stdout}\n{done.stderr}"
    assert (tmp_path / "html" / "guide" / "your-data.html").exists()
    assert "deepnum.models.Sequential.fit" in (tmp_path / "html" / "api" / "models.html").read_text()


def test_every_documented_module_has_a_page_of_the_api_reference():
    pages = "".join(p.read_text() for p in (DOCS / "api").glob("*.rst"))
    documented = set(re.findall(r"^\.\. automodule:: (\S+)$", pages, re.M))
    assert documented == set(MODULES)
