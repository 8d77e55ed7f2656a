"""Endpoints for reserved and provisioned concurrency (spec §8.1, §8.5)."""

from __future__ import annotations

from typing import Any

from lamina.api import wire
from lamina.api.context import ApiContext
from lamina.domain import errors
from lamina.http.server import Request, Response


async def put_concurrency(
    ctx: ApiContext, request: Request, request_id: str, name: str
) -> Response:
    name, qualifier = ctx.qualified(request, name)
    ctx.functions.check_unqualified(qualifier)
    value = wire.json_body(request.body).get("ReservedConcurrentExecutions")
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise errors.ValidationError.field(
            value,
            "reservedConcurrentExecutions",
            "Member must have value greater than or equal to 0",
        )
    reserved = await ctx.functions.put_concurrency(name, value)
    return wire.json_response(200, {"ReservedConcurrentExecutions": reserved}, request_id)


async def get_concurrency(
    ctx: ApiContext, request: Request, request_id: str, name: str
) -> Response:
    name, qualifier = ctx.qualified(request, name)
    ctx.functions.check_unqualified(qualifier)
    reserved = ctx.functions.get_concurrency(name)
    body = {} if reserved is None else {"ReservedConcurrentExecutions": reserved}
    return wire.json_response(200, body, request_id)


async def delete_concurrency(
    ctx: ApiContext, request: Request, request_id: str, name: str
) -> Response:
    name, qualifier = ctx.qualified(request, name)
    ctx.functions.check_unqualified(qualifier)
    await ctx.functions.delete_concurrency(name)
    return wire.empty_response(204, request_id)


def _provisioned_shape(ctx: ApiContext, config: Any, with_arn: bool = False) -> dict[str, Any]:
    available = ctx.provisioned.available(config)
    body: dict[str, Any] = {}
    if with_arn:
        body["FunctionArn"] = ctx.functions.arn(config.function, config.qualifier)
    body.update(
        {
            "RequestedProvisionedConcurrentExecutions": config.requested,
            "AvailableProvisionedConcurrentExecutions": available,
            "AllocatedProvisionedConcurrentExecutions": available,
            "Status": config.status,
            "LastModified": config.last_modified,
        }
    )
    if config.reason:
        body["StatusReason"] = config.reason
    return body


async def put_provisioned(
    ctx: ApiContext, request: Request, request_id: str, name: str
) -> Response:
    name, qualifier = ctx.qualified(request, name)
    value = wire.json_body(request.body).get("ProvisionedConcurrentExecutions")
    if not isinstance(value, int) or isinstance(value, bool):
        raise errors.ValidationError.field(
            value, "provisionedConcurrentExecutions", "Member must not be null"
        )
    config = await ctx.provisioned.put(name, qualifier, value)
    return wire.json_response(202, _provisioned_shape(ctx, config), request_id)


async def get_provisioned(
    ctx: ApiContext, request: Request, request_id: str, name: str
) -> Response:
    if request.query_params().get("List") == "ALL":
        ref = ctx.function_ref(request, name)
        page, marker = wire.paginate(ctx.provisioned.list(ref.name), request.query_params())
        body: dict[str, Any] = {
            "ProvisionedConcurrencyConfigs": [
                _provisioned_shape(ctx, c, with_arn=True) for c in page
            ]
        }
        if marker:
            body["NextMarker"] = marker
        return wire.json_response(200, body, request_id)
    name, qualifier = ctx.qualified(request, name)
    return wire.json_response(
        200, _provisioned_shape(ctx, ctx.provisioned.get(name, qualifier)), request_id
    )


async def delete_provisioned(
    ctx: ApiContext, request: Request, request_id: str, name: str
) -> Response:
    name, qualifier = ctx.qualified(request, name)
    await ctx.provisioned.delete(name, qualifier)
    return wire.empty_response(204, request_id)
