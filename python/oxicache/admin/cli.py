"""``python -m oxicache`` (also installed as ``oxicache``): the cache's backend from a shell.

::

    oxicache [--url URL] [--prefix P] [--json] [--quiet] [--timeout S] COMMAND

    stats                       entries and bytes per route in the backend
    clear --yes                 drop every entry under the prefix
    invalidate --route LABEL [--namespace NS] | --path PATH | --tag TAG | --namespace NS
    inspect URL [--show-body]   what is stored for a URL: variants, age, TTL, size

The backend is ``--url``, else ``OXICACHE_URL``; the other ``OXICACHE_*`` variables (the
prefix above all) apply as in the app. Exit codes, for scripts: ``0`` done; ``1`` nothing
found (``inspect``) or the backend could not do it (down, or it cannot list its keys); ``2`` a
usage or configuration error (a bad option, no backend, a malformed URL). Messages and
progress go to stderr, results to stdout. URLs are printed without their password; keys and
bodies are never printed (``inspect --show-body`` prints bodies).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from ..backends import remote
from ..config import configure, guard_options
from ..exceptions import ConfigError, OxicacheError
from . import operations

__all__ = ["main"]

#: Exit codes (documented above and in the operations page).
OK, NOTHING, USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oxicache",
        description="Look at and invalidate oxicache's entries in a shared backend.",
        epilog="Exit codes: 0 done; 1 nothing found or the backend could not do it; 2 usage"
        " or configuration error.",
    )
    parser.add_argument("--url", help="backend URL (default: $OXICACHE_URL)")
    parser.add_argument("--prefix", help="key prefix (default: $OXICACHE_PREFIX or 'oxicache')")
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds an invalidation or clear may take (default 60)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("stats", help="entries and bytes per route in the backend")
    clear = commands.add_parser("clear", help="drop every entry under the prefix")
    clear.add_argument("--yes", action="store_true", help="required: confirms the clear")
    inv = commands.add_parser("invalidate", help="drop the entries of a route, path, tag or ns")
    inv.add_argument("--route", help="route label, module.function (with --namespace if set)")
    inv.add_argument("--path", help="raw request path, every query string of it")
    inv.add_argument(
        "--tag", help="a tag given by CacheRequest.tag (user:42), or a path tag (path:<16 hex>)"
    )
    inv.add_argument("--namespace", help="namespace (alone: every entry in it)")
    inspect = commands.add_parser("inspect", help="what is stored for a URL")
    inspect.add_argument("target", metavar="URL", help="/path or http://host/path")
    inspect.add_argument("--show-body", action="store_true", help="print the stored bodies")
    return parser


def _configure(args: argparse.Namespace) -> str:
    """Configures oxicache for this process from the options and the environment; the
    backend's URL, redacted, for messages."""
    url = args.url or os.environ.get("OXICACHE_URL", "").strip()
    if not url or remote.parse_url(url).engine == "memory":
        raise ConfigError(
            "give a shared backend with --url or OXICACHE_URL (redis://..., memcached://...,"
            " dynamodb://...): the in-process store belongs to the app's processes; reach it"
            " through oxicache.admin_router() instead"
        )
    options = {} if args.prefix is None else {"prefix": args.prefix}
    settings = configure(url, **options)
    if not args.timeout > 0:
        raise ConfigError(f"--timeout must be greater than 0 seconds, got {args.timeout}")
    # An operator's invalidation may scan a large keyspace: its own, longer deadline.
    remote.set_backend(url, **guard_options(settings), invalidate_timeout=args.timeout)
    return remote.redact(url)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _progress(quiet: bool, err: TextIO) -> Any:
    if quiet:
        return None

    def tell(seen: int) -> None:
        print(f"scanned {seen} entries...", file=err, flush=True)

    return tell


