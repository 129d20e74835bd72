#!/usr/bin/env bash
# oxicache side by side with the peer libraries: one command from a fresh clone.
#
#   bash bench/run.sh                  # full run (about 30 minutes once the venvs exist)
#   bash bench/run.sh --quick          # smoke run, about 2-3 minutes once the venvs exist
#   bash bench/run.sh --only oxicache,fastapi-cachex --phases throughput,inproc --rounds 3
#   bash bench/run.sh --setup-only     # tools and venvs only
#   BENCH_REPO=head bash bench/run.sh  # oxicache built from the HEAD commit, without uncommitted edits
#
# A run with no arguments refreshes bench/RESULTS.md and bench/plots/; any other run leaves
# them alone and reports to bench/results/RESULTS-last.md and bench/results/plots-last/.
#
# Steps: install wrk/redis-server/memcached/taskset if missing (apt), build the venvs that
# the selected targets need (bench/.venvs/<name>, reused while their pins and the repository
# are unchanged), run bench/run.py with the remaining arguments, then bench/report.py on the
# JSON it wrote. Every server binds 127.0.0.1; every load loop has a deadline.
set -euo pipefail
BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY=${PYTHON:-python3}

setup_only=0
only=""
args=()
while (($#)); do
  case "$1" in
    --setup-only) setup_only=1 ;;
    --only) only="${2:-}"; args+=("$1" "${2:-}"); shift ;;
    --only=*) only="${1#--only=}"; args+=("$1") ;;
    *) args+=("$1") ;;
  esac
  shift
done

# 1. system tools
missing=()
for bin in wrk redis-server memcached taskset; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
done
if ((${#missing[@]})); then
  echo "[run.sh] missing: ${missing[*]}; installing wrk redis-server memcached util-linux" >&2
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q wrk redis-server memcached util-linux
  # the Debian packages start system-wide daemons on the default ports; the benchmark starts
  # its own on other ports, so leave those alone (they are not ours to stop).
fi

# 2. virtualenvs (one per dependency set, plus the repository built in release mode)
"$PY" "$BENCH/harness/venvs.py" --for-targets "$only"
((setup_only)) && { echo "[run.sh] setup done" >&2; exit 0; }

# 3. the run; its last stdout line is the JSON path
out=$("$PY" "$BENCH/run.py" "${args[@]+"${args[@]}"}" | tail -n 1)
echo "[run.sh] results: $out" >&2

# 4. the report (matplotlib lives in the "report" venv). Only a full run with no arguments
#    rewrites bench/RESULTS.md and bench/plots/; any other run reports under bench/results/.
if [[ -f "$BENCH/report.py" ]]; then
  report=()
  if ((${#args[@]})); then
    report=(--out "$BENCH/results/RESULTS-last.md" --plots "$BENCH/results/plots-last")
  fi
  "$BENCH/.venvs/report/bin/python" "$BENCH/report.py" "$out" "${report[@]+"${report[@]}"}"
else
  echo "[run.sh] bench/report.py does not exist yet; skipping the report" >&2
fi
echo "$out"
