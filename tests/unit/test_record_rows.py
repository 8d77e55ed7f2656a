"""storage/rows: a synchronous call's embedded timeline, written and read back on SQLite."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from lamina.domain.model import AttemptRecord, InvocationSummary
from lamina.observability.metrics import Metrics
from lamina.service.clock import RealClock
from lamina.service.records import Recorder
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
    text = rows.summary_rows([summary("r1")])[0][-1]
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


def test_rows_encode_details_as_json_dumps_does() -> None:
    details: list[dict[str, object]] = [
        {},
        {"type": "RequestResponse", "version": "$LATEST"},
        {"attempt": 1, "environment": None, "duration_ms": 0.213, "init_ms": 1e-7},
        {"error": 'say "no"\n\\', "members": {"a": [1, 2.5, True, None]}, "ü": "é\u2028"},
        {"nested": [{"x": (1, 2)}, [], {}], "big": 2**70, "neg": -0.0},
    ]
    for detail in details:
        record = AttemptRecord("r1", ACCEPTED, "attempt", detail)
        assert rows.record_rows([record]) == [
            ("r1", ACCEPTED, "attempt", json.dumps(detail, separators=(",", ":")))
        ]
    with pytest.raises(TypeError):
        rows.record_rows([AttemptRecord("r1", ACCEPTED, "attempt", {"x": object()})])


def test_a_batch_of_rows_is_each_summary_row() -> None:
    running = summary("r2")
    running.timeline, running.status = None, "running"
    batch = [summary("r1"), running]
    made = rows.summary_rows(batch)
    for row, s in zip(made, batch, strict=True):
        assert row[:10] == (
            s.request_id,
            s.function,
            s.qualifier,
            s.invocation_type,
            s.accepted_at,
            s.status,
            s.finished_at,
            s.attempts,
            s.error_type,
            s.duration_ms,
        )
    assert made[0][-1] == rows.timeline_text(ACCEPTED, batch[0].timeline or [])
    assert made[1][-1] is None


def test_batches_of_every_size_go_in_whole_and_in_order(tmp_path: Path) -> None:
    """The SQLite store writes a batch as INSERTs of up to 64 rows each: every size from
    1 to past two of them, summaries replaced in place and records kept in order."""

    async def main() -> None:
        store = SqliteStore(tmp_path / "lamina.db")
        await store.open()
        try:
            await store.write_records([summary("r0-0")], [])
            for size in (1, 2, 3, 63, 64, 65, 127, 130):
                batch = [summary(f"r{size}-{i}") for i in range(size)]
                batch[0] = summary("r0-0")  # already there: updated, not duplicated
                batch[0].status = f"done-{size}"
                records = [
                    AttemptRecord(f"r{size}-1", ACCEPTED + i, "retry_scheduled", {"n": i})
                    for i in range(size)
                ]
                await store.write_records(batch, records)
                found, timeline = await store.get_invocation(f"r{size}-1")
                if size > 1:
                    assert found is not None and found.status == "success"
                    assert (found.qualifier, found.error_type) == (None, None)  # bound as NULL
                    assert [r.detail for r in timeline if r.kind == "retry_scheduled"] == [
                        {"n": i} for i in range(size)
                    ]
                first, _ = await store.get_invocation("r0-0")
                assert first is not None and first.status == f"done-{size}"
            listed = await store.list_invocations("f", 10_000, ACCEPTED + 10)
            assert len(listed) == 1 + sum(n - 1 for n in (1, 2, 3, 63, 64, 65, 127, 130))
        finally:
            await store.close()

    asyncio.run(main())


def test_a_trace_read_right_after_a_batch_of_calls_shows_each_whole(tmp_path: Path) -> None:
    """Hundreds of synchronous calls recorded as the invoke service records them (a running
    summary, then its final state with the timeline), flushed through the recorder into
    SQLite: each call reads back whole, in its final state, and the metrics count each once."""

    async def main() -> None:
        store = SqliteStore(tmp_path / "lamina.db")
        await store.open()
        metrics = Metrics()
        recorder = Recorder(store, RealClock(), interval=3600, observer=metrics)
        try:
            for n in range(150):
                running = summary(f"r{n}")
                running.timeline, running.status = None, "running"
                recorder.summary(running)
                recorder.summary(summary(f"r{n}"))
            recorder.record("r7", "caller_gone", {})
            await recorder.flush()
            for n in (0, 7, 64, 149):
                found, timeline = await store.get_invocation(f"r{n}")
                assert found is not None and found.status == "success"
                assert [(r.kind, r.detail) for r in timeline[:2]] == [
                    ("accepted", {"type": "RequestResponse"}),
                    ("attempt", {"outcome": "success", "duration_ms": 0.4}),
                ]
                assert [r.kind for r in timeline[2:]] == (["caller_gone"] if n == 7 else [])
            assert metrics.requests.values == {("f", "RequestResponse"): 150}
            assert metrics.invocations.values == {("f", "success"): 150}
            assert metrics.callers_gone.values == {("f",): 1}
        finally:
            await recorder.close()
            await store.close()

    asyncio.run(main())


def test_rows_written_by_older_engines_read_back_beside_new_ones(tmp_path: Path) -> None:
    """A summary row whose timeline an older engine wrote in epoch seconds (before the
    microseconds' shape) reads back as it was, next to a row this engine's batch wrote."""

    async def main() -> None:
        store = SqliteStore(tmp_path / "lamina.db")
        await store.open()
        try:
            await store.write_records([summary("new")], [])
            old = (*rows.summary_rows([summary("old")])[0][:10], '[[200.5,"accepted",{"a":1}]]')
            await store._change(("upsert_invocation", [old]))  # one row: as written before
            found, timeline = await store.get_invocation("old")
            assert found is not None and found.status == "success"
            assert [(r.at, r.kind, r.detail) for r in timeline] == [(200.5, "accepted", {"a": 1})]
            found, timeline = await store.get_invocation("new")
            assert [r.kind for r in timeline] == ["accepted", "attempt"]
            assert abs(timeline[1].at - (ACCEPTED + 0.000433)) < 1e-6
        finally:
            await store.close()

    asyncio.run(main())
