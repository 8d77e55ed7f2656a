"""Event source mappings against moto's server mode: SQS, Kinesis, DynamoDB Streams."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.acceptance.conftest import module_client, module_engine
from tests.conftest import FUNCTIONS, client, create_function, start_unsandboxed, zip_dir

PACKAGE = zip_dir(FUNCTIONS / "esm")


engine = module_engine(
    "esm", "--sandbox", "none", "--time-scale", "10", moto_env="AWS_ENDPOINT_URL"
)
elam = module_client()


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    return tmp_path


def queue_counts(sqs, url: str) -> tuple[int, int]:
    """(visible, in flight) messages of a queue."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes["ApproximateNumberOfMessages"]),
        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
    )


def batches(runs_dir: Path) -> list[dict]:
    path = runs_dir / "batches"
    return (
        [json.loads(line)["event"] for line in path.read_text().splitlines()]
        if path.exists()
        else []
    )


def wait_for(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def make(elam, name: str, handler: str, runs_dir: Path, timeout: int = 10, **extra) -> None:
    create_function(
        elam,
        name,
        PACKAGE,
        handler=f"index.{handler}",
        Timeout=timeout,
        Environment={"Variables": {"RUNS_DIR": str(runs_dir)}},
        **extra,
    )


def queue(sqs, name: str, **attributes) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=name, Attributes={k: str(v) for k, v in attributes.items()})[
        "QueueUrl"
    ]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def wait_enabled(elam, mapping_id: str) -> dict:
    wait_for(
        lambda: elam.get_event_source_mapping(UUID=mapping_id)["State"] == "Enabled", 5, "Enabled"
    )
    return elam.get_event_source_mapping(UUID=mapping_id)


def test_sqs_messages_processed_once_in_batches_of_ten(engine, elam, moto, runs_dir, fname):
    sqs = moto.client("sqs")
    url, arn = queue(sqs, fname)
    make(elam, fname, "sqs", runs_dir)
    created = elam.create_event_source_mapping(FunctionName=fname, EventSourceArn=arn, BatchSize=10)
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert created["State"] == "Creating"
    assert "StartingPosition" not in created and "ParallelizationFactor" not in created
    wait_enabled(elam, created["UUID"])
    for n in range(25):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": n}))
    wait_for(lambda: sum(len(b["Records"]) for b in batches(runs_dir)) >= 25, 30, "25 records")
    # every message deleted and none in flight: no batch can still come (a message handed
    # out twice would be in flight until its batch ran)
    wait_for(lambda: queue_counts(sqs, url) == (0, 0), 30, "the queue emptied")
    seen = [json.loads(r["body"])["n"] for b in batches(runs_dir) for r in b["Records"]]
    assert sorted(seen) == list(range(25)), "each message exactly once"
    assert all(len(b["Records"]) <= 10 for b in batches(runs_dir))
    record = batches(runs_dir)[0]["Records"][0]
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"] == arn
    assert set(record) >= {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "awsRegion",
    }
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
    assert elam.get_event_source_mapping(UUID=created["UUID"])["LastProcessingResult"] == "OK"
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": 25}))  # a poll measures it
    wait_for(
        lambda: engine.get(f"/_lamina/mappings?function={fname}")["Mappings"][0]["Backlog"] == 0,
        15,
        "the backlog gauge",
    )
    with urllib.request.urlopen(engine.endpoint + "/metrics", timeout=10) as response:
        exposition = response.read().decode()
    batch_sizes = [
        line
        for line in exposition.splitlines()
        if line.startswith("lamina_mapping_batch_size_sum") and f'function="{fname}"' in line
    ]
    assert len(batch_sizes) == 1 and float(batch_sizes[0].split()[-1]) >= 25
    assert f'lamina_mapping_backlog{{function="{fname}"' in exposition


