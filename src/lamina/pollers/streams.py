"""The Kinesis and DynamoDB Streams poller: per-shard order, checkpoints, retries (§14, §15).

Theory of operation
-------------------
* One task per shard reads records in order, from the mapping's checkpoint if it has one
  (a restart resumes where it left), else from `StartingPosition`. Shards are listed
  again every 30 s (resharding).
* A batch is at most `BatchSize` records and 6 MB, closed by `BatchSize` or the batching
  window. Records the filters drop are skipped (and checkpointed past).
* The shard does not move on past a failing batch: it retries the same batch (1 s doubling
  to 30 s) until it succeeds, its oldest record is older than
  `MaximumRecordAgeInSeconds`, or `MaximumRetryAttempts` is used up; then it sends the
  on-failure record (§14.3) and moves on. `BisectBatchOnFunctionError` splits a failing
  batch in halves first (not counted as retries), so a poison record ends up alone. A
  partial batch response checkpoints just before the lowest failed sequence number and
  retries from there. Throttles back off without counting.
* `ParallelizationFactor` N: up to N batches of one shard at once, records of one partition
  key always in the same lane, so their order holds.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import itertools
import json
import time
from typing import Any

from lamina.domain import batching, events, filters, windows
from lamina.domain.model import EventSourceMapping, InvocationOutcome
from lamina.domain.windows import Window
from lamina.pollers.base import Backoff, Poller, pause, retry_later, unless_stopped
from lamina.service.batches import BatchRunner

RESHARD_S = 30.0
POLL_S = {"kinesis": 1.0, "dynamodb": 0.25}  # spec §18: Kinesis 1/s, DynamoDB 4/s per shard
ROLE = "arn:aws:iam::123456789012:role/lamina"


class StreamPoller(Poller):
    """The poller of one Kinesis or DynamoDB Streams mapping."""

    def __init__(
        self,
        mapping: EventSourceMapping,
        batches: BatchRunner,
        clients: Any,
        region: str,
        stop: asyncio.Event,
    ) -> None:
        super().__init__(mapping, batches, clients, region, stop)
        self.source = mapping.source
        self.service = "kinesis" if self.source == "kinesis" else "dynamodbstreams"
        self.shards: dict[str, asyncio.Task[None]] = {}

    async def run(self) -> None:
        backoff = Backoff()
        while not self.stop.is_set():
            try:
                for shard in await self._shards():
                    if shard not in self.shards:
                        self.shards[shard] = asyncio.get_running_loop().create_task(
                            ShardReader(self, shard).run()
                        )
                backoff.reset()
                delay = RESHARD_S
            except Exception as exc:  # the stream is gone or the endpoint down: keep trying
                self.problem(exc)
                delay = backoff.next()
            if not await pause(delay, self.stop):
                break
        if self.shards:
            await asyncio.wait(set(self.shards.values()))

    async def _shards(self) -> list[str]:
        client = await self.clients.client(self.service)
        arn = self.mapping.event_source_arn
        assert arn is not None  # a stream mapping always names its stream
        if self.source == "kinesis":
            name = arn.split("/")[1]
            description = (await client.describe_stream(StreamName=name))["StreamDescription"]
        else:
            description = (await client.describe_stream(StreamArn=arn))["StreamDescription"]
        return [s["ShardId"] for s in description["Shards"]]

    def record(self, raw: dict[str, Any], shard: str) -> dict[str, Any]:
        arn = self.mapping.event_source_arn or ""
        if self.source == "kinesis":
            return events.kinesis_record(raw, shard, arn, self.region, ROLE)
        return events.dynamodb_record(raw, arn, self.region)


class ShardReader:
    """Reads one shard in order and hands batches to its lanes."""

    def __init__(self, poller: StreamPoller, shard: str) -> None:
        self.poller = poller
        self.shard = shard
        self.mapping = poller.mapping
        self.source = poller.source
        self.iterator: str | None = None
        self.started = False
        self.pending: list[dict[str, Any]] = []
        self.pending_since = 0.0
        self.window: Window | None = None  # the open tumbling window, if the mapping has them

    async def run(self) -> None:
        poller = self.poller
        lanes = [Lane(self, n) for n in range(self.mapping.parallelization_factor)]
        backoff, reading = Backoff(), None
        while not poller.stop.is_set():
            if reading is None and len(self.pending) < self.mapping.batch_size:
                reading = asyncio.ensure_future(self._fetch())
            if reading is not None:  # read no more than the next batch needs
                fetched, reading = await self._read(reading, backoff), None
                if fetched is None:
                    break  # stopped, or the shard is closed and read to its end
                if not fetched:
                    continue
            if self.window is not None and not self.pending and time.time() >= self.window.end:
                await self._close_window(lanes[0])
            if not self.pending or not await self._batch_ready():
                if not await pause(POLL_S[self.source], poller.stop):
                    break
                continue
            if len(self.pending) < 2 * self.mapping.batch_size and self.iterator is not None:
                reading = asyncio.ensure_future(self._fetch())  # the next read overlaps the batch
            await self._dispatch(lanes)
        if reading is not None:
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)

    async def _read(self, reading: asyncio.Future[bool | None], backoff: Backoff) -> bool | None:
        """The outcome of a read: True (records or none yet), False (failed: backed off),
        None (stop)."""
        try:
            fetched = await reading
        except Exception as exc:
            self.poller.problem(exc)
            return False if await pause(backoff.next(), self.poller.stop) else None
        backoff.reset()
        return fetched

    async def _batch_ready(self) -> bool:
        if len(self.pending) >= self.mapping.batch_size or self.mapping.batching_window == 0:
            return True
        return time.monotonic() - self.pending_since >= self.mapping.batching_window

    async def _fetch(self) -> bool | None:
        """Read more records; None when stopped or the shard is closed and read to its end."""
        client = await self.poller.clients.client(self.poller.service)
        if not self.started:
            self.iterator = await self._start_iterator(client)
            self.started = True
        if self.iterator is None:
            return None if not self.pending else True
        limit = min(10_000, max(100, self.mapping.batch_size))
        arguments = {"ShardIterator": self.iterator, "Limit": limit}
        response = await unless_stopped(client.get_records(**arguments), self.poller.stop)
        if response is None:
            return None
        self.iterator = response.get("NextShardIterator")
        if "MillisBehindLatest" in response:
            self.poller.batches.observe(
                self.mapping.uuid, lag_s=response["MillisBehindLatest"] / 1000.0
            )
        records = [self.poller.record(r, self.shard) for r in response.get("Records", [])]
        if records and not self.pending:
            self.pending_since = time.monotonic()
        self.pending += records
        return True

    async def _start_iterator(self, client: Any) -> str | None:
        checkpoint = (await self.poller.batches.checkpoints(self.mapping.uuid)).get(self.shard)
        arguments: dict[str, Any] = {"ShardId": self.shard}
        if self.source == "kinesis":
            arguments["StreamName"] = (self.mapping.event_source_arn or "").split("/")[1]
        else:
            arguments["StreamArn"] = self.mapping.event_source_arn
        if checkpoint:  # Kinesis and DynamoDB Streams name the parameter differently
            arguments.update(
                {
                    "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                    "StartingSequenceNumber"
                    if self.source == "kinesis"
                    else "SequenceNumber": checkpoint,
                }
            )
        elif self.mapping.starting_position == "AT_TIMESTAMP":
            arguments.update(
                ShardIteratorType="AT_TIMESTAMP",
                Timestamp=datetime.datetime.fromtimestamp(
                    self.mapping.starting_timestamp or 0, datetime.UTC
                ),
            )
        else:
            arguments["ShardIteratorType"] = self.mapping.starting_position or "LATEST"
        response = await client.get_shard_iterator(**arguments)
        iterator: str | None = response.get("ShardIterator")
        return iterator

    async def _dispatch(self, lanes: list[Lane]) -> None:
        if self.mapping.tumbling_window:
            await self._dispatch_windowed(lanes[0])
            return
        count = batching.cut(
            [events.size_of(r) for r in self.pending[: self.mapping.batch_size]],
            self.mapping.batch_size,
        )
        batch, self.pending = self.pending[:count], self.pending[count:]
        kept = [r for r in batch if filters.keep(self.poller.patterns, self.source, r)]
        if len(lanes) == 1 or not kept:
            if kept:
                await lanes[0].process(kept)
        else:
            groups: dict[int, list[dict[str, Any]]] = {}
            for record in kept:
                groups.setdefault(_lane_of(record, self.source, len(lanes)), []).append(record)
            await asyncio.gather(*(lanes[n].process(group) for n, group in groups.items()))
        if not self.poller.stop.is_set():
            await self.poller.batches.checkpoint(
                self.mapping.uuid, self.shard, events.identifier(self.source, batch[-1])
            )

    async def _dispatch_windowed(self, lane: Lane) -> None:
        """The next batch of the open window (spec §14.4); one lane, in order."""
        first = events.arrival(self.source, self.pending[0])
        if self.window is not None and not self.window.holds(first):
            await self._close_window(lane)
            if self.window is not None:
                return  # the final invocation has not succeeded yet (stopping)
        if self.window is None:
            self.window = Window.containing(first, self.mapping.tumbling_window)
        count = batching.cut(
            [events.size_of(r) for r in self.pending[: self.mapping.batch_size]],
            self.mapping.batch_size,
        )
        window = self.window
        batch = list(
            itertools.takewhile(
                lambda r: window.holds(events.arrival(self.source, r)), self.pending[:count]
            )
        )
        kept = [r for r in batch if filters.keep(self.poller.patterns, self.source, r)]
        if kept and not await lane.process(kept, self.window):
            return  # stopping: the records stay pending
        self.pending = self.pending[len(batch) :]
        self.window.last = batch[-1]
        if windows.too_large(self.window.state):
            await self._close_window(lane, early=True)

    async def _close_window(self, lane: Lane, early: bool = False) -> None:
        """The window's final invocation, retried until it succeeds; then the checkpoint moves
        past the window. A window ended early keeps its bounds with a fresh state."""
        window = self.window
        assert window is not None
        if not await lane.finish_window(window, early):
            return
        if window.last is not None and not self.poller.stop.is_set():
            await self.poller.batches.checkpoint(
                self.mapping.uuid, self.shard, events.identifier(self.source, window.last)
            )
        self.window = Window(window.start, window.end) if early else None


def _lane_of(record: dict[str, Any], source: str, lanes: int) -> int:
    key = (
        record["kinesis"]["partitionKey"]
        if source == "kinesis"
        else json.dumps(record["dynamodb"].get("Keys", {}), sort_keys=True)
    )
    return int(hashlib.md5(key.encode()).hexdigest(), 16) % lanes


class Lane:
    """Runs batches with the stream retry rules (one lane per parallelization slot)."""

    def __init__(self, reader: ShardReader, number: int) -> None:
        self.reader = reader
        self.number = number
        self.batches = reader.poller.batches
        self.stop = reader.poller.stop

    async def process(self, batch: list[dict[str, Any]], window: Window | None = None) -> bool:
        """Run `batch` until it succeeds or is given up (the shard waits meanwhile); False
        if the mapping stopped first. In a tumbling window, each success updates its state."""
        mapping = self.batches.current(self.reader.mapping.uuid) or self.reader.mapping
        request_id = self.batches.begin_batch(
            mapping,
            {
                "records": len(batch),
                "shard": self.reader.shard,
                "first": events.identifier(self.reader.source, batch[0]),
                "last": events.identifier(self.reader.source, batch[-1]),
            },
        )
        return await self._run(mapping, request_id, batch, window)

    async def finish_window(self, window: Window, early: bool) -> bool:
        """The window's final invocation (no records), until it succeeds; False if stopped."""
        mapping = self.batches.current(self.reader.mapping.uuid) or self.reader.mapping
        request_id = self.batches.begin_batch(
            mapping,
            {
                "records": 0,
                "shard": self.reader.shard,
                "final_invoke_for_window": True,
                "window_terminated_early": early,
            },
        )
        payload = json.dumps(
            window.event(
                [],
                self.reader.shard,
                mapping.event_source_arn or "",
                final=True,
                terminated_early=early,
            )
        ).encode()
        invocations, backoff = 0, Backoff()
        while not self.stop.is_set():
            outcome = await self.batches.invoke_batch(mapping, request_id, payload, invocations + 1)
            if outcome is None:
                await pause(backoff.next(), self.stop)
                continue
            invocations += 1
            if not outcome.function_error:
                self.batches.end_batch(mapping, request_id, "success", invocations)
                return True
            self.batches.processed(mapping.uuid, "PROBLEM: Function call failed")
            await retry_later(self.batches, request_id, invocations, self.stop)
        self.batches.end_batch(mapping, request_id, "stopped", invocations)
        return False

    async def _run(
        self,
        mapping: EventSourceMapping,
        request_id: str,
        batch: list[dict[str, Any]],
        window: Window | None,
    ) -> bool:
        """Run `batch` until `domain.batching` says it is done, split or given up."""
        source, invocations, retries, backoff = self.reader.source, 0, 0, Backoff()
        arn = mapping.event_source_arn or ""
        while not self.stop.is_set():
            expired = batching.before_stream_batch(
                min(events.arrival(source, r) for r in batch), time.time(), mapping.max_record_age
            )
            if expired is not None:
                await self._give_up(
                    mapping, request_id, batch, expired.condition, invocations, None
                )
                return True
            event = window.event(batch, self.reader.shard, arn) if window else {"Records": batch}
            outcome = await self.batches.invoke_batch(
                mapping, request_id, json.dumps(event).encode(), invocations + 1
            )
            if outcome is None:  # throttled: back off, not a retry
                await pause(backoff.next(), self.stop)
                continue
            invocations += 1
            decision = self._decide(mapping, batch, outcome, window, retries)
            if isinstance(decision, batching.Succeeded):
                self.batches.end_batch(mapping, request_id, "success", invocations)
                self.batches.processed(mapping.uuid, "OK")
                return True
            self.batches.processed(mapping.uuid, "PROBLEM: Function call failed")
            if isinstance(decision, batching.Bisect):
                first, second = batch[: decision.at], batch[decision.at :]
                self.batches.note(
                    request_id,
                    "bisected",
                    {"halves": [len(first), len(second)], "invocations": invocations},
                )
                self.batches.end_batch(
                    mapping, request_id, "bisected", invocations, outcome.error_type
                )
                return await self.process(first, window) and await self.process(second, window)
            if decision.done and window is None:  # a window's checkpoint waits for its end
                await self._checkpoint(request_id, batch[decision.done - 1])
            batch = batch[decision.done :]
            if isinstance(decision, batching.GiveUp):
                await self._give_up(
                    mapping,
                    request_id,
                    batch,
                    decision.condition,
                    invocations,
                    outcome.function_error,
                )
                return True
            retries = decision.retry
            await retry_later(self.batches, request_id, retries, self.stop)
        # the mapping stopped (disabled, deleted, engine stopping): the records are read again
        self.batches.end_batch(mapping, request_id, "stopped", invocations)
        return False

    def _decide(
        self,
        mapping: EventSourceMapping,
        batch: list[dict[str, Any]],
        outcome: InvocationOutcome,
        window: Window | None,
        retries: int,
    ) -> batching.StreamDecision:
        """The outcome's meaning (`domain.batching`); a window takes the state it returned
        with a success or a partial failure (a windowed response must carry its state)."""
        ids = [events.identifier(self.reader.source, r) for r in batch]
        result = batching.result_of(
            outcome.function_error, outcome.payload, mapping.report_failures, ids
        )
        if window is not None:
            state = windows.state_of(outcome.payload)
            if state is None:
                result = batching.FAILURE
            elif not result.whole_batch_failed:
                window.state = state
        return batching.after_stream_batch(
            result, ids, retries, mapping.max_retry_attempts, mapping.bisect
        )

    async def _checkpoint(self, request_id: str, record: dict[str, Any]) -> None:
        position = events.identifier(self.reader.source, record)
        await self.batches.checkpoint(self.reader.mapping.uuid, self.reader.shard, position)
        self.batches.note(
            request_id, "checkpoint", {"shard": self.reader.shard, "sequence": position}
        )

    async def _give_up(
        self,
        mapping: EventSourceMapping,
        request_id: str,
        batch: list[dict[str, Any]],
        condition: str,
        invocations: int,
        function_error: bool | None,
    ) -> None:
        record = events.stream_failure_record(
            source=self.reader.source,
            request_id=request_id,
            function_arn=self.batches.function_arn(mapping),
            condition=condition,
            invoke_count=invocations,
            timestamp=time.time(),
            shard_id=self.reader.shard,
            first=batch[0],
            last=batch[-1],
            batch_size=len(batch),
            stream_arn=mapping.event_source_arn or "",
            function_error=function_error,
        )
        self.batches.note(
            request_id,
            "discarded",
            {"condition": condition, "records": len(batch), "invocations": invocations},
        )
        await self.batches.send_on_failure(mapping, request_id, record)
        self.batches.end_batch(mapping, request_id, "failed", invocations, condition)
