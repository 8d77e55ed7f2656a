"""Event source mappings when things go wrong: the source down, the engine killed, a mapping
deleted mid-batch, function timeouts, FIFO order, a poison record blocking its shard.

Against moto's server mode and a real `lamina serve` process, driven by boto3 (spec §12–15).
"""

from __future__ import annotations

import base64
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from lamina.pollers.supervisor import CHECK_S
from tests.acceptance import test_mappings
from tests.acceptance.test_mappings import (
    batches,
    kinesis_stream,
    make,
    queue,
    queue_counts,
    wait_enabled,
    wait_for,
)
from tests.conftest import Moto, client, free_port, start_unsandboxed

# test_mappings' fixtures: its module engine (--time-scale 10, moto), its client, a runs dir
engine, elam, runs_dir = test_mappings.engine, test_mappings.elam, test_mappings.runs_dir


def payloads(runs_dir: Path) -> list[dict]:
    """What each record delivered so far carried (SQS body or Kinesis data), in order."""
    seen = []
    for batch in batches(runs_dir):
        for record in batch["Records"]:
            text = (
                base64.b64decode(record["kinesis"]["data"])
                if "kinesis" in record
                else record["body"]
            )
            seen.append(json.loads(text))
    return seen


def finished(runs_dir: Path) -> list[list[dict]]:
    """The batches the `slow` handler finished (their payloads)."""
    path = runs_dir / "done"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def start_moto(port: int) -> Moto:
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return Moto(process, port)
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("moto server did not start") from None
            time.sleep(0.1)


def timeline(engine, request_id: str) -> list[dict]:
    return engine.get(f"/_lamina/invocations/{request_id}")["Timeline"]


def mapping_batches(engine, function: str) -> list[dict]:
    return engine.get(f"/_lamina/invocations?function={function}&type=mapping&limit=100")[
        "Invocations"
    ]


# 1 -------------------------------------------------------------------------------------------
def test_sqs_source_unreachable_at_create_then_reachable(tmp_path, runs_dir, fname):
    port = free_port()  # nothing listens here until moto is started below
    endpoint = f"http://127.0.0.1:{port}"
    running = start_unsandboxed(tmp_path / "data", env={"AWS_ENDPOINT_URL": endpoint})
    moto = None
    try:
        lam = client(running.endpoint)
        make(lam, fname, "sqs", runs_dir, timeout=5)
        arn = f"arn:aws:sqs:us-east-1:123456789012:{fname}"
        asked = time.monotonic()
        created = lam.create_event_source_mapping(
            FunctionName=fname, EventSourceArn=arn, BatchSize=10
        )
        assert created["State"] == "Creating"
        # the engine waits at most CHECK_S for the queue (botocore's own retries of an
        # unreachable endpoint last ~15 s); what is more is this machine's request latency
        elapsed = time.monotonic() - asked
        assert elapsed < CHECK_S + 4, f"{elapsed:.1f} s: create waited out the SDK's retries"
        wait_enabled(lam, created["UUID"])
        # an SQS mapping shows no LastProcessingResult until it has one (as on AWS)
        wait_for(
            lambda: (
                lam.get_event_source_mapping(UUID=created["UUID"])
                .get("LastProcessingResult", "")
                .startswith("PROBLEM")
            ),
            30,
            "the source reported down",
        )
        assert lam.get_event_source_mapping(UUID=created["UUID"])["State"] == "Enabled"

        moto = start_moto(port)
        sqs = moto.client("sqs")
        url, queue_arn = queue(sqs, fname, VisibilityTimeout=30)
        assert queue_arn == arn
        for n in range(12):
            sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": n}))
        wait_for(lambda: len(payloads(runs_dir)) >= 12, 60, "12 messages after the source came up")
        wait_for(lambda: queue_counts(sqs, url) == (0, 0), 10, "the queue emptied")
        time.sleep(1)
        assert sorted(p["n"] for p in payloads(runs_dir)) == list(range(12)), "exactly once"
        assert lam.get_event_source_mapping(UUID=created["UUID"])["LastProcessingResult"] == "OK"
        lam.close()
    finally:
        running.stop()
        if moto is not None:
            moto.process.terminate()
            moto.process.wait(10)
    assert "Traceback" not in running.log(), running.log()


