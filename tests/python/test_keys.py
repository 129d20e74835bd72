"""Key material: what makes two calls share a cache entry, and what keeps them apart.

Keys are built by the Rust encoder (``_core.build_key``) with :func:`oxicache.keys.key_value` as
the fallback for non-plain values; the routes and memoized functions use the same encoding.
Types are part of the key on purpose: ``1``, ``1.0`` and ``True`` are equal in Python but key
apart, so a cached answer computed for one is never handed out for another.
"""

from __future__ import annotations

import dataclasses
import math
import string
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from pathlib import PurePosixPath
from typing import Annotated, Any
from uuid import UUID

import pytest
from fastapi import BackgroundTasks, Depends, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import SecurityScopes
from hypothesis import given
from hypothesis import strategies as st
from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    SecretBytes,
    SecretStr,
    field_serializer,
)

import oxicache
from oxicache import UnkeyableArgument, _core
from oxicache.keys import key_value, plan_arguments


def key(*values: Any) -> _core.Key:
    return _core.build_key(values, key_value)


# -- a model of the intended equality ---------------------------------------------------------


def canon(value: Any) -> Any:
    """A hashable form that is equal exactly when two values must share a key: same type and
    equal content, recursively. ``0.0`` and ``-0.0`` are one float; dict order does not count."""
    if value is None:
        return ("none",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int):
        return ("int", value)
    if isinstance(value, float):
        return ("float", value + 0.0)
    if isinstance(value, str):
        return ("str", value)
    if isinstance(value, bytes):
        return ("bytes", value)
    if isinstance(value, list):
        return ("list", tuple(canon(v) for v in value))
    if isinstance(value, tuple):
        return ("tuple", tuple(canon(v) for v in value))
    if isinstance(value, dict):
        return ("dict", frozenset((canon(k), canon(v)) for k, v in value.items()))
    if isinstance(value, frozenset | set):
        return ("set", frozenset(canon(v) for v in value))
    raise AssertionError(f"no model for {type(value)}")


# Small alphabets and ranges so that generated pairs are often equal, and often equal in
# Python's eyes while of different types (1 / 1.0 / True, "1" / b"1", [..] / (..)).
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 2),
    st.integers(),
    st.sampled_from([0.0, -0.0, 1.0, 2.0, 0.5, math.inf, -math.inf, 1e300]),
    st.floats(allow_nan=False),
    st.text(alphabet="ab:1", max_size=3),
    st.text(),
    st.binary(max_size=3),
)
hashables = st.recursive(scalars, lambda inner: st.tuples(inner, inner), max_leaves=4)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(hashables, inner, max_size=3),
        st.frozensets(hashables, max_size=3),
        st.sets(hashables, max_size=3),
    ),
    max_leaves=8,
)


@given(values, values)
def test_keys_are_equal_exactly_when_type_and_value_are(a: Any, b: Any) -> None:
    assert (key(a) == key(b)) == (canon(a) == canon(b))
    assert (key(a).canonical == key(b).canonical) == (canon(a) == canon(b))


@given(values)
def test_the_same_value_always_gives_the_same_key(a: Any) -> None:
    import copy

    k = key(a)
    assert key(copy.deepcopy(a)) == k
    assert hash(key(copy.deepcopy(a))) == hash(k)
    assert len(k.hex) == 64 and all(c in string.hexdigits.lower() for c in k.hex)


@given(st.dictionaries(hashables, values, min_size=2, max_size=6))
def test_dict_insertion_order_does_not_matter(d: dict[Any, Any]) -> None:
    reordered = dict(reversed(list(d.items())))
    assert key(d) == key(reordered)


@given(st.lists(hashables, min_size=2, max_size=6, unique=True))
def test_set_iteration_order_does_not_matter(items: list[Any]) -> None:
    assert key(set(items)) == key(set(reversed(items))) == key(set(items[1:] + items[:1]))


@given(st.lists(values, max_size=4), st.lists(values, max_size=4))
def test_argument_tuples_are_unambiguous(a: list[Any], b: list[Any]) -> None:
    """Positional values are fields of one list: how they split into arguments is keyed."""
    assert (key(*a) == key(*b)) == (canon(tuple(a)) == canon(tuple(b)))


