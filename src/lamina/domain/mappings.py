"""Event source mapping settings: which apply to which source, defaults, ranges (spec §12.2).

`MappingSettings` is what CreateEventSourceMapping / UpdateEventSourceMapping carried (None:
not given). `new_mapping` and `updated_mapping` apply the rules AWS applies and raise the
error AWS answers for the first one broken.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, fields
from typing import Any

from lamina.domain import destinations, errors, filters
from lamina.domain.model import EventSourceMapping

_SOURCES = {
    "sqs": re.compile(r"arn:aws[a-zA-Z-]*:sqs:[a-z0-9-]+:\d{12}:[\w.-]+"),
    "kinesis": re.compile(
        r"arn:aws[a-zA-Z-]*:kinesis:[a-z0-9-]+:\d{12}:stream/[\w.-]+"
        r"(/consumer/[\w.-]+:\d+)?"
    ),
    "dynamodb": re.compile(
        r"arn:aws[a-zA-Z-]*:dynamodb:[a-z0-9-]+:\d{12}:table/[\w.-]+"
        r"/stream/[\w:.-]+"
    ),
}
STREAMS = ("kinesis", "dynamodb")
STATES_STABLE = ("Enabled", "Disabled")


@dataclass(frozen=True, slots=True)
class MappingSettings:
    """The fields of a Create/UpdateEventSourceMapping request; None: not given."""

    batch_size: int | None = None
    batching_window: int | None = None
    starting_position: str | None = None
    starting_timestamp: float | None = None
    parallelization_factor: int | None = None
    max_record_age: int | None = None
    max_retry_attempts: int | None = None
    bisect: bool | None = None
    tumbling_window: int | None = None
    on_failure: str | None = None
    report_failures: bool | None = None
    filters: tuple[str, ...] | None = None
    max_concurrency: int | None = None
    topics: tuple[str, ...] | None = None
    bootstrap_servers: tuple[str, ...] | None = None
    consumer_group: str | None = None
    enabled: bool | None = None
    has_destination: bool = False

    def given(self) -> dict[str, Any]:
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "has_destination" and getattr(self, f.name) is not None
        }


NO_RECORDS = "No records processed"  # a mapping's LastProcessingResult before any batch


def source_of(event_source_arn: str | None, settings: MappingSettings) -> str:
    """'sqs', 'kinesis', 'dynamodb' or 'kafka' (self-managed, no ARN)."""
    if event_source_arn is None:
        if settings.bootstrap_servers:
            return "kafka"
        raise errors.InvalidParameterValue("Unrecognized event source.")
    for source, pattern in _SOURCES.items():
        if pattern.fullmatch(event_source_arn):
            return source
    raise errors.InvalidParameterValue(
        "Unrecognized event source, must be kinesis, dynamodb "
        "stream, sqs or a self-managed Kafka cluster"
    )


def _range(value: int | None, field: str, low: int, high: int) -> None:
    if value is not None and not low <= value <= high:
        bound = (
            f"greater than or equal to {low}" if value < low else f"less than or equal to {high}"
        )
        raise errors.ValidationError.field(value, field, f"Member must have value {bound}")


def _check_common(settings: MappingSettings, source: str) -> None:
    _range(settings.batch_size, "batchSize", 1, 10_000)
    _range(settings.batching_window, "maximumBatchingWindowInSeconds", 0, 300)
    _range(settings.parallelization_factor, "parallelizationFactor", 1, 10)
    _range(settings.max_retry_attempts, "maximumRetryAttempts", -1, 10_000)
    _range(settings.tumbling_window, "tumblingWindowInSeconds", 0, 900)
    _range(settings.max_concurrency, "scalingConfig.maximumConcurrency", 2, 1000)
    _range(settings.max_record_age, "maximumRecordAgeInSeconds", -1, 604_800)
    if settings.max_record_age is not None and 0 <= settings.max_record_age < 60:
        raise errors.InvalidParameterValue(
            "MaximumRecordAgeInSeconds must be -1 (infinite) or between 60 and 604800."
        )
    stream_only = (
        "parallelization_factor",
        "max_record_age",
        "max_retry_attempts",
        "bisect",
        "tumbling_window",
        "starting_position",
    )
    if source == "sqs":
        if settings.has_destination:
            raise errors.InvalidParameterValue(
                "Unsupported DestinationConfig parameter for given event source mapping type."
            )
        for name in stream_only:
            if getattr(settings, name) is not None:
                raise errors.InvalidParameterValue(
                    f"Unsupported {_wire_name(name)} parameter for given event source mapping type."
                )
    # Kafka takes the stream error controls (BisectBatchOnFunctionError, the maximum age and
    # retries, OnFailure, ReportBatchItemFailures), not Kinesis and DynamoDB's lanes or windows
    for name in ("parallelization_factor", "tumbling_window") if source == "kafka" else ():
        if getattr(settings, name) is not None:
            raise errors.InvalidParameterValue(
                f"Unsupported {_wire_name(name)} parameter for given event source mapping type."
            )
    if source != "sqs" and settings.max_concurrency is not None:
        raise errors.InvalidParameterValue(
            "Unsupported ScalingConfig parameter for given event source mapping type."
        )
    if settings.on_failure is not None:
        _check_destination(settings.on_failure, source)


def _check_destination(on_failure: str, source: str) -> None:
    """OnFailure: an SQS queue or SNS topic; for Kafka also a `kafka://` topic of the source's
    cluster (`check_kafka_destination`)."""
    kind = "kafka" if destinations.kafka_topic(on_failure) else destinations.kind_of(on_failure)
    if kind == "s3":
        raise errors.InvalidParameterValue(
            "Lamina does not send on-failure records to S3 buckets yet; use an SQS queue or an "
            "SNS topic."
        )
    if kind not in ("sqs", "sns") and not (kind == "kafka" and source == "kafka"):
        raise errors.InvalidParameterValue(
            f"The provided destination config DestinationConfig(onSuccess=null, "
            f"onFailure=OnFailure(destination={on_failure})) is invalid."
        )


def check_kafka_destination(on_failure: str | None, topics: tuple[str, ...]) -> None:
    """Lambda blocks a Kafka on-failure topic that is the source topic (no loop)."""
    topic = destinations.kafka_topic(on_failure or "")
    if topic is not None and topic in topics:
        raise errors.InvalidParameterValue(
            f"The on-failure destination topic {topic} cannot be the event source mapping's "
            "own topic."
        )


def _wire_name(name: str) -> str:
    return {
        "parallelization_factor": "ParallelizationFactor",
        "max_record_age": "MaximumRecordAgeInSeconds",
        "max_retry_attempts": "MaximumRetryAttempts",
        "bisect": "BisectBatchOnFunctionError",
        "tumbling_window": "TumblingWindowInSeconds",
        "starting_position": "StartingPosition",
    }[name]


def _check_batch(batch_size: int, window: int, source: str, fifo: bool) -> None:
    if fifo and window > 0:
        raise errors.InvalidParameterValue("Batching window is not supported for FIFO queues")
    if fifo and batch_size > 10:
        raise errors.InvalidParameterValue("Batch size for FIFO queues must be between 1 and 10.")
    # AWS's reference names Kinesis and DynamoDB too, but AWS accepts (and defaults to)
    # 100 records with no window on streams; only SQS refuses it.
    if source == "sqs" and batch_size > 10 and window == 0:
        raise errors.InvalidParameterValue(
            "Maximum batch window in seconds must be greater than 0 if maximum batch size is "
            "greater than 10"
        )


def user_action(source: str) -> str:
    """StateTransitionReason after a user's change: AWS says it differently per source."""
    return "User action" if source in STREAMS else "USER_INITIATED"


