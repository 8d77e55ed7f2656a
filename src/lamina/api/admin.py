"""Lamina's own endpoints under /_lamina/: health, invocation records, logs, code packages.

Not part of the Lambda API; `lamina invocations`, `lamina logs` and the console use them.
"""

from __future__ import annotations

import base64
import json
import math
import time

from lamina.api import wire
from lamina.api.context import ApiContext
from lamina.domain import errors
from lamina.http.server import Request, Response
from lamina.service import faults


def _int(value: str | None, default: int, field: str, high: int = 10_000) -> int:
    if value is None:
        return default
    if not value.isdigit() or not 1 <= int(value) <= high:
        raise errors.ValidationError.field(value, field, f"Member must be between 1 and {high}")
    return int(value)


async def health(ctx: ApiContext, request: Request, request_id: str) -> Response:
    return wire.json_response(200, {"status": "ok", "region": ctx.region,
                                    "account": ctx.account}, request_id)


async def list_invocations(ctx: ApiContext, request: Request, request_id: str) -> Response:
    params = request.query_params()
    limit = _int(params.get("limit"), 50, "limit")
    try:
        before = float(params.get("before", "inf"))
    except ValueError:
        raise errors.ValidationError.field(params["before"], "before",
                                           "Member must be a number") from None
    found = await ctx.observe.invocations(params.get("function") or None, limit,
                                          before if math.isfinite(before) else time.time() + 1e9)
    return wire.json_response(200, {"Invocations": [wire.invocation_summary(s) for s in found]},
                              request_id)


async def get_invocation(ctx: ApiContext, request: Request, request_id: str,
                         wanted: str) -> Response:
    summary, records = await ctx.observe.timeline(wanted)
    if summary is None and not records:
        raise errors.ResourceNotFound(f"Invocation not found: {wanted}")
    return wire.json_response(200, {
        "Invocation": wire.invocation_summary(summary) if summary else None,
        "Timeline": [{"At": r.at, "Kind": r.kind, **r.detail} for r in records],
    }, request_id)


async def function_logs(ctx: ApiContext, request: Request, request_id: str,
                        name: str) -> Response:
    """Log lines; `NextToken` reads on from where these end (for `lamina logs --follow`)."""
    params = request.query_params()
    ctx.functions.entry(name)
    cursor = None
    if params.get("token"):
        try:
            cursor = json.loads(base64.urlsafe_b64decode(params["token"].encode()))
            if not isinstance(cursor, dict):
                raise ValueError
        except (ValueError, UnicodeDecodeError):
            raise errors.InvalidParameterValue("Invalid token.") from None
    lines, reached = ctx.observe.function_logs(
        name, params.get("since") or None, _int(params.get("limit"), 1000, "limit", 100_000),
        cursor)
    token = base64.urlsafe_b64encode(json.dumps(reached).encode()).decode()
    return wire.json_response(200, {"Events": [
        {"Timestamp": stamp, "Stream": stream, "Message": text} for stamp, stream, text in lines
    ], "NextToken": token}, request_id)


async def code_package(ctx: ApiContext, request: Request, request_id: str,
                       key: str) -> Response:
    data = await ctx.functions.package_bytes(key)
    if data is None:
        raise errors.ResourceNotFound(f"Code not found: {key}")
    return Response(200, [("Content-Type", "application/zip"),
                          ("x-amzn-RequestId", request_id)], data)


async def clock_now(ctx: ApiContext, request: Request, request_id: str) -> Response:
    return wire.json_response(200, {"Now": ctx.clock.now(), "Scale": ctx.clock.scale}, request_id)


async def clock_advance(ctx: ApiContext, request: Request, request_id: str) -> Response:
    """Move a virtual clock forward (`lamina serve --time-scale virtual`)."""
    seconds = wire.json_body(request.body).get("Seconds")
    if not hasattr(ctx.clock, "advance"):
        raise errors.InvalidParameterValue("The engine's clock is not virtual: start it with "
                                           "--time-scale virtual to move time by hand.")
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
        raise errors.ValidationError.field(seconds, "seconds", "Member must be a number >= 0")
    ctx.clock.advance(seconds)
    return wire.json_response(200, {"Now": ctx.clock.now(), "Scale": ctx.clock.scale}, request_id)


async def get_faults(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    ctx.functions.entry(name)
    return wire.json_response(200, {"Rules": [r.to_dict() for r in ctx.faults.get(name)]},
                              request_id)


async def put_faults(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    """Replace a function's fault rules: {"Rules": [{"action": "throttle", "attempts": [1]}]}."""
    ctx.functions.entry(name)
    rules = wire.json_body(request.body).get("Rules")
    if not isinstance(rules, list):
        raise errors.ValidationError("Rules must be a list of fault rules")
    ctx.faults.set(name, [faults.rule_from(rule) for rule in rules])
    return wire.json_response(200, {"Rules": [r.to_dict() for r in ctx.faults.get(name)]},
                              request_id)


async def delete_faults(ctx: ApiContext, request: Request, request_id: str,
                        name: str) -> Response:
    ctx.functions.entry(name)
    ctx.faults.clear(name)
    return wire.empty_response(204, request_id)