def test_separators_inside_strings_cannot_collide() -> None:
    assert key(["a:b", "c"]) != key(["a", "b:c"])
    assert key("a:b", "c") != key("a", "b:c")
    assert key("ab", "") != key("a", "b")
    assert key("", "") != key("")
    assert key("a,b") != key(["a", "b"])


def test_nesting_is_part_of_the_key() -> None:
    assert key((1, (2,))) != key(((1, 2),))
    assert key([[1], 2]) != key([[1, 2]])
    assert key([]) != key([[]]) != key(None)


def test_equal_looking_values_of_different_types_key_apart() -> None:
    distinct = ["1", b"1", 1, 1.0, True, [1], (1,), {1}, {1: None}, Decimal(1), None]
    keys = [key(v) for v in distinct]
    assert len(set(keys)) == len(distinct)
    # A set and a frozenset of the same items are equal in Python, and key alike.
    assert key({1, 2}) == key(frozenset({2, 1}))
    assert key(0) != key(False) != key(None)
    assert key("") != key(b"")


def test_float_zero_signs_share_a_key_and_huge_ints_work() -> None:
    assert key(0.0) == key(-0.0)
    assert key(2**100) == key(2**100)
    assert key(2**100) != key(2**100 + 1)
    assert key(-(2**100)) != key(2**100)
    assert key(2**63) != key(2**63 - 1)
    assert key(2**64) != key(str(2**64))


def test_nan_is_keyable() -> None:
    # NaN != NaN in Python, but every NaN argument is the same "not a number" to a function.
    assert key(math.nan) == key(float("nan"))
    assert key(math.nan) != key(math.inf)


def test_deep_nesting_is_refused_cleanly() -> None:
    value: Any = 1
    for _ in range(40):
        value = [value]
    with pytest.raises(UnkeyableArgument):
        key(value)
    shallow: Any = 1
    for _ in range(10):
        shallow = [shallow]
    assert key(shallow) == key(shallow)


def test_self_referencing_values_are_refused_cleanly() -> None:
    loop: list[Any] = [1]
    loop.append(loop)
    with pytest.raises(UnkeyableArgument):
        key(loop)
    d: dict[str, Any] = {}
    d["self"] = d
    with pytest.raises(UnkeyableArgument):
        key(d)


def test_key_objects_are_hashable_values() -> None:
    a, b, c = key(1, "x"), key(1, "x"), key(1, "y")
    assert a == b and hash(a) == hash(b) and a.hex == b.hex
    assert a != c
    assert {a: "v"}[b] == "v"
    assert len({a, b, c}) == 2
    assert a != "not a key"
    # repr shows a digest prefix, never the key material.
    assert "x" not in repr(key("xxxxxxxxxxxxxxxxxxxxxxxx")).split("Key")[1].strip("<> …")


# -- non-plain values through key_value --------------------------------------------------------


class Color(Enum):
    RED = "red"
    BLUE = "blue"


class Shade(Enum):
    RED = "red"


class User(BaseModel):
    id: int
    name: str
    tags: list[str] = []


class Admin(BaseModel):
    id: int
    name: str
    tags: list[str] = []


@dataclasses.dataclass
class Point:
    x: int
    y: int


@dataclasses.dataclass
class Vector:
    x: int
    y: int


class Tenant:
    def __init__(self, slug: str, secret: object) -> None:
        self.slug = slug
        self.secret = secret

    def __cache_key__(self) -> str:
        return self.slug


def test_models_key_by_type_and_content() -> None:
    assert key(User(id=1, name="a")) == key(User(id=1, name="a"))
    assert key(User(id=1, name="a")) != key(User(id=2, name="a"))
    assert key(User(id=1, name="a", tags=["x"])) != key(User(id=1, name="a"))
    assert key(User(id=1, name="a")) != key(Admin(id=1, name="a"))
    assert key(User(id=1, name="a")) != key({"id": 1, "name": "a", "tags": []})


def test_dataclasses_key_by_type_and_fields() -> None:
    assert key(Point(1, 2)) == key(Point(1, 2))
    assert key(Point(1, 2)) != key(Point(2, 1))
    assert key(Point(1, 2)) != key(Vector(1, 2))


