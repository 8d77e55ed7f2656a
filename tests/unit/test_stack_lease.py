"""A stack operation leased to the engine that runs it, in the store (SQLite's and memory's
statements; PostgreSQL's run in tests/acceptance/test_deploy_cluster.py): writes are taken
only while the stack is not in progress or is the writer's; a takeover is one atomic claim
from the engine named."""

from __future__ import annotations

import asyncio

import pytest

from lamina.domain.stacks import Stack, StackEvent
from lamina.storage.memory import MemoryStore
from lamina.storage.sqlite import SqliteStore


def _stack(status: str, engine: str | None) -> Stack:
    return Stack("app", "arn:stack/app/1", status, {}, options={"engine": engine})


def _event(seq: int) -> StackEvent:
    return StackEvent("app", seq, 1.0, "app", "AWS::CloudFormation::Stack", "X")


@pytest.mark.parametrize("kind", ["sqlite", "memory"])
def test_writes_and_takeover_follow_the_lease(kind, tmp_path):
    async def main() -> None:
        store = SqliteStore(tmp_path / "lamina.db") if kind == "sqlite" else MemoryStore()
        if kind == "sqlite":
            await store.open()
        try:
            # a new stack, then A's operation: A writes, B cannot
            assert await store.put_stack_owned(_stack("CREATE_IN_PROGRESS", "A"), [_event(1)], "A")
            assert not await store.put_stack_owned(
                _stack("CREATE_IN_PROGRESS", "B"), [_event(2)], "B"
            )
            assert [e.seq for e in await store.list_stack_events("arn:stack/app/1", 0)] == [1]
            # B takes it over from A (dead), once; C, claiming from A too, finds it gone
            assert await store.claim_stack(_stack("CREATE_IN_PROGRESS", "B"), "A")
            assert not await store.claim_stack(_stack("CREATE_IN_PROGRESS", "C"), "A")
            (found,) = await store.list_stacks()
            assert found.options["engine"] == "B" and found.status == "CREATE_IN_PROGRESS"
            # A, back from a stall, is fenced; B goes on and ends the operation
            assert not await store.put_stack_owned(_stack("CREATE_COMPLETE", "A"), [], "A")
            assert await store.put_stack_owned(_stack("ROLLBACK_COMPLETE", "B"), [_event(3)], "B")
            # a stack not in progress is anyone's to begin an operation on; not a claim's
            assert not await store.claim_stack(_stack("ROLLBACK_COMPLETE", "C"), "B")
            assert await store.put_stack_owned(_stack("CREATE_IN_PROGRESS", "C"), [], "C")
            (found,) = await store.list_stacks()
            assert found.options["engine"] == "C"
            assert [e.seq for e in await store.list_stack_events("arn:stack/app/1", 0)] == [1, 3]
        finally:
            if kind == "sqlite":
                await store.close()

    asyncio.run(main())
