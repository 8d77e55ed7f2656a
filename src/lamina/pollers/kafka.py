"""The self-managed Kafka poller: consumer group, per-partition order, commit after success
(spec §16). Reached with aiokafka.

Theory of operation
-------------------
* The mapping's consumer group (its `ConsumerGroupId`, else its UUID) reads its one topic;
  a new group starts at `StartingPosition` (TRIM_HORIZON: earliest, LATEST: latest), an
  existing one at its committed offsets.
* A batch holds what one fetch returned, up to `BatchSize` records, within a batching
  window of 500 ms unless set; records are grouped by `"<topic>-<partition>"` in order.
* After the function succeeds the offsets past the batch are committed. On a function
  error the same batch is retried (1 s doubling to 30 s, engine time) until it succeeds,
  the records are older than `MaximumRecordAgeInSeconds`, or `MaximumRetryAttempts` is
  used up (infinite retries with an on-failure destination: 10); then the on-failure
  destination gets a record and the offsets move past the batch. Until then the
  partitions do not move on, so order holds.
* The decisions are `domain.batching`'s, as for Kinesis and DynamoDB Streams:
  `BisectBatchOnFunctionError` runs a failed batch's halves as batches of their own (not
  a retry), and with `ReportBatchItemFailures` a response naming
  `{"partition": "<topic>-<partition>", "offset": N}` items runs each named partition
  again from its lowest named offset, the others being done
  (https://docs.aws.amazon.com/lambda/latest/dg/kafka-retry-configurations.html).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

from lamina.domain import batching, destinations, filters
from lamina.domain.destinations import iso_timestamp
from lamina.domain.model import EventSourceMapping, InvocationOutcome
from lamina.pollers.base import Backoff, Poller, pause, retry_later
from lamina.service.batches import BatchRunner

DEFAULT_WINDOW_S = 0.5


def kafka_record(message: Any) -> dict[str, Any]:
    """One record of a Kafka event from an aiokafka ConsumerRecord (spec §16.1)."""
    return {
        "topic": message.topic,
        "partition": message.partition,
        "offset": message.offset,
        "timestamp": message.timestamp,
        "timestampType": "CREATE_TIME" if message.timestamp_type == 0 else "LOG_APPEND_TIME",
        "key": base64.b64encode(message.key).decode() if message.key is not None else None,
        "value": base64.b64encode(message.value).decode() if message.value is not None else None,
        "headers": [{name: list(value or b"")} for name, value in (message.headers or ())],
    }


class KafkaPoller(Poller):
    """The poller of one self-managed Kafka mapping."""

    def __init__(
        self,
        mapping: EventSourceMapping,
        batches: BatchRunner,
        clients: Any,
        region: str,
        stop: asyncio.Event,
    ) -> None:
        super().__init__(mapping, batches, clients, region, stop)
        self.servers = ",".join(mapping.bootstrap_servers)

    async def run(self) -> None:
        from aiokafka import AIOKafkaConsumer  # imported when a Kafka mapping runs

        backoff = Backoff()
        while not self.stop.is_set():
            consumer = AIOKafkaConsumer(
                *self.mapping.topics,
                bootstrap_servers=self.servers,
                group_id=self.mapping.consumer_group,
                enable_auto_commit=False,
                auto_offset_reset="earliest"
                if self.mapping.starting_position == "TRIM_HORIZON"
                else "latest",
            )
            try:
                await consumer.start()
                backoff.reset()
                await self._consume(consumer)
            except Exception as exc:  # broker down or unreachable: keep the mapping, retry
                self.problem(exc)
                if not await pause(backoff.next(), self.stop):
                    return
            finally:
                await consumer.stop()

    async def _consume(self, consumer: Any) -> None:
        window = self.mapping.batching_window or DEFAULT_WINDOW_S
        while not self.stop.is_set():
            fetched = await consumer.getmany(
                timeout_ms=int(window * 1000), max_records=self.mapping.batch_size
            )
            messages = [
                m
                for partition in sorted(fetched, key=lambda p: (p.topic, p.partition))
                for m in fetched[partition]
            ]
            if not messages:
                continue
            records = [kafka_record(m) for m in messages]
            kept = [r for r in records if filters.keep(self.patterns, "kafka", r)]
            if kept:
                finished = await asyncio.shield(self._process(kept))
                if not finished:
                    return  # stopped before the batch was settled: not committed, runs again
            await consumer.commit(
                {partition: items[-1].offset + 1 for partition, items in fetched.items() if items}
            )

    def _payload(self, grouped: dict[str, list[dict[str, Any]]]) -> bytes:
        return json.dumps(
            {
                "eventSource": "SelfManagedKafka",
                "bootstrapServers": self.servers,
                "records": grouped,
            }
        ).encode()

    async def _process(self, records: list[dict[str, Any]]) -> bool:
        """Run `records` until `domain.batching` says they are done, split or given up."""
        mapping = self.batches.current(self.mapping.uuid) or self.mapping
        request_id = self.batches.begin_batch(
            mapping, {"records": len(records), "partitions": sorted(_grouped(records))}
        )
        most = batching.kafka_max_retries(mapping.max_retry_attempts, bool(mapping.on_failure))
        invocations, retries, backoff = 0, 0, Backoff()
        while not self.stop.is_set():
            oldest = min(r["timestamp"] for r in records) / 1000
            expired = batching.before_stream_batch(oldest, time.time(), mapping.max_record_age)
            if expired is not None:
                return await self._give_up(
                    mapping, request_id, records, expired.condition, invocations
                )
            payload = self._payload(_grouped(records))
            outcome = await self.batches.invoke_batch(mapping, request_id, payload, invocations + 1)
            if outcome is None:  # throttled: back off, not a retry
                await pause(backoff.next(), self.stop)
                continue
            invocations += 1
            decision = _decide(mapping, records, outcome, retries, most)
            if isinstance(decision, batching.Succeeded):
                self.batches.end_batch(mapping, request_id, "success", invocations)
                self.batches.processed(mapping.uuid, "OK")
                return True
            self.batches.processed(mapping.uuid, "PROBLEM: Function call failed")
            if isinstance(decision, batching.Bisect):
                return await self._bisect(mapping, request_id, records, decision.at, invocations)
            if decision.rest is not None:  # a partial failure: the named partitions again
                records = [records[i] for i in decision.rest]
                self.batches.note(request_id, "partial", {"records": len(records)})
            if isinstance(decision, batching.GiveUp):
                return await self._give_up(
                    mapping, request_id, records, decision.condition, invocations
                )
            retries = decision.retry
            await retry_later(self.batches, request_id, retries, self.stop)
        # stopped before the batch was settled: not committed, it runs again
        self.batches.end_batch(mapping, request_id, "stopped", invocations)
        return False

    async def _bisect(
        self,
        mapping: EventSourceMapping,
        request_id: str,
        records: list[dict[str, Any]],
        at: int,
        invocations: int,
    ) -> bool:
        """BisectBatchOnFunctionError: each half runs as a batch of its own, in order."""
        first, second = records[:at], records[at:]
        self.batches.note(
            request_id,
            "bisected",
            {"halves": [len(first), len(second)], "invocations": invocations},
        )
        self.batches.end_batch(mapping, request_id, "bisected", invocations)
        return await self._process(first) and await self._process(second)

    async def _give_up(
        self,
        mapping: EventSourceMapping,
        request_id: str,
        records: list[dict[str, Any]],
        condition: str,
        invocations: int,
    ) -> bool:
        """The on-failure record: the stream record's shape with `KafkaBatchInfo` (§20 #35),
        to an SQS queue, an SNS topic or a Kafka topic; False if the mapping stopped first."""
        grouped = _grouped(records)
        payload = self._payload(grouped)
        record = {
            "requestContext": {
                "requestId": request_id,
                "condition": condition,
                "approximateInvokeCount": invocations,
                "functionArn": self.batches.function_arn(mapping),
            },
            "version": "1.0",
            "timestamp": iso_timestamp(time.time()),
            "KafkaBatchInfo": {
                "batchSize": sum(len(items) for items in grouped.values()),
                "bootstrapServers": self.servers,
                "payloadSize": len(payload),
                "recordsInfo": {
                    key: {
                        "firstRecordOffset": str(items[0]["offset"]),
                        "firstRecordTimestamp": iso_timestamp(items[0]["timestamp"] / 1000),
                        "lastRecordOffset": str(items[-1]["offset"]),
                        "lastRecordTimestamp": iso_timestamp(items[-1]["timestamp"] / 1000),
                    }
                    for key, items in grouped.items()
                },
            },
        }
        self.batches.note(
            request_id, "discarded", {"condition": condition, "invocations": invocations}
        )
        topic = destinations.kafka_topic(mapping.on_failure or "")
        if topic is None:
            await self.batches.send_on_failure(mapping, request_id, json.dumps(record).encode())
        elif not await self._produce(topic, {**record, "payload": json.loads(payload)}):
            self.batches.end_batch(mapping, request_id, "stopped", invocations)
            return False  # stopped before the record was written: the batch runs again
        self.batches.end_batch(mapping, request_id, "failed", invocations, condition)
        return True

    async def _produce(self, topic: str, record: dict[str, Any]) -> bool:
        """A `kafka://` destination: the on-failure record with the failed records (`payload`,
        the event they were in) written to `topic` of the source's cluster, retried until it
        is written; False if the mapping stopped first."""
        from aiokafka import AIOKafkaProducer  # imported when a Kafka mapping runs

        backoff = Backoff()
        while not self.stop.is_set():
            producer = AIOKafkaProducer(bootstrap_servers=self.servers)
            try:
                await producer.start()
                await producer.send_and_wait(topic, json.dumps(record).encode())
                return True
            except Exception as exc:  # the cluster or topic away: keep the batch, retry
                self.problem(exc)
                await pause(backoff.next(), self.stop)
            finally:
                await producer.stop()
        return False


def _grouped(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """A Kafka event's `records`: by `"<topic>-<partition>"`, in offset order."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        grouped.setdefault(_lane(record), []).append(record)
    return grouped


def _lane(record: dict[str, Any]) -> str:
    return f"{record['topic']}-{record['partition']}"


def _decide(
    mapping: EventSourceMapping,
    records: list[dict[str, Any]],
    outcome: InvocationOutcome,
    retries: int,
    most: int,
) -> batching.StreamDecision:
    """The outcome's meaning (`domain.batching`), partial failures named per partition."""
    lanes = [_lane(r) for r in records]
    ids = [batching.kafka_identifier(lane, r["offset"]) for lane, r in zip(lanes, records)]
    result = batching.result_of(
        outcome.function_error, outcome.payload, mapping.report_failures, ids, kafka=True
    )
    return batching.after_stream_batch(result, ids, retries, most, mapping.bisect, lanes)
