"""Lamina's stack endpoints (`lamina deploy`, `lamina stacks`, `lamina destroy`, the console):

    POST /_lamina/packages                 body: a zip → {"Key": sha256}
    POST /_lamina/packages/missing         {"Keys": [...]} → {"Missing": [...]}
    PUT  /_lamina/stacks/NAME              {"Template": {...} or text, "Parameters": {K: V},
                                            "SkipUnsupported": bool} → the stack (in progress,
                                            or "Changes": false when nothing is to change)
    GET  /_lamina/stacks                   {"Stacks": [summary, ...]}
    GET  /_lamina/stacks/NAME              the stack, described as CloudFormation does
    GET  /_lamina/stacks/NAME/events?after=N   {"Events": [...], "StackStatus": ...}
    DELETE /_lamina/stacks/NAME            start deleting it
Errors are CloudFormation's shape: {"Code": "ValidationError", "Message": ...}.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from lamina.api import wire
from lamina.api.context import ApiContext
from lamina.domain import arns, errors
from lamina.domain.cfn import template as templates
from lamina.domain.stacks import Stack, StackEvent, stack_account
from lamina.http.server import Request, Response
from lamina.service.providers.base import Dispatch
from lamina.service.stacks import check_name


class _InProcess:
    """The connection of a request made inside the engine: no interim responses, and no
    signature to check (api/auth.py lets it through with the caller it was given)."""

    closed = False
    in_process = True

    def write_interim(self, status: int) -> bool:
        return False

    @property
    def _loop(self) -> asyncio.AbstractEventLoop:  # `Request.loop` of a call made here
        return asyncio.get_running_loop()


def in_process(handler: Callable[[Request], Awaitable[Response]]) -> Dispatch:
    """The Lambda API handler as the deploy's providers call it (no socket, same checks)."""

    async def dispatch(
        method: str, path: str, query: str, headers: dict[str, str], body: bytes, caller: Any = None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        request = Request(method, path, query, headers, body, _InProcess())
        request.caller = caller
        response = await handler(request)
        return response.status, response.headers, response.body or b""

    return dispatch


_API_TYPES = ("AWS::ApiGatewayV2::Api", "AWS::ApiGateway::RestApi")


def describe(stack: Stack) -> dict[str, Any]:
    body: dict[str, Any] = {
        "StackName": arns.plain_name(stack.name),
        "StackId": stack.stack_id,
        "StackStatus": stack.status,
        "CreationTime": stack.created_at,
        "LastUpdatedTime": stack.updated_at,
        "Parameters": [
            {
                "ParameterKey": k,
                "ParameterValue": v if isinstance(v, str) else ",".join(map(str, v)),
            }
            for k, v in stack.parameters.items()
        ],
        "Outputs": stack.outputs,
        "Resources": [
            {
                "LogicalResourceId": r.logical_id,
                "PhysicalResourceId": r.physical_id,
                "ResourceType": r.type,
                "ResourceStatus": r.status,
                **({"ResourceStatusReason": r.reason} if r.reason else {}),
                **({"Arn": _arn(r.attributes)} if _arn(r.attributes) else {}),
            }
            for r in stack.resources.values()
        ],
        "HttpApis": _apis(stack),
        "FunctionUrls": [
            {"LogicalResourceId": r.logical_id, "FunctionUrl": r.attributes.get("FunctionUrl")}
            for r in stack.resources.values()
            if r.type == "AWS::Lambda::Url"
        ],
        "Notices": stack.notices,
        "LastEventId": stack.event_seq,
    }
    if stack.reason:
        body["StackStatusReason"] = stack.reason
    return body


def _apis(stack: Stack) -> list[dict[str, Any]]:
    """Each HTTP API's URL: the one its last stage gave, else the API's own."""
    stages = {
        r.properties.get("ApiId") or r.properties.get("RestApiId"): r.attributes
        for r in stack.resources.values()
        if r.type in ("AWS::ApiGatewayV2::Stage", "AWS::ApiGateway::Stage")
        or (r.type == "AWS::ApiGateway::Deployment" and r.attributes.get("Url"))
    }
    found = []
    for r in stack.resources.values():
        if r.type in _API_TYPES and not r.skipped and r.attributes.get("Url"):
            urls = stages.get(r.physical_id) or r.attributes
            found.append(
                {
                    "LogicalResourceId": r.logical_id,
                    "ApiId": r.physical_id,
                    "Url": urls.get("Url"),
                    "FallbackUrl": urls.get("FallbackUrl"),
                }
            )
    return found


def _arn(attributes: dict[str, Any]) -> str | None:
    for key in ("Arn", "AliasArn", "LayerVersionArn", "FunctionArn", "TopicArn"):
        if isinstance(attributes.get(key), str):
            return str(attributes[key])
    return None


def _event(event: StackEvent) -> dict[str, Any]:
    body = {
        "EventId": event.seq,
        "Timestamp": event.at,
        "LogicalResourceId": event.logical_id,
        "ResourceType": event.type,
        "ResourceStatus": event.status,
        "PhysicalResourceId": event.physical_id,
    }
    if event.reason:
        body["ResourceStatusReason"] = event.reason
    return body


def _cfn_error(error: errors.LaminaError, request_id: str) -> Response:
    return wire.json_response(
        error.status, {"Code": error.error_type, "Message": error.message}, request_id
    )


async def put_package(ctx: ApiContext, request: Request, request_id: str) -> Response:
    try:
        key = await ctx.stacks.put_package(request.body)
    except errors.LaminaError as exc:
        return _cfn_error(exc, request_id)
    return wire.json_response(201, {"Key": key}, request_id)


async def missing_packages(ctx: ApiContext, request: Request, request_id: str) -> Response:
    keys = wire.json_body(request.body).get("Keys")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        return _cfn_error(errors.TemplateError("Keys must be a list of package keys"), request_id)
    return wire.json_response(200, {"Missing": await ctx.stacks.missing_packages(keys)}, request_id)


def _document(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str], bool]:
    document = body.get("Template")
    if isinstance(document, str):
        document = templates.parse(document)
    if not isinstance(document, dict):
        raise errors.TemplateError("Template is required: a template object or its text")
    given = body.get("Parameters") or {}
    if not isinstance(given, dict):
        raise errors.TemplateError("Parameters must be a map of names to values")
    return (
        document,
        {str(k): v if isinstance(v, str) else str(v) for k, v in given.items()},
        bool(body.get("SkipUnsupported")),
    )


