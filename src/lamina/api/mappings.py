"""Endpoints for event source mappings: decode, call MappingService, encode (spec §12.1)."""

from __future__ import annotations

from typing import Any

from lamina.api import wire
from lamina.api.context import ApiContext
from lamina.domain import arns, errors, mappings
from lamina.domain.model import EventSourceMapping
from lamina.http.server import Request, Response

_STREAM_ONLY = (
    "parallelization_factor",
    "max_record_age",
    "max_retry_attempts",
    "bisect",
    "tumbling_window",
    "starting_position",
)


def configuration(ctx: ApiContext, mapping: EventSourceMapping) -> dict[str, Any]:
    """The EventSourceMappingConfiguration shape (SQS mappings omit the stream fields)."""
    body: dict[str, Any] = {
        "UUID": mapping.uuid,
        "EventSourceMappingArn": ctx.mappings.arn(mapping.uuid),
        "BatchSize": mapping.batch_size,
        "MaximumBatchingWindowInSeconds": mapping.batching_window,
    }
    if mapping.event_source_arn:
        body["EventSourceArn"] = mapping.event_source_arn
    body["FunctionArn"] = ctx.functions.arn(mapping.function, mapping.qualifier)
    body["LastModified"] = mapping.last_modified
    if mapping.source in mappings.STREAMS or mapping.source == "kafka":
        body["StartingPosition"] = mapping.starting_position
        if mapping.starting_timestamp is not None:
            body["StartingPositionTimestamp"] = mapping.starting_timestamp
        # the stream error controls (Kafka's too, since 2025)
        controls: dict[str, Any] = {
            "MaximumRecordAgeInSeconds": mapping.max_record_age,
            "MaximumRetryAttempts": mapping.max_retry_attempts,
            "BisectBatchOnFunctionError": mapping.bisect,
            "DestinationConfig": {
                "OnFailure": {"Destination": mapping.on_failure} if mapping.on_failure else {}
            },
        }
        if mapping.source == "kafka":  # AWS's Kafka mapping shows none of them until set
            unset = {
                "MaximumRecordAgeInSeconds": -1,
                "MaximumRetryAttempts": -1,
                "BisectBatchOnFunctionError": False,
                "DestinationConfig": {"OnFailure": {}},
            }
            controls = {key: value for key, value in controls.items() if value != unset[key]}
        body.update(controls)
    if mapping.source in mappings.STREAMS:
        body.update(
            {
                "ParallelizationFactor": mapping.parallelization_factor,
                "TumblingWindowInSeconds": mapping.tumbling_window,
                "LastProcessingResult": mapping.last_processing_result,
            }
        )
    if mapping.source == "sqs" and mapping.last_processing_result != mappings.NO_RECORDS:
        # AWS shows an SQS mapping without a result until it has one (streams show theirs)
        body["LastProcessingResult"] = mapping.last_processing_result
    body["FunctionResponseTypes"] = ["ReportBatchItemFailures"] if mapping.report_failures else []
    if mapping.filters:
        body["FilterCriteria"] = {"Filters": [{"Pattern": p} for p in mapping.filters]}
    if mapping.max_concurrency is not None:
        body["ScalingConfig"] = {"MaximumConcurrency": mapping.max_concurrency}
    if mapping.source == "kafka":
        body["Topics"] = list(mapping.topics)
        body["SelfManagedEventSource"] = {
            "Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": list(mapping.bootstrap_servers)}
        }
        body["SelfManagedKafkaEventSourceConfig"] = {"ConsumerGroupId": mapping.consumer_group}
    body["State"] = mapping.state
    body["StateTransitionReason"] = mapping.state_reason
    return body


def _typed(document: dict[str, Any], key: str, kind: type) -> Any:
    value = document.get(key)
    if value is not None and (
        not isinstance(value, kind) or (kind is int and isinstance(value, bool))
    ):
        raise errors.ValidationError.field(
            value, key[0].lower() + key[1:], f"Member must be of type {kind.__name__}"
        )
    return value


