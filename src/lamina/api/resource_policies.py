"""Endpoints for Get/Put/DeleteResourcePolicy (API version 2026-07-09): the resource-based
policy of a function, version or alias, named by its full ARN. It is the policy AddPermission
and RemovePermission change and GetPolicy reads: PutResourcePolicy replaces it whole.
Enforced for other accounts (see `domain.policies`)."""

from __future__ import annotations

import re

from lamina.api import wire
from lamina.api.context import ApiContext
from lamina.domain import arns, errors
from lamina.http.server import Request, Response

ARN_PATTERN = (
    r"arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-"
    r"\d{1}:\d{12}:(runtime/|function:)[a-zA-Z0-9-_]+"
    r"(:(\$LATEST(\.PUBLISHED)?|[a-zA-Z0-9-_])+)?"
)
_ARN_RE = re.compile(ARN_PATTERN)


def _resource(ctx: ApiContext, request: Request, arn: str) -> tuple[str, str | None]:
    """(function, qualifier) a ResourceArn names."""
    if len(arn) > 256 or not _ARN_RE.fullmatch(arn):
        raise errors.ValidationError.field(
            arn, "resourceArn", "Member must satisfy regular expression pattern: " + ARN_PATTERN
        )
    if ":runtime/" in arn:  # Lamina keeps policies of functions only
        raise errors.ResourceNotFound("The resource you requested does not exist.")
    ref = ctx.reachable(
        request, arns.parse_function_name(arn, ctx.region, None, field="resourceArn"), None
    )
    return ref.name, ref.qualifier


async def get_policy(ctx: ApiContext, request: Request, request_id: str, arn: str) -> Response:
    policy = ctx.permissions.get(*_resource(ctx, request, arn))
    return wire.json_response(
        200,
        {"Policy": wire.compact_json(policy.document()), "RevisionId": policy.revision_id},
        request_id,
    )


async def put_policy(ctx: ApiContext, request: Request, request_id: str, arn: str) -> Response:
    function, qualifier = _resource(ctx, request, arn)
    document = wire.json_body(request.body)
    policy = await ctx.permissions.put_document(
        function, qualifier, document.get("Policy"), document.get("RevisionId")
    )
    return wire.json_response(
        200,
        {"Policy": wire.compact_json(policy.document()), "RevisionId": policy.revision_id},
        request_id,
    )


async def delete_policy(ctx: ApiContext, request: Request, request_id: str, arn: str) -> Response:
    function, qualifier = _resource(ctx, request, arn)
    await ctx.permissions.delete_document(
        function, qualifier, request.query_params().get("RevisionId")
    )
    return wire.empty_response(204, request_id)
