# oxicache — every target documents itself: `make help`.
.DEFAULT_GOAL := help
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CARGO_FLAGS ?= -j2

.PHONY: help
help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.ready: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "maturin>=1.8,<2"
	touch $@

.PHONY: venv
venv: $(VENV)/.ready ## Create the virtualenv with maturin

.PHONY: develop
develop: venv ## Build the extension (debug) and install the package with its test extras
	$(VENV)/bin/maturin develop -q --extras test

.PHONY: release
release: venv ## Build the extension with the release profile (fat LTO, as wheels are) and the test extras
	$(VENV)/bin/maturin develop --release --extras test

.PHONY: demo
demo: venv ## Set up and run the demo: a FastAPI app under uvicorn, MISS/HIT over HTTP and the cost of a hit in process
	@echo "make demo: building the Rust engine (optimised, about a minute on 2 cores) and installing fastapi, uvicorn, httpx"
	PIP_QUIET=1 $(VENV)/bin/maturin develop --profile demo --extras demo
	$(PY) examples/demo.py

.PHONY: test-rust
test-rust: ## Rust unit and property tests (no Python needed)
	cargo test $(CARGO_FLAGS) --quiet

# Debian packages of the servers the backend tests start (tests/python/servers.py). Installed
# only when a binary is missing; sudo only when not root.
SERVER_PACKAGES := redis-server:redis-server redis-cli:redis-tools redis-sentinel:redis-sentinel memcached:memcached

.PHONY: servers
servers: ## Install the servers the backend tests run (Redis, Sentinel, memcached) with apt-get
	@missing=""; \
	for pair in $(SERVER_PACKAGES); do \
	  command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if ! command -v apt-get >/dev/null 2>&1; then \
	    echo "make servers: install$$missing yourself (no apt-get here)" >&2; exit 1; \
	  fi; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  echo "make servers: apt-get install$$missing"; \
	  $$sudo apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends$$missing; \
	fi

.PHONY: test-python
test-python: develop servers ## Python tests over real FastAPI apps and real backend servers
	OXICACHE_REQUIRE_SERVERS=1 $(PY) -m pytest -q

.PHONY: conformance
conformance: develop ## RFC 9111: the cache-tests.fyi suite (npm) against CacheMiddleware vs baseline (~30 s)
	$(PY) tests/conformance/run.py

.PHONY: peer-tests
peer-tests: develop servers ## The peer libraries' own tests (fetched from GitHub) against the compat modules
	$(PY) tests/compat/run_peer_tests.py
	$(PY) tests/compat/run_cachex_tests.py
	$(PY) tests/compat/run_redis_cache_tests.py
	$(PY) tests/compat/run_cachemate_tests.py

.PHONY: test
test: lint test-rust test-python docs ## Set up and run all the tests (Rust, Python, stubs, lint, docs)

.PHONY: docs
docs: develop ## Build the documentation site into site/ (mkdocs build --strict; its code blocks run in pytest)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict -d site

# The rendered-site check drives a Chromium with playwright. Playwright's own browser download
# needs a host that may not be reachable, so Debian's chromium package is installed instead
# when no Chromium is on the PATH (sudo only when not root).
.PHONY: docs-check
docs-check: develop ## Load every docs page in headless Chromium, phone and desktop widths: no overflow, broken link or console error (installs chromium, playwright; ~1 min; screenshots in target/docs-check/)
	@if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1 \
	    && [ -z "$$OXICACHE_BROWSER" ]; then \
	  if ! command -v apt-get >/dev/null 2>&1; then \
	    echo "make docs-check: install Chromium, or set OXICACHE_BROWSER to one" >&2; exit 1; \
	  fi; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  echo "make docs-check: apt-get install chromium"; \
	  $$sudo apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	fi
	$(PY) -m pip install -q "playwright>=1.40"
	OXICACHE_REQUIRE_BROWSER=1 $(PY) -m pytest -q -p no:cacheprovider tests/python/test_docs_site.py

.PHONY: docs-serve
docs-serve: develop ## Serve the documentation site with live reload on http://127.0.0.1:8000
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve

.PHONY: wheel
wheel: venv ## Build the release abi3 wheel into dist/ (pip install it with the extras you need)
	CARGO_BUILD_JOBS=2 $(VENV)/bin/maturin build --release -o dist
	@ls -1 dist/oxicache-*.whl

.PHONY: wheel-check
wheel-check: venv ## Build the release abi3 wheel, install it in a fresh venv without cargo, run smoke tests (~1-5 min)
	VENV=$(VENV) bash tests/wheel_check.sh

.PHONY: lint
lint: develop ## Formatters and linters: rustfmt, clippy, ruff, mypy --strict, stubtest
	cargo fmt --check
	cargo clippy $(CARGO_FLAGS) --quiet --features python --all-targets -- -D warnings
	$(VENV)/bin/ruff format --check python tests examples bench
	$(VENV)/bin/ruff check python tests examples bench
	$(VENV)/bin/mypy
	$(PY) -m mypy.stubtest oxicache._core --allowlist .stubtest-allowlist

.PHONY: format
format: develop ## Apply the formatters (rustfmt, ruff; installs them into .venv first)
	cargo fmt
	$(VENV)/bin/ruff format python tests examples bench
	$(VENV)/bin/ruff check --fix python tests examples bench

.PHONY: bench
bench: ## Side-by-side benchmark vs the peer libraries (~30 min; installs tools and venvs) -> bench/RESULTS.md
	bash bench/run.sh

.PHONY: bench-quick
bench-quick: ## Smoke run of the benchmark (~2-3 min once the venvs exist) -> bench/results/RESULTS-last.md
	bash bench/run.sh --quick

.PHONY: clean
clean: ## Remove build outputs and the virtualenv
	rm -rf target site $(VENV) .pytest_cache .mypy_cache .ruff_cache
