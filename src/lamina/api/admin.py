"""Lamina's own endpoints under /_lamina/: health, invocation records, logs, code packages.

Not part of the Lambda API; `lamina invocations`, `lamina logs` and the console use them.
"""

from __future__ import annotations

import base64
import json
import math

from lamina.api import auth, wire
from lamina.api.context import ApiContext
from lamina.domain import arns, errors, observed
from lamina.domain.observed import InvocationFilter
from lamina.http.server import Request, Response
from lamina.service import faults

_AGO = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _int(value: str | None, default: int, field: str, high: int = 10_000) -> int:
    if value is None:
        return default
    if not value.isdigit() or not 1 <= int(value) <= high:
        raise errors.ValidationError.field(value, field, f"Member must be between 1 and {high}")
    return int(value)


async def health(ctx: ApiContext, request: Request, request_id: str) -> Response:
    """For load balancers: 200 while this engine should get work; 503 while it starts,
    drains (SIGTERM) or cannot reach its store (docs/CLUSTER.md)."""
    status, body = ctx.cluster.health() if ctx.cluster is not None else (200, {"status": "ok"})
    return wire.json_response(
        status, {**body, "region": ctx.region, "account": ctx.account}, request_id
    )


async def cluster(ctx: ApiContext, request: Request, request_id: str) -> Response:
    """The engines sharing this engine's store, as the store knows them, with the share of
    each concurrency pool each one holds."""
    if ctx.cluster is None or not ctx.cluster.shared:
        return wire.json_response(200, {"Shared": False, "Engines": []}, request_id)
    store = ctx.cluster.store
    engines = await store.cluster_engines()
    grants: dict[str, dict[str, int]] = {}
    for pool, engine, granted in await store.cluster_grants():
        grants.setdefault(engine, {})[pool] = granted
    return wire.json_response(
        200,
        {
            "Shared": True,
            "This": ctx.cluster.engine_id,
            "Engines": [
                {
                    "Engine": e.engine,
                    "Address": e.address,
                    "State": e.state,
                    "StartedAt": e.started_at,
                    "LeaseUntil": e.lease_until,
                    "Alive": e.alive,
                    "Grants": grants.get(e.engine, {}),
                }
                for e in engines
            ],
        },
        request_id,
    )


async def list_invocations(ctx: ApiContext, request: Request, request_id: str) -> Response:
    """Invocations newest first: ?function=&type=sync|async|mapping&status=&since=&before=
    (times: epoch seconds, or how long ago in engine time: 90s, 10m, 2h, 1d)."""
    params = request.query_params()
    function = params.get("function") or None
    if function is not None:
        function = auth.function_name(ctx, request, function)
    wanted = InvocationFilter(
        function=function,
        invocation_type=_kind(params.get("type")),
        status=params.get("status") or None,
        since=_moment(ctx, params.get("since"), "since"),
        before=_moment(ctx, params.get("before"), "before"),
        limit=_int(params.get("limit"), 50, "limit"),
    )
    found = await ctx.observe.find(wanted)
    owner = ctx.functions.owner
    body: dict[str, object] = {
        "Invocations": [
            wire.invocation_summary(s) for s in found if auth.sees(owner, request, s.function)
        ]
    }
    if len(found) == wanted.limit:  # a full page, before another account's were left out
        body["NextBefore"] = found[-1].accepted_at
    return wire.json_response(200, body, request_id)


def _kind(value: str | None) -> str | None:
    if not value:
        return None
    if value in observed.INVOCATION_KINDS:
        return observed.INVOCATION_KINDS[value]
    if value in observed.INVOCATION_KINDS.values() or value == "DryRun":
        return value
    raise errors.ValidationError.field(
        value, "type", "Member must satisfy enum value set: [sync, async, mapping]"
    )


def _moment(ctx: ApiContext, value: str | None, field: str) -> float | None:
    """An epoch time, or a duration ago on the engine's clock; None when absent."""
    if not value or value == "inf":
        return None
    try:
        if value[-1:] in _AGO:
            return ctx.clock.now() - float(value[:-1]) * _AGO[value[-1]]
        moment = float(value)
    except ValueError:
        moment = math.nan
    if not math.isfinite(moment):
        raise errors.ValidationError.field(
            value,
            field,
            "Member must be a number of seconds since the epoch or a duration such as 10m",
        )
    return moment


