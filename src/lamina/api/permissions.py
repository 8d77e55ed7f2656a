"""Endpoints for a function's resource-based policy: AddPermission, RemovePermission,
GetPolicy (spec §2.3). Statements and policies travel as JSON strings inside the JSON body."""

from __future__ import annotations

from lamina.api import wire
from lamina.api.context import ApiContext
from lamina.domain.policies import Permission
from lamina.http.server import Request, Response


async def add_permission(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    name, qualifier = ctx.qualified(request, name)
    document = wire.json_body(request.body)
    permission = Permission(
        document.get("StatementId"),
        document.get("Action"),
        document.get("Principal"),
        source_arn=document.get("SourceArn"),
        source_account=document.get("SourceAccount"),
        principal_org_id=document.get("PrincipalOrgID"),
        event_source_token=document.get("EventSourceToken"),
        function_url_auth_type=document.get("FunctionUrlAuthType"),
        invoked_via_function_url=document.get("InvokedViaFunctionUrl"),
    )
    statement = await ctx.permissions.add(name, qualifier, permission, document.get("RevisionId"))
    return wire.json_response(201, {"Statement": wire.compact_json(statement)}, request_id)


async def remove_permission(
    ctx: ApiContext, request: Request, request_id: str, name: str, statement_id: str
) -> Response:
    name, qualifier = ctx.qualified(request, name)
    await ctx.permissions.remove(
        name, qualifier, statement_id, request.query_params().get("RevisionId")
    )
    return wire.empty_response(204, request_id)


async def get_policy(ctx: ApiContext, request: Request, request_id: str, name: str) -> Response:
    name, qualifier = ctx.qualified(request, name)
    policy = ctx.permissions.get(name, qualifier)
    return wire.json_response(
        200,
        {"Policy": wire.compact_json(policy.document()), "RevisionId": policy.revision_id},
        request_id,
    )
