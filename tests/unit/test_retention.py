"""Retention: invocation records by age and count; log files by size and age; attempt logs."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from lamina.domain.model import AttemptRecord, InvocationSummary
from lamina.runtime.log_retention import LogRetention
from lamina.runtime.logs import LogReader, LogStream
from lamina.service.clock import VirtualClock
from lamina.service.retention import RecordRetention
from lamina.storage.memory import MemoryStore

T0 = 1_700_000_000.0


async def stored(count: int, clock: VirtualClock) -> MemoryStore:
    """`count` invocations, one a minute ending now, each with one record."""
    store = MemoryStore()
    summaries = [
        InvocationSummary(f"r{n:03d}", "f", None, "Event", clock.now() - 60 * (count - n))
        for n in range(count)
    ]
    await store.write_records(
        summaries, [AttemptRecord(s.request_id, s.accepted_at, "accepted", {}) for s in summaries]
    )
    return store


def test_records_older_than_the_maximum_age_go_with_their_timelines():
    async def main():
        clock = VirtualClock(T0)
        store = await stored(10, clock)
        retention = RecordRetention(store, clock, max_age=300, max_rows=None, chunk=2)
        assert await retention.enforce() == 5
        assert sorted(store.invocations) == [f"r{n:03d}" for n in range(5, 10)]
        assert {r.request_id for r in store.records} == set(store.invocations)
        clock.advance(120)
        assert await retention.enforce() == 2
        assert await retention.enforce() == 0

    asyncio.run(main())


def test_only_the_newest_rows_are_kept():
    async def main():
        clock = VirtualClock(T0)
        store = await stored(10, clock)
        assert await RecordRetention(store, clock, max_age=None, max_rows=3).enforce() == 7
        assert sorted(store.invocations) == ["r007", "r008", "r009"]
        assert await RecordRetention(store, clock, max_age=None, max_rows=30).enforce() == 0

    asyncio.run(main())


def test_no_limits_delete_nothing():
    async def main():
        clock = VirtualClock(T0)
        store = await stored(4, clock)
        retention = RecordRetention(store, clock, max_age=0, max_rows=0)
        retention.start()
        assert retention._task is None
        assert await retention.enforce() == 0 and len(store.invocations) == 4

    asyncio.run(main())


def write(path, size: int, age: float = 0.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))


def test_old_log_files_go_but_running_streams_stay(tmp_path):
    write(tmp_path / "f" / "old.log", 10, age=3600)
    write(tmp_path / "f" / "old.log.1", 10, age=3600)
    write(tmp_path / "f" / "fresh.log", 10)
    live = LogStream(tmp_path / "f" / "running.log", 1 << 20)
    live.platform("still written")
    live.flush()
    os.utime(live.path, (time.time() - 7200, time.time() - 7200))
    retention = LogRetention(tmp_path, None, 600, lambda: [live])
    assert retention.enforce() == 2
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["fresh.log", "running.log"]
    live.close()


def test_a_function_over_its_size_loses_its_least_recent_files_first(tmp_path):
    write(tmp_path / "f" / "a.log", 400, age=300)
    write(tmp_path / "f" / "b.log.1", 400, age=200)
    write(tmp_path / "f" / "c.log", 400, age=100)
    write(tmp_path / "g" / "d.log", 400, age=500)
    retention = LogRetention(tmp_path, 900, None, lambda: [])
    assert retention.enforce() == 1
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["b.log.1", "c.log"]
    assert (tmp_path / "g" / "d.log").exists()


def test_running_streams_over_the_size_are_rotated_and_the_old_part_deleted(tmp_path):
    stream = LogStream(tmp_path / "f" / "busy.log", 1 << 20)
    for n in range(200):
        stream.platform(f"line {n} " + "y" * 40)
    stream.flush()
    retention = LogRetention(tmp_path, 1000, None, lambda: [stream])
    assert retention.enforce() == 1
    assert not (tmp_path / "f" / "busy.log.1").exists()
    stream.platform("after the rotation")
    stream.flush()
    assert [text for _, _, text in LogReader(tmp_path).read("f")[0]] == ["after the rotation"]
    stream.close()


def test_the_log_lines_of_each_run_of_a_request_are_found_in_its_environment(tmp_path):
    stream = LogStream(tmp_path / "f" / "2026-01-01-[$LATEST]abc123.log", 1 << 20)
    stream.platform("INIT_START Runtime Version: python3.12")
    stream.write_output(b"importing\n")
    for request in ("r1", "other", "r1"):
        stream.platform(f"START RequestId: {request} Version: $LATEST")
        stream.write_output(f"working on {request}\n".encode())
        stream.platform(f"END RequestId: {request}")
        stream.platform(f"REPORT RequestId: {request}\tDuration: 1.00 ms")
    stream.close()
    runs = LogReader(tmp_path).runs("f", "abc123", "r1")
    texts = [[text for _, text in run] for run in runs]
    assert texts[0] == [
        "INIT_START Runtime Version: python3.12",
        "importing",
        "START RequestId: r1 Version: $LATEST",
        "working on r1",
        "END RequestId: r1",
        "REPORT RequestId: r1\tDuration: 1.00 ms",
    ]
    assert texts[1] == texts[0][2:]
    assert len(texts) == 2
    assert LogReader(tmp_path).runs("f", "abc123", "other")[0][0][1].startswith("START")
    assert LogReader(tmp_path).runs("f", "../etc", "r1") == []


@pytest.mark.parametrize(
    "value, seconds",
    [("7d", 604800), ("12h", 43200), ("30m", 1800), ("45s", 45), ("3600", 3600), ("0", 0)],
)
def test_durations_of_the_retention_flags(value, seconds):
    from lamina.config import duration

    assert duration(value) == seconds
