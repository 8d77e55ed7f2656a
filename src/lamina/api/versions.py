"""Endpoints for versions and aliases: decode, call VersionService, encode (spec §2.3)."""

from __future__ import annotations

from typing import Any

from lamina.api import wire
from lamina.api.context import ApiContext
from lamina.domain import errors
from lamina.http.server import Request, Response


def _text(document: dict[str, Any], key: str) -> str | None:
    value = document.get(key)
    if value is not None and not isinstance(value, str):
        raise errors.ValidationError.field(
            value, key[0].lower() + key[1:], "Member must be a string"
        )
    return value


def refuse_publish_to(document: dict[str, Any]) -> None:
    """`PublishTo: LATEST_PUBLISHED` (Managed Instances) is not built: say so rather than
    publish a numbered version instead."""
    if document.get("PublishTo") is not None:
        raise errors.InvalidParameterValue(
            "Lamina does not publish $LATEST.PUBLISHED yet: leave PublishTo out to publish a "
            "numbered version."
        )


async def publish_version(
    ctx: ApiContext, request: Request, request_id: str, name: str
) -> Response:
    ref = ctx.function_ref(request, name)
    document = wire.json_body(request.body)
    refuse_publish_to(document)
    config = await ctx.versions.publish(
        ref.name,
        _text(document, "CodeSha256"),
        _text(document, "Description"),
        _text(document, "RevisionId"),
    )
    return wire.json_response(
        201,
        wire.function_configuration(config, ctx.functions.arn(ref.name, config.version)),
        request_id,
    )


async def list_versions(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    ref = ctx.function_ref(request, name)
    page, marker = wire.paginate(ctx.versions.list_versions(ref.name), request.query_params())
    body: dict[str, Any] = {
        "Versions": [
            wire.function_configuration(c, ctx.functions.arn(ref.name, c.version), listed=True)
            for c in page
        ]
    }
    if marker:
        body["NextMarker"] = marker
    return wire.json_response(200, body, request_id)


async def create_alias(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    ref = ctx.function_ref(request, name)
    document = wire.json_body(request.body)
    alias_name, version = _text(document, "Name"), _text(document, "FunctionVersion")
    if alias_name is None or version is None:
        raise errors.ValidationError.field(
            None, "name" if alias_name is None else "functionVersion", "Member must not be null"
        )
    alias = await ctx.versions.create_alias(
        ref.name, alias_name, version, _text(document, "Description") or "", wire.routing(document)
    )
    return wire.json_response(
        201,
        wire.alias_configuration(alias, ctx.versions.alias_arn(ref.name, alias.name)),
        request_id,
    )


async def get_alias(
    ctx: ApiContext, request: Request, request_id: str, name: str, alias: str
) -> Response:
    ref = ctx.function_ref(request, name)
    found = ctx.versions.get_alias(ref.name, alias)
    return wire.json_response(
        200, wire.alias_configuration(found, ctx.versions.alias_arn(ref.name, alias)), request_id
    )


async def update_alias(
    ctx: ApiContext, request: Request, request_id: str, name: str, alias: str
) -> Response:
    ref = ctx.function_ref(request, name)
    document = wire.json_body(request.body)
    updated = await ctx.versions.update_alias(
        ref.name,
        alias,
        _text(document, "FunctionVersion"),
        _text(document, "Description"),
        wire.routing(document),
        _text(document, "RevisionId"),
    )
    return wire.json_response(
        200, wire.alias_configuration(updated, ctx.versions.alias_arn(ref.name, alias)), request_id
    )


async def delete_alias(
    ctx: ApiContext, request: Request, request_id: str, name: str, alias: str
) -> Response:
    ref = ctx.function_ref(request, name)
    await ctx.versions.delete_alias(ref.name, alias)
    return wire.empty_response(204, request_id)


async def list_aliases(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    ref = ctx.function_ref(request, name)
    params = request.query_params()
    aliases = ctx.versions.list_aliases(ref.name, params.get("FunctionVersion"))
    page, marker = wire.paginate(aliases, params)
    body: dict[str, Any] = {
        "Aliases": [
            wire.alias_configuration(a, ctx.versions.alias_arn(ref.name, a.name)) for a in page
        ]
    }
    if marker:
        body["NextMarker"] = marker
    return wire.json_response(200, body, request_id)