# 2 -------------------------------------------------------------------------------------------
def test_kinesis_engine_killed_mid_batch_reruns_it_and_skips_nothing(
    moto, tmp_path, runs_dir, fname
):
    kinesis, stream_arn = kinesis_stream(moto, fname)
    for n in range(8):  # batches of 2: [0 1] [2 3] [4 5] [6 7]; record 4 makes its batch slow
        data = {"n": n, "sleep": 3} if n == 4 else {"n": n}
        put = kinesis.put_record(StreamName=fname, Data=json.dumps(data).encode(), PartitionKey="k")
    last = put["SequenceNumber"]
    data_dir = tmp_path / "data"
    first = start_unsandboxed(data_dir, env={"AWS_ENDPOINT_URL": moto.endpoint})
    try:
        lam = client(first.endpoint)
        make(lam, fname, "slow", runs_dir)
        mapping = lam.create_event_source_mapping(
            FunctionName=fname,
            EventSourceArn=stream_arn,
            StartingPosition="TRIM_HORIZON",
            BatchSize=2,
        )
        lam.close()
        wait_for(lambda: 4 in [p["n"] for p in payloads(runs_dir)], 30, "the slow batch")
        time.sleep(0.5)
    finally:
        first.stop(signal.SIGKILL)
    seen = [p["n"] for p in payloads(runs_dir)]
    assert seen == [0, 1, 2, 3, 4, 5], "killed while [4 5] ran, before [6 7]"
    assert [[p["n"] for p in done] for done in finished(runs_dir)] == [[0, 1], [2, 3]]

    second = start_unsandboxed(data_dir, env={"AWS_ENDPOINT_URL": moto.endpoint})
    try:
        lam = client(second.endpoint)
        assert lam.get_event_source_mapping(UUID=mapping["UUID"])["State"] in (
            "Enabled",
            "Creating",
        )
        wait_for(lambda: 7 in [p["n"] for p in payloads(runs_dir)], 30, "the records after it")
        # the shard's checkpoint at its last record: the poller has nothing more to hand out
        wait_for(
            lambda: (
                last
                in str(
                    second.get(f"/_lamina/mappings?function={fname}")["Mappings"][0]["Checkpoint"]
                )
            ),
            30,
            "the last record checkpointed",
        )
        lam.close()
    finally:
        second.stop()
    seen = [p["n"] for p in payloads(runs_dir)]
    assert seen == [0, 1, 2, 3, 4, 5, 4, 5, 6, 7], (
        "the interrupted batch runs again; checkpointed batches do not; nothing is skipped"
    )
    assert [4, 5] in [[p["n"] for p in done] for done in finished(runs_dir)]
    assert "Traceback" not in second.log(), second.log()


