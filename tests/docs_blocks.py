"""The Python blocks of README.md and docs/, and how they are run. Standard library only: the
same file runs them under pytest in the development virtualenv (tests/python/test_docs.py) and,
from tests/wheel_check.sh, in clean virtualenvs that hold only the built wheel and what each
page tells its reader to install.

Conventions a page follows (tests/python/test_docs.py checks them):

- ``<!-- requires: oxicache[fastapi] httpx2 -->`` near the top of every page that has Python
  blocks: what a reader must install to run them. Each requirement must also appear in a
  ``pip install`` line the reader can see on the page. The wheel check builds one virtualenv per
  distinct set and runs the page there.
- A fenced ``python`` block is a script: it runs alone, top to bottom, in a fresh interpreter
  (under pytest: a fresh namespace, with the cache reset around it). Show behaviour with
  ``assert``. No top-level ``await``: write ``asyncio.run(main())``. Interactive sessions go in
  ``pycon`` blocks (``>>>`` prompts), which are not run.
- ``<!-- no-run: <reason> -->`` on the line before a fence: the block is only compiled (it needs
  servers at given addresses, credentials...). Keep these rare.
- ``<!-- output -->`` on the line before the fence of the block that follows a Python block:
  that is exactly what the Python block prints.
- ``<!-- serve: uvicorn app:app -->`` on the line before a fence: the block is the file
  ``app.py`` of that command. It is written to a temporary directory and served with that
  command (on a free port), and every ``$ curl ...`` line of the next ``console`` block is
  replayed: the status and each header line shown under it must match what the server
  answers (``date``, ``etag``, ``last-modified`` and ``age`` values excepted; the names must
  be there).

Command line (what tests/wheel_check.sh calls, with the interpreter of the virtualenv to test):

    python docs_blocks.py groups ROOT            # "<requirements>\\t<page> <page>..." per set
    python docs_blocks.py run ROOT PAGE [PAGE...] # run those pages' blocks with this interpreter
"""

from __future__ import annotations

