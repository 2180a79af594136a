"""Every code block of the guide (docs/guide/*.md) is run, so the guide cannot rot.

Each page runs in its own temporary working directory, its blocks in order: a ```python block is executed
in the page's namespace (one per page), a ```shell block by bash (``set -e``: every command must succeed)
in the same directory, with this environment's ``deepnum`` on PATH. ```console blocks (installs, clusters,
MPI: commands that need a network, extras or minutes) and ```text blocks (output, listings) are shown and
not run. Any other fence, or a fence without a language, is an error: nothing is skipped silently.
The backend and thread count are restored after each page.
"""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import deepnum

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "guide"
RUN = {"python", "shell"}
SHOWN = {"console", "text"}
FENCE = re.compile(r"^```(.*)$")


def blocks(path):
    """The fenced blocks of a Markdown page as (language, first line number, code); a ValueError for a fence
    that is neither run nor shown, or one left open."""
    found, language, start, lines = [], None, 0, []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = FENCE.match(line)
        if language is None and match:
            language, start, lines = match.group(1).strip(), number, []
            if language not in RUN | SHOWN:
                raise ValueError(f"{path.name}:{number}: fence {line!r}: a block is ```python or ```shell (run), "
                                 f"or ```console or ```text (shown, not run)")
        elif language is not None and line.startswith("```"):
            if line.strip() != "```":
                raise ValueError(f"{path.name}:{number}: a block ends with a bare ```, got {line!r}")
            found.append((language, start, "\n".join(lines) + "\n"))
            language = None
        elif language is not None:
            lines.append(line)
    if language is not None:
        raise ValueError(f"{path.name}:{start}: the ```{language} block is never closed")
    return found


PAGES = sorted(GUIDE.glob("*.md"))


def test_the_guide_has_pages_and_runs_the_page_of_ones_own_data():
    names = {p.name for p in PAGES}
    assert "your-data.md" in names, names
    assert any(language == "python" for language, _, _ in blocks(GUIDE / "your-data.md"))


@pytest.mark.parametrize("fence", ["```py", "```", "```bash", "```{eval-rst}"])
def test_an_unknown_fence_is_an_error(tmp_path, fence):
    page = tmp_path / "page.md"
    page.write_text(f"text\n\n{fence}\nprint(1)\n```\n")
    with pytest.raises(ValueError, match="fence"):
        blocks(page)


def test_an_unclosed_block_is_an_error(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```python\nprint(1)\n")
    with pytest.raises(ValueError, match="never closed"):
        blocks(page)


def run(page):
    """Run the blocks of ``page`` in order in the working directory; an AssertionError names a shell block that
    failed, and a Python block's error passes through (its traceback names the page and the block's line)."""
    namespace = {"__name__": f"guide_{page.stem.replace('-', '_')}"}
    for language, line, code in blocks(page):
        where = f"{page.name}, the ```{language} block at line {line}"
        if language == "python":
            exec(compile(code, where, "exec"), namespace)
        elif language == "shell":
            done = subprocess.run(["bash", "-e", "-c", code], capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, f"{where} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_page(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    backend, threads = deepnum.get_backend(), deepnum.get_num_threads()
    try:
        run(page)
    finally:
        deepnum.use_backend(backend)
        deepnum.set_num_threads(threads)


def test_blocks_run_in_order_in_one_namespace_and_a_failing_block_fails(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    page = tmp_path / "page.md"
    page.write_text("```python\nfrom pathlib import Path\nn = 1\n```\n\n"
                    "```console\nexit 1\n```\n\n"                        # shown, not run
                    "```shell\necho made > made.txt\n```\n\n"
                    "```python\nassert n == 1 and Path('made.txt').read_text() == 'made\\n'\n```\n")
    run(page)
    page.write_text("```shell\ntrue\nfalse\ntrue\n```\n")
    with pytest.raises(AssertionError, match="shell block at line 1 failed"):
        run(page)
    page.write_text("```python\nassert 1 == 2\n```\n")
    with pytest.raises(AssertionError):
        run(page)
