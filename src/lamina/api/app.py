"""The Lambda API: a route table and the one table that turns errors into responses.

Each route maps a method and a path pattern to a handler `(ctx, request, request_id, **path)`.
Invoke, the hot path, is matched first, before the function URL, HTTP API and CloudWatch Logs
checks and the route table, without a regular expression; its API request id is also the
invocation's request id, as on AWS (one id per call). Every `LaminaError`
becomes an AWS-shaped error here and nowhere else; anything unexpected becomes a 500
`ServiceException` and is logged, so no request ever sees a traceback or hangs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable

from lamina.api import (
    admin,
    apis,
    auth,
    capacity,
    cloudwatch_logs,
    code_signing,
    concurrency,
    console,
    debug,
    durable,
    event_configs,
    functions,
    invoke,
    layers,
    mappings,
    metrics,
    openapi,
    overview,
    permissions,
    resource_policies,
    schedules,
    shapes,
    stacks,
    urls,
    versions,
    wire,
)
from lamina.api.context import ApiContext
from lamina.domain import errors, ids, limits
from lamina.http.server import Request, Response

log = logging.getLogger("lamina.api")

RouteHandler = Callable[..., Awaitable[Response]]

_NAME = r"(?P<name>[^/]+)"
_ALIAS = r"(?P<alias>[^/]+)"
_UUID = r"(?P<mapping_id>[^/]+)"
_LAYER = r"(?P<layer>[^/]+)"
_CSC = r"(?P<arn>[^/]+)"
_PROVIDER = r"(?P<name>[^/]+)"
_EXEC = r"/2025-12-01/durable-executions/(?P<arn>arn:[^/]+/durable-execution/[^/]+/[^/]+)"
_CALLBACK = r"/2025-12-01/durable-execution-callbacks/(?P<callback_id>.+)"
ROUTES: list[tuple[str, str, RouteHandler]] = [
    ("POST", r"/2015-03-31/functions/?", functions.create_function),
    ("GET", r"/2015-03-31/functions/?", functions.list_functions),
    ("GET", rf"/2015-03-31/functions/{_NAME}/?", functions.get_function),
    ("DELETE", rf"/2015-03-31/functions/{_NAME}/?", functions.delete_function),
    ("GET", rf"/2015-03-31/functions/{_NAME}/configuration/?", functions.get_configuration),
    ("PUT", rf"/2015-03-31/functions/{_NAME}/configuration/?", functions.update_configuration),
    ("PUT", rf"/2015-03-31/functions/{_NAME}/code/?", functions.update_code),
    ("GET", r"/2016-08-19/account-settings/?", functions.account_settings),
    ("POST", r"/2015-03-31/event-source-mappings/?", mappings.create_mapping),
    ("GET", r"/2015-03-31/event-source-mappings/?", mappings.list_mappings),
    ("GET", rf"/2015-03-31/event-source-mappings/{_UUID}/?", mappings.get_mapping),
    ("PUT", rf"/2015-03-31/event-source-mappings/{_UUID}/?", mappings.update_mapping),
    ("DELETE", rf"/2015-03-31/event-source-mappings/{_UUID}/?", mappings.delete_mapping),
    ("POST", rf"/2015-03-31/functions/{_NAME}/versions/?", versions.publish_version),
    ("GET", rf"/2015-03-31/functions/{_NAME}/versions/?", versions.list_versions),
    ("POST", rf"/2015-03-31/functions/{_NAME}/aliases/?", versions.create_alias),
    ("GET", rf"/2015-03-31/functions/{_NAME}/aliases/?", versions.list_aliases),
    ("GET", rf"/2015-03-31/functions/{_NAME}/aliases/{_ALIAS}/?", versions.get_alias),
    ("PUT", rf"/2015-03-31/functions/{_NAME}/aliases/{_ALIAS}/?", versions.update_alias),
    ("DELETE", rf"/2015-03-31/functions/{_NAME}/aliases/{_ALIAS}/?", versions.delete_alias),
    ("GET", r"/2017-03-31/tags/(?P<resource>.+)", functions.list_tags),
    ("POST", r"/2017-03-31/tags/(?P<resource>.+)", functions.tag_resource),
    ("DELETE", r"/2017-03-31/tags/(?P<resource>.+)", functions.untag_resource),
    ("POST", rf"/2015-03-31/functions/{_NAME}/policy/?", permissions.add_permission),
    ("GET", rf"/2015-03-31/functions/{_NAME}/policy/?", permissions.get_policy),
    (
        "DELETE",
        rf"/2015-03-31/functions/{_NAME}/policy/(?P<statement_id>[^/]+)/?",
        permissions.remove_permission,
    ),
    (
        "GET",
        rf"/2020-06-30/functions/{_NAME}/code-signing-config/?",
        code_signing.get_function_config,
    ),
    (
        "PUT",
        rf"/2020-06-30/functions/{_NAME}/code-signing-config/?",
        code_signing.put_function_config,
    ),
    (
        "DELETE",
        rf"/2020-06-30/functions/{_NAME}/code-signing-config/?",
        code_signing.delete_function_config,
    ),
    ("POST", r"/2020-04-22/code-signing-configs/?", code_signing.create_config),
    ("GET", r"/2020-04-22/code-signing-configs/?", code_signing.list_configs),
    ("GET", rf"/2020-04-22/code-signing-configs/{_CSC}/?", code_signing.get_config),
    ("PUT", rf"/2020-04-22/code-signing-configs/{_CSC}/?", code_signing.update_config),
    ("DELETE", rf"/2020-04-22/code-signing-configs/{_CSC}/?", code_signing.delete_config),
    ("GET", rf"/2020-04-22/code-signing-configs/{_CSC}/functions/?", code_signing.list_functions),
    (
        "GET",
        rf"/2021-07-20/functions/{_NAME}/runtime-management-config/?",
        functions.get_runtime_management,
    ),
    (
        "PUT",
        rf"/2021-07-20/functions/{_NAME}/runtime-management-config/?",
        functions.put_runtime_management,
    ),
    ("GET", rf"/2024-08-31/functions/{_NAME}/recursion-config/?", functions.get_recursion_config),
    ("PUT", rf"/2024-08-31/functions/{_NAME}/recursion-config/?", functions.put_recursion_config),
    ("POST", rf"/2014-11-13/functions/{_NAME}/invoke-async/?", invoke.invoke_async),
    (
        "POST",
        rf"/2021-11-15/functions/{_NAME}/response-streaming-invocations/?",
        invoke.invoke_stream,
    ),
    ("PUT", rf"/2019-09-25/functions/{_NAME}/event-invoke-config/?", event_configs.put_config),
    ("POST", rf"/2019-09-25/functions/{_NAME}/event-invoke-config/?", event_configs.update_config),
    ("GET", rf"/2019-09-25/functions/{_NAME}/event-invoke-config/?", event_configs.get_config),
    (
        "DELETE",
        rf"/2019-09-25/functions/{_NAME}/event-invoke-config/?",
        event_configs.delete_config,
    ),
    (
        "GET",
        rf"/2019-09-25/functions/{_NAME}/event-invoke-config/list/?",
        event_configs.list_configs,
    ),
    ("PUT", rf"/2017-10-31/functions/{_NAME}/concurrency/?", concurrency.put_concurrency),
    ("GET", rf"/2019-09-30/functions/{_NAME}/concurrency/?", concurrency.get_concurrency),
    ("DELETE", rf"/2017-10-31/functions/{_NAME}/concurrency/?", concurrency.delete_concurrency),
    (
        "PUT",
        rf"/2019-09-30/functions/{_NAME}/provisioned-concurrency/?",
        concurrency.put_provisioned,
    ),
    (
        "GET",
        rf"/2019-09-30/functions/{_NAME}/provisioned-concurrency/?",
        concurrency.get_provisioned,
    ),
    (
        "DELETE",
        rf"/2019-09-30/functions/{_NAME}/provisioned-concurrency/?",
        concurrency.delete_provisioned,
    ),
    ("POST", rf"/2018-10-31/layers/{_LAYER}/versions/?", layers.publish_version),
    ("GET", rf"/2018-10-31/layers/{_LAYER}/versions/?", layers.list_versions),
    ("GET", rf"/2018-10-31/layers/{_LAYER}/versions/(?P<version>[^/]+)/?", layers.get_version),
    (
        "DELETE",
        rf"/2018-10-31/layers/{_LAYER}/versions/(?P<version>[^/]+)/?",
        layers.delete_version,
    ),
    ("GET", r"/2018-10-31/layers/?", layers.list_layers),
    (
        "POST",
        rf"/2018-10-31/layers/{_LAYER}/versions/(?P<version>[^/]+)/policy/?",
        layers.add_permission,
    ),
    (
        "GET",
        rf"/2018-10-31/layers/{_LAYER}/versions/(?P<version>[^/]+)/policy/?",
        layers.get_policy,
    ),
    (
        "DELETE",
        rf"/2018-10-31/layers/{_LAYER}/versions/(?P<version>[^/]+)/policy/"
        r"(?P<statement_id>[^/]+)",
        layers.remove_permission,
    ),
    ("GET", r"/2026-07-09/resource-policy/(?P<arn>.+)", resource_policies.get_policy),
    ("PUT", r"/2026-07-09/resource-policy/(?P<arn>.+)", resource_policies.put_policy),
    ("DELETE", r"/2026-07-09/resource-policy/(?P<arn>.+)", resource_policies.delete_policy),
    ("POST", r"/2025-11-30/capacity-providers/?", capacity.create_provider),
    ("GET", r"/2025-11-30/capacity-providers/?", capacity.list_providers),
    ("GET", rf"/2025-11-30/capacity-providers/{_PROVIDER}/?", capacity.get_provider),
    ("PUT", rf"/2025-11-30/capacity-providers/{_PROVIDER}/?", capacity.update_provider),
    ("DELETE", rf"/2025-11-30/capacity-providers/{_PROVIDER}/?", capacity.delete_provider),
    (
        "GET",
        rf"/2025-11-30/capacity-providers/{_PROVIDER}/function-versions/?",
        capacity.list_function_versions,
    ),
    ("GET", rf"/2025-11-30/functions/{_NAME}/function-scaling-config/?", capacity.get_scaling),
    ("PUT", rf"/2025-11-30/functions/{_NAME}/function-scaling-config/?", capacity.put_scaling),
    ("POST", rf"/2021-10-31/functions/{_NAME}/url/?", urls.create_url),
    ("GET", rf"/2021-10-31/functions/{_NAME}/url/?", urls.get_url),
    ("PUT", rf"/2021-10-31/functions/{_NAME}/url/?", urls.update_url),
    ("DELETE", rf"/2021-10-31/functions/{_NAME}/url/?", urls.delete_url),
    ("GET", rf"/2021-10-31/functions/{_NAME}/urls/?", urls.list_urls),
    ("POST", rf"{_EXEC}/checkpoint", durable.checkpoint),
    ("GET", rf"{_EXEC}/state", durable.get_state),
    ("GET", rf"{_EXEC}/history", durable.get_history),
    ("POST", rf"{_EXEC}/stop", durable.stop_execution),
    ("GET", _EXEC, durable.get_execution),
    ("GET", rf"/2025-12-01/functions/{_NAME}/durable-executions/?", durable.list_executions),
    ("POST", rf"{_CALLBACK}/succeed", durable.callback_succeed),
    ("POST", rf"{_CALLBACK}/fail", durable.callback_fail),
    ("POST", rf"{_CALLBACK}/heartbeat", durable.callback_heartbeat),
    ("GET", r"/_lamina/health", admin.health),
    ("GET", r"/_lamina/openapi\.json", openapi.openapi_json),
    ("GET", r"/_lamina/cluster", admin.cluster),
    ("GET", r"/_lamina/clock", admin.clock_now),
    ("POST", r"/_lamina/clock/advance", admin.clock_advance),
    ("GET", r"/_lamina/invocations/?", admin.list_invocations),
    ("GET", r"/_lamina/invocations/(?P<wanted>[^/]+)", admin.get_invocation),
    ("GET", rf"/_lamina/logs/{_NAME}", admin.function_logs),
    ("GET", r"/_lamina/code/(?P<key>[0-9a-f]{64})\.zip", admin.code_package),
    ("GET", rf"/_lamina/faults/{_NAME}", admin.get_faults),
    ("PUT", rf"/_lamina/faults/{_NAME}", admin.put_faults),
    ("DELETE", rf"/_lamina/faults/{_NAME}", admin.delete_faults),
    ("GET", r"/_lamina/invocations/(?P<wanted>[^/]+)/logs", admin.invocation_logs),
    ("GET", r"/_lamina/durable-executions/?", durable.admin_list),
    ("GET", r"/_lamina/durable-executions/(?P<arn>arn:.+)", durable.admin_detail),
    ("GET", r"/_lamina/apis/?", apis.list_apis),
    ("GET", r"/_lamina/apis/(?P<api_id>[^/]+)", apis.get_api),
    ("PUT", r"/_lamina/apis/(?P<api_id>[^/]+)", apis.put_api),
    ("DELETE", r"/_lamina/apis/(?P<api_id>[^/]+)", apis.delete_api),
    ("GET", r"/_lamina/schedules/?", schedules.list_schedules),
    ("GET", r"/_lamina/schedules/(?P<name>[^/]+)", schedules.get_schedule),
    ("PUT", r"/_lamina/schedules/(?P<name>[^/]+)", schedules.put_schedule),
    ("DELETE", r"/_lamina/schedules/(?P<name>[^/]+)", schedules.delete_schedule),
    ("GET", r"/_lamina/hot-reload", debug.hot_reload),
    ("GET", r"/_lamina/debug/?", debug.list_debug),
    ("GET", rf"/_lamina/debug/{_NAME}", debug.get_debug),
    ("PUT", rf"/_lamina/debug/{_NAME}", debug.put_debug),
    ("DELETE", rf"/_lamina/debug/{_NAME}", debug.delete_debug),
    ("GET", r"/_lamina/overview", overview.overview),
    ("GET", rf"/_lamina/functions/{_NAME}", overview.function_detail),
    ("GET", r"/_lamina/queues", overview.queues),
    ("GET", r"/_lamina/mappings", overview.mappings),
    ("POST", r"/_lamina/packages", stacks.put_package),
    ("POST", r"/_lamina/packages/missing", stacks.missing_packages),
    ("GET", r"/_lamina/stacks/?", stacks.list_stacks),
    ("PUT", rf"/_lamina/stacks/{_NAME}", stacks.put_stack),
    ("GET", rf"/_lamina/stacks/{_NAME}", stacks.get_stack),
    ("DELETE", rf"/_lamina/stacks/{_NAME}", stacks.delete_stack),
    ("GET", rf"/_lamina/stacks/{_NAME}/events", stacks.stack_events),
    ("GET", r"/_lamina/?", console.index),
    ("GET", r"/_lamina/static/(?P<asset>[A-Za-z0-9_.-]+)", console.static),
    ("GET", r"/metrics", metrics.metrics),
]
_COMPILED = [(method, re.compile(pattern), handler) for method, pattern, handler in ROUTES]
_NOT_CHANGES = frozenset(
    (
        invoke.invoke,
        invoke.invoke_async,
        invoke.invoke_stream,
        admin.clock_advance,
        admin.put_faults,
        admin.delete_faults,
        # a stack operation makes its Lambda changes one call at a time
        stacks.put_package,
        stacks.missing_packages,
        stacks.put_stack,
        stacks.delete_stack,
        durable.checkpoint,
        durable.stop_execution,
        durable.callback_succeed,
        durable.callback_fail,
        durable.callback_heartbeat,
    )
)
_RAW_BODIES = frozenset((invoke.invoke, invoke.invoke_async, invoke.invoke_stream))
_INVOKE_PREFIX = "/2015-03-31/functions/"
_INVOKE_SUFFIX = "/invocations"
_NAME_START, _NAME_END = len(_INVOKE_PREFIX), -len(_INVOKE_SUFFIX)  # the name in an Invoke path


def _route(method: str, path: str) -> tuple[RouteHandler, dict[str, str]]:
    if method == "POST" and _is_invoke(path):
        name = path[len(_INVOKE_PREFIX) : -len(_INVOKE_SUFFIX)]
        if name and "/" not in name:
            return invoke.invoke, {"name": name}
    allowed = False
    for route_method, pattern, handler in _COMPILED:
        match = pattern.fullmatch(path)
        if match is not None:
            if route_method == method:
                return handler, match.groupdict()
            allowed = True
    if allowed:
        raise errors.UnknownOperation(f"Method {method} is not allowed on {path}")
    raise errors.UnknownOperation(f"Unknown operation: {method} {path}")


def lambda_api(ctx: ApiContext) -> Callable[[Request], Awaitable[Response]]:
    """The request handler of the Lambda API listener."""

    async def handle(request: Request) -> Response:
        request_id = ids.request_id()  # the call's one id: an Invoke's invocation takes it
        name = _invoke_target(request)
        try:
            if name is not None:  # the hot path, before anything else
                _verify(ctx, request)
                return await invoke.invoke(ctx, request, request_id, name)
            if cloudwatch_logs.is_logs(request):  # its own protocol and error shape
                return await _logs(ctx, request, request_id)
            return await _dispatch(ctx, request, request_id)
        except errors.LaminaError as error:
            return wire.error_response(error, request_id)
        except Exception:
            log.exception("unexpected error in %s %s", request.method, request.path)
            return wire.error_response(_internal_error(), request_id)

    return handle


def _invoke_target(request: Request) -> str | None:
    """The function name of a plain `POST /2015-03-31/functions/{name}/invocations`, the
    hot path; None for anything else, including a request that names a function URL or an
    HTTP API by its Host (those hosts end in `.localhost`)."""
    path = request.path
    if (
        request.method != "POST"
        or not path.startswith(_INVOKE_PREFIX)  # `_is_invoke`, inlined: every request
        or not path.endswith(_INVOKE_SUFFIX)
    ):
        return None
    if ".localhost" in request.headers.get("host", "").lower():
        return None  # maybe a function URL or an HTTP API: the general dispatch decides
    name = path[_NAME_START:_NAME_END]
    return name if name and "/" not in name else None


def _verify(ctx: ApiContext, request: Request) -> None:
    """With --auth sigv4, who is calling (its aws-chunked body checked chunk by chunk);
    without, an aws-chunked body decoded (api/auth.py)."""
    if ctx.gate is not None:
        ctx.gate.check(request)
    elif auth.chunked(request):
        auth.decode_chunked(request)


def _internal_error() -> errors.ServiceError:
    return errors.ServiceError("Lamina hit an internal error; the engine log has the details.")


async def _logs(ctx: ApiContext, request: Request, request_id: str) -> Response:
    """A CloudWatch Logs call: its own protocol and its own error shape."""
    try:
        if ctx.gate is not None:
            ctx.gate.check(request, "logs")
        return await cloudwatch_logs.handle(ctx, request, request_id)
    except errors.LaminaError as error:
        return cloudwatch_logs.error_response(error, request_id)
    except Exception:
        log.exception("unexpected error in CloudWatch Logs call")
        return cloudwatch_logs.error_response(_internal_error(), request_id)


async def _dispatch(ctx: ApiContext, request: Request, request_id: str) -> Response:
    """Every request but Invoke's hot path and CloudWatch Logs: a function URL, an HTTP
    API, or a Lambda API operation from the route table."""
    url = urls.target(request)
    if url is not None:  # a function URL, not the Lambda API
        return await urls.serve(ctx, request, request_id, *url)
    api = apis.target(request)
    if api is not None:  # an HTTP API (API Gateway), not the Lambda API
        return await apis.serve(ctx, request, request_id, *api)
    _verify(ctx, request)
    if ctx.gate is not None:
        login: Response | None = ctx.gate.console_login(request)
        if login is not None:
            return login
    handler, params = _route(request.method, request.path)
    if request.body and handler not in _RAW_BODIES:
        shapes.check(request.method, request.path, request.body)
    if request.method == "GET" or handler in _NOT_CHANGES:
        return await handler(ctx, request, request_id, **params)
    # One control-plane change at a time, never while the engine reloads what
    # another engine changed (a reload must not replace entries mid-change).
    async with ctx.functions.changes:
        return await handler(ctx, request, request_id, **params)


def _is_invoke(path: str) -> bool:
    return path.startswith(_INVOKE_PREFIX) and path.endswith(_INVOKE_SUFFIX)


def _is_stream_invoke(path: str) -> bool:
    return path.startswith("/2021-11-15/functions/") and "response-streaming" in path


def body_limit(path: str) -> int:
    """The largest body a path may carry; larger ones are refused before they are read."""
    if _is_invoke(path) or _is_stream_invoke(path):
        return limits.SYNC_PAYLOAD
    return limits.CREATE_REQUEST


def too_large(path: str, size: int) -> Response:
    """The answer to a body over `body_limit` (it is never buffered)."""
    if _is_invoke(path) or _is_stream_invoke(path):
        error = wire.too_large_payload(size, "RequestResponse")
    else:
        error = errors.RequestTooLarge(
            f"Request must be smaller than {limits.CREATE_REQUEST} "
            "bytes for the CreateFunction operation"
        )
    return wire.error_response(error, ids.request_id())
