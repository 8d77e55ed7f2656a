"""One Store suite, run against every back end: they must behave alike."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from lamina.domain import errors
from lamina.domain.model import AttemptRecord, FunctionConfig, InvocationSummary
from lamina.storage.memory import MemoryStore
from lamina.storage.sqlite import SqliteStore

CONFIG = FunctionConfig(name="f", runtime="python3.12", handler="a.b",
                        role="arn:aws:iam::123456789012:role/r", code_sha256="c2hh",
                        code_size=10, revision_id="rev1",
                        last_modified="2026-01-01T00:00:00.000+0000",
                        environment={"AB": "1"}, architectures=("arm64",))


@pytest.fixture(params=["memory", "sqlite"])
def make_store(request, tmp_path) -> Callable[[], object]:
    def make():
        return MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "s.db")
    return make


def run(make_store, body: Callable[[object], Awaitable[None]]) -> None:
    async def main() -> None:
        store = make_store()
        await store.open()
        try:
            await body(store)
        finally:
            await store.close()
    asyncio.run(main())


def test_functions_round_trip(make_store):
    async def body(store):
        await store.create_function(CONFIG, {"team": "x"}, time.time())
        with pytest.raises(errors.ResourceConflict):
            await store.create_function(CONFIG, {}, time.time())
        assert await store.list_versions() == [CONFIG]
        assert await store.list_function_tags() == {"f": {"team": "x"}}
        updated = CONFIG.replace(revision_id="rev2", timeout=9)
        await store.put_version(updated)
        await store.put_version(CONFIG.replace(version="1"))
        assert await store.list_versions() == [updated, CONFIG.replace(version="1")]
        await store.delete_function("f")
        assert await store.list_versions() == []
        assert await store.list_function_tags() == {}
    run(make_store, body)


def test_invocation_records(make_store):
    async def body(store):
        first = InvocationSummary("r1", "f", None, "RequestResponse", 100.0)
        second = InvocationSummary("r2", "g", "$LATEST", "RequestResponse", 200.0)
        await store.write_records([first, second], [
            AttemptRecord("r1", 100.0, "accepted", {"type": "RequestResponse"}),
            AttemptRecord("r1", 100.5, "attempt", {"outcome": "success", "start": "cold"}),
        ])
        first.status, first.finished_at, first.attempts = "success", 100.5, 1
        await store.write_records([first], [])
        listed = await store.list_invocations(None, 10, float("inf"))
        assert [s.request_id for s in listed] == ["r2", "r1"]
        assert listed[1].status == "success" and listed[1].attempts == 1
        assert [s.request_id for s in await store.list_invocations("f", 10, 1e18)] == ["r1"]
        assert await store.list_invocations(None, 10, 150.0) == [listed[1]]
        assert len(await store.list_invocations(None, 1, 1e18)) == 1
        summary, records = await store.get_invocation("r1")
        assert summary == listed[1]
        assert [(r.kind, r.detail) for r in records] == [
            ("accepted", {"type": "RequestResponse"}),
            ("attempt", {"outcome": "success", "start": "cold"})]
        assert await store.get_invocation("nope") == (None, [])
    run(make_store, body)


def test_sqlite_survives_reopening(tmp_path):
    async def main() -> None:
        store = SqliteStore(tmp_path / "s.db")
        await store.open()
        await store.create_function(CONFIG, {}, time.time())
        await store.close()
        again = SqliteStore(tmp_path / "s.db")
        await again.open()
        assert await again.list_versions() == [CONFIG]
        await again.close()
    asyncio.run(main())
