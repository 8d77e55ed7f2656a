"""The events an event source mapping hands a function, in AWS's exact shapes (spec §13–16),
and the on-failure record of a stream batch (spec §14.3). Pure: built from what the
source's API returned (as botocore parses it)."""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
from typing import Any

from lamina.domain.destinations import iso_timestamp


def _epoch(value: Any) -> float:
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    return float(value)


def _sqs_attribute(value: dict[str, Any]) -> dict[str, Any]:
    return {
        "stringValue": value.get("StringValue"),
        "binaryValue": base64.b64encode(value["BinaryValue"]).decode()
        if value.get("BinaryValue") is not None
        else None,
        "stringListValues": value.get("StringListValues", []),
        "binaryListValues": value.get("BinaryListValues", []),
        "dataType": value.get("DataType"),
    }


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One record of an SQS event from a ReceiveMessage message (spec §13.1)."""
    attributes = {k: str(v) for k, v in message.get("Attributes", {}).items()}
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": attributes,
        "messageAttributes": {
            k: {key: val for key, val in _sqs_attribute(v).items() if val is not None}
            for k, v in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody")
        or hashlib.md5(message.get("Body", "").encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def kinesis_record(
    record: dict[str, Any], shard_id: str, stream_arn: str, region: str, role: str
) -> dict[str, Any]:
    """One record of a Kinesis event from a GetRecords record (spec §14.1)."""
    sequence = record["SequenceNumber"]
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": record["PartitionKey"],
            "sequenceNumber": sequence,
            "data": base64.b64encode(record["Data"]).decode(),
            "approximateArrivalTimestamp": _epoch(record["ApproximateArrivalTimestamp"]),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{sequence}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": role,
        "awsRegion": region,
        "eventSourceARN": stream_arn,
    }


def dynamodb_record(record: dict[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """One record of a DynamoDB Streams event from a GetRecords record (spec §15.1)."""
    change = dict(record.get("dynamodb", {}))
    if "ApproximateCreationDateTime" in change:
        change["ApproximateCreationDateTime"] = int(_epoch(change["ApproximateCreationDateTime"]))
    return {
        "eventID": record.get("eventID"),
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventName": record.get("eventName"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion", region),
        "eventSourceARN": stream_arn,
        "dynamodb": change,
    }


def size_of(record: dict[str, Any]) -> int:
    """Bytes a record adds to an event (the 6 MB batch limit counts Lambda's metadata too)."""
    return len(json.dumps(record, separators=(",", ":"))) + 1


def stream_failure_record(
    *,
    source: str,
    request_id: str,
    function_arn: str,
    condition: str,
    invoke_count: int,
    timestamp: float,
    shard_id: str,
    first: dict[str, Any],
    last: dict[str, Any],
    batch_size: int,
    stream_arn: str,
    function_error: bool | None,
    executed_version: str = "$LATEST",
) -> bytes:
    """What a stream mapping sends its on-failure destination for a discarded batch."""
    record: dict[str, Any] = {
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        }
    }
    if function_error is not None:
        context: dict[str, Any] = {"statusCode": 200, "executedVersion": executed_version}
        if function_error:
            context["functionError"] = "Unhandled"
        record["responseContext"] = context
    record["version"] = "1.0"
    record["timestamp"] = iso_timestamp(timestamp)
    if source == "kinesis":
        record["KinesisBatchInfo"] = {
            "shardId": shard_id,
            "startSequenceNumber": first["kinesis"]["sequenceNumber"],
            "endSequenceNumber": last["kinesis"]["sequenceNumber"],
            "approximateArrivalOfFirstRecord": iso_timestamp(
                first["kinesis"]["approximateArrivalTimestamp"]
            ),
            "approximateArrivalOfLastRecord": iso_timestamp(
                last["kinesis"]["approximateArrivalTimestamp"]
            ),
            "batchSize": batch_size,
            "streamArn": stream_arn,
        }
    else:
        created = (
            first["dynamodb"].get("ApproximateCreationDateTime", 0),
            last["dynamodb"].get("ApproximateCreationDateTime", 0),
        )
        record["DDBStreamBatchInfo"] = {
            "shardId": shard_id,
            "startSequenceNumber": first["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": last["dynamodb"]["SequenceNumber"],
            "approximateArrivalOfFirstRecord": iso_timestamp(created[0])[:-5] + "Z",
            "approximateArrivalOfLastRecord": iso_timestamp(created[1])[:-5] + "Z",
            "batchSize": batch_size,
            "streamArn": stream_arn,
        }
    return json.dumps(record).encode()


def identifier(source: str, record: dict[str, Any]) -> str:
    """The id a partial batch response names a record by (spec §12.4)."""
    if source == "sqs":
        return str(record["messageId"])
    if source == "kinesis":
        return str(record["kinesis"]["sequenceNumber"])
    return str(record["dynamodb"]["SequenceNumber"])


def arrival(source: str, record: dict[str, Any]) -> float:
    """When a stream record arrived (for MaximumRecordAgeInSeconds)."""
    if source == "kinesis":
        return float(record["kinesis"]["approximateArrivalTimestamp"])
    return float(record["dynamodb"].get("ApproximateCreationDateTime", 0))
