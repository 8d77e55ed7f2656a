"""Destination and dead-letter records in AWS's exact shapes (spec §7.3, §7.4).

Pure: builds the bytes and attributes that go to an SQS queue, SNS topic, Lambda function or
EventBridge bus; sending them is `service.destinations`' job.
Source: https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from lamina.domain import errors

_KINDS = {
    "sqs": re.compile(r"arn:aws[a-zA-Z-]*:sqs:[a-z0-9-]+:\d{12}:[\w.-]+"),
    "sns": re.compile(r"arn:aws[a-zA-Z-]*:sns:[a-z0-9-]+:\d{12}:[\w.-]+"),
    "lambda": re.compile(r"arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:\d{12}:function:[\w-]+(:[\w$-]+)?"),
    "events": re.compile(r"arn:aws[a-zA-Z-]*:events:[a-z0-9-]+:\d{12}:event-bus/[\w.\-/]+"),
    "s3": re.compile(r"arn:aws[a-zA-Z-]*:s3:::[a-z0-9.\-]+"),
}


_KAFKA_TOPIC = re.compile(r"kafka://([^.][a-zA-Z0-9\-_.]{0,248})")


def kafka_topic(destination: str) -> str | None:
    """The topic a Kafka mapping's `kafka://<topic>` on-failure destination names, if any
    (https://docs.aws.amazon.com/lambda/latest/dg/kafka-on-failure-destination.html)."""
    match = _KAFKA_TOPIC.fullmatch(destination)
    return match[1] if match else None


def kind_of(arn: str) -> str | None:
    """'sqs', 'sns', 'lambda', 'events' or 's3' for a destination ARN; None if none fits."""
    for kind, pattern in _KINDS.items():
        if pattern.fullmatch(arn):
            return kind
    return None


# A destination's pattern, as AWS's ValidationException quotes it (recorded 2025-11-25)
DESTINATION_PATTERN = (
    r"$|kafka://([^.]([a-zA-Z0-9\-_.]{0,248}))|arn:(aws[a-zA-Z0-9-]*):([a-zA-Z0-9\-])+:"
    r"((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1})?:(\d{12})?:(.*)"
)
_DESTINATION_RE = re.compile(DESTINATION_PATTERN)


def check_event_destinations(on_success: str | None, on_failure: str | None) -> dict[str, str]:
    """An EventInvokeConfig's destinations, as AWS checks them: each against the model's
    pattern, then its service. Returns {key: kind} for the ones given."""
    kinds = {}
    for field, arn in (("onSuccess", on_success), ("onFailure", on_failure)):
        if arn is not None and not _DESTINATION_RE.fullmatch(arn):
            raise errors.ValidationError.field(
                arn,
                f"destinationConfig.{field}.destination",
                "Member must satisfy regular expression pattern: " + DESTINATION_PATTERN,
            )
    for key, arn in (("on_success", on_success), ("on_failure", on_failure)):
        if arn is None:
            continue
        kind = kind_of(arn)
        if kind is None or (kind == "s3" and key == "on_success"):
            shown_success = f"OnSuccess(destination={on_success})" if on_success else "null"
            shown_failure = f"OnFailure(destination={on_failure})" if on_failure else "null"
            raise errors.InvalidParameterValue(
                f"The provided destination config DestinationConfig(onSuccess={shown_success}, "
                f"onFailure={shown_failure}) is invalid."
            )
        kinds[key] = kind
    return kinds


def check_destination(arn: str, on_failure: bool) -> str:
    kind = kind_of(arn)
    if kind is None or (kind == "s3" and not on_failure):
        raise errors.InvalidParameterValue(f"The destination ARN {arn} is invalid.")
    return kind


def iso_timestamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + ".%03dZ" % (epoch % 1 * 1000)


def embed(payload: bytes) -> Any:
    """A payload inside a record: parsed when it is JSON, else as a string."""
    try:
        return json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return payload.decode("utf-8", "replace")


def async_record(
    *,
    condition: str,
    request_id: str,
    function_arn: str,
    invoke_count: int,
    request_payload: bytes,
    timestamp: float,
    executed_version: str | None = None,
    function_error: bool = False,
    response_payload: bytes | None = None,
) -> bytes:
    """The invocation record sent to an OnSuccess / OnFailure destination."""
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": iso_timestamp(timestamp),
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "requestPayload": embed(request_payload),
    }
    if response_payload is not None:
        context: dict[str, Any] = {"statusCode": 200, "executedVersion": executed_version}
        if function_error:
            context["functionError"] = "Unhandled"
        record["responseContext"] = context
        record["responsePayload"] = embed(response_payload)
    return json.dumps(record).encode()


def source_account(record: bytes) -> str | None:
    """The account of the function an `async_record` is from (None: not such a record)."""
    try:
        arn = json.loads(record)["requestContext"]["functionArn"]
    except (ValueError, KeyError, TypeError):
        return None
    parts = arn.split(":") if isinstance(arn, str) else []
    return parts[4] if len(parts) > 4 else None


def dlq_attributes(request_id: str, status_code: int, error_message: str) -> dict[str, Any]:
    """The SQS message attributes of a dead-lettered event (SNS uses the same names)."""
    return {
        "RequestID": {"DataType": "String", "StringValue": request_id},
        "ErrorCode": {"DataType": "Number", "StringValue": str(status_code)},
        "ErrorMessage": {
            "DataType": "String",
            "StringValue": (error_message or "")[:1024] or "(no message)",
        },
    }


def error_message_of(payload: bytes | None) -> str:
    """The `errorMessage` of an error document, for the DLQ's ErrorMessage attribute."""
    if not payload:
        return ""
    document = embed(payload)
    if isinstance(document, dict) and isinstance(document.get("errorMessage"), str):
        return str(document["errorMessage"])
    return payload.decode("utf-8", "replace")


def eventbridge_entry(
    record: bytes, bus_arn: str, function_arn: str, success: bool
) -> dict[str, Any]:
    outcome = "Success" if success else "Failure"
    return {
        "Source": "lambda",
        "DetailType": f"Lambda Function Invocation Result - {outcome}",
        "Detail": record.decode(),
        "EventBusName": bus_arn,
        "Resources": [bus_arn, function_arn],
    }
