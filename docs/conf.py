"""Sphinx configuration of deepnum's guide and API reference.

Build (from the repository root, with ``pip install ".[docs]"``)::

    python -m sphinx -W --keep-going -b html docs build/docs

``-W`` makes every warning an error (tests/test_docs.py builds it so in the test suite). The API pages
(docs/api/) are generated from the docstrings of the installed package by autodoc; nothing is written
into docs/ during a build.
"""
import deepnum

project = "deepnum"
release = version = deepnum.__version__
author = "the deepnum developers"
copyright = "the deepnum developers"

extensions = ["myst_parser", "sphinx.ext.autodoc"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
# RESULTS.md links to files outside docs/ (bench/MPI.md), which Sphinx cannot resolve: it stays a Markdown page
# of the repository, named on the index page.
exclude_patterns = ["_build", "RESULTS.md"]

# Every cross-reference must resolve (a broken :class:`...` in a docstring is an error); names of other
# packages (no intersphinx: the build needs no network), typing's names in annotations, the annotations' own
# names (deepnum._typing: FloatArray, Inputs, ...) and deepnum's private modules (deepnum._cuda.DeviceArray is
# documented as deepnum.cuda.DeviceArray) are not checked.
import deepnum._typing  # noqa: E402

nitpicky = True
_OTHERS = (r"(numpy|np|npt|typing|collections\.abc|dask|distributed|mpi4py|pathlib|os|pybind11_builtins"
           r"|deepnum\._\w+)\..*")
_TYPING = r"(Callable|Optional|Union|Any|Sequence|Iterable|Iterator|Mapping|Path|ArrayLike|Self)(\[.*)?"
# deepnum._typing's names, optim's Parameters alias and the private array namespaces (deepnum._host.HostArrays,
# deepnum._cudabackend.DeviceArrays) as annotations name them
_ALIASES = rf"({'|'.join([*deepnum._typing.__all__, 'Parameters', 'HostArrays', 'DeviceArrays'])})(\[.*)?"
nitpick_ignore_regex = [(r"py:.*", _OTHERS), (r"py:.*", _TYPING), (r"py:.*", _ALIASES)]

myst_heading_anchors = 3

autodoc_default_options = {"members": True, "member-order": "bysource", "show-inheritance": True}
autodoc_typehints = "description"
autodoc_inherit_docstrings = True

html_theme = "alabaster"
html_static_path = []