def test_dates_uuids_decimals_enums_paths() -> None:
    t = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert key(t) == key(datetime(2024, 5, 1, 12, 0, tzinfo=UTC))
    assert key(t) != key(t + timedelta(microseconds=1))
    assert key(t) != key(t.replace(tzinfo=None))  # aware and naive are different instants
    assert key(date(2024, 5, 1)) != key(datetime(2024, 5, 1))
    assert key(date(2024, 5, 1)) != key("2024-05-01")
    assert key(timedelta(seconds=1)) != key(timedelta(seconds=2))
    u = UUID("12345678-1234-5678-1234-567812345678")
    assert key(u) == key(UUID(str(u)))
    assert key(u) != key(UUID(int=u.int + 1))
    assert key(u) != key(str(u))
    assert key(Decimal("1.5")) == key(Decimal("1.5"))
    assert key(Decimal("1.5")) != key(Decimal("1.6"))
    assert key(Decimal("1.5")) != key(1.5)
    assert key(Color.RED) == key(Color.RED)
    assert key(Color.RED) != key(Color.BLUE)
    assert key(Color.RED) != key(Shade.RED)
    assert key(Color.RED) != key("red")
    assert key(PurePosixPath("/a/b")) != key("/a/b")


def test_converted_values_never_collide_with_plain_data() -> None:
    """A UUID, a model or a set must not share a key with some tuple or list an attacker or
    an unlucky caller could pass: converted values are marked as such in the encoding."""
    u = UUID(int=7)
    assert key(u) != key(("uuid", u.bytes))
    assert key(Decimal("1.5")) != key(("decimal", "1.5"))
    assert key({1, 2}) != key(["set", [1, 2]])
    assert key({1, 2}) != key(("set", [1, 2]))
    user = User(id=1, name="a")
    assert key(user) != key(key_value(user))
    t = Tenant("acme", object())
    assert key(t) != key(key_value(t))


def test_cache_key_hook_decides_the_key() -> None:
    a, b = Tenant("acme", object()), Tenant("acme", object())
    assert key(a) == key(b)  # the unkeyable `secret` is not looked at
    assert key(a) != key(Tenant("other", object()))
    assert key(a) != key("acme")


def test_plain_objects_are_unkeyable() -> None:
    with pytest.raises(UnkeyableArgument) as info:
        key(object())
    assert "__cache_key__" in str(info.value)
    with pytest.raises(UnkeyableArgument):
        key([1, {"a": object()}])
    with pytest.raises(UnkeyableArgument):
        key(lambda: 1)
    # It is a TypeError and an OxicacheError, so either kind of handler catches it.
    assert issubclass(UnkeyableArgument, TypeError)
    assert issubclass(UnkeyableArgument, oxicache.OxicacheError)


def test_a_hook_that_returns_itself_is_refused() -> None:
    class Loop:
        def __cache_key__(self) -> Any:
            return self

    with pytest.raises(UnkeyableArgument):
        key(Loop())


def test_a_hook_that_raises_propagates_its_error() -> None:
    class Broken:
        def __cache_key__(self) -> Any:
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        key(Broken())


# -- which parameters are keyed ----------------------------------------------------------------


class Session:
    """Stands for a DB session handed out by a yield dependency."""


def get_db() -> Any:
    yield Session()


async def get_async_db() -> Any:
    yield Session()


def current_user() -> str:
    return "alice"


async def current_tenant() -> str:
    return "acme"


def test_plumbing_parameters_are_skipped() -> None:
    def handler(
        request: Request,
        response: Response,
        tasks: BackgroundTasks,
        scopes: SecurityScopes,
        q: int = 1,
    ) -> None: ...

    plan = plan_arguments(handler)
    assert plan.keyed == ("q",)
    assert set(plan.skipped) == {"request", "response", "tasks", "scopes"}
    assert plan.request_param == "request"
    assert plan.response_param == "response"
    assert plan.keyed_dependency is False


def test_subclasses_and_annotated_plumbing_are_skipped() -> None:
    def handler(
        response: JSONResponse,
        request: Annotated[Request, "doc"],
        item_id: int,
    ) -> None: ...

    plan = plan_arguments(handler)
    assert plan.keyed == ("item_id",)
    assert plan.request_param == "request"
    assert plan.response_param == "response"


