"""The Invoke endpoint: decode headers and payload, run, encode the outcome (spec §4)."""

from __future__ import annotations

import asyncio

from lamina.api import wire
from lamina.api.context import ApiContext
from lamina.domain import arns, errors, limits
from lamina.http.server import Request, Response
from lamina.service.invoke import InvokeCommand


class Heartbeat:
    """Interim `100 Continue` responses every `interval` seconds while a call runs (spec §6.4):
    botocore and the AWS SDKs for JavaScript skip them and restart their read timers, so a
    long call is not given up and retried by the client."""

    def __init__(self, request: Request, interval: float) -> None:
        self.request = request
        self.interval = interval
        self._timer = (asyncio.get_running_loop().call_later(interval, self._beat)
                       if interval > 0 else None)

    def _beat(self) -> None:
        if self.request.send_interim(100):
            self._timer = asyncio.get_running_loop().call_later(self.interval, self._beat)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


async def invoke(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    headers = request.headers
    ref = ctx.function_ref(request, name)
    qualifier = arns.merge_qualifier(ref, request.query_params().get("Qualifier"))
    kind = wire.invocation_type(headers.get("x-amz-invocation-type"))
    if kind == "Event":
        event_id = await ctx.async_invoke.accept(ref.name, qualifier,
                                                 wire.payload(request.body, kind),
                                                 headers.get("x-amzn-trace-id"))
        return wire.empty_response(202, event_id)
    command = InvokeCommand(
        ref, qualifier, wire.payload(request.body, kind), kind,
        log_tail=wire.log_type(headers.get("x-amz-log-type")),
        client_context=wire.client_context(headers.get("x-amz-client-context")),
        trace_id=headers.get("x-amzn-trace-id"), tenant_id=headers.get("x-amz-tenant-id"),
        sdk_invocation_id=headers.get("amz-sdk-invocation-id"),
        sdk_request=headers.get("amz-sdk-request"))
    heartbeat = Heartbeat(request, ctx.heartbeat_interval)
    try:
        result = await ctx.invoke.invoke(command)
    finally:
        heartbeat.stop()
    if not request.connected:
        ctx.invoke.recorder.record(result.request_id, "caller_gone", {
            "sdk_request": command.sdk_request})
    outcome = result.outcome
    if outcome is None:  # DryRun
        return wire.empty_response(204, request_id)
    return wire.invoke_response(result.request_id, result.executed_version, outcome.payload,
                                outcome.content_type, outcome.function_error,
                                outcome.log_tail if command.log_tail else None)


async def invoke_async(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    """The deprecated InvokeAsync operation: an Event invoke with a 256 KB limit (spec §5.1)."""
    ref = ctx.function_ref(request, name)
    if len(request.body) > limits.INVOKE_ASYNC_PAYLOAD:
        raise errors.RequestTooLarge(f"{len(request.body)} byte payload is too large for the "
                                     f"Event invocation type (limit {limits.INVOKE_ASYNC_PAYLOAD} "
                                     "bytes)")
    event_id = await ctx.async_invoke.accept(ref.name, ref.qualifier,
                                             wire.payload(request.body, "Event"))
    return wire.json_response(202, {"Status": 202}, event_id)
