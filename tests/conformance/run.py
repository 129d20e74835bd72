"""Run the HTTP caching test suite (cache-tests.fyi, npm ``http-cache-tests``) against an ASGI
cache middleware, and compare with the committed baseline.

    python tests/conformance/run.py                          # oxicache:CacheMiddleware
    python tests/conformance/run.py --middleware none        # plain pass-through, no cache
    python tests/conformance/run.py --update-baseline        # record this run as the baseline
    python tests/conformance/run.py --id freshness-max-age   # one test, with the exchanges dumped
    python tests/conformance/run.py --from-results FILE      # re-analyse an earlier raw run
    python tests/conformance/run.py --suite-dir DIR          # another copy of the suite, e.g. a
                                                             # checkout of upstream's newer tests

How it works: the suite is installed from the npm registry into tests/conformance/.node/ (git-
ignored; reused when present). Its origin server and uvicorn serving tests/conformance/proxy.py
(a forwarding app wrapped in the middleware) start on free loopback ports; the suite's CLI runs
every test through the proxy and prints one JSON result per test id, written raw to --results.
Each result is classified the way cache-tests.fyi does (lib/display.mjs, dependencies honoured):
per test kind ("required", "optimal", "check") it counts passed, failed and other (a dependency
failed, setup failed, retried, harness error, not run). The required failures are shown next to
those of the reverse proxies whose results the package publishes (its results/ folder).

The baseline (tests/conformance/baseline.json) holds, per middleware, the ids of the "required"
tests whose result was a pass (the test's own result, dependencies aside). Exit status: 0 when
none of them fails now; 1 when one does (a regression); 2 when the harness itself failed (a server
did not start, the suite printed no results, the time ran out); 77 when the run is impossible
here (no node/npm, or the suite could not be installed) so callers may skip.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SUITE = "http-cache-tests"
SUITE_VERSION = "0.4.5"
NODE_DIR = HERE / ".node"
PACKAGE = NODE_DIR / "node_modules" / SUITE
BASELINE = HERE / "baseline.json"
RESULTS = HERE / "results-last.json"
DEFAULT_MIDDLEWARE = "oxicache:CacheMiddleware"

EXIT_REGRESSION = 1
EXIT_HARNESS = 2
EXIT_UNAVAILABLE = 77

KINDS = ("required", "optimal", "check")
PASS_TYPES = frozenset({"pass", "yes"})
FAIL_TYPES = frozenset({"fail", "optional_fail", "no"})

#: Required-failure counts of the reverse proxies on cache-tests.fyi as quoted in issue 5. They
#: are NOT from the npm package: they are what the upstream repository (github.com/http-tests/
#: cache-tests, commit b55b8bd, 370 tests, results/*.json, same classification) gives; its test
#: set differs from the package's, so they are printed for reference only.
UPSTREAM_FYI = {
    "caddy": 10,
    "httpd": 12,
    "HAProxy": 15,
    "Varnish": 17,
    "Squid": 17,
    "ATS": 19,
    "nginx": 33,
}


class HarnessError(Exception):
    """The run could not produce results (exit 2)."""


class Unavailable(Exception):
    """The run is impossible on this machine (exit 77)."""


# --- installing and describing the suite ------------------------------------------------------


def entry_point(*candidates: str) -> str:
    """The first of ``candidates`` present in the suite (the npm package has cli.mjs and
    server/server.mjs at the top; upstream's newer checkouts keep them under test-engine/)."""
    for rel in candidates:
        if (PACKAGE / rel).is_file():
            return rel
    raise HarnessError(f"none of {candidates} in {PACKAGE}")


def installed_version() -> str | None:
    try:
        data = json.loads((PACKAGE / "package.json").read_text())
    except (OSError, ValueError):
        return None
    return str(data.get("version"))


def ensure_suite(timeout: float) -> None:
    """Install the pinned suite into tests/conformance/.node/ unless it is already there."""
    if installed_version() == SUITE_VERSION:
        return
    npm = shutil.which("npm")
    if npm is None:
        raise Unavailable("npm not found")
    NODE_DIR.mkdir(exist_ok=True)
    cmd = [
        npm,
        "install",
        "--prefix",
        str(NODE_DIR),
        "--no-audit",
        "--no-fund",
        "--no-save",
        "--loglevel=error",
        f"{SUITE}@{SUITE_VERSION}",
    ]
    print(f"installing {SUITE}@{SUITE_VERSION} into {NODE_DIR.relative_to(REPO)} ...", flush=True)
    try:
        proc = subprocess.run(
            cmd, cwd=NODE_DIR, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise Unavailable(f"npm install timed out after {timeout:.0f} s") from exc
    if proc.returncode != 0 or installed_version() != SUITE_VERSION:
        raise Unavailable(f"npm install failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")


def suite_meta(node: str) -> dict[str, Any]:
    """Tests (id, kind, depends_on, ...) and published results, read by suite_meta.mjs."""
    proc = subprocess.run(
        [node, "--no-warnings", str(HERE / "suite_meta.mjs"), str(PACKAGE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        raise HarnessError(f"suite_meta.mjs failed: {proc.stderr.strip()[-2000:]}")
    meta: dict[str, Any] = json.loads(proc.stdout)
    return meta


# --- classification (mirrors lib/display.mjs determineTestResult) -----------------------------


def classify(tests: dict[str, dict[str, Any]], results: dict[str, Any], test_id: str) -> str:
    """pass, fail, optional_fail, yes, no, dependency_fail, setup_fail, retry, harness_fail or
    untested, exactly as cache-tests.fyi shows a result (dependencies honoured)."""
    test = tests[test_id]
    result = results.get(test_id)
    if result is None:
        return "untested"
    for dep in test["depends_on"]:
        if dep in tests and classify(tests, results, dep) not in PASS_TYPES:
            return "dependency_fail"
    if isinstance(result, list) and result and result[0] == "Setup":
        return "retry" if len(result) > 1 and result[1] == "retry" else "setup_fail"
    if result is False:
        return "harness_fail"
    if isinstance(result, list) and result and result[0] == "AbortError":
        return "harness_fail"
    kind = test["kind"]
    if kind == "optimal":
        return "pass" if result is True else "optional_fail"
    if kind == "check":
        return "yes" if result is True else "no"
    return "pass" if result is True else "fail"


def summarise(tests: dict[str, dict[str, Any]], results: dict[str, Any]) -> dict[str, Any]:
    """Per kind: tests, passed, failed, other (and the breakdown of other)."""
    out: dict[str, Any] = {}
    for kind in KINDS:
        ids = [i for i, t in tests.items() if t["kind"] == kind and not t["browser_only"]]
        types = collections.Counter(classify(tests, results, i) for i in ids)
        out[kind] = {
            "tests": len(ids),
            "passed": sum(types[t] for t in PASS_TYPES),
            "failed": sum(types[t] for t in FAIL_TYPES),
            "other": sum(n for t, n in types.items() if t not in PASS_TYPES | FAIL_TYPES),
            "other_by_type": {
                t: n for t, n in sorted(types.items()) if t not in PASS_TYPES | FAIL_TYPES
            },
        }
    return out


def required_passed(tests: dict[str, dict[str, Any]], results: dict[str, Any]) -> list[str]:
    """Ids of required tests whose own result is a pass (what the baseline records)."""
    return sorted(i for i, t in tests.items() if t["kind"] == "required" and results.get(i) is True)


# --- processes --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise HarnessError(f"{proc.args!r} exited ({proc.returncode}):\n{tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise HarnessError(f"{proc.args!r} not listening on {port} in time:\n{tail(log)}")


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a child started by this script, and its process group (it was started in its own
    session), by id: SIGTERM, then SIGKILL after a grace period."""
    if proc.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def suite_env(**extra: str) -> dict[str, str]:
    """The environment for the suite's node processes: npm's configuration variables cleared (the
    CLI reads ``npm_config_id || npm_package_config_id``; an empty id means "run every test")."""
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_")}
    env.update(npm_package_config_id="", npm_package_config_protocol="http")
    env.update(extra)
    return env


@contextmanager
def servers(
    node: str,
    middleware: str,
    kwargs: str | None,
    logdir: Path,
    deadline: float,
    status_999: str = "keep",
) -> Iterator[int]:
    """Start the suite's origin and the proxy (uvicorn) on free loopback ports; yield the proxy's
    port; stop both on the way out, whatever happens."""
    started: list[subprocess.Popen[bytes]] = []
    try:
        origin_port = free_port()
        origin_log = logdir / "origin.log"
        with origin_log.open("wb") as out:
            origin = subprocess.Popen(
                [
                    node,
                    "--no-warnings",
                    "--import",
                    (HERE / "node_preload.mjs").as_uri(),
                    entry_point("server/server.mjs", "test-engine/server/server.mjs"),
                ],
                cwd=PACKAGE,
                env=suite_env(
                    npm_package_config_port=str(origin_port),
                    npm_package_config_pidfile=str(logdir / "origin.pid"),
                    CONFORMANCE_PARENT_PID=str(os.getpid()),
                ),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(origin)
        wait_listening(origin_port, origin, origin_log, deadline)

        proxy_port = free_port()
        proxy_log = logdir / "proxy.log"
        cmd = [
            sys.executable,
            str(HERE / "proxy.py"),
            "--origin",
            str(origin_port),
            "--port",
            str(proxy_port),
            "--middleware",
            middleware,
            "--status-999",
            status_999,
            "--parent-pid",
            str(os.getpid()),
        ]
        if kwargs is not None:
            cmd += ["--middleware-kwargs", kwargs]
        with proxy_log.open("wb") as out:
            proxy = subprocess.Popen(
                cmd,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(proxy)
        wait_listening(proxy_port, proxy, proxy_log, deadline)
        yield proxy_port
    finally:
        for proc in reversed(started):
            stop(proc)


def run_cli(node: str, proxy_port: int, test_id: str, deadline: float) -> str:
    env = suite_env(npm_package_config_base=f"http://127.0.0.1:{proxy_port}")
    env["npm_package_config_id"] = test_id
    remaining = deadline - time.monotonic()
    if remaining <= 1:
        raise HarnessError("no time left to run the suite")
    env["CONFORMANCE_PARENT_PID"] = str(os.getpid())
    proc = subprocess.Popen(
        [
            node,
            "--no-warnings",
            "--import",
            (HERE / "node_preload.mjs").as_uri(),
            entry_point("cli.mjs", "test-engine/cli.mjs"),
        ],
        cwd=PACKAGE,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=remaining)
    except subprocess.TimeoutExpired as exc:
        stop(proc)
        raise HarnessError("the suite did not finish within the overall timeout") from exc
    finally:
        stop(proc)
    if stderr.strip():
        print(stderr.decode(errors="replace").strip()[-4000:], file=sys.stderr)
    return stdout.decode(errors="replace")


# --- report -----------------------------------------------------------------------------------


def baseline_key(middleware: str, kwargs: str | None, status_999: str = "keep") -> str:
    key = middleware
    if kwargs is not None:
        key += f" {json.dumps(json.loads(kwargs), sort_keys=True)}"
    if status_999 != "keep":
        key += f" status-999={status_999}"
    return key


def print_summary(label: str, summary: dict[str, Any]) -> None:
    print(f"\nResults by kind ({label}):")
    print(f"  {'kind':<10}{'tests':>7}{'passed':>8}{'failed':>8}{'other':>7}   other =")
    for kind in KINDS:
        s = summary[kind]
        other = ", ".join(f"{t} {n}" for t, n in s["other_by_type"].items()) or "-"
        print(
            f"  {kind:<10}{s['tests']:>7}{s['passed']:>8}{s['failed']:>8}{s['other']:>7}   {other}"
        )


def print_failures(tests: dict[str, dict[str, Any]], results: dict[str, Any]) -> None:
    failed = [i for i, t in tests.items() if t["kind"] == "required" and results.get(i) is not None]
    failed = [i for i in failed if classify(tests, results, i) == "fail"]
    if failed:
        print(f"\nRequired failures ({len(failed)}):")
        for i in sorted(failed):
            r = results[i]
            detail = r[1] if isinstance(r, list) and len(r) > 1 else r
            print(f"  {i}: {detail}")


def print_published(
    tests: dict[str, dict[str, Any]], published: list[dict[str, Any]], ours: tuple[str, Any]
) -> None:
    """Required tests per reverse proxy: failed (the figure cache-tests.fyi shows as a failure),
    passed, and the ones that did not count either way because a dependency or the setup failed.
    A cache that stores nothing fails few required tests (the tests that need a stored response
    end as dependency or setup failures): read "failed" together with "passed"."""
    rows = []
    for item in published:
        if item["type"] != "rev-proxy":
            continue
        rows.append((item["name"], item.get("version", ""), required_types(tests, item["results"])))
    rows.sort(key=lambda r: r[2]["fail"])
    rows.append((ours[0], "(this run)", required_types(tests, ours[1])))
    print(
        f"\nRequired tests next to the reverse proxies published in {PACKAGE.name}/results/ "
        "(same tests, same classification):"
    )
    print(f"  {'cache':<26}{'version':<20}{'failed':>7}{'passed':>8}{'dep-fail':>10}{'setup':>7}")
    for name, version, types in rows:
        setup = types["setup_fail"] + types["retry"] + types["harness_fail"]
        print(
            f"  {name:<26}{version:<20}{types['fail']:>7}{types['pass']:>8}"
            f"{types['dependency_fail']:>10}{setup:>7}"
        )
    fyi = ", ".join(f"{name} {n}" for name, n in sorted(UPSTREAM_FYI.items(), key=lambda x: x[1]))
    print(f"  failed, upstream HEAD's test set (as quoted in issue 5): {fyi}")


def required_types(tests: dict[str, dict[str, Any]], results: dict[str, Any]) -> Counter[str]:
    return collections.Counter(
        classify(tests, results, i)
        for i, t in tests.items()
        if t["kind"] == "required" and not t["browser_only"]
    )


def compare(base: dict[str, Any] | None, passed: list[str], results: dict[str, Any]) -> int:
    if base is None:
        print("\nNo baseline for this middleware yet: run with --update-baseline to record one.")
        return 0
    before = set(base["required_passed"])
    now = set(passed)
    regressed = sorted(before - now)
    improved = sorted(now - before)
    if improved:
        print(f"\nNewly passing required tests ({len(improved)}): {', '.join(improved)}")
        print("  (record them with --update-baseline)")
    if regressed:
        print(f"\nREGRESSION: {len(regressed)} required test(s) passed in the baseline, not now:")
        for i in regressed:
            r = results.get(i)
            detail = r[1] if isinstance(r, list) and len(r) > 1 else r
            print(f"  {i}: {detail}")
        return EXIT_REGRESSION
    print(f"\nBaseline: all {len(before)} required tests that passed still pass.")
    return 0


# --- main -------------------------------------------------------------------------------------


def run_suite(node: str, args: argparse.Namespace, deadline: float) -> tuple[str, float]:
    """Start the servers, run the CLI, stop the servers: (the CLI's output, seconds)."""
    with tempfile.TemporaryDirectory(prefix="oxicache-conformance-") as tmp:
        logdir = Path(tmp)
        try:
            with servers(
                node,
                args.middleware,
                args.middleware_kwargs,
                logdir,
                deadline,
                args.status_999,
            ) as port:
                started = time.monotonic()
                output = run_cli(node, port, args.id, deadline)
                elapsed = time.monotonic() - started
        except HarnessError:
            print(f"--- proxy log:\n{tail(logdir / 'proxy.log')}", file=sys.stderr)
            raise
        if args.id:
            output += f"\n--- proxy log (tail):\n{tail(logdir / 'proxy.log', 60)}"
    return output, elapsed


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--middleware",
        default=DEFAULT_MIDDLEWARE,
        help=f"'none' or 'module:Class' (default {DEFAULT_MIDDLEWARE})",
    )
    parser.add_argument(
        "--middleware-kwargs", default=None, help="JSON object (default: proxy.py's preset)"
    )
    parser.add_argument(
        "--status-999",
        choices=("keep", "502"),
        default="keep",
        help="how the proxy passes on the origin's 999 (see proxy.py; default keep)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="raw JSON results file")
    parser.add_argument("--baseline", type=Path, default=BASELINE)
    parser.add_argument("--update-baseline", action="store_true")
    parser.add_argument("--id", default="", help="run one test and dump its exchanges")
    parser.add_argument("--timeout", type=float, default=300.0, help="overall limit, seconds")
    parser.add_argument(
        "--suite-dir",
        type=Path,
        default=None,
        help="run another copy of the suite (e.g. a checkout of github.com/http-tests/cache-tests "
        "with its npm dependencies installed) instead of the pinned npm package; the baseline "
        "is neither compared nor written then",
    )
    parser.add_argument(
        "--from-results",
        type=Path,
        default=None,
        help="analyse (and compare, or record with --update-baseline) a raw results file written "
        "by an earlier run instead of running the suite",
    )
    args = parser.parse_args(argv)
    if args.suite_dir is not None and args.update_baseline:
        parser.error("--update-baseline records the pinned package's results only")
    deadline = time.monotonic() + args.timeout
    # SIGTERM unwinds like Ctrl-C, so the servers are stopped; if this process is killed outright
    # they notice (they watch this pid) and exit by themselves.
    signal.signal(signal.SIGTERM, _terminate)

    node = shutil.which("node")
    try:
        if node is None or shutil.which("npm") is None:
            raise Unavailable("node and npm are needed")
        if args.suite_dir is None:
            ensure_suite(timeout=max(10.0, min(240.0, deadline - time.monotonic() - 60)))
        else:
            global PACKAGE
            PACKAGE = args.suite_dir.resolve()
        meta = suite_meta(node)
        tests = {t["id"]: t for t in meta["tests"]}
        if args.id and args.id not in tests:
            raise HarnessError(f"no test {args.id!r} in {SUITE}@{meta['version']}")
        if args.from_results is not None:
            output, elapsed = args.from_results.read_text(), 0.0
            args.results = args.from_results
        else:
            output, elapsed = run_suite(node, args, deadline)
        if args.id:
            print(output)
            return 0
        try:
            results: dict[str, Any] = json.loads(output)
        except ValueError as exc:
            raise HarnessError(f"the suite printed no JSON results:\n{output[-3000:]}") from exc
        if not isinstance(results, dict) or not results:
            raise HarnessError("the suite returned no results")
    except Unavailable as exc:
        print(f"conformance: unavailable here: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except HarnessError as exc:
        print(f"conformance: harness error: {exc}", file=sys.stderr)
        return EXIT_HARNESS

    if args.from_results is None:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    key = baseline_key(args.middleware, args.middleware_kwargs, args.status_999)
    summary = summarise(tests, results)
    print(
        f"{SUITE}@{meta['version']}{'' if args.suite_dir is None else f' ({PACKAGE})'}: "
        f"{len(results)} results in {elapsed:.1f} s "
        f"through {key}; raw results: {args.results}"
    )
    print_summary(key, summary)
    print_failures(tests, results)
    print_published(tests, meta["published"], (key, results))

    if args.suite_dir is not None:
        print(f"\n(suite from {PACKAGE}: no baseline comparison)")
        return 0
    passed = required_passed(tests, results)
    try:
        baseline = json.loads(args.baseline.read_text())
    except (OSError, ValueError):
        baseline = {}
    runs: dict[str, Any] = baseline.get("runs", {})
    status = compare(runs.get(key), passed, results)
    if args.update_baseline:
        runs[key] = {
            "required_passed": passed,
            "summary": {
                k: {n: v for n, v in s.items() if n != "other_by_type"} for k, s in summary.items()
            },
        }
        baseline = {
            "suite": f"{SUITE}@{meta['version']}",
            "about": (
                "Per middleware (proxy.py spec), the ids of the 'required' tests whose result "
                "was a pass; tests/conformance/run.py fails when one of them fails. Rewrite "
                "with: python tests/conformance/run.py --middleware SPEC --update-baseline"
            ),
            "runs": dict(sorted(runs.items())),
        }
        args.baseline.write_text(json.dumps(baseline, indent=2) + "\n")
        print(f"baseline for {key!r} written to {args.baseline}")
        return 0
    return status


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt as exc:
        print(f"conformance: interrupted ({exc or 'Ctrl-C'}); servers stopped", file=sys.stderr)
        sys.exit(130)
