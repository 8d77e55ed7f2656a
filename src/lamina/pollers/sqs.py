"""The SQS poller: receive, filter, invoke, delete (spec §13).

Theory of operation
-------------------
* Long polling (`WaitTimeSeconds` up to 20); a batch closes when it holds `BatchSize`
  messages, when the batching window ends, or at once when the window is 0.
* Messages the filters drop are deleted. A batch that succeeds is deleted; with
  `ReportBatchItemFailures` only the messages not reported are. A function error, a
  malformed partial response or a throttle deletes nothing: the messages come back after
  the queue's visibility timeout (`ApproximateReceiveCount` grows, and the queue's own
  redrive policy moves poison messages to its dead-letter queue).
* If the batching window plus the function's timeout exceed the queue's visibility timeout,
  messages are received with window + timeout + 30 s instead (spec §13.2).
* Concurrency: one receiving loop to start, one more each time a batch comes back full (a
  backlog), up to `ScalingConfig.MaximumConcurrency` (default 5); a loop that finds the
  queue empty three times in a row ends, down to one.
* The source unreachable: the mapping keeps its state, says so in LastProcessingResult,
  backs off and tries again; nothing is received, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from typing import Any

from lamina.domain import batching, events, filters
from lamina.domain.model import EventSourceMapping
from lamina.pollers.base import Backoff, Poller, pause, unless_stopped
from lamina.service.batches import BatchRunner

DEFAULT_CONCURRENCY = 5
LONG_POLL_S = 20
EMPTY_POLLS_BEFORE_EXIT = 3
BACKLOG_S = 5.0  # how often the queue's backlog is asked for


class SqsPoller(Poller):
    """The poller of one SQS mapping."""

    def __init__(
        self,
        mapping: EventSourceMapping,
        batches: BatchRunner,
        clients: Any,
        region: str,
        stop: asyncio.Event,
    ) -> None:
        super().__init__(mapping, batches, clients, region, stop)
        self.cap = mapping.max_concurrency or DEFAULT_CONCURRENCY
        self.loops: set[asyncio.Task[None]] = set()
        self.queue_url = ""
        self.visibility: int | None = None

    async def run(self) -> None:
        backoff = Backoff()
        while not self.stop.is_set():
            try:
                await self._prepare()
                break
            except Exception as exc:  # queue missing or endpoint down: wait, keep the mapping
                self.problem(exc)
                if not await pause(backoff.next(), self.stop):
                    return
        self._add_loop()
        gauge = asyncio.ensure_future(self._watch_backlog())
        while self.loops:
            await asyncio.wait(set(self.loops))
        gauge.cancel()
        await asyncio.gather(gauge, return_exceptions=True)

    async def _prepare(self) -> None:
        client = await self.clients.client("sqs")
        self.queue_url = await self.clients.queue_url(self.mapping.event_source_arn)
        attributes = (
            await client.get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=["VisibilityTimeout"]
            )
        )["Attributes"]
        timeout = self.batches.function_timeout(self.mapping)
        needed = self.mapping.batching_window + timeout
        if needed > int(attributes.get("VisibilityTimeout", 30)):
            self.visibility = needed + 30

    def _add_loop(self) -> None:
        task = asyncio.get_running_loop().create_task(self._loop())
        self.loops.add(task)
        task.add_done_callback(self.loops.discard)

    async def _loop(self) -> None:
        backoff, empty = Backoff(), 0
        while not self.stop.is_set():
            try:
                messages = await self._collect()
                backoff.reset()
            except Exception as exc:
                self.problem(exc)
                if not await pause(backoff.next(), self.stop):
                    return
                continue
            if messages is None:
                return  # stopped
            if not messages:
                empty += 1
                if empty >= EMPTY_POLLS_BEFORE_EXIT and len(self.loops) > 1:
                    return
                continue
            empty = 0
            if len(messages) >= min(self.mapping.batch_size, 10) and len(self.loops) < self.cap:
                self._add_loop()  # a full batch: there is a backlog
            await asyncio.shield(self._handle(messages))

    async def _watch_backlog(self) -> None:
        """The queue's visible messages (the console's backlog gauge), every BACKLOG_S."""
        while True:
            try:
                client = await self.clients.client("sqs")
                attributes = await client.get_queue_attributes(
                    QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
                )
                waiting = int(attributes["Attributes"]["ApproximateNumberOfMessages"])
                self.batches.observe(self.mapping.uuid, backlog=waiting)
                if waiting == 0:
                    self.batches.observe(self.mapping.uuid, lag_s=0.0)
            except Exception:  # noqa: BLE001 - a gauge, not worth a problem report
                pass
            if not await pause(BACKLOG_S, self.stop):
                return

    async def _collect(self) -> list[dict[str, Any]] | None:
        """Messages for one batch (None if the poller was stopped meanwhile)."""
        client = await self.clients.client("sqs", long_poll=True)
        batch_size, window = self.mapping.batch_size, self.mapping.batching_window
        deadline = time.monotonic() + window
        messages: list[dict[str, Any]] = []
        while len(messages) < batch_size:
            remaining = deadline - time.monotonic()
            if messages and (window == 0 or remaining <= 0):
                break
            wait = LONG_POLL_S if not messages else min(LONG_POLL_S, math.ceil(remaining))
            arguments: dict[str, Any] = {
                "QueueUrl": self.queue_url,
                "MaxNumberOfMessages": min(10, batch_size - len(messages)),
                "WaitTimeSeconds": max(0, wait),
                "AttributeNames": ["All"],
                "MessageAttributeNames": ["All"],
            }
            if self.visibility is not None:
                arguments["VisibilityTimeout"] = self.visibility
            response = await unless_stopped(client.receive_message(**arguments), self.stop)
            if response is None:
                return None if not messages else messages
            received = response.get("Messages", [])
            if not received and not messages:
                return []
            messages += received
        return messages

    async def _handle(self, messages: list[dict[str, Any]]) -> None:
        arn = self.mapping.event_source_arn or ""
        records = [events.sqs_record(m, arn, self.region) for m in messages]
        sent = [int(r["attributes"].get("SentTimestamp", 0)) for r in records]
        if sent:
            self.batches.observe(
                self.mapping.uuid, lag_s=max(0.0, time.time() - min(sent) / 1000.0)
            )
        kept = [r for r in records if filters.keep(self.patterns, "sqs", r)]
        dropped = [r for r in records if r not in kept]
        if dropped:
            await self._delete(dropped)
        while kept:
            count = batching.cut([events.size_of(r) for r in kept], self.mapping.batch_size)
            await self._invoke(kept[:count])
            kept = kept[count:]

    async def _invoke(self, records: list[dict[str, Any]]) -> None:
        mapping = self.batches.current(self.mapping.uuid) or self.mapping
        request_id = self.batches.begin_batch(mapping, {"records": len(records)})
        payload = json.dumps({"Records": records}).encode()
        outcome = await self.batches.invoke_batch(mapping, request_id, payload, attempt=1)
        if outcome is None:
            self.batches.end_batch(mapping, request_id, "throttled", 0, "TooManyRequests")
            self.batches.processed(mapping.uuid, "PROBLEM: Function call throttled")
            await pause(Backoff().next(), self.stop)
            return
        ids = [events.identifier("sqs", r) for r in records]
        result = batching.result_of(
            outcome.function_error, outcome.payload, mapping.report_failures, ids
        )
        keep = set(result.failed) if not result.whole_batch_failed else set(ids)
        done = [r for r in records if r["messageId"] not in keep]
        if done:
            await self._delete(done)
        self.batches.note(
            request_id,
            "deleted",
            {"messages": len(done), "left_for_retry": len(records) - len(done)},
        )
        status = "success" if result.ok else "failed"
        self.batches.end_batch(
            mapping,
            request_id,
            status,
            1,
            None if result.ok else (outcome.error_type or "BatchItemFailures"),
        )
        self.batches.processed(
            mapping.uuid, "OK" if not outcome.function_error else "PROBLEM: Function call failed"
        )

    async def _delete(self, records: list[dict[str, Any]]) -> None:
        client = await self.clients.client("sqs")
        for start in range(0, len(records), 10):
            chunk = records[start : start + 10]
            await client.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": r["receiptHandle"]} for i, r in enumerate(chunk)
                ],
            )