def new_mapping(
    function: str,
    qualifier: str | None,
    event_source_arn: str | None,
    settings: MappingSettings,
    now: float | None = None,
) -> EventSourceMapping:
    """A mapping from a CreateEventSourceMapping request (state `Creating`)."""
    source = source_of(event_source_arn, settings)
    _check_common(settings, source)
    if source in STREAMS or source == "kafka":
        position = settings.starting_position
        if position is None:  # AWS's words, with their period and exception
            raise errors.InvalidParameterValue(
                "1 validation error detected: Value null at 'startingPosition' failed to "
                "satisfy constraint: Member must not be null."
            )
        if position not in ("TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"):
            raise errors.ValidationError.field(
                position,
                "startingPosition",
                "Member must satisfy enum value set: [LATEST, AT_TIMESTAMP, TRIM_HORIZON]",
            )
        if source == "dynamodb" and position == "AT_TIMESTAMP":
            raise errors.InvalidParameterValue(
                f"Unsupported starting position for arn type: {event_source_arn}"
            )
        if position == "AT_TIMESTAMP" and settings.starting_timestamp is None:
            raise errors.InvalidParameterValue(
                "StartingPositionTimestamp is required when StartingPosition is AT_TIMESTAMP"
            )
    if source == "kafka" and (not settings.topics or len(settings.topics) != 1):
        raise errors.InvalidParameterValue(
            "Exactly one topic is required for a Kafka event source."
        )
    check_kafka_destination(settings.on_failure, settings.topics or ())
    batch_size = settings.batch_size or (10 if source == "sqs" else 100)
    window = settings.batching_window if settings.batching_window is not None else 0
    _check_batch(batch_size, window, source, (event_source_arn or "").endswith(".fifo"))
    values = settings.given()
    values.update(batch_size=batch_size, batching_window=window)
    values.setdefault("enabled", True)
    mapping_id = str(uuid.uuid4())
    return EventSourceMapping(
        uuid=mapping_id,
        function=function,
        qualifier=qualifier,
        event_source_arn=event_source_arn,
        source=source,
        state="Creating",
        state_reason=user_action(source),
        last_modified=now if now is not None else time.time(),
        consumer_group=settings.consumer_group or (mapping_id if source == "kafka" else None),
        **{k: v for k, v in values.items() if k != "consumer_group"},
    )


