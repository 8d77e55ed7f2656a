"""HTTP APIs: the admin endpoints (/_lamina/apis, /_lamina/apis/API_ID) and the APIs' own face.

A request to `<api-id>.execute-api.localhost:<port>` (by its Host header) or to
`/_lamina/apis/<api-id>/…` (for clients that cannot resolve *.localhost) is an API call:
stage prefix, route (`domain.apis.match`), event (`domain.api_events`), a synchronous invoke
of the route's function with the route's integration timeout, and the response API Gateway
would make of the result. A function still running when the timeout answers goes on.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from typing import Any

from lamina.api import wire
from lamina.api.context import ApiContext
from lamina.api.urls import safe_headers
from lamina.domain import api_events, apis, arns, errors, limits, urls
from lamina.domain.apis import HttpApi
from lamina.domain.urls import HttpResponse
from lamina.http.server import Request, Response
from lamina.service.apis import ApiService
from lamina.service.invoke import InvokeCommand

PATH_PREFIX = "/_lamina/apis/"


# admin ---------------------------------------------------------------------------------
def _apis(ctx: ApiContext) -> ApiService:
    assert ctx.apis is not None, "app.py gives the API face its ApiService"
    return ctx.apis


def describe(ctx: ApiContext, api: HttpApi) -> dict[str, Any]:
    return {
        **apis.to_wire(api),
        "Url": _apis(ctx).url(api),
        "FallbackUrl": _apis(ctx).fallback_url(api),
    }


async def list_apis(ctx: ApiContext, request: Request, request_id: str) -> Response:
    stack = request.query_params().get("stack")
    found = [a for a in _apis(ctx).list() if stack is None or a.stack == stack]
    return wire.json_response(200, {"Apis": [describe(ctx, a) for a in found]}, request_id)


async def get_api(ctx: ApiContext, request: Request, request_id: str, api_id: str) -> Response:
    api = _apis(ctx).get(api_id)
    if api is None:
        raise errors.ResourceNotFound(f"API {api_id} does not exist.")
    return wire.json_response(200, describe(ctx, api), request_id)


async def put_api(ctx: ApiContext, request: Request, request_id: str, api_id: str) -> Response:
    api = await _apis(ctx).put(apis.from_wire(api_id, wire.json_body(request.body)))
    return wire.json_response(200, describe(ctx, api), request_id)


async def delete_api(ctx: ApiContext, request: Request, request_id: str, api_id: str) -> Response:
    await _apis(ctx).delete(api_id)
    return wire.empty_response(204, request_id)


# the APIs themselves -------------------------------------------------------------------
def target(request: Request) -> tuple[str, str] | None:
    """(api id, path as called) when `request` is for an HTTP API, by Host or by path."""
    host = request.headers.get("host", "")
    found = apis.HOST_RE.fullmatch(host) if ".execute-api" in host else None
    if found is not None:
        return found.group(1).lower(), request.raw_path or "/"
    if request.raw_path.startswith(PATH_PREFIX):
        api_id, slash, rest = request.raw_path[len(PATH_PREFIX) :].partition("/")
        if slash:  # /_lamina/apis/ID alone is the admin endpoint
            return api_id.lower(), "/" + rest
    return None


async def serve(
    ctx: ApiContext, request: Request, request_id: str, api_id: str, raw_path: str
) -> Response:
    api = _apis(ctx).get(api_id)
    if api is None:
        return _answer(api, api_events.forbidden(), request_id)
    stage_path = apis.split_stage(api, raw_path)
    if stage_path is None:
        return _answer(
            api,
            api_events.forbidden() if api.protocol == "REST" else api_events.not_found(api),
            request_id,
        )
    origin = request.headers.get("origin")
    if (
        api.cors is not None
        and request.method == "OPTIONS"
        and origin
        and "access-control-request-method" in request.headers
    ):
        return _answer(
            api, HttpResponse(204, urls.cors_headers(api.cors, origin, True), b""), request_id
        )
    found = apis.match(api, request.method, stage_path)
    if found is None:
        return _answer(api, api_events.not_found(api), request_id)
    found = apis.Match(
        found.route, {k: urllib.parse.unquote(v) for k, v in found.path_parameters.items()}
    )
    http_request = urls.HttpRequest(
        request.method,
        raw_path,
        request.query,
        list(request.headers.items()),
        request.body,
        protocol=f"HTTP/{request.http_version}",
    )
    event = json.dumps(
        api_events.event(
            api, found, http_request, stage_path, ctx.region, ctx.account, request_id, time.time()
        )
    ).encode()
    if len(event) > limits.SYNC_PAYLOAD:
        return _answer(api, api_events.too_large(api), request_id)
    mapped = await _invoke(ctx, api, found.route, event, request, request_id)
    if request.method == "HEAD":
        mapped.body = b""
    return _answer(api, mapped, request_id, urls.cors_headers(api.cors, origin))


async def _invoke(
    ctx: ApiContext,
    api: HttpApi,
    route: apis.Route,
    event: bytes,
    request: Request,
    request_id: str,
) -> HttpResponse:
    """Invoke the route's function; the integration timeout answers without waiting."""
    ref: arns.FunctionRef = _apis(ctx).target(route)  # named by its key (domain.arns)
    command = InvokeCommand(
        ref,
        ref.qualifier,
        event,
        trace_id=request.headers.get("x-amzn-trace-id"),
        request_id=request_id,
        source={"source": "apigateway", "api": api.api_id, "route": route.key},
    )
    task = asyncio.get_running_loop().create_task(ctx.invoke.invoke(command))
    done, _ = await asyncio.wait({task}, timeout=route.timeout_ms / 1000)
    if not done:
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return api_events.timed_out(api)
    try:
        result = task.result()
    except errors.TooManyRequests:
        return api_events.throttled(api)
    except errors.LaminaError:
        return api_events.failed(api)
    outcome = result.outcome
    assert outcome is not None  # only a DryRun has none
    if outcome.function_error:
        return api_events.failed(api)
    return api_events.response(api, route.payload_format, outcome.payload)


def _answer(
    api: HttpApi | None,
    mapped: HttpResponse,
    request_id: str,
    extra: list[tuple[str, str]] | None = None,
) -> Response:
    if api is not None and api.protocol == "HTTP":
        ids = [("Apigw-Requestid", request_id)]
    else:
        ids = [
            ("x-amzn-RequestId", request_id),
            ("x-amz-apigw-id", api_events._short_id(request_id)[:16]),
        ]
    return Response(
        mapped.status, safe_headers([*mapped.headers, *(extra or []), *ids]), mapped.body
    )