async def get_invocation(
    ctx: ApiContext, request: Request, request_id: str, wanted: str
) -> Response:
    summary, records = await ctx.observe.timeline(wanted)
    if (summary is None and not records) or (
        summary is not None and not auth.sees(ctx.functions.owner, request, summary.function)
    ):
        raise errors.ResourceNotFound(f"Invocation not found: {wanted}")
    return wire.json_response(
        200,
        {
            "Invocation": wire.invocation_summary(summary) if summary else None,
            "Timeline": [{"At": r.at, "Kind": r.kind, **r.detail} for r in records],
        },
        request_id,
    )


async def invocation_logs(
    ctx: ApiContext, request: Request, request_id: str, wanted: str
) -> Response:
    """The log lines of each attempt of an invocation, from its environments' streams."""
    summary, records = await ctx.observe.timeline(wanted)
    if summary is None or not auth.sees(ctx.functions.owner, request, summary.function):
        raise errors.ResourceNotFound(f"Invocation not found: {wanted}")
    attempts = ctx.observe.attempt_logs(summary.function, records)
    return wire.json_response(
        200,
        {
            "RequestId": wanted,
            "FunctionName": arns.plain_name(summary.function),
            "Attempts": [
                {
                    "Attempt": a.attempt,
                    "Environment": a.environment,
                    "Lines": [{"Timestamp": stamp, "Message": text} for stamp, text in a.lines],
                }
                for a in attempts
            ],
        },
        request_id,
    )


async def function_logs(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    """Log lines; `NextToken` reads on from where these end (for `lamina logs --follow`)."""
    params = request.query_params()
    name = _own(ctx, request, name)
    cursor = None
    if params.get("token"):
        try:
            cursor = json.loads(base64.urlsafe_b64decode(params["token"].encode()))
            if not isinstance(cursor, dict):
                raise ValueError
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise errors.InvalidParameterValue("Invalid token.") from None
    lines, reached = ctx.observe.function_logs(
        name, params.get("since") or None, _int(params.get("limit"), 1000, "limit", 100_000), cursor
    )
    token = base64.urlsafe_b64encode(json.dumps(reached).encode()).decode()
    return wire.json_response(
        200,
        {
            "Events": [
                {"Timestamp": stamp, "Stream": stream, "Message": text}
                for stamp, stream, text in lines
            ],
            "NextToken": token,
        },
        request_id,
    )


async def code_package(ctx: ApiContext, request: Request, request_id: str, key: str) -> Response:
    data = await ctx.functions.package_bytes(key)
    if data is None:
        raise errors.ResourceNotFound(f"Code not found: {key}")
    return Response(
        200, [("Content-Type", "application/zip"), ("x-amzn-RequestId", request_id)], data
    )


async def clock_now(ctx: ApiContext, request: Request, request_id: str) -> Response:
    return wire.json_response(200, {"Now": ctx.clock.now(), "Scale": ctx.clock.scale}, request_id)


async def clock_advance(ctx: ApiContext, request: Request, request_id: str) -> Response:
    """Move a virtual clock forward (`lamina serve --time-scale virtual`)."""
    seconds = wire.json_body(request.body).get("Seconds")
    if not hasattr(ctx.clock, "advance"):
        raise errors.InvalidParameterValue(
            "The engine's clock is not virtual: start it with "
            "--time-scale virtual to move time by hand."
        )
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
        raise errors.ValidationError.field(seconds, "seconds", "Member must be a number >= 0")
    ctx.clock.advance(seconds)
    if ctx.persist_clock is not None:
        await ctx.persist_clock()
    return wire.json_response(200, {"Now": ctx.clock.now(), "Scale": ctx.clock.scale}, request_id)


async def get_faults(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    name = _own(ctx, request, name)
    return wire.json_response(
        200, {"Rules": [r.to_dict() for r in ctx.faults.get(name)]}, request_id
    )


async def put_faults(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    """Replace a function's fault rules: {"Rules": [{"action": "throttle", "attempts": [1]}]}."""
    name = _own(ctx, request, name)
    rules = wire.json_body(request.body).get("Rules")
    if not isinstance(rules, list):
        raise errors.ValidationError("Rules must be a list of fault rules")
    ctx.faults.set(name, [faults.rule_from(rule) for rule in rules])
    return wire.json_response(
        200, {"Rules": [r.to_dict() for r in ctx.faults.get(name)]}, request_id
    )


async def delete_faults(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    name = _own(ctx, request, name)
    ctx.faults.clear(name)
    return wire.empty_response(204, request_id)


def _own(ctx: ApiContext, request: Request, name: str) -> str:
    """The caller's own function of that name (another account's is not found)."""
    name = auth.function_name(ctx, request, name)
    ctx.functions.entry(name)
    return name
