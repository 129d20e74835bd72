"""Every Python block of README.md and docs/ runs, and each page says what it needs.

The blocks and their marks are read by tests/docs_blocks.py (its docstring has the
conventions), which tests/wheel_check.sh also runs in clean virtualenvs holding only the wheel
and what each page tells its reader to install. Here, in the development virtualenv:

- each plain block runs in a fresh namespace, with the suite's clean cache (default settings,
  empty store) around it, and what it prints is compared with an ``<!-- output -->`` block;
- a ``serve`` block is written to a temporary directory and served with its own command
  (``uvicorn app:app``), and the ``curl`` transcript after it is replayed against the server;
- a ``no-run`` block is compiled only.
"""

from __future__ import annotations

import contextlib
import io
import linecache
import re
import sys
from pathlib import Path

import pytest

import oxicache

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
import docs_blocks  # noqa: E402  (tests/ is not a package: the wheel check runs the file alone)
from docs_blocks import Block, Page, read_page  # noqa: E402

PAGES = docs_blocks.pages(ROOT)
BLOCKS = [b for page in PAGES for b in page.python]
RUNNABLE = [b for b in BLOCKS if not b.skip_reason and not b.serve]
SERVED = [b for b in BLOCKS if b.serve]
OXICACHE_REQ = re.compile(r"^oxicache(\[[a-z,]+\])?$")


def name(block: Block) -> str:
    return block.name(ROOT)


def run_here(block: Block) -> str:
    """The block as a script, in this process: a fresh namespace, stdout captured."""
    code = docs_blocks.compile_block(block, name(block))
    lines = block.code.splitlines(keepends=True)
    linecache.cache[name(block)] = (len(block.code), None, lines, name(block))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, {"__name__": "__main__"})
    return out.getvalue()


def test_the_pages_have_python_blocks() -> None:
    assert len(BLOCKS) >= 20, [name(b) for b in BLOCKS]
    skipped = [name(b) for b in BLOCKS if b.skip_reason]
    assert len(skipped) <= 2, f"keep no-run blocks rare: {skipped}"
    assert any(b.path.name == "README.md" for b in SERVED), "the README's first app is served"


@pytest.mark.parametrize("block", RUNNABLE, ids=name)
def test_block_runs(block: Block) -> None:
    try:
        out = run_here(block)
    finally:
        oxicache.configure("memory://")  # a block may configure a backend; settings reset too
    docs_blocks.check_output(block, out, name(block))


@pytest.mark.parametrize("block", SERVED, ids=name)
def test_served_block_answers_as_its_transcript_shows(block: Block) -> None:
    pytest.importorskip("uvicorn")
    docs_blocks.run_block(block, ROOT)


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.skip_reason], ids=name)
def test_no_run_block_compiles(block: Block) -> None:
    docs_blocks.compile_block(block, name(block))


@pytest.mark.parametrize("page", [p for p in PAGES if p.python], ids=lambda p: p.path.name)
def test_page_names_what_its_blocks_need_and_shows_how_to_install_it(page: Page) -> None:
    where = page.path.relative_to(ROOT)
    assert page.requires, f"{where}: add <!-- requires: oxicache[...] ... --> at the top"
    oxi = [r for r in page.requires if r.startswith("oxicache")]
    assert len(oxi) == 1 and OXICACHE_REQ.match(oxi[0]), f"{where}: {page.requires}"
    shown = {req for line in page.pip_lines() for req in line}
    missing = [r for r in page.requires if r not in shown]
    assert not missing, f"{where}: requires {missing}, but no `pip install` line shows it"


def test_no_block_awaits_at_top_level() -> None:
    """A reader runs a block as a script, where a top-level await is a SyntaxError."""
    for block in BLOCKS:
        docs_blocks.compile_block(block, name(block))


# --- the reader itself ------------------------------------------------------------------------


