"""Start and stop one poller task per enabled event source mapping.

A poller is told to stop through its stop event, so a batch being invoked completes (and is
deleted or checkpointed) before the task ends; only a wait for records is cut short.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from lamina.domain import errors
from lamina.domain.model import EventSourceMapping
from lamina.pollers import kafka, sqs, streams
from lamina.service.batches import BatchRunner

log = logging.getLogger("lamina.pollers")
STOP_GRACE_S = 30.0
CHECK_S = 3.0  # how long CreateEventSourceMapping waits to check an SQS queue


class PollerSupervisor:
    """Runs the pollers of the enabled event source mappings."""

    def __init__(self, batches: BatchRunner, clients: Any, region: str) -> None:
        self.batches = batches
        self.clients = clients
        self.region = region
        self._running: dict[str, tuple[asyncio.Task[None], asyncio.Event]] = {}
        self._closed = False  # the engine is stopping: no poller starts any more

    async def check(self, mapping: EventSourceMapping, function_timeout: int) -> None:
        """Refuse what AWS refuses when the mapping is created: an SQS queue whose visibility
        timeout is shorter than the function's timeout. A source that cannot be reached now
        is not refused; its poller reports it in LastProcessingResult."""
        if mapping.source != "sqs" or not mapping.event_source_arn:
            return
        try:
            # bounded, the client's first making included (seconds of CPU on a loaded
            # machine): botocore retries an unreachable endpoint for up to ~15 s
            attributes = await asyncio.wait_for(
                self._queue_attributes(mapping.event_source_arn), CHECK_S
            )
        except Exception as exc:  # noqa: BLE001 - reported by the poller once it runs
            log.info("could not check queue %s: %s", mapping.event_source_arn, exc)
            return
        visibility = int(attributes.get("VisibilityTimeout", 30))
        if visibility < function_timeout:
            raise errors.InvalidParameterValue(
                f"Queue visibility timeout: {visibility} seconds is less than Function "
                f"timeout: {function_timeout} seconds"
            )

    async def _queue_attributes(self, arn: str) -> dict[str, str]:
        client = await self.clients.client("sqs")
        url = await self.clients.queue_url(arn)
        attributes: dict[str, str] = (
            await client.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
        )["Attributes"]
        return attributes

    def start(self, mapping: EventSourceMapping) -> None:
        if mapping.uuid in self._running or self._closed:
            return
        stop = asyncio.Event()
        kind = {"sqs": sqs.SqsPoller, "kafka": kafka.KafkaPoller}.get(
            mapping.source, streams.StreamPoller
        )
        worker = kind(mapping, self.batches, self.clients, self.region, stop)
        task = asyncio.get_running_loop().create_task(
            self._run(worker, mapping), name=f"lamina-poller-{mapping.uuid}"
        )
        self._running[mapping.uuid] = (task, stop)

    async def _run(self, worker: Any, mapping: EventSourceMapping) -> None:
        try:
            await worker.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the poller of mapping %s stopped on an error", mapping.uuid)
            self.batches.processed(
                mapping.uuid, "PROBLEM: Lamina's poller failed; see the engine log"
            )
        finally:  # not a newer poller of the mapping, started after this one was given up
            entry = self._running.get(mapping.uuid)
            if entry is not None and entry[0] is asyncio.current_task():
                del self._running[mapping.uuid]

    async def stop(self, mapping_id: str) -> None:
        entry = self._running.pop(mapping_id, None)
        if entry is None:
            return
        task, stop = entry
        stop.set()
        done, _ = await asyncio.wait({task}, timeout=STOP_GRACE_S)
        if not done:
            task.cancel()

    async def close(self) -> None:
        self._closed = True
        await asyncio.gather(*(self.stop(m) for m in list(self._running)))
