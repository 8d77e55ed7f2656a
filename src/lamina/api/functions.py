"""Control-plane endpoints for functions: decode, call FunctionService, encode."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

from lamina.api import versions, wire
from lamina.api.context import ApiContext
from lamina.domain import arns, capacity, code_signing, errors, limits, tagging
from lamina.domain.model import LATEST, FunctionConfig
from lamina.domain.settings import (
    RECURSIVE_LOOP,
    check_choice,
    check_runtime_management,
    check_tags,
)
from lamina.http.server import Request, Response
from lamina.service.functions import CreateFunction, package_key


async def create_function(ctx: ApiContext, request: Request, request_id: str) -> Response:
    if len(request.body) > limits.CREATE_REQUEST:
        raise errors.RequestTooLarge(
            f"Request must be smaller than {limits.CREATE_REQUEST} "
            "bytes for the CreateFunction operation"
        )
    document = wire.json_body(request.body)
    versions.refuse_publish_to(document)
    name = document.get("FunctionName")
    if not isinstance(name, str):
        raise errors.ValidationError.field(None, "functionName", "Member must not be null")
    account = ctx.caller_account(request)
    ref = arns.parse_function_name(name, ctx.region, account, creating=True)
    if ref.qualifier is not None:
        raise errors.InvalidParameterValue(
            "Unsupported function name: a qualifier is not allowed when creating a function"
        )
    tags = document.get("Tags") or {}
    signing = document.get("CodeSigningConfigArn")
    config = await ctx.functions.create(
        CreateFunction(
            ctx.key(account, ref.name),
            wire.function_settings(document),
            wire.code_source(document.get("Code")),
            {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {},
            code_signing.check_arn(signing) if signing is not None else None,
            account,
        )
    )
    if document.get("Publish") is True:
        await asyncio.sleep(0)  # the function settles (Pending → Active) first
        version = await ctx.versions.publish(config.name, renew_latest=False, with_change=True)
        # AWS answers the function as created (Pending, unqualified) with the version number
        config = config.replace(version=version.version)
    return wire.json_response(
        201, wire.function_configuration(config, ctx.functions.arn(config.name)), request_id
    )


async def get_function(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    name, qualifier = ctx.qualified(request, name, "lambda:GetFunction")
    config = ctx.functions.resolve(name, qualifier)
    body = {
        "Configuration": wire.function_configuration(config, ctx.functions.arn(name, qualifier)),
        "Code": {
            "RepositoryType": "S3",
            "Location": wire.code_location(
                request.headers.get("host"), package_key(config), config.code_path
            ),
        },
    }
    tags = ctx.functions.tags(name)
    if tags:
        body["Tags"] = tags
    reserved = ctx.functions.get_concurrency(name)
    if reserved is not None:
        body["Concurrency"] = {"ReservedConcurrentExecutions": reserved}
    return wire.json_response(200, body, request_id)


async def get_configuration(
    ctx: ApiContext, request: Request, request_id: str, name: str
) -> Response:
    name, qualifier = ctx.qualified(request, name, "lambda:GetFunctionConfiguration")
    config = ctx.functions.resolve(name, qualifier)
    return wire.json_response(
        200, wire.function_configuration(config, ctx.functions.arn(name, qualifier)), request_id
    )


async def list_functions(ctx: ApiContext, request: Request, request_id: str) -> Response:
    params = request.query_params()
    limit = wire.max_items(params.get("MaxItems"))
    marker = params.get("Marker")
    every_version = wire.function_version(params.get("FunctionVersion"))
    account = ctx.caller_account(request)
    functions = [
        f
        for f in (ctx.versions.list_all() if every_version else ctx.functions.list())
        if (f.account or ctx.account) == account
    ]
    if marker:
        try:
            after = base64.urlsafe_b64decode(marker.encode()).decode()
        except (ValueError, UnicodeDecodeError):
            raise errors.InvalidParameterValue("Invalid Marker value.") from None
        functions = [f for f in functions if _list_key(f) > after]
    page = functions[:limit]
    body: dict[str, object] = {
        "Functions": [
            wire.function_configuration(
                f, ctx.functions.arn(f.name, f.version if every_version else None), listed=True
            )
            for f in page
        ]
    }
    if len(functions) > limit:
        body["NextMarker"] = base64.urlsafe_b64encode(_list_key(page[-1]).encode()).decode()
    return wire.json_response(200, body, request_id)


def _list_key(config: FunctionConfig) -> str:
    """Where a ListFunctions page ends: the name, then the version in order ($LATEST first)."""
    return f"{config.plain_name}\0{0 if config.version == LATEST else int(config.version):010d}"


async def update_code(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    if len(request.body) > limits.CREATE_REQUEST:
        raise errors.RequestTooLarge(
            f"Request must be smaller than {limits.CREATE_REQUEST} "
            "bytes for the UpdateFunctionCode operation"
        )
    ref = ctx.function_ref(request, name)
    document = wire.json_body(request.body)
    versions.refuse_publish_to(document)
    config = await ctx.functions.update_code(
        ref.name,
        wire.code_source(document, prefix=""),
        document.get("RevisionId"),
        dry_run=bool(document.get("DryRun")),
    )
    if document.get("Publish") is True and not document.get("DryRun"):
        await asyncio.sleep(0)  # the update settles (InProgress → Successful) first
        version = await ctx.versions.publish(config.name, with_change=True)
        # AWS answers the new version as it starts: Pending
        config = version.replace(
            state="Pending",
            state_reason="The function is being created.",
            state_reason_code="Creating",
            last_update_status=None,
        )
        return wire.json_response(
            200,
            wire.function_configuration(config, ctx.functions.arn(config.name, config.version)),
            request_id,
        )
    return wire.json_response(
        200, wire.function_configuration(config, ctx.functions.arn(config.name)), request_id
    )


async def update_configuration(
    ctx: ApiContext, request: Request, request_id: str, name: str
) -> Response:
    ref = ctx.function_ref(request, name)
    document = wire.json_body(request.body)
    config = await ctx.functions.update_configuration(
        ref.name, wire.function_settings(document), document.get("RevisionId")
    )
    return wire.json_response(
        200, wire.function_configuration(config, ctx.functions.arn(config.name)), request_id
    )


async def delete_function(
    ctx: ApiContext, request: Request, request_id: str, name: str
) -> Response:
    name, qualifier = ctx.qualified(request, name)
    await ctx.functions.delete(name, qualifier)
    return wire.empty_response(204, request_id)


async def account_settings(ctx: ApiContext, request: Request, request_id: str) -> Response:
    functions = ctx.functions.list(ctx.caller_account(request))
    return wire.json_response(
        200,
        {
            "AccountLimit": {
                "TotalCodeSize": limits.TOTAL_CODE_SIZE,
                "CodeSizeUnzipped": limits.UNZIPPED_CODE,
                "CodeSizeZipped": limits.ZIPPED_CODE,
                "ConcurrentExecutions": ctx.account_limit,
                "UnreservedConcurrentExecutions": ctx.invoke.limiter.unreserved_limit,
            },
            "AccountUsage": {
                "TotalCodeSize": ctx.functions.total_code_size()
                + (ctx.layers.total_code_size() if ctx.layers is not None else 0),
                "FunctionCount": len(functions),
            },
        },
        request_id,
    )


class _Tagged:
    """The tags of the resource a tags operation names: read them, replace them."""

    def __init__(
        self, get: Callable[[], dict[str, str]], put: Callable[[dict[str, str]], Awaitable[None]]
    ) -> None:
        self.get, self.put = get, put


def _tagged(ctx: ApiContext, request: Request, resource: str) -> _Tagged:
    """The function, event source mapping, code signing configuration or capacity provider a
    tags operation names by its ARN (AWS's pattern); AWS's 404 for one that does not exist."""
    tagged = tagging.parse(resource)
    if tagged.kind == "function":
        ref = ctx.reachable(
            request, arns.parse_function_name(resource, ctx.region, None, field="resource"), None
        )
        if ref.qualifier is not None:
            raise errors.InvalidParameterValue(
                "Tags on function aliases and versions are not "
                "supported. Please specify a function ARN."
            )
        ctx.functions.entry(ref.name)
        functions = ctx.functions
        return _Tagged(
            lambda: functions.tags(ref.name), lambda tags: functions.set_tags(ref.name, tags)
        )
    if (
        tagged.kind == "event-source-mapping"
        and ctx.mappings is not None
        and ctx.mappings.current(tagged.id) is not None
    ):
        mappings = ctx.mappings
        return _Tagged(
            lambda: dict(mappings.get(tagged.id).tags),
            lambda tags: mappings.set_tags(tagged.id, tags),
        )
    if tagged.kind == "code-signing-config" and ctx.code_signing is not None:
        signing = ctx.code_signing
        return _Tagged(
            lambda: signing.get(resource).tags, lambda tags: signing.set_tags(resource, tags)
        )
    if tagged.kind == "capacity-provider" and ctx.capacity is not None:
        providers, name = ctx.capacity, capacity.name_of(resource, "resource")
        return _Tagged(
            lambda: providers.get(name).tags, lambda tags: providers.set_tags(name, tags)
        )
    raise tagging.not_found(tagged)


async def list_tags(ctx: ApiContext, request: Request, request_id: str, resource: str) -> Response:
    tags = dict(_tagged(ctx, request, resource).get())
    return wire.json_response(200, {"Tags": tags}, request_id)


async def tag_resource(
    ctx: ApiContext, request: Request, request_id: str, resource: str
) -> Response:
    tagged = _tagged(ctx, request, resource)
    tags = wire.json_body(request.body).get("Tags")
    if not tags:
        raise errors.InvalidParameterValue("An error occurred and the request cannot be processed.")
    if not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values()):
        raise errors.ValidationError.field(tags, "tags", "Member must be a map of strings")
    merged = {**tagged.get(), **tags}
    check_tags(tags, len(merged))
    await tagged.put(merged)
    return wire.empty_response(204, request_id)


async def untag_resource(
    ctx: ApiContext, request: Request, request_id: str, resource: str
) -> Response:
    tagged = _tagged(ctx, request, resource)
    keys = parse_qs(request.query or "").get("tagKeys")
    if not keys:
        raise errors.ValidationError.field(None, "tagKeys", "Member must not be null")
    await tagged.put({k: v for k, v in tagged.get().items() if k not in keys})
    return wire.empty_response(204, request_id)


def _runtime_management(
    ctx: ApiContext, name: str, qualifier: str | None, config: FunctionConfig
) -> dict[str, str]:
    body = {
        "UpdateRuntimeOn": config.runtime_update_on,
        "FunctionArn": ctx.functions.arn(name, qualifier),
    }
    if config.runtime_version_arn is not None:
        body["RuntimeVersionArn"] = config.runtime_version_arn
    return body


async def get_runtime_management(
    ctx: ApiContext, request: Request, request_id: str, name: str
) -> Response:
    """Recorded, not acted on: Lamina runs the interpreters it is given."""
    name, qualifier = ctx.qualified(request, name)
    return wire.json_response(
        200,
        _runtime_management(ctx, name, qualifier, ctx.functions.resolve(name, qualifier)),
        request_id,
    )


async def put_runtime_management(
    ctx: ApiContext, request: Request, request_id: str, name: str
) -> Response:
    name, qualifier = ctx.qualified(request, name)
    document = wire.json_body(request.body)
    update_on, version_arn = document.get("UpdateRuntimeOn"), document.get("RuntimeVersionArn")
    check_runtime_management(update_on, version_arn)
    config = await ctx.functions.configure(
        name,
        qualifier,
        runtime_update_on=update_on,
        runtime_version_arn=version_arn if update_on == "Manual" else None,
    )
    return wire.json_response(200, _runtime_management(ctx, name, qualifier, config), request_id)


async def get_recursion_config(
    ctx: ApiContext, request: Request, request_id: str, name: str
) -> Response:
    """Recorded, not acted on: Lamina does not detect recursive loops."""
    ref = ctx.function_ref(request, name)
    ctx.functions.check_unqualified(ref.qualifier)
    loop = ctx.functions.entry(ref.name).latest.recursive_loop
    return wire.json_response(200, {"RecursiveLoop": loop}, request_id)


async def put_recursion_config(
    ctx: ApiContext, request: Request, request_id: str, name: str
) -> Response:
    ref = ctx.function_ref(request, name)
    ctx.functions.check_unqualified(ref.qualifier)
    loop = wire.json_body(request.body).get("RecursiveLoop")
    check_choice(loop, "recursiveLoop", RECURSIVE_LOOP)
    config = await ctx.functions.configure(ref.name, None, recursive_loop=loop)
    return wire.json_response(200, {"RecursiveLoop": config.recursive_loop}, request_id)