import http.client
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)\s*(?P<info>[^\n`]*)$")
NO_RUN = re.compile(r"^\s*<!--\s*no-run(?::\s*(?P<reason>.*?))?\s*-->\s*$")
OUTPUT = re.compile(r"^\s*<!--\s*output\s*-->\s*$")
SERVE = re.compile(r"^\s*<!--\s*serve:\s*(?P<command>.+?)\s*-->\s*$")
REQUIRES = re.compile(r"<!--\s*requires:\s*(?P<reqs>[^>]*?)\s*-->")
PIP_INSTALL = re.compile(r"pip install [^`\n#]+")
CURL = re.compile(r"^\$ curl (?P<args>.+)$")
#: Header values that differ on every run; the transcript shows them, the check wants the name.
VOLATILE = frozenset({"date", "etag", "last-modified", "age", "server"})
#: The remaining lifetime in Cache-Status depends on the second the request lands in.
TTL = re.compile(r"ttl=\d+")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    skip_reason: str | None = None  # set when marked no-run
    serve: str | None = None  # the command, when marked serve
    transcript: str | None = None  # the console block after a serve block
    output: str | None = None  # what it prints: the next block, when marked output

    def name(self, root: Path) -> str:
        return f"{self.path.relative_to(root)}:{self.line}"


@dataclass
class Page:
    path: Path
    blocks: list[Block] = field(default_factory=list)  # every fenced block, any language
    requires: list[str] | None = None

    @property
    def python(self) -> list[Block]:
        return [b for b in self.blocks if b.lang in ("python", "py")]

    def pip_lines(self) -> list[list[str]]:
        """The requirements of every ``pip install`` the page shows, options left out."""
        text = self.path.read_text(encoding="utf-8")
        out = []
        for m in PIP_INSTALL.finditer(text):
            words = shlex.split(m.group(0).replace("\\\n", " "))[2:]
            reqs, skip = [], False
            for w in words:
                if skip:
                    skip = False
                elif w.startswith("-"):
                    skip = w in ("--find-links", "-f", "--index-url", "-i", "-r", "-c")
                else:
                    reqs.append(w)
            out.append(reqs)
        return out


def read_page(path: Path) -> Page:
    """Every fenced block of one Markdown file, with its marks."""
    lines = path.read_text(encoding="utf-8").splitlines()
    page = Page(path)
    head = "\n".join(lines[:12])
    if m := REQUIRES.search(head):
        page.requires = m["reqs"].split()
    raw: list[tuple[int, str, str, str | None, str | None, bool]] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, indent = m["fence"], m["indent"]
        info = m["info"].strip()
        lang = info.split()[0].lower() if info else ""
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
        reason = serve = None
        prev = lines[start - 1] if start > 0 else ""
        if mark := NO_RUN.match(prev):
            reason = (mark["reason"] or "").strip()
            if not reason:
                raise AssertionError(f"{path}:{start + 1}: <!-- no-run --> needs a reason")
        if mark := SERVE.match(prev):
            serve = mark["command"]
        raw.append(
            (start + 1, lang, "\n".join(body) + "\n", reason, serve, bool(OUTPUT.match(prev)))
        )
    for n, (line, lang, code, reason, serve, _) in enumerate(raw):
        transcript = output = None
        if n + 1 < len(raw) and raw[n + 1][5]:
            output = raw[n + 1][2]
        if serve is not None:
            after = [r for r in raw[n + 1 :] if r[1] == "console"]
            if not after:
                raise AssertionError(f"{path}:{line}: a serve block needs a console block after it")
            transcript = after[0][2]
        page.blocks.append(Block(path, line, lang, code, reason, serve, transcript, output))
    return page


def pages(root: Path) -> list[Page]:
    """README.md and every page of docs/."""
    paths = [root / "README.md", *sorted((root / "docs").rglob("*.md"))]
    return [read_page(p) for p in paths]


def requirement_groups(root: Path) -> dict[tuple[str, ...], list[Path]]:
    groups: dict[tuple[str, ...], list[Path]] = {}
    for page in pages(root):
        if page.python:
            key = tuple(sorted(page.requires or ()))
            groups.setdefault(key, []).append(page.path)
    return groups


# --- running ----------------------------------------------------------------------------------


def compile_block(block: Block, name: str) -> object:
    """Compiled as a script: a top-level ``await`` is a SyntaxError, as for a user."""
    return compile(block.code, name, "exec", dont_inherit=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def run_script(code: str, python: str, name: str, timeout: float = 120.0) -> str:
    """``code`` as a script of its own, in a fresh interpreter, in an empty directory."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "block.py"
        script.write_text(code, encoding="utf-8")
        proc = subprocess.run(
            [python, str(script)],
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    if proc.returncode != 0:
        raise AssertionError(f"{name} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def transcript_requests(transcript: str) -> list[tuple[str, str, list[str]]]:
    """(method, target, expected lines) for each ``$ curl`` of a console transcript."""
    out: list[tuple[str, str, list[str]]] = []
    for line in transcript.splitlines():
        if m := CURL.match(line.strip()):
            args = shlex.split(m["args"])
            method = "HEAD" if "-I" in args or "--head" in args else "GET"
            url = urllib.parse.urlsplit(next(a for a in args if not a.startswith("-")))
            target = (url.path or "/") + (f"?{url.query}" if url.query else "")
            out.append((method, target, []))
        elif out and line.strip():
            out[-1][2].append(line.strip())
    return out


def serve_and_replay(block: Block, python: str, name: str, timeout: float = 60.0) -> None:
    """Serve the block as the app of its command and replay its transcript."""
    assert block.serve and block.transcript
    argv = shlex.split(block.serve)
    app_ref = next(a for a in argv[1:] if ":" in a)
    module = app_ref.split(":")[0]
    requests = transcript_requests(block.transcript)
    assert requests, f"{name}: the console block after it has no `$ curl` line"
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / f"{module}.py").write_text(block.code, encoding="utf-8")
        log = Path(tmp) / "server.log"
        # `uvicorn app:app` as the reader runs it, on a free port, from the app's directory.
        cmd = [python, "-m", *argv, "--host", "127.0.0.1", "--port", str(port)]
        with log.open("wb") as out:
            server = subprocess.Popen(cmd, cwd=tmp, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if server.poll() is not None:
                    raise AssertionError(f"{name}: {block.serve} exited:\n{log.read_text()}")
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise AssertionError(f"{name}: not listening:\n{log.read_text()}") from None
                    time.sleep(0.1)
            for method, target, expected in requests:
                replay(name, port, method, target, expected)
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def replay(name: str, port: int, method: str, target: str, expected: list[str]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, target)
        resp = conn.getresponse()
        body = resp.read()
        headers = {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()
    where = f"{name}: {method} {target}"
    shown_body = []
    for line in expected:
        if line.startswith("HTTP/"):
            status = int(line.split()[1])
            assert resp.status == status, f"{where}: status {resp.status}, the page shows {status}"
        elif ":" in line and not shown_body and re.match(r"^[A-Za-z0-9-]+:", line):
            key, _, value = line.partition(":")
            key, value = key.lower(), value.strip()
            assert key in headers, f"{where}: no {key} header ({headers})"
            if key not in VOLATILE:
                got, value = TTL.sub("ttl=N", headers[key]), TTL.sub("ttl=N", value)
                assert got == value, f"{where}: {key}: {headers[key]!r}, shown {value!r}"
        else:
            shown_body.append(line)
    if shown_body:
        assert body.decode() == "\n".join(shown_body), f"{where}: body {body!r}"


def run_block(block: Block, root: Path, python: str = sys.executable) -> str:
    """Run one block as a reader would; returns what was done ("ran", "served", "compiled")."""
    name = block.name(root)
    compile_block(block, name)
    if block.skip_reason:
        return "compiled"
    if block.serve:
        serve_and_replay(block, python, name)
        return "served"
    out = run_script(block.code, python, name)
    check_output(block, out, name)
    return "ran"


def check_output(block: Block, out: str, name: str) -> None:
    """What the block printed against the ``<!-- output -->`` block that follows it."""
    if block.output is not None:
        assert out == block.output, f"{name} printed:\n{out}\nthe page shows:\n{block.output}"


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "groups":
        for reqs, paths in requirement_groups(Path(argv[1])).items():
            print(" ".join(reqs) + "\t" + " ".join(str(p) for p in paths))
        return 0
    if len(argv) >= 3 and argv[0] == "run":
        root = Path(argv[1]).resolve()
        failed = ran = 0
        for rel in argv[2:]:
            page = read_page((root / rel).resolve())
            for block in page.python:
                try:
                    what = run_block(block, root)
                except Exception as exc:  # report every block, then fail
                    failed += 1
                    print(f"FAIL {block.name(root)}: {exc}", flush=True)
                else:
                    ran += 1
                    print(f"ok   {block.name(root)} ({what})", flush=True)
        print(f"docs blocks: {ran} passed, {failed} failed ({os.path.basename(sys.executable)})")
        return 1 if failed else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
