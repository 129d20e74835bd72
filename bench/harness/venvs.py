"""Builds (or reuses) one virtualenv per dependency set under bench/.venvs/<name>.

    python3 bench/harness/venvs.py [--only main,oxicache] [--force]

A venv is reused while the sha256 of its pin files is unchanged (stamp: .venvs/<name>/.pins).
The "oxicache" venv also holds the repository itself, installed like a user would
(``pip install <repo>``: maturin builds the release wheel with cargo), rebuilt when the
repository's HEAD commit or its uncommitted source changes (stamp: .venvs/oxicache/.repo).
With BENCH_REPO=head in the environment it is built from the HEAD commit alone (``git archive``
into a temporary directory), leaving out uncommitted edits: for a reference run in a working tree
others are editing (``BENCH_REPO=head make bench``).
Stdlib only; runs under the system python3.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
REPO = BENCH.parent
sys.path.insert(0, str(HERE))

from registry import COMMON_PINS, REPO_VENV, REPORT_VENV, VENVS  # noqa: E402

REQ = BENCH / "requirements"
VENV_ROOT = BENCH / ".venvs"
# What the installed package is built from; a change here means a rebuild.
REPO_SOURCES = ["src", "python", "Cargo.toml", "Cargo.lock", "pyproject.toml", "README.md"]


def say(msg: str) -> None:
    print(f"[venvs] {msg}", file=sys.stderr, flush=True)


def sha(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def git(*args: str) -> str:
    r = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else ""


FROM_HEAD = os.environ.get("BENCH_REPO", "") == "head"


def repo_state() -> dict:
    """HEAD and a digest of uncommitted changes to the sources that go into the wheel."""
    head = git("rev-parse", "HEAD") or "unknown"
    if FROM_HEAD:
        return {"head": head, "dirty": False, "stamp": head}
    diff = git("diff", "HEAD", "--", *REPO_SOURCES)
    untracked = git("ls-files", "--others", "--exclude-standard", "--", *REPO_SOURCES)
    h = hashlib.sha256(diff.encode())
    for rel in sorted(untracked.splitlines()):
        p = REPO / rel
        if p.is_file():
            h.update(rel.encode() + b"\0" + p.read_bytes())
    dirty = bool(diff or untracked)
    return {
        "head": head,
        "dirty": dirty,
        "stamp": head + ("+" + h.hexdigest()[:16] if dirty else ""),
    }


def run(argv: list[str]) -> None:
    say("$ " + " ".join(argv))
    subprocess.run(argv, check=True)


def build(name: str, python: str, force: bool) -> None:
    vdir = VENV_ROOT / name
    py = vdir / "bin" / "python"
    # the report venv draws plots and serves nothing: it does not get the server stack
    pins = [REQ / VENVS[name]] if name == REPORT_VENV else [REQ / COMMON_PINS, REQ / VENVS[name]]
    want = sha(*pins)
    stamp = vdir / ".pins"
    if force or not py.exists() or not stamp.exists() or stamp.read_text().strip() != want:
        t0 = time.time()
        say(f"building venv {name} from {', '.join(p.name for p in pins)}")
        if vdir.exists():
            run([python, "-m", "venv", "--clear", str(vdir)])
        else:
            run([python, "-m", "venv", str(vdir)])
        run([str(py), "-m", "pip", "install", "-q", "--upgrade", "pip"])
        # constraints-common is both a constraint (peers' own dependencies must agree with it)
        # and a requirement (every venv serves with the same uvicorn/uvloop/httptools).
        if name == REPORT_VENV:
            run([str(py), "-m", "pip", "install", "-q", "-r", str(REQ / VENVS[name])])
        else:
            run(
                [
                    str(py),
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "-c",
                    str(REQ / COMMON_PINS),
                    "-r",
                    str(REQ / COMMON_PINS),
                    "-r",
                    str(REQ / VENVS[name]),
                ]
            )
        stamp.write_text(want + "\n")
        (vdir / ".repo").unlink(missing_ok=True)
        say(f"venv {name} ready in {time.time() - t0:.0f}s")
    else:
        say(f"venv {name}: pins unchanged, reused")
    if name == REPO_VENV:
        install_repo(vdir, force)


def install_repo(vdir: Path, force: bool) -> None:
    st = repo_state()
    stamp = vdir / ".repo"
    if not force and stamp.exists() and stamp.read_text().strip() == st["stamp"]:
        say(f"oxicache at {st['stamp'][:24]} already installed")
        return
    t0 = time.time()
    say(
        f"installing the repository (release build) at {st['stamp'][:24]}; cargo takes a few minutes"
    )
    py = str(vdir / "bin" / "python")
    # Non-editable, the way a user installs it; the pins stay as they are (-c) and no
    # dependency is upgraded. --no-build-isolation is not used: maturin comes from PyPI.
    if FROM_HEAD:
        with tempfile.TemporaryDirectory(prefix="oxicache-head-") as tmp:
            say(
                f"BENCH_REPO=head: building from `git archive {st['head'][:12]}` (uncommitted "
                "edits left out)"
            )
            archive = subprocess.run(
                ["git", "-C", str(REPO), "archive", st["head"]], check=True, capture_output=True
            ).stdout
            subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
            # a cargo target directory of its own, kept between runs (incremental rebuilds)
            # and apart from the repository's target/ that others build in
            os.environ["CARGO_TARGET_DIR"] = str(VENV_ROOT / ".cargo-target-head")
            run([py, "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps", tmp])
    else:
        run([py, "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps", str(REPO)])
    run([py, "-m", "pip", "check"])
    stamp.write_text(st["stamp"] + "\n")
    say(f"oxicache installed in {time.time() - t0:.0f}s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated venv names (default: all)")
    ap.add_argument(
        "--for-targets",
        default=None,
        metavar="LIBS",
        help="build the venvs that the runner's --only LIBS needs ('' = every target)",
    )
    ap.add_argument("--force", action="store_true", help="rebuild even when the stamps match")
    ap.add_argument("--python", default=sys.executable, help="interpreter the venvs are made from")
    a = ap.parse_args()
    names = [n.strip() for n in a.only.split(",") if n.strip()] or list(VENVS)
    if a.for_targets is not None:
        from registry import targets

        only = [x.strip() for x in a.for_targets.split(",") if x.strip()]
        need = {t.venv for t in targets(only or None)} | {REPORT_VENV}
        names = [n for n in VENVS if n in need]
    unknown = set(names) - set(VENVS)
    if unknown:
        raise SystemExit(f"unknown venv(s): {sorted(unknown)}; known: {sorted(VENVS)}")
    VENV_ROOT.mkdir(parents=True, exist_ok=True)
    for n in names:
        build(n, a.python, a.force)


if __name__ == "__main__":
    main()
