"""The recorder's flush: what was recorded before a flush is stored when the flush returns,
even while another flush (the background writer's) is writing."""

from __future__ import annotations

import asyncio

from lamina.domain.model import AttemptRecord, InvocationSummary
from lamina.service.clock import RealClock
from lamina.service.records import Recorder
from lamina.storage.memory import MemoryStore


class _HeldStore(MemoryStore):
    """The in-memory store, whose first write waits until the test lets it go on."""

    def __init__(self) -> None:
        super().__init__()
        self.writing = asyncio.Event()
        self.go_on = asyncio.Event()
        self.writes = 0

    async def write_records(
        self, summaries: list[InvocationSummary], records: list[AttemptRecord]
    ) -> None:
        self.writes += 1
        if self.writes == 1:
            self.writing.set()
            await self.go_on.wait()
        await super().write_records(summaries, records)


def _summary(request_id: str, status: str) -> InvocationSummary:
    return InvocationSummary(request_id, "f", None, "RequestResponse", 1.0, status=status)


def test_a_flush_waits_for_the_write_already_under_way() -> None:
    asyncio.run(_a_flush_waits_for_the_write_already_under_way())


async def _a_flush_waits_for_the_write_already_under_way() -> None:
    store = _HeldStore()
    recorder = Recorder(store, RealClock(), interval=3600)
    recorder.summary(_summary("a", "running"))
    background = asyncio.create_task(recorder.flush())  # as the writer task's flush
    await store.writing.wait()
    recorder.summary(_summary("a", "error"))  # e.g. engine_lost, then a read of the trace
    recorder.record("a", "engine_lost", {"engine": "e1"})
    reader = asyncio.create_task(recorder.flush())
    await asyncio.sleep(0.05)
    assert not reader.done(), "a flush returned while an earlier write was still under way"
    store.go_on.set()
    await asyncio.wait_for(asyncio.gather(background, reader), 5)
    summary, records = await store.get_invocation("a")
    assert summary is not None and summary.status == "error"
    assert [r.kind for r in records] == ["engine_lost"]
    assert store.writes == 2