def updated_mapping(
    mapping: EventSourceMapping,
    settings: MappingSettings,
    function: str | None,
    qualifier: str | None,
    now: float | None = None,
) -> EventSourceMapping:
    """The mapping after an UpdateEventSourceMapping request (state `Updating`)."""
    if mapping.state not in STATES_STABLE:
        raise errors.ResourceInUse(
            f"Cannot update the event source mapping because it is in use. {mapping.state}"
        )
    if (
        settings.starting_position is not None
        or settings.topics is not None
        or settings.bootstrap_servers is not None
        or settings.consumer_group is not None
    ):
        raise errors.InvalidParameterValue(
            "StartingPosition, Topics, SelfManagedEventSource and the consumer group cannot be "
            "changed after creation."
        )
    _check_common(settings, mapping.source)
    check_kafka_destination(settings.on_failure, mapping.topics)
    changed = mapping.replace(**settings.given())
    _check_batch(
        changed.batch_size,
        changed.batching_window,
        mapping.source,
        (mapping.event_source_arn or "").endswith(".fifo"),
    )
    if function is not None:
        changed = changed.replace(function=function, qualifier=qualifier)
    state = "Updating"
    if changed.enabled != mapping.enabled:
        state = "Enabling" if changed.enabled else "Disabling"
    return changed.replace(
        state=state,
        state_reason=user_action(mapping.source),
        last_modified=now if now is not None else time.time(),
    )


def check_filters(criteria: Any, source: str) -> tuple[str, ...]:
    if criteria is None:
        return ()
    entries = criteria.get("Filters") if isinstance(criteria, dict) else None
    if not isinstance(entries, list):
        raise errors.InvalidParameterValue(filters.INVALID)
    return filters.check_criteria(entries, source)
