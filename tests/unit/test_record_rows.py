"""storage/rows: a synchronous call's embedded timeline, written and read back on SQLite."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lamina.domain.model import AttemptRecord, InvocationSummary
from lamina.storage import rows
from lamina.storage.sqlite import SqliteStore

ACCEPTED = 1_764_756_000.123456


def summary(request_id: str) -> InvocationSummary:
    found = InvocationSummary(
        request_id,
        "f",
        None,
        "RequestResponse",
        ACCEPTED,
        status="success",
        finished_at=ACCEPTED + 0.0005,
        attempts=1,
        duration_ms=0.412,
    )
    found.timeline = [
        AttemptRecord(request_id, ACCEPTED, "accepted", {"type": "RequestResponse"}),
        AttemptRecord(
            request_id, ACCEPTED + 0.000433, "attempt", {"outcome": "success", "duration_ms": 0.4}
        ),
    ]
    return found


def test_the_timeline_is_kept_in_microseconds_after_the_call_was_accepted() -> None:
    text = rows.summary_row(summary("r1"))[-1]
    assert text.startswith('{"us":[[0,"accepted",')
    back = rows.timeline_from_text("r1", ACCEPTED, text)
    assert [(r.kind, r.detail) for r in back] == [
        ("accepted", {"type": "RequestResponse"}),
        ("attempt", {"outcome": "success", "duration_ms": 0.4}),
    ]
    assert abs(back[1].at - (ACCEPTED + 0.000433)) < 1e-6


def test_timelines_written_before_are_read_as_they_were() -> None:
    old = '[[200.0,"start",{"a":1}],[200.2,"end",{}]]'
    back = rows.timeline_from_text("r0", 200.0, old)
    assert [(r.request_id, r.at, r.kind, r.detail) for r in back] == [
        ("r0", 200.0, "start", {"a": 1}),
        ("r0", 200.2, "end", {}),
    ]


def test_a_batch_of_summaries_and_records_goes_in_and_comes_back(tmp_path: Path) -> None:
    async def main() -> None:
        store = SqliteStore(tmp_path / "lamina.db")
        await store.open()
        try:
            first = summary("r1")
            first.timeline = None
            first.status, first.finished_at = "running", None
            await store.write_records([first], [])
            done = summary("r1")  # its final state replaces the one written while it ran
            await store.write_records(
                [done, summary("r2")], [AttemptRecord("r1", ACCEPTED + 1, "caller_gone", {})]
            )
            found, records = await store.get_invocation("r1")
            assert found is not None and (found.status, found.duration_ms) == ("success", 0.412)
            assert [r.kind for r in records] == ["accepted", "attempt", "caller_gone"]
            listed = await store.list_invocations("f", 10, ACCEPTED + 10)
            assert sorted(s.request_id for s in listed) == ["r1", "r2"]
        finally:
            await store.close()

    asyncio.run(main())
