"""Control-plane endpoints for functions: decode, call FunctionService, encode."""

from __future__ import annotations

import asyncio
import base64

from lamina.api import wire
from lamina.api.context import ApiContext
from lamina.domain import errors, limits
from lamina.http.server import Request, Response
from lamina.service.functions import CreateFunction


async def create_function(ctx: ApiContext, request: Request, request_id: str) -> Response:
    if len(request.body) > limits.CREATE_REQUEST:
        raise errors.RequestTooLarge(f"Request must be smaller than {limits.CREATE_REQUEST} "
                                     "bytes for the CreateFunction operation")
    document = wire.json_body(request.body)
    name = document.get("FunctionName")
    if not isinstance(name, str):
        raise errors.ValidationError.field("null", "functionName", "Member must not be null")
    ref = ctx.function_ref(request, name)
    if ref.qualifier is not None:
        raise errors.InvalidParameterValue("Unsupported function name: a qualifier is not "
                                           "allowed when creating a function")
    tags = document.get("Tags") or {}
    config = await ctx.functions.create(CreateFunction(
        ref.name, wire.function_settings(document), wire.zip_file(document.get("Code")),
        {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}))
    if document.get("Publish") is True:
        await asyncio.sleep(0)  # the function settles (Pending → Active) first
        config = await ctx.versions.publish(config.name)
        return wire.json_response(201, wire.function_configuration(
            config, ctx.functions.arn(config.name, config.version)), request_id)
    return wire.json_response(201, wire.function_configuration(
        config, ctx.functions.arn(config.name)), request_id)


async def get_function(ctx: ApiContext, request: Request, request_id: str,
                       name: str) -> Response:
    name, qualifier = ctx.qualified(request, name)
    config = ctx.functions.resolve(name, qualifier)
    key = base64.b64decode(config.code_sha256).hex()
    host = request.headers.get("host", "127.0.0.1")
    body = {
        "Configuration": wire.function_configuration(config, ctx.functions.arn(name, qualifier)),
        "Code": {"RepositoryType": "S3", "Location": f"http://{host}/_lamina/code/{key}.zip"},
    }
    tags = ctx.functions.tags(name)
    if tags:
        body["Tags"] = tags
    reserved = ctx.functions.get_concurrency(name)
    if reserved is not None:
        body["Concurrency"] = {"ReservedConcurrentExecutions": reserved}
    return wire.json_response(200, body, request_id)


async def get_configuration(ctx: ApiContext, request: Request, request_id: str,
                            name: str) -> Response:
    name, qualifier = ctx.qualified(request, name)
    config = ctx.functions.resolve(name, qualifier)
    return wire.json_response(200, wire.function_configuration(
        config, ctx.functions.arn(name, qualifier)), request_id)


async def list_functions(ctx: ApiContext, request: Request, request_id: str) -> Response:
    params = request.query_params()
    limit = wire.max_items(params.get("MaxItems"))
    marker = params.get("Marker")
    functions = ctx.functions.list()
    if marker:
        try:
            after = base64.urlsafe_b64decode(marker.encode()).decode()
        except (ValueError, UnicodeDecodeError):
            raise errors.InvalidParameterValue("Invalid Marker value.") from None
        functions = [f for f in functions if f.name > after]
    page = functions[:limit]
    body: dict[str, object] = {"Functions": [
        wire.function_configuration(f, ctx.functions.arn(f.name)) for f in page]}
    if len(functions) > limit:
        body["NextMarker"] = base64.urlsafe_b64encode(page[-1].name.encode()).decode()
    return wire.json_response(200, body, request_id)


async def update_code(ctx: ApiContext, request: Request, request_id: str,
                      name: str) -> Response:
    if len(request.body) > limits.CREATE_REQUEST:
        raise errors.RequestTooLarge(f"Request must be smaller than {limits.CREATE_REQUEST} "
                                     "bytes for the UpdateFunctionCode operation")
    ref = ctx.function_ref(request, name)
    document = wire.json_body(request.body)
    config = await ctx.functions.update_code(
        ref.name, wire.zip_file(document), document.get("RevisionId"),
        dry_run=bool(document.get("DryRun")))
    if document.get("Publish") is True and not document.get("DryRun"):
        await asyncio.sleep(0)  # the update settles (InProgress → Successful) first
        config = await ctx.versions.publish(config.name)
        return wire.json_response(200, wire.function_configuration(
            config, ctx.functions.arn(config.name, config.version)), request_id)
    return wire.json_response(200, wire.function_configuration(
        config, ctx.functions.arn(config.name)), request_id)


async def update_configuration(ctx: ApiContext, request: Request, request_id: str,
                               name: str) -> Response:
    ref = ctx.function_ref(request, name)
    document = wire.json_body(request.body)
    config = await ctx.functions.update_configuration(
        ref.name, wire.function_settings(document), document.get("RevisionId"))
    return wire.json_response(200, wire.function_configuration(
        config, ctx.functions.arn(config.name)), request_id)


async def delete_function(ctx: ApiContext, request: Request, request_id: str,
                          name: str) -> Response:
    name, qualifier = ctx.qualified(request, name)
    await ctx.functions.delete(name, qualifier)
    return wire.empty_response(204, request_id)


async def account_settings(ctx: ApiContext, request: Request, request_id: str) -> Response:
    functions = ctx.functions.list()
    return wire.json_response(200, {
        "AccountLimit": {
            "TotalCodeSize": limits.TOTAL_CODE_SIZE,
            "CodeSizeUnzipped": limits.UNZIPPED_CODE,
            "CodeSizeZipped": limits.ZIPPED_CODE,
            "ConcurrentExecutions": ctx.account_limit,
            "UnreservedConcurrentExecutions": ctx.invoke.limiter.unreserved_limit,
        },
        "AccountUsage": {"TotalCodeSize": ctx.functions.total_code_size(),
                         "FunctionCount": len(functions)},
    }, request_id)


async def list_tags(ctx: ApiContext, request: Request, request_id: str,
                    resource: str) -> Response:
    ref = ctx.function_ref(request, resource)
    return wire.json_response(200, {"Tags": ctx.functions.tags(ref.name)}, request_id)
