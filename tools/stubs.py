"""Regenerates the committed type stubs of the compiled modules, python/deepnum/_core.pyi, _contract.pyi and
_cuda.pyi, from the installed modules with pybind11-stubgen (the version pinned in pyproject.toml's ``test``
extra) and two fixes of its output (``fixed``); tests/test_types.py checks that this gives exactly the committed
files, and mypy reads them.

    python tools/stubs.py          # after a change to the bindings (cpp/, cuda/): rebuild, run this, commit the .pyi

_cuda.pyi is the nvcc build's: the emulated build (DEEPNUM_CUDA=EMULATE) has test-only names and EMULATED = True,
so this refuses to run on it (and, with ImportError, where deepnum._cuda is not built).
"""
import re
import subprocess
import sys
from pathlib import Path

MODULES = ("deepnum._core", "deepnum._contract", "deepnum._cuda")
# What only the emulated _cuda has (cuda/bindings.cpp, #ifdef DEEPNUM_CUDA_EMULATE), besides EMULATED = True.
EMULATED_ONLY = ("_set_limits", "_emulation_selftest")


def fixed(text):
    """pybind11-stubgen's stub ``text`` with two of its slips mended, so that mypy reads it as the module is:

    * DeviceArray has a method called ``numpy``, which in the class body hides the module: the class's
      annotations ``numpy.ndarray`` and ``numpy.dtype`` name it as ``_numpy`` (imported so).
    * A one-element tuple value is printed without its comma (``('a')``, a str): the comma is put back."""
    text = re.sub(r"^(import numpy\n)", r"\1import numpy as _numpy\n", text, count=1, flags=re.M)
    text = re.sub(r"^(    .*)$", lambda m: re.sub(r"\bnumpy\.(ndarray|dtype)\b", r"_numpy.\1", m[1]), text,
                  flags=re.M)
    return re.sub(r"^(\w+: tuple = )\(('[^',]*')\)$", r"\1(\2,)", text, flags=re.M)


def generate(out_dir, modules=MODULES):
    """Writes the stubs of ``modules`` (installed, imported in a subprocess) as out_dir/deepnum/<name>.pyi."""
    subprocess.run([sys.executable, "-m", "pybind11_stubgen", "--exit-code", "-o", str(out_dir), *modules],
                   check=True, capture_output=True, text=True)
    for module in modules:
        path = Path(out_dir, *module.split(".")).with_suffix(".pyi")
        path.write_text(fixed(path.read_text()))


def main():
    import deepnum._cuda

    if deepnum._cuda.EMULATED:
        sys.exit("stubs: deepnum._cuda is the emulated build; _cuda.pyi is the nvcc build's (install without "
                 "DEEPNUM_CUDA=EMULATE)")
    generate(Path(__file__).resolve().parent.parent / "python")


if __name__ == "__main__":
    main()
