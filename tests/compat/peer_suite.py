"""What the peer-test runners share: fetch a peer's repository into a temporary directory at
a pinned commit (never into this repository), rewrite only the imports of its tests, run
pytest there, and report each test as passed, a difference oxicache chose (with the reason),
or a gap.

Used by ``run_peer_tests.py`` (fastapi-cache2), ``run_redis_cache_tests.py`` and
``run_cachemate_tests.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path


def checkout(source: str, ref: str, into: Path) -> None:
    """``source`` (a git URL, or a local clone or bare repository) at ``ref``."""
    subprocess.run(["git", "clone", "--quiet", "--no-checkout", source, str(into)], check=True)
    subprocess.run(["git", "-C", str(into), "checkout", "--quiet", ref], check=True)


def rewrite_imports(text: str, package: str) -> str:
    """``from <package>... import`` / ``import <package>...`` lines only, to
    ``oxicache.compat.<package>``."""
    pattern = re.compile(rf"^(\s*(?:from|import)\s+){package}(?=[\s.]|$)", re.MULTILINE)
    return pattern.sub(rf"\1oxicache.compat.{package}", text)


def prepare(tree: Path, package: str, directories: Iterable[str]) -> int:
    """Deletes the peer's package and rewrites the imports of the Python files under
    ``directories``; the number of lines changed."""
    shutil.rmtree(tree / package)
    changed = 0
    for top in directories:
        for path in sorted((tree / top).rglob("*.py")):
            text = path.read_text()
            new = rewrite_imports(text, package)
            if new != text:
                pairs = zip(text.splitlines(), new.splitlines(), strict=True)
                changed += sum(a != b for a, b in pairs)
                path.write_text(new)
    return changed


#: pytest options for suites whose asyncio tests and fixtures share one loop per session.
ASYNCIO_SESSION = (
    "asyncio_mode = auto",
    "asyncio_default_fixture_loop_scope = session",
    "asyncio_default_test_loop_scope = session",
)


def run_pytest(
    tree: Path,
    files: Iterable[str],
    pytest_args: Iterable[str],
    *,
    ini_lines: Iterable[str] = (),
    extra_path: Iterable[str] = (),
) -> dict[str, tuple[str, str]]:
    """Runs pytest on ``files`` in ``tree`` (``ini_lines`` added to its configuration,
    ``extra_path`` to ``PYTHONPATH``); each test's ``(outcome, first line of the message)``."""
    report = tree / "report.xml"
    ini = tree / "peer-pytest.ini"
    lines = ["[pytest]", "addopts = -p no:warnings -p no:cacheprovider", *ini_lines]
    ini.write_text("\n".join(lines) + "\n")
    environ = dict(os.environ)
    environ["PYTHONPATH"] = os.pathsep.join(
        [str(tree), *extra_path, *filter(None, [environ.get("PYTHONPATH")])]
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(ini),
            "--rootdir",
            str(tree),
            f"--junitxml={report}",
            "-q",
            *files,
            *pytest_args,
        ],
        cwd=tree,
        env=environ,
        check=False,
    )
    if not report.exists():
        raise SystemExit("pytest wrote no report")
    return outcomes(report)


def outcomes(report: Path) -> dict[str, tuple[str, str]]:
    """``{test id: (outcome, message)}`` from pytest's JUnit XML."""
    found: dict[str, tuple[str, str]] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        path = case.get("classname", "").replace(".", "/")
        test_id = f"{path}.py::{case.get('name')}"
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            node = case.find(tag)
            if node is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                lines = (node.get("message") or "").splitlines()
                message = lines[0][:160] if lines else ""
                break
        found[test_id] = (outcome, message)
    return found


def summarize(peer: str, results: Mapping[str, tuple[str, str]], chosen: Mapping[str, str]) -> int:
    """Prints each test and the counts; the number of gaps (failures not in ``chosen``)."""
    counts: dict[str, int] = {}
    gaps = 0
    for test_id, (outcome, message) in sorted(results.items()):
        counts[outcome] = counts.get(outcome, 0) + 1
        line = f"{outcome.upper():8} {test_id}"
        if outcome in ("failed", "error"):
            reason = chosen.get(test_id)
            if reason is None:
                gaps += 1
                line += f"\n         GAP: {message}"
            else:
                line += f"\n         chosen difference: {reason}"
        print(line)
    passed = counts.get("passed", 0)
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    print(f"peer tests ({peer}): {passed}/{len(results)} passed ({summary}); gaps: {gaps}")
    return gaps


def install_missing(work: Path, requirements: Mapping[str, Iterable[str]]) -> list[str]:
    """Installs into ``work/deps`` the requirements of each module that does not import;
    the directory to add to ``PYTHONPATH`` (none when nothing was missing)."""
    missing: list[str] = []
    for module, wanted in requirements.items():
        probe = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True)
        if probe.returncode != 0:
            missing.extend(wanted)
    if not missing:
        return []
    deps = work / "deps"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--target", str(deps), *missing],
        check=True,
    )
    return [str(deps)]


def arguments(doc: str, *, env: str, source: str, ref: str) -> argparse.Namespace:
    """The runners' command line: ``--source`` (default from ``env``), ``--ref``, ``--keep``
    and pytest's own arguments."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument(
        "--source",
        default=os.environ.get(env, source),
        help=f"git URL or local clone (env {env})",
    )
    parser.add_argument("--ref", default=ref, help="commit or tag to test")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    return parser.parse_args()


@contextlib.contextmanager
def workdir(prefix: str, *, keep: bool) -> Iterator[Path]:
    """A temporary directory, removed afterwards unless ``keep``."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield work
    finally:
        if keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def fetch(peer: str, args: argparse.Namespace, into: Path) -> bool:
    """:func:`checkout` of ``--source`` at ``--ref``; False (said on stderr) if it fails."""
    try:
        checkout(args.source, args.ref, into)
    except subprocess.CalledProcessError:
        print(
            f"cannot get {peer} from {args.source} at {args.ref}: pass --source with a"
            " reachable URL or a local clone",
            file=sys.stderr,
        )
        return False
    return True
