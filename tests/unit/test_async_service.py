"""The async dispatcher over the memory store, a fake environment pool and a virtual clock.

No sockets, no processes: engine time moves only when the test advances it, so Lambda's
one- and two-minute retry delays are checked to the millisecond.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from lamina.domain.code import CodeSource
from lamina.domain.model import Invocation, InvocationOutcome, Package
from lamina.domain.settings import FunctionSettings
from lamina.service.async_invoke import AsyncInvokeService
from lamina.service.attempt import Attempts
from lamina.service.clock import VirtualClock
from lamina.service.concurrency import ConcurrencyLimiter
from lamina.service.destinations import Destinations
from lamina.service.event_configs import EventConfigService
from lamina.service.functions import CreateFunction, FunctionService
from lamina.service.records import Recorder
from lamina.storage.memory import MemoryStore

T0 = 1_700_000_000.0


class FakePackages:
    def put(self, data: bytes, direct: bool = True) -> Package:
        return Package("c2hh", len(data), "00", Path("/nonexistent"))

    def has(self, key: str) -> bool:
        return True


class FakeEnvironment:
    id = "env-1"

    def __init__(self, pool: FakePool) -> None:
        self.pool = pool

    async def invoke(
        self, invocation: Invocation, want_tail: bool = False, stream_sink=None
    ) -> InvocationOutcome:
        self.pool.runs.append((invocation.request_id, self.pool.clock.now()))
        if self.pool.block is not None:
            await self.pool.block.wait()
        failing = self.pool.failing
        body = {"errorMessage": "no", "errorType": "E"} if failing else {"ok": True}
        return InvocationOutcome(
            json.dumps(body).encode(), function_error=failing, error_type="E" if failing else None
        )


class FakePool:
    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.runs: list[tuple[str, float]] = []
        self.failing = True
        self.block: asyncio.Event | None = None

    async def acquire(self, config, tenant_id=None):
        return FakeEnvironment(self)

    def release(self, env) -> None:
        return None

    def retire(self, name: str, version: str | None = None) -> None:
        return None


async def engine(reserved: int | None = None, may_claim=None):
    clock = VirtualClock(T0)
    store = MemoryStore()
    pool = FakePool(clock)
    limiter = ConcurrencyLimiter(1000)
    recorder = Recorder(store, clock)
    functions = FunctionService(store, FakePackages(), pool, limiter, "us-east-1", "123456789012")
    await functions.create(
        CreateFunction(
            "f",
            FunctionSettings(
                runtime="python3.12", handler="a.b", role="arn:aws:iam::123456789012:role/r"
            ),
            CodeSource(b"zip"),
        )
    )
    await asyncio.sleep(0)  # Pending → Active
    if reserved is not None:
        await functions.put_concurrency("f", reserved)
    configs = EventConfigService(store, functions, clock)
    attempts = Attempts(limiter, pool, recorder, clock)
    destinations = Destinations(store, functions, configs, recorder, clock, None, "engine")
    service = AsyncInvokeService(
        store,
        functions,
        configs,
        attempts,
        limiter,
        recorder,
        clock,
        destinations,
        **({"may_claim": may_claim} if may_claim else {}),
    )
    await service.start()
    return clock, store, pool, service, configs


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def test_function_errors_retry_exactly_60_and_120_engine_seconds_later():
    async def main() -> None:
        clock, store, pool, service, _ = await engine()
        request_id = await service.accept("f", None, b"{}")
        await settle()
        assert pool.runs == [(request_id, T0)]
        clock.advance(59.999)
        await settle()
        assert len(pool.runs) == 1
        clock.advance(0.001)
        await settle()
        clock.advance(120)
        await settle()
        assert [t - T0 for _, t in pool.runs] == [0, 60, 180]
        clock.advance(10_000)
        await settle()
        assert len(pool.runs) == 3
        assert store.events == {}
        await service.close()

    asyncio.run(main())


def test_reserved_concurrency_one_runs_queued_events_one_at_a_time():
    async def main() -> None:
        clock, store, pool, service, _ = await engine(reserved=1)
        pool.failing = False
        pool.block = asyncio.Event()
        ids = [await service.accept("f", None, b"{}") for _ in range(50)]
        await settle()
        assert len(pool.runs) == 1
        claimed = [e for e, owner, _ in store.events.values() if owner is not None]
        assert len(claimed) == 1, "only as many events are claimed as can run"
        pool.block.set()
        for _ in range(5000):
            await asyncio.sleep(0)
            if len(pool.runs) == 50:
                break
        assert sorted(r for r, _ in pool.runs) == sorted(ids)
        await service.close()

    asyncio.run(main())


def test_an_engine_that_cannot_trust_its_cluster_lease_claims_nothing():
    """Self-fencing (docs/CLUSTER.md): past its trusted lease an engine may be counted dead
    and what it claimed run again elsewhere, so it claims nothing until a renewal returns."""

    async def main() -> None:
        trusted = False
        clock, store, pool, service, _ = await engine(may_claim=lambda: trusted)
        request_id = await service.accept("f", None, b"{}")
        await settle()
        assert pool.runs == []
        assert [owner for _, owner, _ in store.events.values()] == [None], "not claimed"
        trusted = True
        service.wake()
        await settle()
        assert [r for r, _ in pool.runs] == [request_id]
        await service.close()

    asyncio.run(main())


def test_event_age_and_zero_concurrency_with_no_runs():
    async def main() -> None:
        clock, store, pool, service, configs = await engine()
        await configs.put("f", None, merge=False, max_age=60)
        await service.accept("f", None, b"{}")
        await settle()
        clock.advance(3600)
        await settle()
        assert len(pool.runs) == 1, "the retry would start after the event's age: discarded"
        await service.functions.put_concurrency("f", 0)
        await service.accept("f", None, b"{}")
        await settle()
        assert len(pool.runs) == 1 and store.events == {}
        await service.close()

    asyncio.run(main())
