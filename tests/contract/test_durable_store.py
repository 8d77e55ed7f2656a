"""Durable executions in every Store back end: a row per execution, its operations and history
in rows of their own, written together under the row's compare-and-set."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

import pytest

from lamina.domain import durable
from lamina.storage.memory import MemoryStore
from lamina.storage.sqlite import SqliteStore
from tests.contract.test_store import run

ARN = "arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST/durable-execution/n/x"


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def back_end(request, tmp_path) -> Callable[[], object]:
    if request.param == "postgres":
        from lamina.storage.postgres import PostgresStore

        url = request.getfixturevalue("postgres").new_database(migrated=True)
        return lambda: PostgresStore(url)
    if request.param == "sqlite":
        return lambda: SqliteStore(tmp_path / "s.db")
    return MemoryStore


def _step(op_id: str, payload: str) -> list[dict]:
    return [
        {"Id": op_id, "Type": "STEP", "SubType": "Step", "Action": "START"},
        {"Id": op_id, "Type": "STEP", "SubType": "Step", "Action": "SUCCEED", "Payload": payload},
    ]


async def _started(store) -> tuple[int, durable.Execution]:
    ex = durable.start(ARN, "x", "f", "$LATEST", "n", "{}", 300, 14, 10.0)
    assert await store.insert_execution(ex)
    assert not await store.insert_execution(
        durable.start(ARN + "2", "y", "f", "$LATEST", "n", "{}", 300, 14, 10.0)
    )  # same name
    seq, ex = await store.get_execution(ARN, all)
    durable.begin_invocation(ex, "r1", 11.0)
    assert await store.update_execution(ex, seq)
    return await store.get_execution(ARN, all)


def test_a_checkpoint_writes_operations_and_events_that_read_back_in_order(back_end):
    async def body(store):
        seq, ex = await _started(store)
        durable.checkpoint(ex, ex.token(), _step("a", '"one"') + _step("b", '"two"'), 12.0)
        assert await store.update_execution(ex, seq)
        seq, again = await store.get_execution(ARN, all)
        assert list(again.operations) == ["x", "a", "b"]  # the order they started in
        assert again.operations["b"]["StepDetails"]["Result"] == '"two"'
        assert again.event_count == 5
        events = await store.execution_events(ARN, 0, 100, False)
        assert [(e["EventId"], e["EventType"]) for e in events] == [
            (1, "ExecutionStarted"),
            (2, "StepStarted"),
            (3, "StepSucceeded"),
            (4, "StepStarted"),
            (5, "StepSucceeded"),
        ]
        assert [e["EventId"] for e in await store.execution_events(ARN, 1, 2, True)] == [4, 3]
        _, some = await store.get_execution(ARN, ["b"])
        assert set(some.operations) == {"x", "b"} and not some.complete  # root always
        _, row = await store.get_execution(ARN)
        assert row.operations == {} and row.event_count == 5

    run(back_end, body)


def test_the_loser_of_a_compare_and_set_writes_nothing(back_end):
    async def body(store):
        seq, first = await _started(store)
        _, second = await store.get_execution(ARN, all)
        durable.checkpoint(first, first.token(), _step("a", '"winner"'), 12.0)
        durable.checkpoint(second, second.token(), _step("a", '"loser"') + _step("c", '"c"'), 12.0)
        assert await store.update_execution(first, seq)
        assert not await store.update_execution(second, seq)
        _, now = await store.get_execution(ARN, all)
        assert list(now.operations) == ["x", "a"]
        assert now.operations["a"]["StepDetails"]["Result"] == '"winner"'
        events = await store.execution_events(ARN, 0, 100, False)
        assert len(events) == now.event_count == 3
        assert "c" not in {e.get("Id") for e in events}
        assert await store.purge_executions(10**12) == 0  # still running: kept

    run(back_end, body)


def test_a_row_of_the_first_form_still_reads(tmp_path):
    """Migration 0015's form kept operations and history in the row's document."""

    async def body(store):
        ex = durable.start(ARN, "x", "f", "$LATEST", "n", "{}", 300, 14, 10.0)
        assert await store.insert_execution(ex)

    run(lambda: SqliteStore(tmp_path / "s.db"), body)
    db = sqlite3.connect(tmp_path / "s.db")
    doc = json.loads(db.execute("SELECT doc FROM durable_executions").fetchone()[0])
    doc.update(operations={"x": {"Id": "x"}}, events=[{"EventId": 1}])
    db.execute("UPDATE durable_executions SET doc = ?", (json.dumps(doc),))
    db.commit()
    db.close()

    async def read(store):
        _, ex = await store.get_execution(ARN)
        assert (ex.arn, ex.status) == (ARN, "RUNNING")

    run(lambda: SqliteStore(tmp_path / "s.db"), read)
