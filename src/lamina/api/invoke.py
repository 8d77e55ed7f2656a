"""The Invoke endpoint: decode headers and payload, run, encode the outcome (spec §4)."""

from __future__ import annotations

from lamina.api import wire
from lamina.api.context import ApiContext
from lamina.domain import arns
from lamina.http.server import Request, Response
from lamina.service.invoke import InvokeCommand


async def invoke(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    headers = request.headers
    ref = ctx.function_ref(request, name)
    qualifier = arns.merge_qualifier(ref, request.query_params().get("Qualifier"))
    kind = wire.invocation_type(headers.get("x-amz-invocation-type"))
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
