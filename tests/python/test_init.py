"""The package's public surface: ``oxicache.__all__`` is complete and sorted."""

from __future__ import annotations
import __future__

import types
import typing

import oxicache

#: Names the module has for its own use: annotations, not API.
_NOT_API = {name for name in dir(typing)} | {"annotations"}


def _isort_style(name: str) -> tuple[int, str]:
    """The order ruff's RUF022 keeps: CONSTANTS, then Classes, then everything else."""
    if name.isupper() or (name.upper() == name and "_" in name):
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def test_all_names_every_public_attribute() -> None:
    public = {
        name
        for name, value in vars(oxicache).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType | __future__._Feature)
        and not (name in _NOT_API and getattr(typing, name, None) is value)
    }
    assert public | {"__version__"} == set(oxicache.__all__)
    for name in oxicache.__all__:
        assert hasattr(oxicache, name), name


def test_all_is_sorted() -> None:
    assert list(oxicache.__all__) == sorted(oxicache.__all__, key=_isort_style)