def test_report_batch_item_failures_redelivers_only_the_failed_message(elam, moto, runs_dir, fname):
    sqs = moto.client("sqs")
    url, arn = queue(sqs, fname, VisibilityTimeout=2)
    make(elam, fname, "sqs", runs_dir, timeout=2)
    mapping = elam.create_event_source_mapping(
        FunctionName=fname,
        EventSourceArn=arn,
        BatchSize=5,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    wait_enabled(elam, mapping["UUID"])
    for body in ("a", "b", "fail-once", "c"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    wait_for(lambda: sum(len(b["Records"]) for b in batches(runs_dir)) >= 5, 30, "redelivery")
    wait_for(lambda: queue_counts(sqs, url) == (0, 0), 30, "the queue emptied")
    bodies = [r["body"] for b in batches(runs_dir) for r in b["Records"]]
    assert sorted(bodies) == ["a", "b", "c", "fail-once", "fail-once"]
    again = [r for b in batches(runs_dir) for r in b["Records"] if r["body"] == "fail-once"]
    assert [r["attributes"]["ApproximateReceiveCount"] for r in again] == ["1", "2"]


def test_queue_visibility_shorter_than_the_function_timeout_is_refused(elam, moto, runs_dir, fname):
    _, arn = queue(moto.client("sqs"), fname, VisibilityTimeout=5)
    make(elam, fname, "sqs", runs_dir, timeout=6)
    with pytest.raises(ClientError) as refused:
        elam.create_event_source_mapping(FunctionName=fname, EventSourceArn=arn)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert refused.value.response["Error"]["Message"] == (
        "Queue visibility timeout: 5 seconds is less than Function timeout: 6 seconds"
    )
    assert elam.list_event_source_mappings(FunctionName=fname)["EventSourceMappings"] == []


def test_filtered_messages_are_deleted_unprocessed(elam, moto, runs_dir, fname):
    sqs = moto.client("sqs")
    url, arn = queue(sqs, fname)
    make(elam, fname, "sqs", runs_dir)
    mapping = elam.create_event_source_mapping(
        FunctionName=fname,
        EventSourceArn=arn,
        FilterCriteria={"Filters": [{"Pattern": json.dumps({"body": {"kind": ["order"]}})}]},
    )
    wait_enabled(elam, mapping["UUID"])
    for body in (
        {"kind": "order", "id": 1},
        {"kind": "noise"},
        "plain text",
        {"kind": "order", "id": 2},
    ):
        sqs.send_message(
            QueueUrl=url, MessageBody=json.dumps(body) if isinstance(body, dict) else body
        )
    wait_for(lambda: sum(len(b["Records"]) for b in batches(runs_dir)) >= 2, 30, "orders")
    # the messages the filter leaves out are deleted too: all handled once the queue is empty
    wait_for(lambda: queue_counts(sqs, url) == (0, 0), 30, "the queue emptied")
    ids = sorted(json.loads(r["body"])["id"] for b in batches(runs_dir) for r in b["Records"])
    assert ids == [1, 2]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"


def test_disabling_stops_polling_and_enabling_resumes(elam, moto, runs_dir, fname):
    sqs = moto.client("sqs")
    url, arn = queue(sqs, fname)
    make(elam, fname, "sqs", runs_dir)
    mapping = elam.create_event_source_mapping(
        FunctionName=fname, EventSourceArn=arn, Enabled=False
    )
    wait_for(
        lambda: elam.get_event_source_mapping(UUID=mapping["UUID"])["State"] == "Disabled",
        5,
        "Disabled",
    )
    sqs.send_message(QueueUrl=url, MessageBody="waiting")
    time.sleep(2)
    assert batches(runs_dir) == []
    updated = elam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)
    assert updated["State"] == "Enabling"
    wait_for(lambda: batches(runs_dir), 30, "the message after enabling")
    disabling = elam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    assert disabling["State"] == "Disabling"
    wait_for(
        lambda: elam.get_event_source_mapping(UUID=mapping["UUID"])["State"] == "Disabled",
        5,
        "Disabled again",
    )
    sqs.send_message(QueueUrl=url, MessageBody="not while disabled")
    time.sleep(2)
    assert len(batches(runs_dir)) == 1
    deleted = elam.delete_event_source_mapping(UUID=mapping["UUID"])
    assert deleted["State"] == "Deleting"
    wait_for(
        lambda: (
            not [
                m
                for m in elam.list_event_source_mappings(FunctionName=fname)["EventSourceMappings"]
            ]
        ),
        5,
        "deletion",
    )


def test_mapping_api_errors(elam, moto, runs_dir, fname):
    sqs = moto.client("sqs")
    _, arn = queue(sqs, fname)
    make(elam, fname, "sqs", runs_dir)
    cases = [
        (
            {"EventSourceArn": arn, "DestinationConfig": {"OnFailure": {"Destination": arn}}},
            "Unsupported DestinationConfig parameter",
        ),
        (
            {"EventSourceArn": arn, "BatchSize": 11},
            "Maximum batch window in seconds must be greater than 0",
        ),
        (
            {"EventSourceArn": arn, "FilterCriteria": {"Filters": [{"Pattern": "{not json"}]}},
            "Invalid filter pattern definition.",
        ),
        ({}, "Unrecognized event source."),
    ]
    for arguments, message in cases:
        with pytest.raises(ClientError) as error:
            elam.create_event_source_mapping(FunctionName=fname, **arguments)
        assert error.value.response["Error"]["Code"] == "InvalidParameterValueException"
        assert message in error.value.response["Error"]["Message"]
    first = elam.create_event_source_mapping(FunctionName=fname, EventSourceArn=arn)
    with pytest.raises(ClientError) as error:
        elam.create_event_source_mapping(FunctionName=fname, EventSourceArn=arn)
    assert error.value.response["Error"]["Code"] == "ResourceConflictException"
    assert first["UUID"] in error.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as error:
        elam.get_event_source_mapping(UUID="00000000-0000-0000-0000-000000000000")
    assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def kinesis_stream(moto, name: str) -> tuple[object, str]:
    kinesis = moto.client("kinesis")
    kinesis.create_stream(StreamName=name, ShardCount=1)
    arn = kinesis.describe_stream(StreamName=name)["StreamDescription"]["StreamARN"]
    return kinesis, arn


def test_kinesis_poison_record_with_bisect_goes_on_failure_and_the_shard_moves_on(
    engine, elam, moto, runs_dir, fname
):
    kinesis, stream_arn = kinesis_stream(moto, fname)
    sqs = moto.client("sqs")
    url, queue_arn = queue(sqs, f"{fname}-failures")
    make(elam, fname, "kinesis", runs_dir)
    sequences = []
    for n in range(8):
        data = {"n": n, "poison": n == 5}
        sequences.append(
            kinesis.put_record(StreamName=fname, Data=json.dumps(data).encode(), PartitionKey="k")[
                "SequenceNumber"
            ]
        )
    mapping = elam.create_event_source_mapping(
        FunctionName=fname,
        EventSourceArn=stream_arn,
        StartingPosition="TRIM_HORIZON",
        BatchSize=8,
        BisectBatchOnFunctionError=True,
        MaximumRetryAttempts=2,
        DestinationConfig={"OnFailure": {"Destination": queue_arn}},
    )
    assert mapping["MaximumRetryAttempts"] == 2 and mapping["BisectBatchOnFunctionError"]
    assert (mapping["State"], mapping["StateTransitionReason"]) == ("Creating", "User action")
    assert mapping["LastProcessingResult"] == "No records processed"
    wait_for(
        lambda: (
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])[
                "Attributes"
            ]["ApproximateNumberOfMessages"]
            == "1"
        ),
        60,
        "the on-failure record",
    )
    record = json.loads(sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"])
    assert list(record) == [
        "requestContext",
        "responseContext",
        "version",
        "timestamp",
        "KinesisBatchInfo",
    ]
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestContext"]["functionArn"].endswith(f":function:{fname}")
    assert record["responseContext"]["functionError"] == "Unhandled"
    info = record["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (
        sequences[5],
        sequences[5],
        1,
    )
    assert info["streamArn"] == stream_arn and info["shardId"].startswith("shardId-")
    later = kinesis.put_record(StreamName=fname, Data=b'{"n": 99}', PartitionKey="k")
    wait_for(
        lambda: any(
            r["kinesis"]["sequenceNumber"] == later["SequenceNumber"]
            for b in batches(runs_dir)
            for r in b["Records"]
        ),
        30,
        "the next record",
    )
    delivered = {
        r["kinesis"]["sequenceNumber"]
        for b in batches(runs_dir)
        for r in b["Records"]
        if not json.loads(__import__("base64").b64decode(r["kinesis"]["data"])).get("poison")
    }
    assert set(sequences) - {sequences[5]} <= delivered
    listed = engine.get(f"/_lamina/invocations?function={fname}&type=mapping&limit=100")[
        "Invocations"
    ]
    discarded = [i for i in listed if i["Status"] == "failed"]
    assert len(discarded) == 1 and discarded[0]["Attempts"] == 3
    kinds = [
        e["Kind"]
        for e in engine.get(f"/_lamina/invocations/{discarded[0]['RequestId']}")["Timeline"]
    ]
    assert kinds.count("retry_scheduled") == 2 and "discarded" in kinds
    assert any(i["Status"] == "bisected" for i in listed), "the split batches are recorded"
    wait_for(
        lambda: (
            later["SequenceNumber"]
            in str(engine.get(f"/_lamina/mappings?function={fname}")["Mappings"][0]["Checkpoint"])
        ),
        10,
        "checkpoint",
    )
    shown = engine.get(f"/_lamina/mappings?function={fname}")["Mappings"][0]
    assert (shown["UUID"], shown["State"], shown["LastBatchSize"]) == (
        mapping["UUID"],
        "Enabled",
        1,
    )


def test_tumbling_window_passes_state_and_ends_with_a_final_invoke(elam, moto, runs_dir, fname):
    kinesis, stream_arn = kinesis_stream(moto, fname)
    make(elam, fname, "window", runs_dir)
    mapping = elam.create_event_source_mapping(
        FunctionName=fname,
        EventSourceArn=stream_arn,
        StartingPosition="TRIM_HORIZON",
        BatchSize=2,
        TumblingWindowInSeconds=3,
    )
    assert mapping["TumblingWindowInSeconds"] == 3
    for n in range(5):
        kinesis.put_record(StreamName=fname, Data=json.dumps({"n": n}).encode(), PartitionKey="k")

    def finals() -> list[dict]:
        return [b for b in batches(runs_dir) if b["isFinalInvokeForWindow"]]

    wait_for(lambda: sum(f["state"]["count"] for f in finals()) >= 5, 30, "final invokes")
    invoked = batches(runs_dir)
    assert all(
        b["shardId"].startswith("shardId-") and b["eventSourceARN"] == stream_arn for b in invoked
    )
    assert sum(len(b["Records"]) for b in invoked) == 5
    assert all(len(b["Records"]) <= 2 for b in invoked)
    for final in finals():
        assert final["Records"] == [] and not final["isWindowTerminatedEarly"]
        window = [b for b in invoked if b["window"] == final["window"]]
        assert final["state"]["count"] == sum(len(b["Records"]) for b in window)
        assert window[0]["state"] == {}, "a window starts with an empty state"


def test_dynamodb_stream_records_and_checkpoint_across_a_restart(moto, runs_dir, tmp_path, fname):
    dynamodb = moto.client("dynamodb")
    dynamodb.create_table(
        TableName=fname,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    stream_arn = dynamodb.describe_table(TableName=fname)["Table"]["LatestStreamArn"]
    data = tmp_path / "data"
    first = start_unsandboxed(data, env={"AWS_ENDPOINT_URL": moto.endpoint})
    lam = client(first.endpoint)
    make(lam, fname, "dynamodb", runs_dir)
    mapping = lam.create_event_source_mapping(
        FunctionName=fname, EventSourceArn=stream_arn, StartingPosition="TRIM_HORIZON", BatchSize=5
    )
    for n in range(3):
        dynamodb.put_item(TableName=fname, Item={"id": {"S": f"item-{n}"}})
    wait_for(lambda: sum(len(b["Records"]) for b in batches(runs_dir)) >= 3, 30, "3 inserts")
    record = batches(runs_dir)[0]["Records"][0]
    assert record["eventSource"] == "aws:dynamodb" and record["eventName"] == "INSERT"
    assert record["eventSourceARN"] == stream_arn
    assert record["dynamodb"]["Keys"] == {"id": {"S": "item-0"}}
    time.sleep(1)
    first.stop()
    lam.close()
    second = start_unsandboxed(data, env={"AWS_ENDPOINT_URL": moto.endpoint})
    try:
        lam = client(second.endpoint)
        assert lam.get_event_source_mapping(UUID=mapping["UUID"])["State"] in (
            "Enabled",
            "Creating",
        )
        dynamodb.put_item(TableName=fname, Item={"id": {"S": "after-restart"}})
        wait_for(
            lambda: any(
                r["dynamodb"]["Keys"]["id"]["S"] == "after-restart"
                for b in batches(runs_dir)
                for r in b["Records"]
            ),
            30,
            "new item",
        )
        keys = [r["dynamodb"]["Keys"]["id"]["S"] for b in batches(runs_dir) for r in b["Records"]]
        assert keys.count("item-0") == 1, "the checkpoint kept the first records from rerunning"
        lam.close()
    finally:
        second.stop()
