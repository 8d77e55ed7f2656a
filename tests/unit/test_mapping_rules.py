"""Event source mapping settings (domain/mappings.py) and event shapes (domain/events.py)."""

from __future__ import annotations

import base64
import datetime
import json

import pytest

from lamina.domain import errors, events
from lamina.domain.mappings import MappingSettings, new_mapping, updated_mapping

QUEUE = "arn:aws:sqs:us-east-1:123456789012:orders"
FIFO = "arn:aws:sqs:us-east-1:123456789012:orders.fifo"
STREAM = "arn:aws:kinesis:us-east-1:123456789012:stream/clicks"
TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-01-01T00:00:00.000"


def refused(arn, message, **settings):
    with pytest.raises(errors.InvalidParameterValue) as error:
        new_mapping("f", None, arn, MappingSettings(**settings))
    assert message in str(error.value)


def test_defaults_per_source():
    sqs = new_mapping("f", None, QUEUE, MappingSettings())
    assert (sqs.source, sqs.batch_size, sqs.batching_window, sqs.state) == (
        "sqs",
        10,
        0,
        "Creating",
    )
    stream = new_mapping("f", None, STREAM, MappingSettings(starting_position="LATEST"))
    assert (stream.source, stream.batch_size, stream.batching_window) == ("kinesis", 100, 0)
    assert (sqs.state_reason, stream.state_reason) == ("USER_INITIATED", "User action")
    assert (stream.max_retry_attempts, stream.max_record_age) == (-1, -1)
    table = new_mapping("f", None, TABLE, MappingSettings(starting_position="TRIM_HORIZON"))
    assert table.source == "dynamodb"
    kafka = new_mapping(
        "f",
        None,
        None,
        MappingSettings(starting_position="LATEST", topics=("t",), bootstrap_servers=("h:9092",)),
    )
    assert kafka.source == "kafka" and kafka.consumer_group == kafka.uuid


KAFKA = {"starting_position": "LATEST", "topics": ("t",), "bootstrap_servers": ("h:9092",)}


def test_kafka_takes_the_stream_error_controls_but_not_lanes_or_windows():
    kafka = new_mapping(
        "f",
        None,
        None,
        MappingSettings(
            bisect=True,
            max_retry_attempts=3,
            max_record_age=60,
            report_failures=True,
            on_failure=QUEUE,
            has_destination=True,
            **KAFKA,
        ),
    )
    assert (kafka.bisect, kafka.max_retry_attempts, kafka.max_record_age) == (True, 3, 60)
    assert kafka.report_failures and kafka.on_failure == QUEUE
    refused(None, "Unsupported ParallelizationFactor parameter", parallelization_factor=2, **KAFKA)
    refused(None, "Unsupported TumblingWindowInSeconds parameter", tumbling_window=60, **KAFKA)
    to_topic = new_mapping("f", None, None, MappingSettings(on_failure="kafka://dlt", **KAFKA))
    assert to_topic.on_failure == "kafka://dlt"
    refused(None, "cannot be the event source mapping's own topic", on_failure="kafka://t", **KAFKA)
    refused(STREAM, "is invalid", starting_position="LATEST", on_failure="kafka://dlt")
    refused(None, "is invalid", on_failure="kafka://.hidden", **KAFKA)
    with pytest.raises(errors.InvalidParameterValue, match="own topic"):
        updated_mapping(
            kafka.replace(state="Enabled"), MappingSettings(on_failure="kafka://t"), None, None
        )
    updated = updated_mapping(
        kafka.replace(state="Enabled"), MappingSettings(bisect=False), None, None
    )
    assert updated.bisect is False
    with pytest.raises(errors.InvalidParameterValue, match="Unsupported ParallelizationFactor"):
        updated_mapping(
            kafka.replace(state="Enabled"), MappingSettings(parallelization_factor=2), None, None
        )


