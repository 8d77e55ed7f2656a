"""Endpoints for capacity providers and function scaling configurations (2025-11-30 API):
decode, call CapacityProviderService, encode."""

from __future__ import annotations

from typing import Any

from lamina.api import wire
from lamina.api.context import ApiContext
from lamina.domain import capacity, errors
from lamina.domain.settings import check_tags
from lamina.http.server import Request, Response
from lamina.service.capacity import CapacityProviderService


def _service(ctx: ApiContext) -> CapacityProviderService:
    assert ctx.capacity is not None
    return ctx.capacity


def _page_size(params: dict[str, str]) -> None:
    """MaxItems of the 2025-11-30 lists is at most 50."""
    value = params.get("MaxItems")
    if value is not None and (not value.isdigit() or not 1 <= int(value) <= 50):
        raise errors.ValidationError.field(
            value, "maxItems", "Member must have value less than or equal to 50"
        )


async def create_provider(ctx: ApiContext, request: Request, request_id: str) -> Response:
    document = wire.json_body(request.body)
    tags = document.get("Tags") or {}
    tags = {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}
    check_tags(tags, len(tags))
    provider = await _service(ctx).create(document, tags)
    return wire.json_response(202, {"CapacityProvider": provider.wire()}, request_id)


async def get_provider(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    return wire.json_response(200, {"CapacityProvider": _service(ctx).get(name).wire()}, request_id)


async def list_providers(ctx: ApiContext, request: Request, request_id: str) -> Response:
    params = request.query_params()
    _page_size(params)
    page, marker = wire.paginate(_service(ctx).list(params.get("State")), params)
    body: dict[str, Any] = {"CapacityProviders": [p.wire() for p in page]}
    if marker:
        body["NextMarker"] = marker
    return wire.json_response(200, body, request_id)


async def update_provider(
    ctx: ApiContext, request: Request, request_id: str, name: str
) -> Response:
    provider = await _service(ctx).update(name, wire.json_body(request.body))
    return wire.json_response(202, {"CapacityProvider": provider.wire()}, request_id)


async def delete_provider(
    ctx: ApiContext, request: Request, request_id: str, name: str
) -> Response:
    provider = await _service(ctx).delete(name)
    return wire.json_response(202, {"CapacityProvider": provider.wire()}, request_id)


async def list_function_versions(
    ctx: ApiContext, request: Request, request_id: str, name: str
) -> Response:
    params = request.query_params()
    _page_size(params)
    service = _service(ctx)
    versions = service.function_versions(name)
    page, marker = wire.paginate(versions, params)
    body: dict[str, Any] = {
        "CapacityProviderArn": service.get(name).arn,
        "FunctionVersions": [
            {"FunctionArn": ctx.functions.arn(c.name, c.version), "State": c.state} for c in page
        ],
    }
    if marker:
        body["NextMarker"] = marker
    return wire.json_response(200, body, request_id)


async def get_scaling(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    ref = ctx.function_ref(request, name)
    config = _service(ctx).scaling(ref.name, request.query_params().get("Qualifier"))
    body: dict[str, Any] = {
        "FunctionArn": ctx.functions.arn(config.name, config.version),
        "AppliedFunctionScalingConfig": capacity.applied_scaling(config.scaling),
    }
    if config.scaling is not None:
        body["RequestedFunctionScalingConfig"] = dict(config.scaling)
    return wire.json_response(200, body, request_id)


async def put_scaling(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    ref = ctx.function_ref(request, name)
    config = await _service(ctx).put_scaling(
        ref.name,
        request.query_params().get("Qualifier"),
        wire.json_body(request.body).get("FunctionScalingConfig"),
    )
    return wire.json_response(202, {"FunctionState": config.state}, request_id)
