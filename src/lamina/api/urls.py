"""Function URLs: the configuration endpoints, and the HTTP face of each URL.

A request to `<url-id>.lambda-url.<region>.localhost:<port>` (by its Host header) or to
`/_lamina/url/<url-id>/…` becomes a payload-2.0 event and a synchronous invoke of the URL's
function or alias; the result becomes the HTTP response (`domain.urls`). AWS_IAM URLs need a
SigV4 `Authorization` header; Lamina does no IAM, so the signature is not checked. With
`InvokeMode` RESPONSE_STREAM the function's streamed response reaches the client as it is
written (chunked), its status and headers from the stream's prelude.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from lamina.api import wire
from lamina.api.context import ApiContext
from lamina.domain import arns, errors, limits, policies, urls
from lamina.domain.model import LATEST
from lamina.domain.urls import FunctionUrlConfig, HttpResponse
from lamina.http.server import Request, Response
from lamina.service.invoke import InvokeCommand

PATH_PREFIX = "/_lamina/url/"


# configuration ----------------------------------------------------------------------
def describe(
    ctx: ApiContext,
    request: Request,
    config: FunctionUrlConfig,
    with_modified: bool = True,
    read: bool = True,
) -> dict[str, Any]:
    """The configuration as the API answers it; the URL's port is the one the caller used."""
    port = request.headers.get("host", "").rpartition(":")[2]
    port = port if port.isdigit() else "80"
    url = f"http://{config.url_id}.lambda-url.{ctx.region}.localhost:{port}/"
    qualifier = None if config.qualifier == LATEST else config.qualifier
    return config.to_wire(url, ctx.functions.arn(config.function, qualifier), with_modified, read)


