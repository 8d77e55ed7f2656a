"""The durable execution operations of the Lambda API (2025-12-01), and Invoke of a durable
function: decode, call `service.durable`, encode (botocore's Lambda model is the contract)."""

from __future__ import annotations

import datetime
import json
from typing import Any
from urllib.parse import unquote

from lamina.api import auth, wire
from lamina.api.context import ApiContext
from lamina.domain import arns, durable, errors
from lamina.domain.durable import Execution
from lamina.http.server import Request, Response

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
CALLBACK_RESULT_MAX = 1_048_576


def _service(ctx: ApiContext) -> Any:
    if ctx.durable is None:
        raise errors.ServiceError("Durable executions are not available on this engine.")
    return ctx.durable


def _execution_of(ctx: ApiContext, request: Request, arn: str) -> Any:
    """The service, for an execution of the caller's own account (its ARN carries it); an
    execution of another account is AccessDenied, as its function is."""
    parts = arn.split(":")
    if len(parts) > 4 and parts[4] != ctx.caller_account(request):
        raise errors.AccessDenied("")
    return _service(ctx)


# Invoke of a durable function ------------------------------------------------------------
async def invoke(
    ctx: ApiContext,
    request: Request,
    request_id: str,
    ref: arns.FunctionRef,
    qualifier: str | None,
    kind: str,
) -> Response:
    """Start (or rejoin) an execution; RequestResponse waits for its end, Event does not.
    Both answer with X-Amz-Durable-Execution-Arn."""
    name = request.headers.get("x-amz-durable-execution-name")
    if name is not None and not (1 <= len(name) <= 64 and set(name) <= _NAME_CHARS):
        raise errors.ValidationError.field(
            name,
            "durableExecutionName",
            "Member must satisfy regular expression pattern: [a-zA-Z0-9-_]+",
        )
    if kind == "DryRun":
        return wire.empty_response(204, request_id)
    service = _service(ctx)
    payload = wire.payload(request.body, kind)
    ex, _ = await service.start_execution(
        ref.name,
        qualifier,
        payload,
        name,
        sync=kind == "RequestResponse",
        trace_id=request.headers.get("x-amzn-trace-id"),
    )
    headers = [
        ("x-amzn-RequestId", request_id),
        ("X-Amz-Durable-Execution-Arn", ex.arn),
        ("X-Amz-Executed-Version", ex.version),
    ]
    if kind == "Event":
        return Response(202, headers, b"")
    ex = await service.wait_for_end(ex.arn)
    headers.append(("Content-Type", wire.JSON))
    if ex.status == durable.SUCCEEDED:
        return Response(200, headers, (ex.result or "null").encode())
    error = ex.error or {}
    body = {
        "errorType": error.get("ErrorType") or ex.status,
        "errorMessage": error.get("ErrorMessage") or f"The durable execution {ex.status}.",
    }
    headers.append(("X-Amz-Function-Error", "Unhandled"))
    return Response(200, headers, json.dumps(body).encode())


# the function's own operations ----------------------------------------------------------------
async def checkpoint(ctx: ApiContext, request: Request, request_id: str, arn: str) -> Response:
    document = wire.json_body(request.body)
    token = document.get("CheckpointToken")
    if not isinstance(token, str) or not token:
        raise errors.InvalidParameterValue("CheckpointToken is required.")
    updates = document.get("Updates") or []
    if not isinstance(updates, list) or not all(isinstance(u, dict) for u in updates):
        raise errors.InvalidParameterValue("Updates must be a list of OperationUpdate.")
    next_token, ops = await _execution_of(ctx, request, arn).checkpoint(arn, token, updates)
    body: dict[str, Any] = {"NewExecutionState": {"Operations": ops}}
    if next_token is not None:
        body["CheckpointToken"] = next_token
    return wire.json_response(200, body, request_id)


async def get_state(ctx: ApiContext, request: Request, request_id: str, arn: str) -> Response:
    params = request.query_params()
    token = params.get("CheckpointToken")
    if not token:
        raise errors.InvalidParameterValue("CheckpointToken is required.")
    ops, marker = await _execution_of(ctx, request, arn).state(
        arn, token, params.get("Marker"), wire.max_items(params.get("MaxItems"))
    )
    body: dict[str, Any] = {"Operations": ops}
    if marker:
        body["NextMarker"] = marker
    return wire.json_response(200, body, request_id)