def test_reader_finds_fences_and_marks(tmp_path: Path) -> None:
    md = tmp_path / "page.md"
    md.write_text(
        "<!-- requires: oxicache[fastapi] httpx2 -->\n# Page\n\n"
        "```bash\npip install --find-links dist 'oxicache[fastapi]' httpx2\n```\n\n"
        "```python\nprint(1)\n```\n\n<!-- output -->\n```text\n1\n```\n\n"
        "<!-- no-run: needs a Redis -->\n```python\nimport redis\n```\n\n"
        "    ```py\n    y = 2\n    ```\n\n"
        "<!-- serve: uvicorn app:app -->\n```python\napp = None\n```\n\n"
        "```console\n$ curl -i http://127.0.0.1:8000/x?a=1\nHTTP/1.1 200 OK\nx-cache: HIT\n```\n",
        encoding="utf-8",
    )
    page = read_page(md)
    assert page.requires == ["oxicache[fastapi]", "httpx2"]
    assert page.pip_lines() == [["oxicache[fastapi]", "httpx2"]]
    got = [(b.line, b.code, b.skip_reason, b.serve, b.output) for b in page.python]
    assert got == [
        (8, "print(1)\n", None, None, "1\n"),
        (18, "import redis\n", "needs a Redis", None, None),
        (22, "y = 2\n", None, None, None),
        (27, "app = None\n", None, "uvicorn app:app", None),
    ]
    assert docs_blocks.transcript_requests(page.python[3].transcript or "") == [
        ("GET", "/x?a=1", ["HTTP/1.1 200 OK", "x-cache: HIT"])
    ]
    md.write_text("<!-- no-run -->\n```python\npass\n```\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="needs a reason"):
        read_page(md)


def test_a_wrong_output_or_transcript_fails(tmp_path: Path) -> None:
    pytest.importorskip("uvicorn")
    md = tmp_path / "page.md"
    app = (
        "from starlette.responses import PlainTextResponse\n\n"
        "async def app(scope, receive, send):\n"
        "    await PlainTextResponse('hi', headers={'x-cache': 'MISS'})(scope, receive, send)\n"
    )
    md.write_text(
        "```python\nprint(2)\n```\n\n<!-- output -->\n```text\n1\n```\n\n"
        f"<!-- serve: uvicorn app:app -->\n```python\n{app}```\n\n"
        "```console\n$ curl -i http://127.0.0.1:8000/\nHTTP/1.1 200 OK\nx-cache: HIT\n```\n",
        encoding="utf-8",
    )
    printing, served = read_page(md).python
    with pytest.raises(AssertionError, match="printed"):
        docs_blocks.run_block(printing, tmp_path)
    with pytest.raises(AssertionError, match="x-cache: 'MISS', shown 'HIT'"):
        docs_blocks.run_block(served, tmp_path)


# --- the troubleshooting page names every reason the cache gives ---------------------------

TROUBLESHOOTING = ROOT / "docs" / "troubleshooting.md"

#: Where a bypass, not-stored, write-skipped or stale reason is written in the code: each match
#: holds one or two quoted tokens.
REASON_SITES = {
    "src": (
        r"Bypass::of\(py,[^;]*",
        r"(?:NotStorableReason|Bypass)::\w+ => \"[^\"]*\"",
        r"StoreError::TooLarge \{ \.\. \} => \"[^\"]*\"",
        r"\.detail\(\"[^\"]*\"\)",
        r"Err\(\"[^\"]*\"\)",
        r"Some\(\"stale-[^\"]*\"\)",
        r"detail = \"[^\"]*\"",
    ),
    "python/oxicache": (
        r"_core\.Bypass\(\"[^\"]*\"\)",
        r"_Bypass\(engine, \"[^\"]*\"",
        r"_marked\(response, \"[^\"]*\"\)",
        r"_spill\(\w+, \"[^\"]*\"\)",
        r"why = [^\n]*",
    ),
}


def reasons_in_code() -> set[str]:
    found: set[str] = set()
    for folder, patterns in REASON_SITES.items():
        ext = "*.rs" if folder == "src" else "*.py"
        for path in sorted((ROOT / folder).rglob(ext)):
            text = path.read_text(encoding="utf-8").split("#[cfg(test)]")[0]
            for pattern in patterns:
                for site in re.findall(pattern, text):
                    found.update(re.findall(r"\"([a-z0-9]+(?:-[a-z0-9]+)*)\"", site))
    return found


def test_troubleshooting_explains_every_reason_the_code_gives() -> None:
    reasons = reasons_in_code()
    # The scan must keep finding the sites: a refactor that hides them fails here, not silently.
    assert {"credentials", "set-cookie", "backend-down", "stale-if-error"} <= reasons
    assert len(reasons) >= 35, sorted(reasons)
    page = TROUBLESHOOTING.read_text(encoding="utf-8")
    missing = sorted(r for r in reasons if f"`{r}`" not in page)
    assert not missing, f"docs/troubleshooting.md does not explain: {missing}"
