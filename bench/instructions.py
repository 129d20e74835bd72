"""Instructions per cache hit, counted by valgrind's callgrind: a figure that does not move with
the machine's load (wall-clock figures on a shared 2-core machine do), for comparing two
builds of oxicache on the hot path.

    python bench/instructions.py [--calls 1000] [--python .venv/bin/python]

For each target of ``bench/inproc.py`` (raw ASGI, FastAPI returning a prebuilt Response, a
decorated hit, a middleware hit) the app is called ``N`` and ``N + calls`` times under
callgrind, with ``PYTHONHASHSEED=0``; the difference divided by ``calls`` is the cost of one
call, start-up and warm-up cancelling out. Printed: instructions per call, and what the
decorator adds over FastAPI-prebuilt and the middleware over raw ASGI. Use a release build
(``maturin develop --release`` or an installed wheel); a debug build's counts mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

_RUN = """
import asyncio, sys
sys.path.insert(0, {bench!r})
import inproc
app = {{"raw": inproc.raw_asgi, "prebuilt": inproc.prebuilt, "oxicache": inproc.cached,
        "middleware": inproc.middleware}}[sys.argv[1]]
async def main():
    call = inproc.caller(app)
    for _ in range(5):
        await call()
    for _ in range(int(sys.argv[2])):
        await call()
asyncio.run(main())
"""


def instructions(python: str, script: Path, target: str, n: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        run = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                python,
                str(script),
                target,
                str(n),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        found = re.search(r"Collected : (\d+)", run.stderr)
        if not found:
            raise SystemExit(f"no count from valgrind:\n{run.stderr[-2000:]}")
        return int(found.group(1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--python", default=sys.executable)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "run.py"
        script.write_text(_RUN.format(bench=str(HERE)))
        base = 200
        per_call = {}
        for target in ("raw", "prebuilt", "oxicache", "middleware"):
            low = instructions(a.python, script, target, base)
            high = instructions(a.python, script, target, base + a.calls)
            per_call[target] = round((high - low) / a.calls)
    result = {
        "instructions_per_call": per_call,
        "oxicache_added_per_hit": per_call["oxicache"] - per_call["prebuilt"],
        "middleware_added_per_hit": per_call["middleware"] - per_call["raw"],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