# observing and steering ---------------------------------------------------------------------
def _flag(value: str | None) -> bool:
    return (value or "").lower() == "true"


def execution_summary(ex: Execution, function_arn: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "DurableExecutionArn": ex.arn,
        "DurableExecutionName": ex.name,
        "FunctionArn": function_arn,
        "Status": ex.status,
        "StartTimestamp": ex.started_at,
    }
    if ex.ended_at is not None:
        body["EndTimestamp"] = ex.ended_at
    return body


async def get_execution(ctx: ApiContext, request: Request, request_id: str, arn: str) -> Response:
    ex = await _execution_of(ctx, request, arn).get(arn)
    include = request.query_params().get("IncludeExecutionData")
    body = execution_summary(ex, ctx.functions.arn(ex.function, ex.version))
    body["Version"] = ex.version
    if include is None or _flag(include):
        body["InputPayload"] = ex.input
        if ex.result is not None:
            body["Result"] = ex.result
        body["ExecutionDataIncluded"] = True
    else:
        body["ExecutionDataIncluded"] = False
    if ex.error is not None:
        body["Error"] = ex.error
    if ex.trace_id:
        body["TraceHeader"] = {"XAmznTraceId": ex.trace_id}
    config = _config_of(ctx, ex)
    if config:
        body["DurableConfig"] = config
    return wire.json_response(200, body, request_id)


def _config_of(ctx: ApiContext, ex: Execution) -> dict[str, Any] | None:
    try:
        return ctx.functions.resolve(ex.function, ex.version).durable_config
    except errors.LaminaError:
        return {"ExecutionTimeout": ex.timeout, "RetentionPeriodInDays": ex.retention_days}


async def get_history(ctx: ApiContext, request: Request, request_id: str, arn: str) -> Response:
    params = request.query_params()
    events, marker = await _execution_of(ctx, request, arn).history(
        arn,
        _flag(params.get("IncludeExecutionData")),
        params.get("Marker"),
        wire.max_items(params.get("MaxItems")),
        _flag(params.get("ReverseOrder")),
    )
    body: dict[str, Any] = {"Events": events}
    if marker:
        body["NextMarker"] = marker
    return wire.json_response(200, body, request_id)


async def list_executions(
    ctx: ApiContext, request: Request, request_id: str, name: str
) -> Response:
    fn_name, qualifier = ctx.qualified(request, name)
    pairs = _pairs(request.query)
    statuses = [v for k, v in pairs if k == "Statuses"]
    for status in statuses:
        if status not in durable.STATUSES:
            raise errors.ValidationError.field(
                status,
                "statuses",
                f"Member must satisfy enum value set: [{', '.join(durable.STATUSES)}]",
            )
    params = dict(pairs)
    after, before = _time(params.get("StartedAfter")), _time(params.get("StartedBefore"))
    rows = await _service(ctx).list(fn_name, qualifier)
    wanted = [
        r
        for r in rows
        if (not statuses or r[4] in statuses)
        and (params.get("DurableExecutionName") in (None, r[3]))
        and (after is None or r[5] >= after)
        and (before is None or r[5] <= before)
    ]
    if _flag(params.get("ReverseOrder")):
        wanted.reverse()
    page, marker = wire.paginate(wanted, params)
    items = []
    for arn, function, version, exec_name, status, started, ended in page:
        item: dict[str, Any] = {
            "DurableExecutionArn": arn,
            "DurableExecutionName": exec_name,
            "FunctionArn": ctx.functions.arn(function, version),
            "Status": status,
            "StartTimestamp": started,
        }
        if ended is not None:
            item["EndTimestamp"] = ended
        items.append(item)
    body: dict[str, Any] = {"DurableExecutions": items}
    if marker:
        body["NextMarker"] = marker
    return wire.json_response(200, body, request_id)


def _pairs(query: str) -> list[tuple[str, str]]:
    out = []
    for pair in (query or "").split("&"):
        if pair:
            key, _, value = pair.partition("=")
            out.append((unquote(key.replace("+", " ")), unquote(value.replace("+", " "))))
    return out