# 3 -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("action", ["delete", "disable"])
def test_sqs_mapping_deleted_or_disabled_while_a_batch_runs(elam, moto, runs_dir, fname, action):
    sqs = moto.client("sqs")
    url, arn = queue(sqs, fname, VisibilityTimeout=30)
    make(elam, fname, "slow", runs_dir)
    mapping = elam.create_event_source_mapping(FunctionName=fname, EventSourceArn=arn, BatchSize=10)
    wait_enabled(elam, mapping["UUID"])
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": 0, "sleep": 3}))
    wait_for(lambda: payloads(runs_dir), 30, "the slow batch to start")

    if action == "delete":
        answer = elam.delete_event_source_mapping(UUID=mapping["UUID"])
        assert answer["State"] == "Deleting"
    else:
        answer = elam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
        assert answer["State"] == "Disabling"
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert finished(runs_dir) == [], "the answer comes at once, not when the running batch ends"
    wait_for(lambda: finished(runs_dir), 15, "the running batch to complete")
    if action == "delete":
        wait_for(
            lambda: (
                elam.list_event_source_mappings(FunctionName=fname)["EventSourceMappings"] == []
            ),
            15,
            "the mapping gone",
        )
        with pytest.raises(ClientError) as gone:
            elam.get_event_source_mapping(UUID=mapping["UUID"])
        assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"
    else:
        wait_for(
            lambda: elam.get_event_source_mapping(UUID=mapping["UUID"])["State"] == "Disabled",
            15,
            "Disabled",
        )
    wait_for(
        lambda: queue_counts(sqs, url) == (0, 0),
        10,
        "the batch that succeeded deleted from the queue",
    )

    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": 1}))
    time.sleep(3)
    assert [p["n"] for p in payloads(runs_dir)] == [0], f"nothing received after {action}"
    assert queue_counts(sqs, url) == (1, 0), "the new message stays in the queue"


# 4 -------------------------------------------------------------------------------------------
def test_sqs_function_timeout_leaves_messages_for_the_queue_redrive(
    engine, elam, moto, runs_dir, fname
):
    sqs = moto.client("sqs")
    dlq_url, dlq_arn = queue(sqs, f"{fname}-dlq")
    url, arn = queue(
        sqs,
        fname,
        VisibilityTimeout=2,
        RedrivePolicy=json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}),
    )
    make(elam, fname, "slow", runs_dir, timeout=1)
    mapping = elam.create_event_source_mapping(FunctionName=fname, EventSourceArn=arn, BatchSize=1)
    wait_enabled(elam, mapping["UUID"])
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"n": 0, "sleep": 5}))
    wait_for(lambda: queue_counts(sqs, dlq_url)[0] == 1, 30, "the message in the DLQ")
    moved = sqs.receive_message(QueueUrl=dlq_url, AttributeNames=["All"])["Messages"][0]
    assert json.loads(moved["Body"]) == {"n": 0, "sleep": 5}
    time.sleep(2.5)
    counts = [
        r["attributes"]["ApproximateReceiveCount"] for b in batches(runs_dir) for r in b["Records"]
    ]
    assert counts == ["1", "2"], "a timed-out batch is not deleted: SQS hands it out again"
    assert finished(runs_dir) == [], "the function never ran to its end"
    assert queue_counts(sqs, url) == (0, 0)
    assert (
        elam.get_event_source_mapping(UUID=mapping["UUID"])["LastProcessingResult"]
        == "PROBLEM: Function call failed"
    )
    failed = mapping_batches(engine, fname)
    assert len(failed) == 2 and all(i["Status"] == "failed" for i in failed)
    assert {i["ErrorType"] for i in failed} == {"Sandbox.Timedout"}
    elam.delete_event_source_mapping(UUID=mapping["UUID"])


def test_kinesis_function_timeout_is_a_function_error(engine, elam, moto, runs_dir, fname):
    kinesis, stream_arn = kinesis_stream(moto, fname)
    sqs = moto.client("sqs")
    url, queue_arn = queue(sqs, f"{fname}-failures")
    make(elam, fname, "slow", runs_dir, timeout=1)
    first = kinesis.put_record(
        StreamName=fname, Data=json.dumps({"n": 0, "sleep": 5}).encode(), PartitionKey="k"
    )["SequenceNumber"]
    elam.create_event_source_mapping(
        FunctionName=fname,
        EventSourceArn=stream_arn,
        StartingPosition="TRIM_HORIZON",
        BatchSize=1,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": queue_arn}},
    )
    wait_for(lambda: queue_counts(sqs, url)[0] == 1, 30, "the on-failure record")
    record = json.loads(sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"])
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": "Unhandled",
    }
    info = record["KinesisBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (
        first,
        first,
        1,
    )
    kinesis.put_record(StreamName=fname, Data=b'{"n": 1}', PartitionKey="k")
    wait_for(
        lambda: [1] in [[p["n"] for p in done] for done in finished(runs_dir)],
        30,
        "the shard moved on",
    )
    assert [p["n"] for p in payloads(runs_dir)] == [0, 1], "no retry with MaximumRetryAttempts=0"
    discarded = [i for i in mapping_batches(engine, fname) if i["Status"] == "failed"]
    assert len(discarded) == 1
    kinds = [e["Kind"] for e in timeline(engine, discarded[0]["RequestId"])]
    assert "discarded" in kinds and "retry_scheduled" not in kinds