def settings_of(document: dict[str, Any], source: str | None) -> mappings.MappingSettings:
    """Decode the mapping fields of a create or update request."""
    destination = _typed(document, "DestinationConfig", dict)
    on_failure = ((destination or {}).get("OnFailure") or {}).get("Destination")
    scaling = _typed(document, "ScalingConfig", dict) or {}
    self_managed = _typed(document, "SelfManagedEventSource", dict) or {}
    kafka = _typed(document, "SelfManagedKafkaEventSourceConfig", dict) or {}
    types = _typed(document, "FunctionResponseTypes", list)
    if types is not None and any(t != "ReportBatchItemFailures" for t in types):
        raise errors.ValidationError.field(
            types,
            "functionResponseTypes",
            "Member must satisfy enum value set: [ReportBatchItemFailures]",
        )
    servers = (self_managed.get("Endpoints") or {}).get("KAFKA_BOOTSTRAP_SERVERS")
    timestamp = document.get("StartingPositionTimestamp")
    return mappings.MappingSettings(
        batch_size=_typed(document, "BatchSize", int),
        batching_window=_typed(document, "MaximumBatchingWindowInSeconds", int),
        starting_position=_typed(document, "StartingPosition", str),
        starting_timestamp=float(timestamp) if isinstance(timestamp, (int, float)) else None,
        parallelization_factor=_typed(document, "ParallelizationFactor", int),
        max_record_age=_typed(document, "MaximumRecordAgeInSeconds", int),
        max_retry_attempts=_typed(document, "MaximumRetryAttempts", int),
        bisect=_typed(document, "BisectBatchOnFunctionError", bool),
        tumbling_window=_typed(document, "TumblingWindowInSeconds", int),
        on_failure=on_failure,
        report_failures=None if types is None else bool(types),
        filters=None
        if "FilterCriteria" not in document
        else mappings.check_filters(document["FilterCriteria"], source or "sqs"),
        max_concurrency=scaling.get("MaximumConcurrency"),
        topics=tuple(document["Topics"]) if isinstance(document.get("Topics"), list) else None,
        bootstrap_servers=tuple(servers) if isinstance(servers, list) else None,
        consumer_group=kafka.get("ConsumerGroupId"),
        enabled=_typed(document, "Enabled", bool),
        has_destination=destination is not None
        and bool(destination.get("OnFailure") or destination.get("OnSuccess")),
    )


def _same_account(ctx: ApiContext, request: Request, function: str) -> arns.FunctionRef:
    """A mapping's function, one of the caller's own (named by its key): AWS's words for a
    missing one otherwise (another account's function cannot be a mapping's target)."""
    try:
        return ctx.function_ref(request, function)
    except (errors.ResourceNotFound, errors.AccessDenied):
        raise errors.InvalidParameterValue("Function does not exist") from None


def _own(ctx: ApiContext, request: Request, mapping_id: str) -> EventSourceMapping:
    """A mapping of the caller's account (another account's is not found)."""
    mapping = ctx.mappings.get(mapping_id)
    if not _owned(ctx, mapping, ctx.caller_account(request)):
        raise errors.ResourceNotFound("The resource you requested does not exist.")
    return mapping


def _owned(ctx: ApiContext, mapping: EventSourceMapping, account: str) -> bool:
    """The mapping belongs to `account`: the account of its function's key."""
    return (arns.key_owner(mapping.function) or ctx.account) == account


async def create_mapping(ctx: ApiContext, request: Request, request_id: str) -> Response:
    document = wire.json_body(request.body)
    function = _typed(document, "FunctionName", str)
    if function is None:
        raise errors.ValidationError.field(None, "functionName", "Member must not be null")
    arn = _typed(document, "EventSourceArn", str)
    source = mappings.source_of(
        arn, settings_of({k: v for k, v in document.items() if k != "FilterCriteria"}, None)
    )
    tags = document.get("Tags")
    if tags is not None and (
        not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values())
    ):
        raise errors.ValidationError.field(tags, "tags", "Member must be a map of strings")
    ref = _same_account(ctx, request, function)
    mapping = await ctx.mappings.create(ref, arn, settings_of(document, source), tags)
    return wire.json_response(202, configuration(ctx, mapping), request_id)


async def get_mapping(
    ctx: ApiContext, request: Request, request_id: str, mapping_id: str
) -> Response:
    return wire.json_response(200, configuration(ctx, _own(ctx, request, mapping_id)), request_id)


async def update_mapping(
    ctx: ApiContext, request: Request, request_id: str, mapping_id: str
) -> Response:
    current = _own(ctx, request, mapping_id)
    document = wire.json_body(request.body)
    function = _typed(document, "FunctionName", str)
    ref = _same_account(ctx, request, function) if function is not None else None
    mapping = await ctx.mappings.update(mapping_id, settings_of(document, current.source), ref)
    return wire.json_response(202, configuration(ctx, mapping), request_id)


async def delete_mapping(
    ctx: ApiContext, request: Request, request_id: str, mapping_id: str
) -> Response:
    _own(ctx, request, mapping_id)
    mapping = await ctx.mappings.delete(mapping_id)
    return wire.json_response(202, configuration(ctx, mapping), request_id)


async def list_mappings(ctx: ApiContext, request: Request, request_id: str) -> Response:
    params = request.query_params()
    function = params.get("FunctionName")
    key = _same_account(ctx, request, function).name if function else None
    account = ctx.caller_account(request)
    found = [
        m for m in ctx.mappings.list(params.get("EventSourceArn"), key) if _owned(ctx, m, account)
    ]
    page, marker = wire.paginate(found, params)
    body: dict[str, Any] = {"EventSourceMappings": [configuration(ctx, m) for m in page]}
    if marker:
        body["NextMarker"] = marker
    return wire.json_response(200, body, request_id)