def _time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise errors.InvalidParameterValue(f"Invalid timestamp: {value}") from None


async def stop_execution(ctx: ApiContext, request: Request, request_id: str, arn: str) -> Response:
    error = _error_object(request.body)
    stopped = await _execution_of(ctx, request, arn).stop(arn, error)
    return wire.json_response(200, {"StopTimestamp": stopped}, request_id)


def _error_object(body: bytes) -> dict[str, Any] | None:
    if not body.strip():
        return None
    document = wire.json_body(body)
    allowed = {"ErrorMessage", "ErrorType", "ErrorData", "StackTrace"}
    return {k: v for k, v in document.items() if k in allowed} or None


# callbacks ------------------------------------------------------------------------------------
async def callback_succeed(
    ctx: ApiContext, request: Request, request_id: str, callback_id: str
) -> Response:
    if len(request.body) > CALLBACK_RESULT_MAX:
        raise errors.RequestTooLarge(
            f"Callback result must be at most {CALLBACK_RESULT_MAX} bytes."
        )
    await _service(ctx).callback(
        callback_id, "success", result=request.body.decode("utf-8", errors="replace")
    )
    return wire.json_response(200, {}, request_id)


async def callback_fail(
    ctx: ApiContext, request: Request, request_id: str, callback_id: str
) -> Response:
    await _service(ctx).callback(callback_id, "failure", error=_error_object(request.body) or {})
    return wire.json_response(200, {}, request_id)


async def callback_heartbeat(
    ctx: ApiContext, request: Request, request_id: str, callback_id: str
) -> Response:
    await _service(ctx).callback(callback_id, "heartbeat")
    return wire.json_response(200, {}, request_id)


# Lamina's own views (/_lamina/durable-executions): `lamina executions`, `lamina execution`,
# the console ----------------------------------------------------------------------------------
async def admin_list(ctx: ApiContext, request: Request, request_id: str) -> Response:
    params = request.query_params()
    status = params.get("status") or None
    if status is not None and status not in durable.STATUSES:
        raise errors.InvalidParameterValue(f"status must be one of {', '.join(durable.STATUSES)}")
    function = params.get("function") or None
    if function is not None:  # 404 for an unknown function, or another account's
        function = auth.function_name(ctx, request, function)
        ctx.functions.entry(function)
    rows = await _service(ctx).recent(function, status, wire.max_items(params.get("limit")))
    account = auth.viewer(request)
    return wire.json_response(
        200,
        {
            "Executions": [
                {
                    "DurableExecutionArn": arn,
                    "DurableExecutionName": name,
                    "FunctionName": arns.plain_name(function),
                    "Version": version,
                    "Status": status,
                    "StartTimestamp": started,
                    "EndTimestamp": ended,
                }
                for arn, function, version, name, status, started, ended in rows
                if account is None or arn.split(":")[4] == account
            ]
        },
        request_id,
    )


async def admin_detail(ctx: ApiContext, request: Request, request_id: str, arn: str) -> Response:
    """An execution as its operations and its replays (each with its log lines when
    `logs=1`), all times in engine seconds."""
    service = _execution_of(ctx, request, unquote(arn)) if auth.viewer(request) else _service(ctx)
    ex, replays = await service.replays(unquote(arn))
    if request.query_params().get("logs") in ("1", "true"):
        for replay in replays:
            summary, records = await ctx.observe.timeline(replay["RequestId"])
            attempts = ctx.observe.attempt_logs(summary.function, records) if summary else []
            replay["Logs"] = [
                {"Timestamp": stamp, "Message": text}
                for attempt in attempts
                for stamp, text in attempt.lines
            ]
    for number, replay in enumerate(replays):
        replay["Replay"] = number
    body = {
        "Execution": {
            "DurableExecutionArn": ex.arn,
            "DurableExecutionName": ex.name,
            "FunctionName": arns.plain_name(ex.function),
            "Version": ex.version,
            "Status": ex.status,
            "StartTimestamp": ex.started_at,
            "EndTimestamp": ex.ended_at,
            "Input": ex.input,
            "Result": ex.result,
            "Error": ex.error,
        },
        "Operations": [durable.render_operation(op) for op in ex.operations.values()],
        "Replays": replays,
    }
    return wire.json_response(200, body, request_id)