async def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    where = _configure(args)
    try:
        if args.command == "stats":
            async with asyncio.timeout(args.timeout):
                contents = await operations.backend_contents(_progress(args.quiet, err))
            if args.json:
                print(json.dumps(_plain(contents), indent=2), file=out)
            else:
                _print_contents(contents, where, out)
            return OK
        if args.command == "clear":
            if not args.yes:
                raise ConfigError("clear drops every entry under the prefix: add --yes")
            done = await operations.apply_clear()
            return _report(done, "cleared", args, out, err)
        if args.command == "invalidate":
            done = await operations.apply_invalidation(
                route=args.route, path=args.path, tag=args.tag, namespace=args.namespace
            )
            return _report(done, "invalidated", args, out, err)
        async with asyncio.timeout(args.timeout):
            entries = await operations.inspect_url(args.target, show_body=args.show_body)
        if args.json:
            print(json.dumps(_plain(entries), indent=2), file=out)
        else:
            _print_entries(entries, args.target, out)
        if not entries:
            print(f"oxicache: nothing stored for {args.target}", file=err)
            return NOTHING
        return OK
    except operations.NotSupported as exc:
        print(f"oxicache: {exc}", file=err)
        return NOTHING
    except OxicacheError:
        raise  # a usage or configuration error: main() says which
    except Exception as exc:
        # The backend's own message may quote what it was sent: the type, and where, only.
        print(f"oxicache: the backend at {where} failed: {type(exc).__name__}", file=err)
        return NOTHING
    finally:
        await remote.close_backend()


def _report(
    done: operations.Invalidated, what: str, args: argparse.Namespace, out: TextIO, err: TextIO
) -> int:
    if args.json:
        print(json.dumps(_plain(done)), file=out)
    elif done.applied:
        count = "" if done.removed is None else f" ({done.removed} entries)"
        print(f"{what}{count}", file=out)
    if not done.applied:
        print(f"oxicache: the backend did not apply it (down or too slow): not {what}", file=err)
        return NOTHING
    return OK


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _print_contents(contents: operations.BackendContents, where: str, out: TextIO) -> None:
    print(f"backend    {contents.backend} ({where})", file=out)
    print(f"prefix     {contents.prefix}", file=out)
    print(f"entries    {contents.entries}", file=out)
    print(f"bytes      {_size(contents.bytes)}", file=out)
    if contents.routes:
        print("", file=out)
        print(f"{'entries':>8}  {'bytes':>10}  namespace  route", file=out)
        for r in contents.routes:
            print(f"{r.entries:>8}  {_size(r.bytes):>10}  {r.namespace}  {r.route}", file=out)


def _print_entries(entries: list[operations.StoredEntry], url: str, out: TextIO) -> None:
    if entries:
        print(f"{len(entries)} stored for the path of {url} (every query string):", file=out)
    for e in entries:
        print("", file=out)
        print(f"route      {e.namespace}  {e.route}", file=out)
        if e.unreadable is not None:
            print(f"unreadable {e.unreadable} ({_size(e.size)})", file=out)
            continue
        freshness = (
            f"fresh, {e.fresh_for:.0f} s left"
            if e.fresh_for >= 0
            else f"stale, {-e.fresh_for:.0f} s past"
        )
        expires = "?" if e.expires_in is None else f"{e.expires_in:.0f} s"
        print(f"status     {e.status}", file=out)
        print(f"age        {e.age:.0f} s ({freshness})", file=out)
        print(f"expires in {expires} (in the backend)", file=out)
        print(f"size       {_size(e.size)} stored, body {_size(e.body_size)}", file=out)
        print(f"etag       {e.etag}", file=out)
        if e.content_type:
            print(f"type       {e.content_type}", file=out)
        if e.vary:
            print(f"vary       {e.vary}", file=out)
        if e.body is not None:
            print("body", file=out)
            print(e.body.decode("utf-8", "replace"), file=out)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit code (see the module docstring)."""
    out, err = sys.stdout, sys.stderr
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2)
        return int(exc.code or 0)
    try:
        return asyncio.run(_run(args, out, err))
    except ConfigError as exc:
        print(f"oxicache: {exc}", file=err)
        return USAGE
    except OxicacheError as exc:
        print(f"oxicache: {exc}", file=err)
        return NOTHING
    except KeyboardInterrupt:
        return 130