def test_yield_dependencies_are_resources_not_data() -> None:
    def handler(
        db: Annotated[Session, Depends(get_db)],
        adb: Session = Depends(get_async_db),  # noqa: B008
        item_id: int = 0,
    ) -> None: ...

    plan = plan_arguments(handler)
    assert plan.keyed == ("item_id",)
    assert set(plan.skipped) == {"db", "adb"}
    assert plan.keyed_dependency is False


def test_value_dependencies_are_keyed_and_make_the_route_per_user() -> None:
    def handler(
        user: Annotated[str, Depends(current_user)],
        tenant: str = Depends(current_tenant),
        page: int = 1,
    ) -> None: ...

    plan = plan_arguments(handler)
    assert plan.keyed == ("user", "tenant", "page")
    assert plan.keyed_dependency is True


def test_ignore_args_are_left_out() -> None:
    def f(a: int, b: int, trace_id: str = "", *, verbose: bool = False) -> None: ...

    plan = plan_arguments(f, ignore=("trace_id", "verbose"))
    assert plan.keyed == ("a", "b")
    assert set(plan.skipped) == {"trace_id", "verbose"}


def test_string_annotations_are_resolved() -> None:
    # This module uses `from __future__ import annotations`: every annotation is a string.
    def handler(request: Request, db: Annotated[Session, Depends(get_db)], q: str) -> None: ...

    assert isinstance(handler.__annotations__["request"], str)
    plan = plan_arguments(handler)
    assert plan.keyed == ("q",)
    assert plan.request_param == "request"


def test_unannotated_parameters_are_keyed() -> None:
    def f(a, b=2, *args, **kwargs):  # type: ignore[no-untyped-def]
        ...

    assert plan_arguments(f).keyed == ("a", "b", "args", "kwargs")


# --- pydantic values are keyed by their real values ------------------------------------------


class Credentials(BaseModel):
    user: str
    token: SecretStr


class Blob(BaseModel):
    data: SecretBytes


class Hidden(BaseModel):
    name: str
    tenant: str = Field(exclude=True)
    note: str = Field(default="", repr=False)


class Flattened(BaseModel):
    value: int

    @field_serializer("value")
    def _always_zero(self, value: int) -> int:
        return 0


class WithPrivate(BaseModel):
    name: str
    _scope: str = PrivateAttr(default="")


class Loose(BaseModel, extra="allow"):
    name: str


def test_models_are_keyed_by_their_values_not_by_their_dump() -> None:
    """A dump shows SecretStr as '**********', drops exclude=True fields and applies custom
    serializers: keyed by the dump, different values would share an entry."""
    assert key(Credentials(user="a", token="s1")) != key(Credentials(user="a", token="s2"))
    assert key(Blob(data=b"x")) != key(Blob(data=b"y"))
    assert key(Hidden(name="n", tenant="t1")) != key(Hidden(name="n", tenant="t2"))
    assert key(Hidden(name="n", tenant="t", note="a")) != key(Hidden(name="n", tenant="t"))
    assert key(Flattened(value=1)) != key(Flattened(value=2))
    a, b = WithPrivate(name="n"), WithPrivate(name="n")
    b._scope = "admin"
    assert key(a) != key(b)
    assert key(Loose(name="n", x=1)) != key(Loose(name="n", x=2))
    # Equal values still share a key.
    assert key(Credentials(user="a", token="s1")) == key(Credentials(user="a", token="s1"))


def test_secrets_are_keyed_by_a_digest_never_in_clear() -> None:
    canonical = key(Credentials(user="a", token="hunter2-secret")).canonical
    assert b"hunter2-secret" not in canonical
    assert b"hunter2" not in key(SecretBytes(b"hunter2")).canonical


def test_a_model_holding_an_unkeyable_value_is_unkeyable_not_a_collision() -> None:
    class Opaque:
        pass

    class Holder(BaseModel, arbitrary_types_allowed=True):
        thing: Opaque

    with pytest.raises(UnkeyableArgument):
        key(Holder(thing=Opaque()))
