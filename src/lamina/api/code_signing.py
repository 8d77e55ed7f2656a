"""Endpoints for code signing configurations and a function's use of one (2020-04-22 and
2020-06-30 APIs): decode, call CodeSigningService, encode."""

from __future__ import annotations

from typing import Any

from lamina.api import wire
from lamina.api.context import ApiContext
from lamina.domain import arns
from lamina.domain.code_signing import CodeSigningConfig
from lamina.domain.settings import check_tags
from lamina.http.server import Request, Response
from lamina.service.code_signing import check_unqualified


def configuration(config: CodeSigningConfig) -> dict[str, Any]:
    """The CodeSigningConfig shape."""
    return {
        "CodeSigningConfigId": config.id,
        "CodeSigningConfigArn": config.arn,
        "Description": config.description,
        "AllowedPublishers": {"SigningProfileVersionArns": list(config.profiles)},
        "CodeSigningPolicies": {"UntrustedArtifactOnDeployment": config.policy},
        "LastModified": config.last_modified,
    }


async def create_config(ctx: ApiContext, request: Request, request_id: str) -> Response:
    document = wire.json_body(request.body)
    tags = document.get("Tags") or {}
    tags = {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}
    check_tags(tags, len(tags))
    config = await ctx.code_signing.create(
        document.get("AllowedPublishers"),
        document.get("CodeSigningPolicies"),
        document.get("Description"),
        tags,
    )
    return wire.json_response(201, {"CodeSigningConfig": configuration(config)}, request_id)


async def get_config(ctx: ApiContext, request: Request, request_id: str, arn: str) -> Response:
    return wire.json_response(
        200, {"CodeSigningConfig": configuration(ctx.code_signing.get(arn))}, request_id
    )


async def list_configs(ctx: ApiContext, request: Request, request_id: str) -> Response:
    page, marker = wire.paginate(ctx.code_signing.list(), request.query_params())
    body: dict[str, Any] = {"CodeSigningConfigs": [configuration(c) for c in page]}
    if marker:
        body["NextMarker"] = marker
    return wire.json_response(200, body, request_id)


async def update_config(ctx: ApiContext, request: Request, request_id: str, arn: str) -> Response:
    document = wire.json_body(request.body)
    config = await ctx.code_signing.update(
        arn,
        document.get("AllowedPublishers"),
        document.get("CodeSigningPolicies"),
        document.get("Description"),
    )
    return wire.json_response(200, {"CodeSigningConfig": configuration(config)}, request_id)


async def delete_config(ctx: ApiContext, request: Request, request_id: str, arn: str) -> Response:
    await ctx.code_signing.delete(arn)
    return wire.empty_response(204, request_id)


async def list_functions(ctx: ApiContext, request: Request, request_id: str, arn: str) -> Response:
    ctx.code_signing.get(arn)
    names = ctx.code_signing.functions_using(arn)
    page, marker = wire.paginate([ctx.functions.arn(n) for n in names], request.query_params())
    body: dict[str, Any] = {"FunctionArns": page}
    if marker:
        body["NextMarker"] = marker
    return wire.json_response(200, body, request_id)


async def put_function_config(
    ctx: ApiContext, request: Request, request_id: str, name: str
) -> Response:
    ref = ctx.function_ref(request, name)
    check_unqualified(ref.qualifier)
    arn = await ctx.code_signing.attach(
        ref.name, wire.json_body(request.body).get("CodeSigningConfigArn")
    )
    return wire.json_response(
        200, {"CodeSigningConfigArn": arn, "FunctionName": arns.plain_name(ref.name)}, request_id
    )


async def get_function_config(
    ctx: ApiContext, request: Request, request_id: str, name: str
) -> Response:
    """A function without a configuration answers an empty object (recorded against AWS)."""
    ref = ctx.function_ref(request, name)
    arn = ctx.code_signing.of_function(ref.name)
    body = (
        {}
        if arn is None
        else {"CodeSigningConfigArn": arn, "FunctionName": arns.plain_name(ref.name)}
    )
    return wire.json_response(200, body, request_id)


async def delete_function_config(
    ctx: ApiContext, request: Request, request_id: str, name: str
) -> Response:
    ref = ctx.function_ref(request, name)
    check_unqualified(ref.qualifier)
    await ctx.code_signing.detach(ref.name)
    return wire.empty_response(204, request_id)
