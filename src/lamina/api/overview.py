"""What the engine holds now, under /_lamina/: functions (configuration, versions, aliases,
concurrency, environments), async queues and event source mappings.

The console polls `GET /_lamina/overview`; `lamina status` prints it.
"""

from __future__ import annotations

from typing import Any

from lamina.api import auth, urls, wire
from lamina.api.context import ApiContext
from lamina.domain import arns, errors
from lamina.domain.observed import EnvironmentView, MappingStatus
from lamina.http.server import Request, Response
from lamina.service.overview import FunctionOverview, OverviewService


def _service(ctx: ApiContext) -> OverviewService:
    if ctx.overview is None:
        raise errors.ServiceError("This engine has no overview service.")
    return ctx.overview


async def overview(ctx: ApiContext, request: Request, request_id: str) -> Response:
    service = _service(ctx)
    owner = ctx.functions.owner
    functions = [f for f in await service.all() if auth.sees(owner, request, f.entry.latest.name)]
    mappings = [m for m in await service.mapping_status() if auth.sees(owner, request, m.function)]
    limiter = service.limiter
    return wire.json_response(
        200,
        {
            "Now": ctx.clock.now(),
            "TimeScale": ctx.clock.scale,
            "Account": {
                "ConcurrencyLimit": limiter.account_limit,
                "UnreservedConcurrency": limiter.unreserved_limit,
                "ConcurrentExecutions": sum(limiter.in_flight.values()),
            },
            "Functions": [_function(ctx, item, detail=False) for item in functions],
            "Mappings": [_mapping(m) for m in mappings],
            "Sandbox": ctx.sandbox or {"Mode": "none", "Warning": None},
        },
        request_id,
    )


async def function_detail(
    ctx: ApiContext, request: Request, request_id: str, name: str
) -> Response:
    service = _service(ctx)
    name = auth.function_name(ctx, request, name)  # another account's: not found
    item = await service.one(name)
    body = _function(ctx, item, detail=True)
    body["Mappings"] = [_mapping(m) for m in await service.mapping_status(name)]
    body["FunctionUrls"] = (
        [urls.describe(ctx, request, c) for c in ctx.urls.list(name)]
        if ctx.urls is not None
        else []
    )
    return wire.json_response(200, body, request_id)


async def queues(ctx: ApiContext, request: Request, request_id: str) -> Response:
    found = await _service(ctx).queues()
    owner = ctx.functions.owner
    return wire.json_response(
        200,
        {
            "Queues": [
                {
                    "FunctionName": arns.plain_name(name),
                    "FunctionArn": ctx.functions.arn(name),
                    "Depth": depth,
                    "OldestEventAgeSeconds": round(age, 3),
                }
                for name, (depth, age) in sorted(found.items())
                if auth.sees(owner, request, name)
            ]
        },
        request_id,
    )


async def mappings(ctx: ApiContext, request: Request, request_id: str) -> Response:
    function = request.query_params().get("function") or None
    if function is not None:
        function = auth.function_name(ctx, request, function)
    found = await _service(ctx).mapping_status(function)
    owner = ctx.functions.owner
    return wire.json_response(
        200,
        {"Mappings": [_mapping(m) for m in found if auth.sees(owner, request, m.function)]},
        request_id,
    )


def _function(ctx: ApiContext, item: FunctionOverview, detail: bool) -> dict[str, Any]:
    latest = item.entry.latest
    body: dict[str, Any] = {
        "FunctionName": latest.plain_name,
        "FunctionArn": ctx.functions.arn(latest.name),
        "Runtime": latest.runtime,
        "Handler": latest.handler,
        "State": latest.state,
        "LastModified": latest.last_modified,
        "MemorySize": latest.memory_size,
        "Timeout": latest.timeout,
        "Versions": sorted(item.entry.versions, key=int),
        "Aliases": [
            wire.alias_configuration(a, ctx.functions.arn(latest.name, a.name))
            for _, a in sorted(item.entry.aliases.items())
        ],
        "Concurrency": {
            "Reserved": item.reserved,
            "InFlight": item.in_flight,
            "Provisioned": [_provisioned(ctx, p) for p in item.provisioned],
        },
        "Environments": [_environment(env) for env in item.environments],
        "AsyncQueue": {
            "Depth": item.queue[0] if item.queue else 0,
            "OldestEventAgeSeconds": round(item.queue[1], 3) if item.queue else None,
        },
        "DeadLetterTarget": latest.dead_letter_target,
        "EventInvokeConfigs": [_event_config(c) for c in item.event_configs],
    }
    if detail:
        arn = ctx.functions.arn(latest.name)
        body["Configuration"] = wire.function_configuration(latest, arn)
        body["VersionConfigurations"] = [
            wire.function_configuration(config, ctx.functions.arn(latest.name, version))
            for version, config in sorted(item.entry.versions.items(), key=lambda v: int(v[0]))
        ]
        body["Tags"] = item.entry.tags
    return body


def _provisioned(ctx: ApiContext, config: Any) -> dict[str, Any]:
    return {
        "Qualifier": config.qualifier,
        "Requested": config.requested,
        "Available": ctx.provisioned.available(config),
        "Status": config.status,
    }


def _environment(env: EnvironmentView) -> dict[str, Any]:
    return {
        "Id": env.id,
        "Version": env.version,
        "State": env.state,
        "Provisioned": env.provisioned,
        "IdleSeconds": env.idle_s,
        "LogStream": env.log_stream,
        "Pid": env.pid,
        "InFlight": list(env.in_flight),
        "MaxConcurrency": env.max_concurrency,
    }


def _event_config(config: Any) -> dict[str, Any]:
    return {
        "Qualifier": config.qualifier,
        "MaximumRetryAttempts": config.maximum_retry_attempts,
        "MaximumEventAgeInSeconds": config.maximum_event_age,
        "OnSuccess": config.on_success,
        "OnFailure": config.on_failure,
    }


def _mapping(status: MappingStatus) -> dict[str, Any]:
    return {
        "UUID": status.uuid,
        "FunctionName": arns.plain_name(status.function),
        "EventSourceArn": status.event_source_arn,
        "State": status.state,
        "StateTransitionReason": status.state_reason,
        "BatchSize": status.batch_size,
        "LastProcessingResult": status.last_processing_result,
        "LastModified": status.last_modified,
        "Backlog": status.backlog,
        "LagSeconds": status.lag_s,
        "Checkpoint": status.checkpoint,
        "LastBatchSize": status.last_batch_size,
    }
