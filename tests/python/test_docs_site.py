"""The rendered documentation site, as a reader's browser shows it (``make docs-check``).

The site is built with ``mkdocs build --strict``, served on a free local port, and every page
is loaded in headless Chromium at a phone width and a desktop width. On each page and width:

- the page does not scroll sideways (``scrollWidth`` of the document within the viewport);
- at the desktop width, no code block scrolls sideways either (its lines fit the column);
- every image loaded (``naturalWidth > 0``), and no request to the site failed or answered an
  error status (a broken internal link, image or stylesheet);
- the browser logged no console error and no uncaught exception.

Every internal link of every page is also requested once and must answer ``200``. A screenshot
of each page at each width goes to ``target/docs-check/`` (ignored by git) for a look.

Needs the Python package playwright and a Chromium: playwright's own, the one
``OXICACHE_BROWSER`` names, or the system's (``/usr/bin/chromium``, Debian's package). Without
them the test skips, unless ``OXICACHE_REQUIRE_BROWSER=1`` (set by ``make docs-check``, which
installs both) makes that a failure.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "target" / "docs-check"
VIEWPORTS = {"phone": (390, 844), "desktop": (1366, 900)}
SYSTEM_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def unavailable(reason: str) -> None:
    if os.environ.get("OXICACHE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"OXICACHE_REQUIRE_BROWSER=1, but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    mkdocs = Path(sys.executable).with_name("mkdocs")
    if not mkdocs.exists():
        unavailable("mkdocs is not installed (pip install oxicache[docs])")
    proc = subprocess.run(
        [str(mkdocs), "build", "--strict", "-q", "-d", str(out)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def base_url(site: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a browser that closes a connection early is not a broken page


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install playwright)")
    with sync_playwright() as p:
        candidates: list[str | None] = []
        if os.environ.get("OXICACHE_BROWSER"):
            candidates.append(os.environ["OXICACHE_BROWSER"])
        candidates.append(None)  # playwright's own Chromium, when it was downloaded
        candidates += [shutil.which(name) for name in SYSTEM_BROWSERS if shutil.which(name)]
        errors = []
        for path in candidates:
            try:
                launched = p.chromium.launch(executable_path=path, headless=True)
            except Error as exc:
                errors.append(f"{path or 'playwright chromium'}: {str(exc).splitlines()[0]}")
                continue
            try:
                yield launched
            finally:
                launched.close()
            return
        unavailable("no Chromium could be launched: " + "; ".join(errors))


def page_paths(site: Path) -> list[str]:
    """Every page of the site, as a URL path ("", "quickstart/", ...)."""
    pages = []
    for index in sorted(site.rglob("index.html")):
        rel = index.parent.relative_to(site).as_posix()
        pages.append("" if rel == "." else f"{rel}/")
    return pages


# The script run in each page once it has loaded: what the assertions read.
MEASURE = """() => {
  const doc = document.scrollingElement;
  const wide = [...document.querySelectorAll('.md-content pre > code')]
    .filter(c => c.scrollWidth > c.clientWidth + 1)
    .map(c => c.textContent.split('\\n').reduce((a, b) => (b.length > a.length ? b : a), ''));
  const images = [...document.images]
    .filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'));
  const links = [...document.querySelectorAll('a[href]')].map(a => a.href);
  return {scrollWidth: doc.scrollWidth, innerWidth: window.innerWidth, wide, images, links};
}"""


def test_every_page_fits_loads_and_logs_no_error(site: Path, base_url: str, browser: Any) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    paths = page_paths(site)
    assert len(paths) >= 10, paths
    problems: list[str] = []
    links: set[str] = set()
    for width_name, (width, height) in VIEWPORTS.items():
        context = browser.new_context(viewport={"width": width, "height": height})
        for path in paths:
            page = context.new_page()
            errors: list[str] = []
            page.on("console", lambda m, e=errors: e.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda exc, e=errors: e.append(f"uncaught: {exc}"))
            page.on(
                "requestfailed",
                lambda r, e=errors: (
                    e.append(f"failed: {r.url}") if r.url.startswith(base_url) else None
                ),
            )
            page.on(
                "response",
                lambda r, e=errors: (
                    e.append(f"{r.status}: {r.url}")
                    if r.url.startswith(base_url) and r.status >= 400
                    else None
                ),
            )
            page.goto(base_url + path, wait_until="load")
            seen = page.evaluate(MEASURE)
            where = f"/{path} at {width_name} width ({width}px)"
            if seen["scrollWidth"] > seen["innerWidth"] + 1:
                problems.append(
                    f"{where}: the page scrolls sideways "
                    f"({seen['scrollWidth']}px wide in {seen['innerWidth']}px)"
                )
            if width_name == "desktop":
                problems += [f"{where}: a code block scrolls sideways: {w!r}" for w in seen["wide"]]
            problems += [f"{where}: image not loaded: {src}" for src in seen["images"]]
            problems += [f"{where}: {e}" for e in errors]
            links.update(link for link in seen["links"] if link.startswith(base_url))
            shot = SHOTS / f"{path.strip('/').replace('/', '_') or 'index'}-{width_name}.png"
            page.screenshot(path=str(shot), full_page=False)
            page.close()
        context.close()
    for link in sorted({urllib.parse.urldefrag(link)[0] for link in links}):
        try:
            with urllib.request.urlopen(link, timeout=10) as answer:
                status = answer.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        if status != 200:
            problems.append(f"broken internal link: {link} ({status})")
    assert not problems, "\n".join(problems)
