"""Endpoints for `*FunctionEventInvokeConfig` (spec §7.5)."""

from __future__ import annotations

from typing import Any

from lamina.api import wire
from lamina.api.context import ApiContext
from lamina.domain import errors
from lamina.domain.model import EventInvokeConfig
from lamina.http.server import Request, Response
from lamina.service.event_configs import UNSET


def _shape(ctx: ApiContext, config: EventInvokeConfig) -> dict[str, Any]:
    body: dict[str, Any] = {
        "LastModified": config.last_modified,
        "FunctionArn": ctx.functions.arn(config.function, config.qualifier),
    }
    if config.maximum_retry_attempts is not None:
        body["MaximumRetryAttempts"] = config.maximum_retry_attempts
    if config.maximum_event_age is not None:
        body["MaximumEventAgeInSeconds"] = config.maximum_event_age
    body["DestinationConfig"] = {
        "OnSuccess": {"Destination": config.on_success} if config.on_success else {},
        "OnFailure": {"Destination": config.on_failure} if config.on_failure else {},
    }
    return body


def _fields(document: dict[str, Any], merge: bool) -> dict[str, Any]:
    missing = UNSET if merge else None
    destination = document.get("DestinationConfig")
    if destination is not None and not isinstance(destination, dict):
        raise errors.ValidationError.field(
            destination, "destinationConfig", "Member must be a structure"
        )

    def target(key: str) -> Any:
        if destination is None or key not in destination:
            return missing
        entry = destination.get(key) or {}
        if not isinstance(entry, dict):
            raise errors.ValidationError.field(
                entry, key[0].lower() + key[1:], "Member must be a structure"
            )
        value = entry.get("Destination")
        if value is not None and not isinstance(value, str):
            raise errors.ValidationError.field(value, "destination", "Member must be a string")
        return value

    def number(key: str, field: str) -> Any:
        if key not in document:
            return missing
        value = document[key]
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise errors.ValidationError.field(value, field, "Member must be an integer")
        return value

    return {
        "retries": number("MaximumRetryAttempts", "maximumRetryAttempts"),
        "max_age": number("MaximumEventAgeInSeconds", "maximumEventAgeInSeconds"),
        "on_success": target("OnSuccess"),
        "on_failure": target("OnFailure"),
        "destination_config": bool(destination),
    }


async def put_config(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    name, qualifier = ctx.qualified(request, name)
    config = await ctx.event_configs.put(
        name, qualifier, merge=False, **_fields(wire.json_body(request.body), merge=False)
    )
    return wire.json_response(200, _shape(ctx, config), request_id)


async def update_config(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    name, qualifier = ctx.qualified(request, name)
    config = await ctx.event_configs.put(
        name, qualifier, merge=True, **_fields(wire.json_body(request.body), merge=True)
    )
    return wire.json_response(200, _shape(ctx, config), request_id)


async def get_config(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    name, qualifier = ctx.qualified(request, name)
    return wire.json_response(200, _shape(ctx, ctx.event_configs.get(name, qualifier)), request_id)


async def delete_config(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    name, qualifier = ctx.qualified(request, name)
    await ctx.event_configs.delete(name, qualifier)
    return wire.empty_response(204, request_id)


async def list_configs(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    ref = ctx.function_ref(request, name)
    params = request.query_params()
    limit = wire.max_items(params.get("MaxItems"))
    configs = ctx.event_configs.list(ref.name)
    start = int(params["Marker"]) if params.get("Marker", "").isdigit() else 0
    page = configs[start : start + limit]
    body: dict[str, Any] = {"FunctionEventInvokeConfigs": [_shape(ctx, c) for c in page]}
    if start + limit < len(configs):
        body["NextMarker"] = str(start + limit)
    return wire.json_response(200, body, request_id)
