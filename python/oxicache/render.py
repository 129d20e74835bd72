"""Rendering a handler's return value as FastAPI would, on a miss.

A hit never comes here: it replays stored bytes. On a miss the wrapper must hand the cache the
exact bytes FastAPI would send, so it performs FastAPI's own steps with FastAPI's own functions
and the route's settings: validate and serialize through the ``response_model``, build the
route's response class, merge the headers and status set on the injected ``Response``. FastAPI
then sends the returned ``Response`` as it is (it never re-serializes a ``Response``).
"""

from __future__ import annotations

import inspect
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = ["render"]

_serialize_params: frozenset[str] | None = None


def _serialize_response_params() -> frozenset[str]:
    global _serialize_params
    if _serialize_params is None:
        from fastapi.routing import serialize_response

        _serialize_params = frozenset(inspect.signature(serialize_response).parameters)
    return _serialize_params


async def render(
    request: Request, value: Any, sub_response: Response | None, is_coroutine: bool
) -> Response:
    """The ``Response`` FastAPI would build for ``value`` on this request's route."""
    if isinstance(value, Response):
        return value
    route = request.scope.get("route")
    if route is None or not hasattr(route, "response_field"):
        # Not a FastAPI route (plain Starlette): JSON, as FastAPI's default would be.
        from fastapi.encoders import jsonable_encoder

        response: Response = JSONResponse(jsonable_encoder(value))
    else:
        response = await _render_fastapi(route, value, sub_response, is_coroutine)
    if sub_response is not None:
        response.headers.raw.extend(sub_response.headers.raw)
    return response


async def _render_fastapi(
    route: Any, value: Any, sub_response: Response | None, is_coroutine: bool
) -> Response:
    from fastapi.datastructures import DefaultPlaceholder
    from fastapi.routing import serialize_response
    from fastapi.utils import is_body_allowed_for_status_code

    params = _serialize_response_params()
    field = route.response_field
    use_dump_json = (
        "dump_json" in params
        and field is not None
        and isinstance(route.response_class, DefaultPlaceholder)
    )
    kwargs: dict[str, Any] = {
        "field": field,
        "response_content": value,
        "include": route.response_model_include,
        "exclude": route.response_model_exclude,
        "by_alias": route.response_model_by_alias,
        "exclude_unset": route.response_model_exclude_unset,
        "exclude_defaults": route.response_model_exclude_defaults,
        "exclude_none": route.response_model_exclude_none,
        "is_coroutine": is_coroutine,
    }
    if use_dump_json:
        kwargs["dump_json"] = True
    content = await serialize_response(**{k: v for k, v in kwargs.items() if k in params})
    response_args: dict[str, Any] = {}
    status = route.status_code
    if sub_response is not None and sub_response.status_code:
        status = sub_response.status_code
    if status is not None:
        response_args["status_code"] = status
    response_class = route.response_class
    if isinstance(response_class, DefaultPlaceholder):
        response_class = response_class.value
    if use_dump_json:
        response = Response(content=content, media_type="application/json", **response_args)
    else:
        response = response_class(content, **response_args)
    if not is_body_allowed_for_status_code(response.status_code):
        response.body = b""
    return response
