"""The process state lives in one object (:data:`oxicache.runtime.STATE`) that imports nothing of
oxicache's but the Rust engine, and the package's modules import each other without a cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import oxicache
from oxicache import config
from oxicache.runtime import STATE, Runtime

PACKAGE = Path(oxicache.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(path: Path) -> set[str]:
    """The oxicache modules ``path`` imports when it is executed: imports inside functions and
    under ``if TYPE_CHECKING:`` are left out (they run later, or never)."""
    tree = ast.parse(path.read_text())
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for sub in ast.walk(node) if isinstance(node, ast.If | ast.Try) else [node]:
            if isinstance(sub, ast.ImportFrom):
                if sub.level:
                    base = package.split(".")
                    base = base[: len(base) - (sub.level - 1)]
                    source = ".".join(base + ([sub.module] if sub.module else []))
                else:
                    source = sub.module or ""
                if not source.startswith("oxicache"):
                    continue
                for alias in sub.names:
                    candidate = f"{source}.{alias.name}"
                    found.add(candidate if _exists(candidate) else source)
            elif isinstance(sub, ast.Import):
                found.update(a.name for a in sub.names if a.name.startswith("oxicache"))
    # A module's own packages are imported before it by Python itself: not an edge.
    return {m for m in found if not (name + ".").startswith(m + ".")}


def _exists(module: str) -> bool:
    relative = PACKAGE.joinpath(*module.split(".")[1:])
    return (
        relative.with_suffix(".py").exists()
        or relative.with_suffix(".pyi").exists()  # the Rust engine
        or (relative / "__init__.py").exists()
    )


def _graph() -> dict[str, set[str]]:
    modules = {
        _module_name(p): p
        for p in PACKAGE.rglob("*.py")
        if "compat" not in p.parts and p.parent.name != "__pycache__"
    }
    return {name: _top_level_imports(path) & set(modules) for name, path in modules.items()}


def test_runtime_imports_nothing_of_oxicache_but_the_engine() -> None:
    assert _top_level_imports(PACKAGE / "runtime.py") == {"oxicache._core"}


def test_the_package_has_no_import_cycle() -> None:
    graph = _graph()
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(node) :], node]))
        if node in done:
            return
        for child in sorted(graph.get(node, ())):
            visit(child, [*path, node])
        done.add(node)

    for module in sorted(graph):
        visit(module, [])


def test_every_module_imports_first_in_a_fresh_process() -> None:
    """No module needs another to have been imported before it (a cycle held apart by import
    order would fail here)."""
    modules = [
        name
        for name in sorted(_graph())
        if name != "oxicache._core"
        and not name.endswith(("settings", "dynamodb", "memcached", "memcached.client"))
    ]
    code = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    for loaded in [m for m in sys.modules if m.startswith('oxicache')]:\n"
        "        del sys.modules[loaded]\n"
        "    importlib.import_module(name)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, *modules], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-2000:]


def test_the_state_is_one_object() -> None:
    assert isinstance(STATE, Runtime)
    assert config.get_settings() is STATE.settings
    assert config.get_store() is STATE.store
    before = STATE.generation
    oxicache.configure(namespace="elsewhere")
    assert STATE.generation == before + 1
    assert STATE.settings.namespace == "elsewhere"
