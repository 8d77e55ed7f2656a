"""The Invoke endpoint: decode headers and payload, run, encode the outcome (spec §4)."""

from __future__ import annotations

from lamina.api import wire
from lamina.api.context import ApiContext
from lamina.domain import arns, errors, limits
from lamina.http.server import Request, Response
from lamina.service.invoke import InvokeCommand


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
    result = await ctx.invoke.invoke(command)
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
