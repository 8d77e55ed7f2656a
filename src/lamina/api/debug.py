"""Debug mode endpoints (Lamina's own, under /_lamina/debug): `lamina debug` and the console;
and what hot reload watches (GET /_lamina/hot-reload).

    GET    /_lamina/debug                      every version in debug mode
    GET    /_lamina/debug/FUNCTION?Qualifier=  one (404 when off)
    PUT    /_lamina/debug/FUNCTION             {"Qualifier": "live", "Port": 5678, "Wait": true}
    DELETE /_lamina/debug/FUNCTION?Qualifier=  debug mode off
"""

from __future__ import annotations

from lamina.api import auth, wire
from lamina.api.context import ApiContext
from lamina.domain import arns, errors
from lamina.domain.debug import DebugSettings
from lamina.http.server import Request, Response
from lamina.service.debug import DebugService


def _service(ctx: ApiContext) -> DebugService:
    assert ctx.debug is not None
    return ctx.debug


async def list_debug(ctx: ApiContext, request: Request, request_id: str) -> Response:
    owner = ctx.functions.owner
    found = [_shape(s) for s in _service(ctx).list() if auth.sees(owner, request, s.function)]
    return wire.json_response(200, {"Debug": found}, request_id)


async def get_debug(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    name, qualifier = ctx.qualified(request, name)
    settings = _service(ctx).get(name, qualifier)
    if settings is None:
        raise errors.ResourceNotFound(f"Debug mode is off for {ctx.functions.arn(name, qualifier)}")
    return wire.json_response(200, _shape(settings), request_id)


async def put_debug(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    document = wire.json_body(request.body)
    ref = ctx.function_ref(request, name)
    qualifier = document.get("Qualifier", ref.qualifier)
    if qualifier is not None and not isinstance(qualifier, str):
        raise errors.ValidationError.field(qualifier, "qualifier", "Member must be a string")
    settings = await _service(ctx).start(
        ref.name, qualifier, document.get("Port"), document.get("Wait", False)
    )
    return wire.json_response(200, _shape(settings), request_id)


async def delete_debug(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    name, qualifier = ctx.qualified(request, name)
    await _service(ctx).stop(name, qualifier)
    return wire.empty_response(204, request_id)


async def hot_reload(ctx: ApiContext, request: Request, request_id: str) -> Response:
    """The hot-reload bucket name and each folder functions run from: whether its changes
    are watched now (False while it does not exist, or its watch is starting)."""
    return wire.json_response(
        200,
        {
            "Bucket": ctx.functions.hot_reload_bucket,
            "Folders": [
                {"Path": path, "Watched": watched}
                for path, watched in ctx.functions.folder_status().items()
            ],
        },
        request_id,
    )


def _shape(settings: DebugSettings) -> dict[str, object]:
    """Debug settings as the caller sees them: the function's plain name (domain.arns)."""
    return {**settings.to_dict(), "FunctionName": arns.plain_name(settings.function)}
