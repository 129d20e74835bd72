"""What goes into a cache key from a handler's or function's arguments.

The Rust core encodes plain values (``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``,
lists, tuples, dicts, sets) as typed, length-prefixed fields. :func:`key_value` turns the other
common types into plain values first. Arguments that are not data (the ``Request``, the
``Response``, ``BackgroundTasks``, resources from ``yield`` dependencies such as DB sessions)
are left out of the key by :func:`plan_arguments`, never keyed by ``repr()``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import logging
import typing
from collections.abc import Callable, Iterable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import PurePath
from typing import Any
from uuid import UUID, uuid4

from pydantic import BaseModel, SecretBytes, SecretStr

from . import _core
from .exceptions import UnkeyableArgument

__all__ = ["QUERY_KEYS", "ArgumentPlan", "function_label", "key_value", "plan_arguments"]

#: How a route's key can hold the query string: ``raw`` (as sent), ``sorted`` (parameters
#: sorted by name) or ``declared`` (only the parameters the route declares); see
#: ``src/core/query.rs`` for why the last two never change what a declared parameter gets.
QUERY_KEYS = ("raw", "sorted", "declared")


def _type_name(obj: object) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def key_value(obj: object) -> object:
    """Plain-value form of ``obj`` for a cache key, or :class:`UnkeyableArgument`.

    Called by the Rust key encoder for any value it does not encode itself. The type's name is
    part of the result, so equal-looking values of different types key differently.
    """
    hook = getattr(obj, "__cache_key__", None)
    if hook is not None and callable(hook):
        return ("hook", _type_name(obj), hook())
    if isinstance(obj, SecretStr | SecretBytes):
        # Keyed by what it holds, as a digest: never two secrets on one key, never the secret
        # in clear in key material.
        secret = obj.get_secret_value()
        data = secret.encode() if isinstance(secret, str) else bytes(secret)
        return ("secret", _type_name(obj), hashlib.blake2b(data, digest_size=32).digest())
    if isinstance(obj, BaseModel):
        # The model's real values, not a serialization view: a dump would show SecretStr as
        # "**********", drop Field(exclude=True) and apply custom serializers, so two different
        # models could dump alike. Extra and private attributes are state too.
        fields = {name: getattr(obj, name) for name in type(obj).model_fields}
        extra = dict(obj.__pydantic_extra__ or {})
        private = dict(obj.__pydantic_private__ or {})
        return ("model", _type_name(obj), fields, extra, private)
    model_dump = getattr(obj, "model_dump", None)
    if model_dump is not None and callable(model_dump) and not isinstance(obj, type):
        return ("model", _type_name(obj), model_dump(mode="json"))
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
        return ("dataclass", _type_name(obj), fields)
    if isinstance(obj, Enum):
        return ("enum", _type_name(obj), obj.value)
    if isinstance(obj, datetime | date | time):
        return ("iso", _type_name(obj), obj.isoformat())
    if isinstance(obj, timedelta):
        return ("timedelta", obj.days, obj.seconds, obj.microseconds)
    if isinstance(obj, UUID):
        return ("uuid", obj.bytes)
    if isinstance(obj, Decimal):
        return ("decimal", str(obj))
    if isinstance(obj, PurePath):
        return ("path", _type_name(obj), str(obj))
    if isinstance(obj, frozenset | set | list | tuple | dict):  # subclasses of the plain types
        return ("seq", _type_name(obj), list(obj.items()) if isinstance(obj, dict) else list(obj))
    raise UnkeyableArgument(
        f"a value of type {_type_name(obj)} cannot be part of a cache key: give it a "
        "__cache_key__() method, list the parameter in ignore_args=, or pass key_builder="
    )


# Parameter types that are request plumbing, not data. Matched by name so that this module
# does not import FastAPI (oxicache also serves plain Starlette apps and plain functions).
_PLUMBING = frozenset(
    {
        "starlette.requests.Request",
        "starlette.requests.HTTPConnection",
        "starlette.websockets.WebSocket",
        "starlette.responses.Response",
        "starlette.background.BackgroundTasks",
        "fastapi.background.BackgroundTasks",
        "fastapi.security.oauth2.SecurityScopes",
        "fastapi.requests.Request",
        "fastapi.responses.Response",
        "fastapi.websockets.WebSocket",
        # Asks things of the cache for this request; the same for every request.
        "oxicache.cache_request.CacheRequest",
    }
)


def _is_plumbing(annotation: Any) -> bool:
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if not isinstance(annotation, type):
        return False
    return any(f"{c.__module__}.{c.__qualname__}" in _PLUMBING for c in annotation.__mro__)


def _is_resource_dependency(dep: Any, annotation: Any) -> bool:
    """A ``yield`` dependency provides a resource (a DB session, a client), not data."""
    call = getattr(dep, "dependency", None)
    if call is None:  # Depends() with the class taken from the annotation
        call = typing.get_args(annotation)[0] if typing.get_args(annotation) else annotation
    call = inspect.unwrap(call) if callable(call) else call
    return inspect.isgeneratorfunction(call) or inspect.isasyncgenfunction(call)


def _hints_one_by_one(func: Callable[..., Any], signature: inspect.Signature) -> dict[str, Any]:
    """Each parameter's annotation resolved on its own, as FastAPI resolves them.

    Under ``from __future__ import annotations`` every annotation is a string, and
    ``typing.get_type_hints`` fails as a whole when one of them does not resolve (a local class,
    a ``TYPE_CHECKING`` import). Without this, ``request: Request`` would stay the string
    ``"Request"``, not be recognised as plumbing, and be keyed.
    """
    globalns = getattr(inspect.unwrap(func), "__globals__", {})
    hints: dict[str, Any] = {}
    for name, param in signature.parameters.items():
        annotation = param.annotation
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, globalns)  # what get_type_hints does, per name
            except Exception:
                continue
        hints[name] = annotation
    return hints


@dataclasses.dataclass(frozen=True)
class ArgumentPlan:
    """Which parameters of a function are keyed, and what that says about the route."""

    #: Names whose values go into the key, in signature order.
    keyed: tuple[str, ...]
    #: Names left out (plumbing, resources, ``ignore_args``).
    skipped: tuple[str, ...]
    #: Some keyed value comes from a dependency (e.g. the current user), so the key can
    #: distinguish users: requests with credentials may then be answered from the cache.
    keyed_dependency: bool
    #: Name of the function's own ``Request`` parameter, if it has one.
    request_param: str | None
    #: Name of the function's own ``Response`` parameter, if it has one.
    response_param: str | None
    #: Values of ``yield`` dependencies (also in ``skipped``): keyed when they are plain data
    #: (a user model from a ``yield`` dependency), left out when not (a DB session).
    resources: tuple[str, ...] = ()
    #: A dependency parameter whose value is not (always) in the key: it may be an
    #: authorization check, which a shared cache downstream would skip.
    unkeyed_dependency: bool = False
    #: Request header fields read through ``Header()`` parameters (lower-cased, FastAPI's
    #: alias rules): keyed through the argument, and named in ``Vary``.
    header_fields: tuple[str, ...] = ()
    #: A ``Cookie()`` parameter is keyed: its value identifies the client.
    cookie_param: bool = False


def plan_arguments(func: Callable[..., Any], ignore: Iterable[str] = ()) -> ArgumentPlan:
    """Classifies the parameters of ``func`` for keying."""
    ignore = set(ignore)
    signature = inspect.signature(func)
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception:  # one unresolved forward reference must not hide the other annotations
        hints = _hints_one_by_one(func, signature)
    keyed: list[str] = []
    skipped: list[str] = []
    keyed_dependency = unkeyed_dependency = False
    resources: list[str] = []
    header_fields: list[str] = []
    cookie_param = False
    request_param = response_param = None
    for name, param in signature.parameters.items():
        annotation = hints.get(name, param.annotation)
        if _is_plumbing(annotation):
            skipped.append(name)
            base = typing.get_args(annotation)[0] if typing.get_args(annotation) else annotation
            mro = {f"{c.__module__}.{c.__qualname__}" for c in getattr(base, "__mro__", ())}
            if "starlette.requests.Request" in mro and request_param is None:
                request_param = name
            if "starlette.responses.Response" in mro and response_param is None:
                response_param = name
            continue
        dep = _marker(param, annotation, "fastapi.params.Depends")
        header = _header_field(name, param, annotation)
        if header is not None:
            header_fields.append(header)
        cookie_param |= _marker(param, annotation, "fastapi.params.Cookie") is not None
        if name in ignore:
            skipped.append(name)
            unkeyed_dependency |= dep is not None
            continue
        if dep is not None and _is_resource_dependency(dep, annotation):
            skipped.append(name)
            resources.append(name)
            unkeyed_dependency = True  # its value is keyed only when it is plain data
            continue
        keyed.append(name)
        keyed_dependency |= dep is not None
    return ArgumentPlan(
        tuple(keyed),
        tuple(skipped),
        keyed_dependency,
        request_param,
        response_param,
        tuple(resources),
        unkeyed_dependency,
        tuple(header_fields),
        cookie_param,
    )


def _marker(param: inspect.Parameter, annotation: Any, class_name: str) -> Any | None:
    """The FastAPI parameter marker of class ``class_name`` (or a subclass) on a parameter,
    from its default or its ``Annotated`` metadata."""
    candidates: list[Any] = [param.default]
    if typing.get_origin(annotation) is typing.Annotated:
        candidates.extend(typing.get_args(annotation)[1:])
    for c in candidates:
        if class_name in {f"{k.__module__}.{k.__qualname__}" for k in type(c).__mro__}:
            return c
    return None


def _header_field(name: str, param: inspect.Parameter, annotation: Any) -> str | None:
    """The request header a ``Header()`` parameter reads, as FastAPI resolves it: the alias,
    else the name with underscores turned into hyphens (unless ``convert_underscores=False``)."""
    marker = _marker(param, annotation, "fastapi.params.Header")
    if marker is None:
        return None
    alias = getattr(marker, "alias", None)
    if isinstance(alias, str) and alias:
        return alias.lower()
    if getattr(marker, "convert_underscores", True):
        return name.replace("_", "-").lower()
    return name.lower()


def function_label(
    func: Callable[..., Any], *, namespaced: bool = False, unkeyable: str = "random"
) -> str:
    """The route label entries are keyed and tagged with: the same for the same function in
    every process, whatever order functions were defined in.

    A module-level function is ``module.qualname``. Functions defined inside another function
    (a factory) share a qualified name but not their closures, so theirs also carries a digest
    of what the closure captured and its defaults: ``make("users")`` and ``make("orders")``
    never share entries, and ``make("orders")`` has the same label in every process. When a
    captured value cannot be keyed (a client object, a lock), the label carries a random token
    instead: that closure's entries are its own, in this process only (on a shared backend,
    other processes neither read nor overwrite them); with ``unkeyable="name"`` it is
    ``module.qualname`` alone. An explicit ``namespace=`` says the
    namespace tells such closures apart: the label is then ``module.qualname`` alone.
    """
    label = f"{func.__module__}.{func.__qualname__}"
    if "<locals>" not in func.__qualname__ or namespaced:
        return label
    captured: list[Any] = [func.__defaults__, func.__kwdefaults__]
    for cell in func.__closure__ or ():
        try:
            value = cell.cell_contents
        except ValueError:  # not bound yet (the function refers to itself)
            value = ("unbound",)
        if inspect.isfunction(value) or inspect.isclass(value) or inspect.ismodule(value):
            name = getattr(value, "__qualname__", getattr(value, "__name__", ""))
            value = ("code", getattr(value, "__module__", ""), name)
        captured.append(value)
    try:
        digest = _core.build_key(tuple(captured), key_value).hex[:16]
    except Exception:
        if unkeyable == "name":
            return label
        logging.getLogger("oxicache").debug(
            "oxicache: %s captures a value that cannot be keyed: its entries stay its own"
            " (give namespace= to share them between processes)",
            label,
        )
        return f"{label}#{uuid4().hex[:16]}"
    return f"{label}#{digest}"