# 5 -------------------------------------------------------------------------------------------
def test_two_mappings_on_one_stream_each_see_every_record(elam, moto, runs_dir, fname):
    kinesis, stream_arn = kinesis_stream(moto, fname)
    dirs = [runs_dir / "a", runs_dir / "b"]
    names = [f"{fname}-a", f"{fname}-b"]
    mappings = []
    for name, folder in zip(names, dirs):
        folder.mkdir()
        make(elam, name, "kinesis", folder)
        mappings.append(
            elam.create_event_source_mapping(
                FunctionName=name,
                EventSourceArn=stream_arn,
                StartingPosition="TRIM_HORIZON",
                BatchSize=4,
            )
        )
    for n in range(10):
        kinesis.put_record(
            StreamName=fname, Data=json.dumps({"n": n}).encode(), PartitionKey=f"k{n % 3}"
        )
    for folder in dirs:
        wait_for(
            lambda folder=folder: len(payloads(folder)) >= 10, 30, f"10 records in {folder.name}"
        )
    time.sleep(1.5)
    for folder in dirs:
        assert [p["n"] for p in payloads(folder)] == list(range(10)), (
            "each mapping reads the whole shard, in order, once"
        )
    assert {
        m["UUID"]
        for m in elam.list_event_source_mappings(EventSourceArn=stream_arn)["EventSourceMappings"]
    } == {m["UUID"] for m in mappings}

    with pytest.raises(ClientError) as refused:
        elam.create_event_source_mapping(
            FunctionName=names[0], EventSourceArn=stream_arn, StartingPosition="LATEST"
        )
    error = refused.value.response
    assert error["Error"]["Code"] == "ResourceConflictException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert error["Error"]["Message"] == (
        f'The event source arn (" {stream_arn} ") and function (" {names[0]} ") provided '
        f"mapping already exists. Please update or delete the existing mapping with UUID "
        f"{mappings[0]['UUID']}"
    )
    assert (
        len(elam.list_event_source_mappings(EventSourceArn=stream_arn)["EventSourceMappings"]) == 2
    )


# 6 -------------------------------------------------------------------------------------------
def test_sqs_fifo_keeps_the_order_of_each_message_group(elam, moto, runs_dir, fname):
    sqs = moto.client("sqs")
    url, arn = queue(sqs, f"{fname}.fifo", FifoQueue="true")
    make(elam, fname, "sqs", runs_dir)
    mapping = elam.create_event_source_mapping(FunctionName=fname, EventSourceArn=arn, BatchSize=10)
    wait_enabled(elam, mapping["UUID"])
    for n in range(20):  # interleaved: A0 B0 A1 B1 …
        for group in ("A", "B"):
            sqs.send_message(
                QueueUrl=url,
                MessageBody=json.dumps({"g": group, "n": n}),
                MessageGroupId=group,
                MessageDeduplicationId=f"{group}{n}",
            )
    wait_for(lambda: len(payloads(runs_dir)) >= 40, 60, "40 messages")
    time.sleep(1)
    seen = payloads(runs_dir)
    for group in ("A", "B"):
        assert [p["n"] for p in seen if p["g"] == group] == list(range(20)), (
            f"group {group} in send order, each message once"
        )
    assert all(len(b["Records"]) <= 10 for b in batches(runs_dir))
    record = batches(runs_dir)[0]["Records"][0]
    assert {"MessageGroupId", "SequenceNumber", "MessageDeduplicationId"} <= set(
        record["attributes"]
    )
    assert queue_counts(sqs, url) == (0, 0)

    other = f"{fname}-big"
    make(elam, other, "sqs", runs_dir)
    for window in ({}, {"MaximumBatchingWindowInSeconds": 1}):
        with pytest.raises(ClientError) as refused:
            elam.create_event_source_mapping(
                FunctionName=other, EventSourceArn=arn, BatchSize=11, **window
            )
        assert refused.value.response["Error"]["Code"] == "InvalidParameterValueException"
    with pytest.raises(ClientError) as refused:
        elam.create_event_source_mapping(
            FunctionName=other, EventSourceArn=arn, BatchSize=5, MaximumBatchingWindowInSeconds=2
        )
    assert (
        refused.value.response["Error"]["Message"]
        == "Batching window is not supported for FIFO queues"
    )
    assert elam.list_event_source_mappings(FunctionName=other)["EventSourceMappings"] == []


