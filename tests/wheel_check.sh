#!/usr/bin/env bash
# `make wheel-check`: the release wheel installs and works where no Rust toolchain is.
#
# 1. `maturin build --release` -> one abi3 wheel (cp311-abi3) in target/wheel-check/.
# 2. A fresh virtualenv made by the system python3 with `env -i PATH=/usr/bin:/bin` (no cargo,
#    no rustc, no pyenv shims, none of the caller's environment), where the wheel is installed
#    with its `test` extra from the package index.
# 3. A smoke subset of tests/python runs from a temporary copy of tests/ with its own pytest.ini,
#    so `import oxicache` can only resolve to the installed wheel (checked before pytest runs).
# 4. The documentation's Python blocks run where a reader runs them: one more clean virtualenv
#    per distinct `<!-- requires: ... -->` set of README.md and docs/ (tests/docs_blocks.py
#    groups), holding only the wheel with those extras and what the page tells its reader to
#    install, nothing else; tests/docs_blocks.py (stdlib only) runs each page's blocks there.
#    DOCS_CHECK=0 skips this step.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
VENV=${VENV:-.venv}
SYSTEM_PYTHON=${SYSTEM_PYTHON:-/usr/bin/python3}
SMOKE_TESTS=${SMOKE_TESTS:-"test_smoke.py decorator/test_decorator.py middleware/test_middleware.py test_memory.py test_keys.py"}
out=target/wheel-check

start=$(date +%s)
rm -rf "$out"
CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2} "$VENV/bin/maturin" build --release -q -o "$out"
wheels=("$out"/oxicache-*-abi3-*.whl)
[ "${#wheels[@]}" = 1 ] && [ -f "${wheels[0]}" ] || { echo "wheel-check: expected one abi3 wheel in $out" >&2; ls "$out" >&2; exit 1; }
wheel=$repo/${wheels[0]}
echo "wheel-check: built $(basename "$wheel") in $(($(date +%s) - start)) s"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
clean=(env -i PATH=/usr/bin:/bin HOME="${HOME:-/root}" LANG=C.UTF-8)
if "${clean[@]}" sh -c 'command -v cargo || command -v rustc' >/dev/null; then
  echo "wheel-check: cargo/rustc found on PATH=/usr/bin:/bin; the check would prove nothing" >&2
  exit 1
fi

"${clean[@]}" "$SYSTEM_PYTHON" -m venv "$tmp/venv"
"${clean[@]}" "$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check "$wheel[test]"

cp -r tests "$tmp/tests"
rm -rf "$tmp"/tests/python/__pycache__ "$tmp/tests/conformance"
cat >"$tmp/pytest.ini" <<'EOF'
[pytest]
pythonpath = .
addopts = -ra --strict-markers
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
filterwarnings = error::RuntimeWarning
EOF

cd "$tmp"
where=$("${clean[@]}" "$tmp/venv/bin/python" -c 'import oxicache, oxicache._core as c; print(oxicache.__file__); print(c.__file__)')
echo "wheel-check: oxicache imported from ${where//$'\n'/ and }"
if printf '%s\n' "$where" | grep -qv "^$tmp/venv/"; then
  echo "wheel-check: oxicache did not resolve to the installed wheel" >&2
  exit 1
fi
# Every module the wheel ships imports (subpackages missing from it would fail here).
"${clean[@]}" "$tmp/venv/bin/python" -c '
import importlib, pkgutil, oxicache
names = [m.name for m in pkgutil.walk_packages(oxicache.__path__, "oxicache.")]
for name in names:
    importlib.import_module(name)
print(f"wheel-check: {len(names)} modules of the wheel import")'
# shellcheck disable=SC2086
"${clean[@]}" "$tmp/venv/bin/python" -m pytest -q -p no:cacheprovider --rootdir "$tmp" -c "$tmp/pytest.ini" \
  $(for t in $SMOKE_TESTS; do printf 'tests/python/%s ' "$t"; done)

if [ "${DOCS_CHECK:-1}" != 0 ]; then
  cd "$repo"
  groups=$("${clean[@]}" "$SYSTEM_PYTHON" tests/docs_blocks.py groups "$repo")
  n=0
  while IFS=$'\t' read -r reqs pages; do
    [ -n "$reqs" ] || { echo "wheel-check: pages without a requires marker: $pages" >&2; exit 1; }
    n=$((n + 1))
    venv="$tmp/docs-venv-$n"
    echo "wheel-check: docs venv $n: pip install --find-links <wheel dir> $reqs"
    "${clean[@]}" "$SYSTEM_PYTHON" -m venv "$venv"
    # shellcheck disable=SC2086
    "${clean[@]}" "$venv/bin/python" -m pip install -q --disable-pip-version-check \
      --find-links "$(dirname "$wheel")" $reqs
    rel=()
    for page in $pages; do rel+=("${page#"$repo"/}"); done
    (cd "$tmp" && "${clean[@]}" "$venv/bin/python" "$repo/tests/docs_blocks.py" run "$repo" "${rel[@]}")
  done <<<"$groups"
fi
echo "wheel-check: passed in $(($(date +%s) - start)) s"
