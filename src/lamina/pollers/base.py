"""What every poller loop shares: waiting that gives way to a stop, and error back-off."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

from lamina.domain import batching, filters
from lamina.domain.model import EventSourceMapping
from lamina.service.batches import BatchRunner

T = TypeVar("T")
log = logging.getLogger("lamina.pollers")

SOURCE_ERROR_MAX_S = 30.0


async def unless_stopped(work: Awaitable[T], stop: asyncio.Event) -> T | None:
    """`work`'s result, or None if `stop` was set first (then `work` is cancelled)."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if task.done():
        return task.result()
    task.cancel()
    return None


async def pause(seconds: float, stop: asyncio.Event) -> bool:
    """Sleep unless stopped; True when the loop should go on."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return True
    return False


class Backoff:
    """Error back-off of a poller: 1 s doubling to 30 s, reset after a success (rule 9)."""

    def __init__(self, first: float = 1.0, cap: float = SOURCE_ERROR_MAX_S) -> None:
        self.first = first
        self.cap = cap
        self.failures = 0

    def reset(self) -> None:
        self.failures = 0

    def next(self) -> float:
        self.failures += 1
        return min(self.first * 2.0 ** (self.failures - 1), self.cap)


def describe(exc: BaseException) -> str:
    """A short text for LastProcessingResult and the timeline."""
    error: Any = getattr(exc, "response", None)
    if isinstance(error, dict) and "Error" in error:
        return f"{error['Error'].get('Code')}: {error['Error'].get('Message')}"
    return f"{type(exc).__name__}: {exc}"


async def retry_later(
    batches: BatchRunner, request_id: str, retry: int, stop: asyncio.Event
) -> None:
    """Record that a failed batch is retried, and wait for it (1 s doubling to 30 s, engine
    time) unless the mapping stops first."""
    delay = batching.retry_delay(retry)
    batches.note(request_id, "retry_scheduled", {"retry": retry, "delay_s": delay})
    await unless_stopped(batches.sleep(delay), stop)


class Poller:
    """What every poller holds: its mapping, the service that runs its batches, the source
    clients, and the stop event the supervisor sets."""

    def __init__(
        self,
        mapping: EventSourceMapping,
        batches: BatchRunner,
        clients: Any,
        region: str,
        stop: asyncio.Event,
    ) -> None:
        self.mapping = mapping
        self.batches = batches
        self.clients = clients
        self.region = region
        self.stop = stop
        self.patterns = [filters.parse(text) for text in mapping.filters]

    def problem(self, exc: BaseException) -> None:
        """The source failed us: say so in LastProcessingResult (the state does not change)."""
        self.batches.processed(self.mapping.uuid, f"PROBLEM: {describe(exc)}")