# 7 -------------------------------------------------------------------------------------------
def test_kinesis_poison_record_blocks_its_shard_while_retried(engine, elam, moto, runs_dir, fname):
    """Defaults (retry forever) with a 60 s record age: the shard waits on the poison batch.
    The engine runs at --time-scale 10, so the 1 s, 2 s, 4 s … retry back-off is 10× shorter;
    record ages are wall time, so the 60 s age is not reached during the test."""
    kinesis, stream_arn = kinesis_stream(moto, fname)
    make(elam, fname, "kinesis", runs_dir)
    for data in ({"n": 0}, {"n": 1, "poison": True}, {"n": 2}, {"n": 3}):
        kinesis.put_record(StreamName=fname, Data=json.dumps(data).encode(), PartitionKey="k")
    mapping = elam.create_event_source_mapping(
        FunctionName=fname,
        EventSourceArn=stream_arn,
        StartingPosition="TRIM_HORIZON",
        BatchSize=1,
        MaximumRecordAgeInSeconds=60,
    )
    assert mapping["MaximumRetryAttempts"] == -1 and not mapping["BisectBatchOnFunctionError"]
    assert mapping["MaximumRecordAgeInSeconds"] == 60

    def poison_batch() -> list[dict]:
        return [i for i in mapping_batches(engine, fname) if i["Status"] != "success"]

    def retries() -> list[dict]:
        found = poison_batch()
        return (
            [e for e in timeline(engine, found[0]["RequestId"]) if e["Kind"] == "retry_scheduled"]
            if found
            else []
        )

    wait_for(lambda: len(retries()) >= 6, 20, "six retries of the poison batch")
    assert [e["delay_s"] for e in retries()[:6]] == [1, 2, 4, 8, 16, 30], (
        "engine-time back-off, 1 s doubling to 30 s (spec §14.2)"
    )
    seen = [p["n"] for p in payloads(runs_dir)]
    assert seen[0] == 0 and set(seen[1:]) == {1} and len(seen) >= 7, (
        "the poison batch is retried; the records after it wait (over 3 s of wall time)"
    )
    assert (
        elam.get_event_source_mapping(UUID=mapping["UUID"])["LastProcessingResult"]
        == "PROBLEM: Function call failed"
    )
    assert len(poison_batch()) == 1 and poison_batch()[0]["Status"] == "running"

    disabling = elam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    assert disabling["State"] == "Disabling"
    wait_for(
        lambda: elam.get_event_source_mapping(UUID=mapping["UUID"])["State"] == "Disabled",
        10,
        "Disabled",
    )
    count = len(payloads(runs_dir))
    time.sleep(2)
    assert len(payloads(runs_dir)) == count, "disabled: no more retries"
    assert 2 not in [p["n"] for p in payloads(runs_dir)]

    assert poison_batch()[0]["Status"] == "stopped", "the batch given up by disabling ends"
