"""Record the cache-tests.fyi conformance figures that the documentation publishes.

    python tests/conformance/run.py            # the suite against CacheMiddleware (make conformance)
    python bench/conformance.py                # -> bench/results/conformance.json

Reads the raw results of the last conformance run (tests/conformance/results-last.json, or
--results) and the installed suite (tests/conformance/.node/, with the results it publishes for
reverse proxies), classifies both exactly as tests/conformance/run.py does, and writes the
"required" counts: ours, with the ids of the failures, and each published reverse proxy's on the
same test set. bench/summary.py renders the documentation's conformance figures from that file;
tests/python/test_bench_report.py checks that our counts agree with the committed baseline
(tests/conformance/baseline.json), so the two cannot drift apart.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RUNNER = REPO / "tests" / "conformance" / "run.py"
OUT = HERE / "results" / "conformance.json"
MIDDLEWARE = "oxicache:CacheMiddleware"


def load_runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("conformance_run", RUNNER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def required_counts(
    run: ModuleType, tests: dict[str, Any], results: dict[str, Any]
) -> dict[str, Any]:
    types = run.required_types(tests, results)
    return {
        "failed": sum(types[t] for t in run.FAIL_TYPES),
        "passed": sum(types[t] for t in run.PASS_TYPES),
    }


def record(results_path: Path) -> dict[str, Any]:
    run = load_runner()
    node = shutil.which("node")
    if node is None:
        raise SystemExit("conformance.py: node is needed to read the installed suite")
    if run.installed_version() != run.SUITE_VERSION:
        raise SystemExit("conformance.py: run `make conformance` first (installs the suite)")
    meta = run.suite_meta(node)
    tests = {t["id"]: t for t in meta["tests"]}
    results = json.loads(results_path.read_text(encoding="utf-8"))
    ours = required_counts(run, tests, results)
    failed_ids = sorted(
        i
        for i, t in tests.items()
        if t["kind"] == "required"
        and not t["browser_only"]
        and run.classify(tests, results, i) in run.FAIL_TYPES
    )
    published = [
        {
            "name": item["name"],
            "version": item.get("version", ""),
            **required_counts(run, tests, item["results"]),
        }
        for item in meta["published"]
        if item["type"] == "rev-proxy"
    ]
    required = sum(1 for t in tests.values() if t["kind"] == "required" and not t["browser_only"])
    return {
        "suite": f"{run.SUITE}@{meta['version']}",
        "middleware": MIDDLEWARE,
        "required_tests": required,
        "oxicache": {**ours, "failed_ids": failed_ids},
        "published": sorted(published, key=lambda p: (p["failed"], p["name"])),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument(
        "--results", type=Path, default=REPO / "tests" / "conformance" / "results-last.json"
    )
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    data = record(args.results)
    args.out.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    ours = data["oxicache"]
    print(
        f"{data['suite']}: {ours['failed']} of {data['required_tests']} required tests failed -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
