"""Attempt records, written off the hot path (ARCHITECTURE.md decision 4).

The invoke path only appends to in-memory lists; a background task writes them to the store
in one transaction every `interval` seconds (or sooner when `max_batch` are waiting). A
summary updated several times before a flush is written once, in its last state.

An observer (the metrics) is handed each summary and entry once, in O(1), when a flush (or
`observe_pending`, before a metrics scrape) takes it, so the invoke path does no more than
an append. With `enabled=False` (`lamina serve --no-records`) everything is dropped:
nothing is kept, written or observed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from lamina.domain import errors
from lamina.domain.model import AttemptRecord, InvocationSummary
from lamina.service.ports import Clock, Store

log = logging.getLogger("lamina.records")


class RecordObserver(Protocol):
    def summary(self, summary: InvocationSummary) -> None: ...
    def record(self, request_id: str, kind: str, detail: dict[str, Any]) -> None: ...


class Recorder:
    """Collects attempt records and invocation summaries and writes them in batches."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        interval: float = 0.2,
        max_batch: int = 2000,
        observer: RecordObserver | None = None,
        enabled: bool = True,
    ) -> None:
        self.store = store
        self.clock = clock
        self.observer = observer
        self.enabled = enabled
        self.interval = interval
        self.max_batch = max_batch
        self._summaries: dict[str, InvocationSummary] = {}
        self._records: list[AttemptRecord] = []
        self._unwritten: dict[str, InvocationSummary] = {}
        self._unwritten_records: list[AttemptRecord] = []
        self._wake = asyncio.Event()
        self._writing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="lamina-records")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
        await self.flush()

    def summary(self, summary: InvocationSummary) -> None:
        """Record (or update) where an invocation stands."""
        if not self.enabled:
            return
        summaries = self._summaries
        summaries[summary.request_id] = summary
        if len(self._records) + len(summaries) >= self.max_batch:  # `_poke`, inline: hot
            self._wake.set()

    def record(
        self, request_id: str, kind: str, detail: dict[str, Any], at: float | None = None
    ) -> None:
        """Append one entry to an invocation's timeline."""
        if not self.enabled:
            return
        self._records.append(
            AttemptRecord(request_id, self.clock.now() if at is None else at, kind, detail)
        )
        self._poke()

    def _poke(self) -> None:
        if len(self._records) + len(self._summaries) >= self.max_batch:
            self._wake.set()

    def observe_pending(self) -> None:
        """Hand what was recorded since the last call to the observer (each item once, a
        summary in its latest state) and queue it for the store."""
        if not self._summaries and not self._records:
            return
        summaries, self._summaries = self._summaries, {}
        records, self._records = self._records, []
        if self.observer is not None:
            for summary in summaries.values():
                self.observer.summary(summary)
            for record in records:
                self.observer.record(record.request_id, record.kind, record.detail)
        self._unwritten.update(summaries)
        self._unwritten_records += records

    async def flush(self) -> None:
        """Store what was recorded so far. One write at a time: a flush called while another
        is writing (the background task's) waits for it, so that when it returns, everything
        recorded before it is in the store (a read of a trace right after a call sees it)."""
        async with self._writing:
            self.observe_pending()
            if not self._unwritten and not self._unwritten_records:
                return
            summaries, self._unwritten = list(self._unwritten.values()), {}
            records, self._unwritten_records = self._unwritten_records, []
            try:
                await self.store.write_records(summaries, records)
            except BaseException:
                for summary in summaries:  # keep them for the next try; newer states win
                    self._unwritten.setdefault(summary.request_id, summary)
                self._unwritten_records[:0] = records
                raise

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await asyncio.shield(self.flush())
            except errors.StoreUnavailable as exc:  # keep serving, say so, try again later
                log.warning("could not write attempt records yet: %s", exc)
            except Exception:
                log.exception("could not write attempt records")
