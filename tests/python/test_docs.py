"""Every Python code block in the documentation runs.

Collected: each fenced block opened with three backticks and ``python`` in ``docs/**/*.md``,
one test per block, named ``<file>:<line>``. Conventions for writing them:

- A block is self-contained: it runs in a fresh namespace (``exec``), with the suite's usual
  clean cache (default settings, empty store) around it. Show behaviour with ``assert``; a
  failing assertion fails the docs.
- A block with a top-level ``await`` (or ``async with`` / ``async for``) runs as the body of a
  coroutine on a new event loop (``asyncio.run``), as in ``python -m asyncio``. Other blocks
  run as plain module code (``fastapi.testclient.TestClient`` drives an app synchronously).
- A block that cannot run here (it needs a real Redis in a given place, AWS credentials...)
  is preceded by ``<!-- no-run: <reason> -->`` on the line just before its fence. The reason
  is required; such blocks are still compiled, so their syntax is checked. Prefer writing
  blocks that run: ``MemoryBackend``, ``memory://`` and the in-process default behave like
  the remote engines.

README.md's Python blocks are tour fragments (``...`` bodies, names such as ``db`` or ``Item``
defined nowhere), so they are compiled, not run.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import linecache
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import oxicache

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)\s*(?P<info>[^\n`]*)$")
NO_RUN = re.compile(r"^\s*<!--\s*no-run(?::\s*(?P<reason>.*?))?\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    code: str
    skip_reason: str | None  # set when marked no-run

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def python_blocks(path: Path) -> list[Block]:
    """The ``python`` fenced blocks of one Markdown file, with their no-run marks."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, indent = m["fence"], m["indent"]
        lang = m["info"].strip().split()[0].lower() if m["info"].strip() else ""
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not (
            lines[i].strip().startswith(fence[0] * len(fence))
            and lines[i].strip().strip(fence[0]) == ""
        ):
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            i += 1
        i += 1  # the closing fence
        if lang not in ("python", "py"):
            continue
        reason = None
        prev = start - 1
        if prev >= 0 and (mark := NO_RUN.match(lines[prev])):
            reason = (mark["reason"] or "").strip()
            if not reason:
                raise AssertionError(f"{path}:{start + 1}: <!-- no-run --> needs a reason")
        blocks.append(Block(path, start + 1, "\n".join(body) + "\n", reason))
    return blocks


def doc_blocks() -> list[Block]:
    return [b for md in sorted(DOCS.rglob("*.md")) for b in python_blocks(md)]


DOC_BLOCKS = doc_blocks()
README_BLOCKS = python_blocks(ROOT / "README.md")


def compile_block(block: Block) -> object:
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    # Tracebacks then show the block's own lines, under "<file>:<line>".
    lines = block.code.splitlines(keepends=True)
    linecache.cache[block.name] = (len(block.code), None, lines, block.name)
    return compile(block.code, block.name, "exec", flags=flags, dont_inherit=True)


def run_block(block: Block) -> None:
    code = compile_block(block)
    namespace: dict[str, object] = {"__name__": f"docs_block_{block.line}"}
    if inspect.CO_COROUTINE & code.co_flags:  # type: ignore[attr-defined]
        coro = eval(code, namespace)  # top-level await: the module body as a coroutine
        asyncio.run(coro)
    else:
        exec(code, namespace)


def test_the_docs_have_python_blocks() -> None:
    assert len(DOC_BLOCKS) >= 10, [b.name for b in DOC_BLOCKS]
    skipped = [b.name for b in DOC_BLOCKS if b.skip_reason]
    assert len(skipped) <= len(DOC_BLOCKS) // 4, f"too many no-run blocks: {skipped}"


@pytest.mark.parametrize("block", DOC_BLOCKS, ids=lambda b: b.name)
def test_doc_block_runs(block: Block) -> None:
    if block.skip_reason:
        compile_block(block)
        pytest.skip(f"no-run: {block.skip_reason}")
    try:
        run_block(block)
    finally:
        oxicache.configure("memory://")  # a block may configure a backend; settings reset too


@pytest.mark.parametrize("block", README_BLOCKS, ids=lambda b: b.name)
def test_readme_block_compiles(block: Block) -> None:
    compile_block(block)


def test_collector_reads_fences_and_marks(tmp_path: Path) -> None:
    md = tmp_path / "page.md"
    md.write_text(
        "text\n\n```python\nx = 1\n```\n\n<!-- no-run: needs a Redis -->\n```python\n"
        "import redis\n```\n\n```bash\necho no\n```\n\n    ```py\n    y = 2\n    ```\n",
        encoding="utf-8",
    )
    blocks = python_blocks(md)
    assert [(b.line, b.code, b.skip_reason) for b in blocks] == [
        (3, "x = 1\n", None),
        (8, "import redis\n", "needs a Redis"),
        (16, "y = 2\n", None),
    ]
    md.write_text("<!-- no-run -->\n```python\npass\n```\n", encoding="utf-8")
    with pytest.raises(AssertionError, match="needs a reason"):
        python_blocks(md)