async def create_url(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    name, qualifier = ctx.qualified(request, name)
    document = wire.json_body(request.body)
    config = await ctx.urls.create(
        name, qualifier, document.get("AuthType"), document.get("Cors"), document.get("InvokeMode")
    )
    return wire.json_response(
        201, describe(ctx, request, config, with_modified=False, read=False), request_id
    )


async def get_url(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    name, qualifier = ctx.qualified(request, name)
    return wire.json_response(
        200, describe(ctx, request, ctx.urls.get(name, qualifier)), request_id
    )


async def update_url(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    name, qualifier = ctx.qualified(request, name)
    document = wire.json_body(request.body)
    changes = {
        key: document[member]
        for key, member in (
            ("auth_type", "AuthType"),
            ("cors", "Cors"),
            ("invoke_mode", "InvokeMode"),
        )
        if member in document
    }
    config = await ctx.urls.update(name, qualifier, **changes)
    return wire.json_response(200, describe(ctx, request, config, read=False), request_id)


async def delete_url(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    name, qualifier = ctx.qualified(request, name)
    await ctx.urls.delete(name, qualifier)
    return wire.empty_response(204, request_id)


async def list_urls(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    ref = ctx.function_ref(request, name)
    page, marker = wire.paginate(ctx.urls.list(ref.name), request.query_params())
    body: dict[str, Any] = {"FunctionUrlConfigs": [describe(ctx, request, c) for c in page]}
    if marker:
        body["NextMarker"] = marker
    return wire.json_response(200, body, request_id)


# the URL itself ---------------------------------------------------------------------
def target(request: Request) -> tuple[str, str] | None:
    """(url id, path) when `request` is for a function URL, by Host or by path."""
    match = urls.HOST_RE.fullmatch(request.headers.get("host", ""))
    if match is not None:
        return match.group(1).lower(), request.raw_path or "/"
    if request.raw_path.startswith(PATH_PREFIX):
        url_id, _, rest = request.raw_path[len(PATH_PREFIX) :].partition("/")
        return url_id.lower(), "/" + rest
    return None


def _verified(ctx: ApiContext, request: Request) -> bool:
    """An AWS_IAM URL's request: its SigV4 signature (service `lambda`) checked with `--auth
    sigv4`; without auth only its presence (AWS answers any refusal with 403 Forbidden)."""
    if ctx.gate is None:
        return urls.is_signed(request.headers.get("authorization"))
    try:
        request.caller = ctx.gate.verify(request)
    except errors.Unauthenticated:
        return False
    return True


# Who calls a NONE URL, as the function's resource policy sees it: anyone, through its URL
_ANYONE_BY_URL = policies.Principal(url_auth_type="NONE", via_url="true")


def _public(ctx: ApiContext, config: FunctionUrlConfig) -> bool:
    """Whether the policy of the URL's function or alias grants anyone both actions a NONE URL
    needs since October 2025: lambda:InvokeFunctionUrl and lambda:InvokeFunction (checked
    with `--parity strict`; by default a local URL answers without them)."""
    return all(
        ctx.permissions.allows(config.function, config.qualifier, action, _ANYONE_BY_URL)
        for action in ("lambda:InvokeFunctionUrl", "lambda:InvokeFunction")
    )


async def serve(
    ctx: ApiContext, request: Request, request_id: str, url_id: str, path: str
) -> Response:
    config = ctx.urls.by_id(url_id)
    if config is None:
        return _response(urls.forbidden(), request_id)
    origin = request.headers.get("origin")
    cors = config.cors
    if (
        request.method == "OPTIONS"
        and cors is not None
        and "access-control-request-method" in request.headers
    ):
        return Response(
            200,
            [*urls.cors_headers(cors, origin, preflight=True), ("x-amzn-RequestId", request_id)],
        )
    if config.auth_type == "AWS_IAM" and not _verified(ctx, request):
        return _response(urls.forbidden(), request_id)
    if config.auth_type == "NONE" and ctx.strict and not _public(ctx, config):
        return _response(urls.forbidden(), request_id)
    http_request = urls.HttpRequest(
        request.method,
        path,
        request.query,
        list(request.headers.items()),
        request.body,
        protocol=f"HTTP/{request.http_version}",
    )
    shape = urls.http_event(http_request, config, ctx.region, ctx.account, request_id, time.time())
    if request.caller is not None:  # --auth sigv4: the verified identity, not the header's
        shape["requestContext"]["authorizer"]["iam"].update(
            accountId=request.caller.account, userArn=request.caller.arn
        )
    event = json.dumps(shape).encode()
    if len(event) > limits.SYNC_PAYLOAD:
        return _response(urls.plain_error(413, "Payload Too Large"), request_id)
    qualifier = None if config.qualifier == LATEST else config.qualifier
    command = InvokeCommand(
        arns.FunctionRef(config.function, qualifier),
        qualifier,
        event,
        trace_id=request.headers.get("x-amzn-trace-id"),
        request_id=request_id,
    )
    extra = urls.cors_headers(cors, origin)
    if config.invoke_mode == "RESPONSE_STREAM":
        return await _streamed(ctx, command, extra, request.method == "HEAD")
    try:
        result = await ctx.invoke.invoke(command)
    except errors.LaminaError as error:
        return _response(_refused(error), request_id, extra)
    outcome = result.outcome
    assert outcome is not None  # only a DryRun has none
    mapped = (
        urls.function_failed() if outcome.function_error else urls.http_response(outcome.payload)
    )
    if request.method == "HEAD":
        mapped.body = b""
    return _response(mapped, result.request_id, extra)


async def _streamed(
    ctx: ApiContext, command: InvokeCommand, extra: list[tuple[str, str]], head_only: bool
) -> Response:
    """Relay a streamed response: status and headers from its prelude, then the body as the
    function writes it. A function that does not stream gets its result sent as it is,
    without BUFFERED's mapping (AWS sends `{"statusCode": …, "body": …}` itself)."""
    sink: asyncio.Queue[Any] = asyncio.Queue()
    task = asyncio.get_running_loop().create_task(ctx.invoke.invoke(command, stream_sink=sink))
    first = asyncio.ensure_future(sink.get())
    await asyncio.wait({task, first}, return_when=asyncio.FIRST_COMPLETED)
    if not first.done():
        first.cancel()
        try:
            result = task.result()
        except errors.LaminaError as error:
            return _response(_refused(error), "", extra)
        outcome = result.outcome
        assert outcome is not None  # None only for a DryRun
        mapped = (
            urls.function_failed()
            if outcome.function_error
            else urls.HttpResponse(200, [("Content-Type", "application/json")], outcome.payload)
        )
        return _response(mapped, result.request_id, extra)
    _, content_type, request_id = first.result()
    buffered = b""
    item = await sink.get()
    while item[0] == "chunk":
        buffered += item[1]
        if content_type != urls.HTTP_INTEGRATION or urls.stream_prelude(buffered) is not None:
            break
        item = await sink.get()
    status, headers, rest = 200, [("Content-Type", content_type or "application/json")], buffered
    if content_type == urls.HTTP_INTEGRATION:
        split = urls.stream_prelude(buffered)
        prelude, rest = split if split is not None else ({}, b"")
        head = urls.streamed_head(prelude)
        if head is None:  # the invocation runs to its end; its caller gets Lambda's 502
            task.add_done_callback(lambda done: done.cancelled() or done.exception())
            return _response(urls.bad_gateway(), request_id, extra)
        status, headers = head
    headers = _safe([*headers, *extra, ("x-amzn-RequestId", request_id)])
    ended = item[0] == "end"
    return Response(
        status, headers, stream=_relay(sink, task, b"" if head_only else rest, ended, head_only)
    )


async def _relay(
    sink: asyncio.Queue[Any], task: asyncio.Future[Any], first: bytes, ended: bool, head_only: bool
) -> AsyncIterator[bytes]:
    if first:
        yield first
    while not ended:
        item = await sink.get()
        if item[0] == "end":
            break
        if item[0] == "chunk" and item[1] and not head_only:
            yield item[1]
    await task


def _refused(error: errors.LaminaError) -> HttpResponse:
    """What a URL's caller gets when the invoke itself is refused (throttled, gone…)."""
    if isinstance(error, errors.TooManyRequests):
        return urls.plain_error(429, "Rate Exceeded.")
    if isinstance(error, errors.ResourceNotFound):
        return urls.forbidden()
    if error.status < 500:
        return urls.plain_error(error.status, error.message)
    return urls.bad_gateway()


def _response(
    mapped: HttpResponse, request_id: str, extra: list[tuple[str, str]] | None = None
) -> Response:
    headers = [*mapped.headers, *(extra or []), ("x-amzn-RequestId", request_id)]
    return Response(mapped.status, _safe(headers), mapped.body)


def _safe(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Header pairs a function returned, made safe to write: no line breaks (no injected
    headers), latin-1 only, and no framing headers (the server writes its own)."""
    out = []
    for name, value in headers:
        name = "".join(ch for ch in name if ch.isprintable() and ch not in ":\r\n ")
        value = value.replace("\r", " ").replace("\n", " ")
        if not name or name.lower() in ("content-length", "transfer-encoding", "connection"):
            continue
        out.append((name, value.encode("latin-1", "replace").decode("latin-1")))
    return out


safe_headers = _safe  # HTTP APIs write the headers a function returned the same way
