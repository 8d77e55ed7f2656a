"""Endpoints for reserved concurrency: Put / Get / DeleteFunctionConcurrency (spec §8.1)."""

from __future__ import annotations

from lamina.api import wire
from lamina.api.context import ApiContext
from lamina.domain import errors
from lamina.http.server import Request, Response


async def put_concurrency(ctx: ApiContext, request: Request, request_id: str,
                          name: str) -> Response:
    name, qualifier = ctx.qualified(request, name)
    ctx.functions.check_unqualified(qualifier)
    value = wire.json_body(request.body).get("ReservedConcurrentExecutions")
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise errors.ValidationError.field(value, "reservedConcurrentExecutions",
                                           "Member must have value greater than or equal to 0")
    reserved = await ctx.functions.put_concurrency(name, value)
    return wire.json_response(200, {"ReservedConcurrentExecutions": reserved}, request_id)


async def get_concurrency(ctx: ApiContext, request: Request, request_id: str,
                          name: str) -> Response:
    name, qualifier = ctx.qualified(request, name)
    ctx.functions.check_unqualified(qualifier)
    reserved = ctx.functions.get_concurrency(name)
    body = {} if reserved is None else {"ReservedConcurrentExecutions": reserved}
    return wire.json_response(200, body, request_id)


async def delete_concurrency(ctx: ApiContext, request: Request, request_id: str,
                             name: str) -> Response:
    name, qualifier = ctx.qualified(request, name)
    ctx.functions.check_unqualified(qualifier)
    await ctx.functions.delete_concurrency(name)
    return wire.empty_response(204, request_id)