def test_settings_aws_refuses():
    refused(
        QUEUE, "Unsupported DestinationConfig parameter", has_destination=True, on_failure=QUEUE
    )
    refused(QUEUE, "Unsupported StartingPosition parameter", starting_position="LATEST")
    refused(QUEUE, "Unsupported MaximumRetryAttempts parameter", max_retry_attempts=1)
    refused(QUEUE, "Maximum batch window in seconds must be greater than 0", batch_size=11)
    refused(FIFO, "Batch size for FIFO queues must be between 1 and 10", batch_size=20)
    refused(FIFO, "Batching window is not supported for FIFO queues", batching_window=1)
    refused(
        STREAM,
        "Value null at 'startingPosition' failed to satisfy constraint: Member must not be null.",
    )
    refused(
        TABLE,
        f"Unsupported starting position for arn type: {TABLE}",
        starting_position="AT_TIMESTAMP",
        starting_timestamp=1.0,
    )
    with pytest.raises(
        errors.ValidationError,
        match=r"Value 'EARLIEST' at 'startingPosition' "
        r"failed to satisfy constraint: Member must satisfy enum value set: "
        r"\[LATEST, AT_TIMESTAMP, TRIM_HORIZON\]",
    ):
        new_mapping("f", None, STREAM, MappingSettings(starting_position="EARLIEST"))
    refused(
        STREAM,
        "MaximumRecordAgeInSeconds must be -1",
        starting_position="LATEST",
        max_record_age=30,
    )
    refused(
        STREAM, "Unsupported ScalingConfig parameter", starting_position="LATEST", max_concurrency=5
    )
    refused(STREAM, "S3 buckets", starting_position="LATEST", on_failure="arn:aws:s3:::failures")
    refused("arn:aws:s3:::bucket", "Unrecognized event source")
    refused(
        None,
        "Exactly one topic",
        starting_position="LATEST",
        topics=("a", "b"),
        bootstrap_servers=("h:9092",),
    )
    with pytest.raises(errors.ValidationError):
        new_mapping(
            "f",
            None,
            STREAM,
            MappingSettings(starting_position="LATEST", parallelization_factor=11),
        )


def test_a_stream_takes_more_than_ten_records_without_a_window():
    assert (
        new_mapping(
            "f", None, STREAM, MappingSettings(starting_position="LATEST", batch_size=500)
        ).batch_size
        == 500
    )


def test_updates_say_what_they_do():
    mapping = new_mapping("f", None, QUEUE, MappingSettings()).replace(state="Enabled")
    assert updated_mapping(mapping, MappingSettings(batch_size=5), None, None).state == "Updating"
    disabling = updated_mapping(mapping, MappingSettings(enabled=False), None, None)
    assert (disabling.state, disabling.enabled) == ("Disabling", False)
    enabling = updated_mapping(
        disabling.replace(state="Disabled"), MappingSettings(enabled=True), None, None
    )
    assert enabling.state == "Enabling"
    with pytest.raises(errors.ResourceInUse):
        updated_mapping(disabling, MappingSettings(batch_size=5), None, None)
    stream = new_mapping("f", None, STREAM, MappingSettings(starting_position="LATEST")).replace(
        state="Enabled"
    )
    with pytest.raises(errors.InvalidParameterValue):
        updated_mapping(stream, MappingSettings(starting_position="TRIM_HORIZON"), None, None)


def test_sqs_record_shape():
    message = {
        "MessageId": "m1",
        "ReceiptHandle": "r1",
        "Body": "hi",
        "MD5OfBody": "x",
        "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1"},
        "MessageAttributes": {"k": {"StringValue": "v", "DataType": "String"}},
    }
    record = events.sqs_record(message, QUEUE, "us-east-1")
    assert list(record) == [
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    ]
    assert record["messageAttributes"] == {
        "k": {
            "stringValue": "v",
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        }
    }
    assert events.identifier("sqs", record) == "m1"


def test_kinesis_record_and_its_failure_record():
    arrived = datetime.datetime(2026, 1, 15, 7, 4, 0, 500000, tzinfo=datetime.UTC)
    raw = {
        "SequenceNumber": "495",
        "PartitionKey": "k",
        "Data": b'{"a": 1}',
        "ApproximateArrivalTimestamp": arrived,
    }
    record = events.kinesis_record(raw, "shardId-000000000000", STREAM, "us-east-1", "role")
    assert record["kinesis"] == {
        "kinesisSchemaVersion": "1.0",
        "partitionKey": "k",
        "sequenceNumber": "495",
        "data": base64.b64encode(b'{"a": 1}').decode(),
        "approximateArrivalTimestamp": arrived.timestamp(),
    }
    assert record["eventID"] == "shardId-000000000000:495"
    assert events.arrival("kinesis", record) == arrived.timestamp()
    failure = json.loads(
        events.stream_failure_record(
            source="kinesis",
            request_id="req",
            function_arn="arn:f",
            condition="RecordAgeExceeded",
            invoke_count=0,
            timestamp=arrived.timestamp(),
            shard_id="shardId-000000000000",
            first=record,
            last=record,
            batch_size=1,
            stream_arn=STREAM,
            function_error=None,
        )
    )
    assert list(failure) == ["requestContext", "version", "timestamp", "KinesisBatchInfo"]
    assert (
        failure["KinesisBatchInfo"]["approximateArrivalOfFirstRecord"] == "2026-01-15T07:04:00.500Z"
    )