def _own(ctx: ApiContext, request: Request, name: str) -> str:
    """The key of the caller's stack `name`: stack names are unique per account, and a
    stack is kept under a key made as a function's is (domain.arns)."""
    check_name(name)
    return ctx.own_key(request, name)


async def put_stack(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    try:
        document, given, skip = _document(wire.json_body(request.body))
        stack, changes = await ctx.stacks.deploy(
            _own(ctx, request, name), document, given, skip, ctx.caller_account(request)
        )
    except errors.LaminaError as exc:
        return _cfn_error(exc, request_id)
    return wire.json_response(200, {**describe(stack), "Changes": changes}, request_id)


async def list_stacks(ctx: ApiContext, request: Request, request_id: str) -> Response:
    account = ctx.caller_account(request)
    stacks = [
        s for s in await ctx.stacks.list() if (stack_account(s.stack_id) or ctx.account) == account
    ]
    return wire.json_response(
        200,
        {
            "Stacks": [
                {
                    "StackName": arns.plain_name(s.name),
                    "StackId": s.stack_id,
                    "StackStatus": s.status,
                    "LastUpdatedTime": s.updated_at,
                    "Resources": len(s.resources),
                    **({"StackStatusReason": s.reason} if s.reason else {}),
                }
                for s in stacks
            ]
        },
        request_id,
    )


async def get_stack(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    try:
        stack = await ctx.stacks.get(_own(ctx, request, name))
    except errors.LaminaError as exc:
        return _cfn_error(exc, request_id)
    return wire.json_response(200, describe(stack), request_id)


async def stack_events(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    after = request.query_params().get("after", "0")
    try:
        key = _own(ctx, request, name)
        stack, found = await ctx.stacks.events(key, int(after) if after.isdigit() else 0)
    except errors.LaminaError as exc:
        return _cfn_error(exc, request_id)
    return wire.json_response(
        200, {"StackStatus": stack.status, "Events": [_event(e) for e in found]}, request_id
    )


async def delete_stack(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    try:
        stack = await ctx.stacks.destroy(_own(ctx, request, name))
    except errors.LaminaError as exc:
        return _cfn_error(exc, request_id)
    return wire.json_response(200, describe(stack), request_id)
