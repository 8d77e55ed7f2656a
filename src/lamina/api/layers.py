"""Endpoints for layers: PublishLayerVersion, GetLayerVersion, GetLayerVersionByArn,
ListLayerVersions, ListLayers, DeleteLayerVersion, and a version's policy:
Add/RemoveLayerVersionPermission, GetLayerVersionPolicy (enforced for other accounts)
(spec §2.3). A layer's archive is downloaded from the engine's code route, like a
function's (`Content.Location`)."""

from __future__ import annotations

from lamina.api import wire
from lamina.api.context import ApiContext
from lamina.domain import arns, errors
from lamina.domain.layers import NOT_FOUND, LayerPermission, LayerVersion
from lamina.http.server import Request, Response


def _content(request: Request, layer: LayerVersion) -> dict[str, object]:
    return wire.layer_version(
        layer, wire.code_location(request.headers.get("host"), layer.key, layer.path)
    )


def _number(version: str) -> int:
    try:
        number = int(version)
    except ValueError:
        raise errors.ResourceNotFound(NOT_FOUND) from None
    if number < 1:
        raise errors.InvalidParameterValue("Layer Version Cannot be less than 1")
    return number


async def publish_version(
    ctx: ApiContext, request: Request, request_id: str, layer: str
) -> Response:
    name = ctx.layers.name(layer, ctx.principal(request))
    document = wire.json_body(request.body)
    published = await ctx.layers.publish(
        name,
        wire.code_source(document.get("Content"), "content."),
        document.get("Description"),
        document.get("CompatibleRuntimes"),
        document.get("CompatibleArchitectures"),
        document.get("LicenseInfo"),
        ctx.caller_account(request),
    )
    return wire.json_response(201, _content(request, published), request_id)


async def get_version(
    ctx: ApiContext, request: Request, request_id: str, layer: str, version: str
) -> Response:
    number = _number(version)
    found = ctx.layers.get(ctx.layers.name(layer, ctx.principal(request), number), number)
    return wire.json_response(200, _content(request, found), request_id)


async def delete_version(
    ctx: ApiContext, request: Request, request_id: str, layer: str, version: str
) -> Response:
    await ctx.layers.delete(ctx.layers.name(layer, ctx.principal(request)), _number(version))
    return wire.empty_response(204, request_id)


async def list_versions(ctx: ApiContext, request: Request, request_id: str, layer: str) -> Response:
    params = request.query_params()
    account = ctx.caller_account(request)
    found = ctx.layers.versions(
        ctx.layers.name(layer, ctx.principal(request)),
        params.get("CompatibleRuntime"),
        params.get("CompatibleArchitecture"),
        account,
    )
    return _page("LayerVersions", [wire.layer_version(v) for v in found], params, request_id)


async def list_layers(ctx: ApiContext, request: Request, request_id: str) -> Response:
    """ListLayers, or GetLayerVersionByArn (`?find=LayerVersion&Arn=…`) on the same path."""
    params = request.query_params()
    if params.get("find") == "LayerVersion":
        arn = params.get("Arn")
        if not arn:
            raise errors.ValidationError.field(None, "arn", "Member must not be null")
        found = ctx.layers.get_by_arn(arn, ctx.principal(request))
        return wire.json_response(200, _content(request, found), request_id)
    latest = ctx.layers.latest(
        params.get("CompatibleRuntime"),
        params.get("CompatibleArchitecture"),
        ctx.caller_account(request),
    )
    return _page(
        "Layers",
        [
            {
                "LayerName": arns.plain_name(v.name),
                "LayerArn": v.arn,
                "LatestMatchingVersion": wire.layer_version(v),
            }
            for v in latest
        ],
        params,
        request_id,
    )


def _page(member: str, items: list[object], params: dict[str, str], request_id: str) -> Response:
    page, marker = wire.paginate(items, params)
    body: dict[str, object] = {member: page}
    if marker is not None:
        body["NextMarker"] = marker
    return wire.json_response(200, body, request_id)


async def add_permission(
    ctx: ApiContext, request: Request, request_id: str, layer: str, version: str
) -> Response:
    document = wire.json_body(request.body)
    permission = LayerPermission(
        document.get("StatementId"),
        document.get("Action"),
        document.get("Principal"),
        document.get("OrganizationId"),
    )
    changed = await ctx.layers.add_permission(
        ctx.layers.name(layer, ctx.principal(request)),
        _number(version),
        permission,
        request.query_params().get("RevisionId"),
    )
    return wire.json_response(
        201,
        {
            "Statement": wire.compact_json(changed.statements[-1]),
            "RevisionId": changed.policy_revision,
        },
        request_id,
    )


async def get_policy(
    ctx: ApiContext, request: Request, request_id: str, layer: str, version: str
) -> Response:
    found = ctx.layers.policy(ctx.layers.name(layer, ctx.principal(request)), _number(version))
    return wire.json_response(
        200,
        {"Policy": wire.compact_json(found.policy()), "RevisionId": found.policy_revision},
        request_id,
    )


async def remove_permission(
    ctx: ApiContext, request: Request, request_id: str, layer: str, version: str, statement_id: str
) -> Response:
    await ctx.layers.remove_permission(
        ctx.layers.name(layer, ctx.principal(request)),
        _number(version),
        statement_id,
        request.query_params().get("RevisionId"),
    )
    return wire.empty_response(204, request_id)
