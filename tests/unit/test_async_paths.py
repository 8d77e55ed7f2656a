"""The async dispatcher's other exits, in process (memory store, fake pool, virtual clock):
destinations owed on success and on failure, an event whose function went away, a throttle
from the pool, a restart that takes back a dead engine's claims, and a drain."""

from __future__ import annotations

import asyncio

from lamina.domain import errors
from tests.unit.test_async_service import T0, engine, settle

QUEUE = "arn:aws:sqs:us-east-1:123456789012:"


def kinds(store, request_id: str) -> list[str]:
    return [r.kind for r in store.records if r.request_id == request_id]


def test_destinations_are_owed_on_success_and_after_the_last_retry():
    async def main() -> None:
        clock, store, pool, service, configs = await engine()
        await configs.put(
            "f", None, merge=False, retries=0, on_success=QUEUE + "ok", on_failure=QUEUE + "bad"
        )
        pool.failing = False
        ok = await service.accept("f", None, b'{"n": 1}')
        await settle()
        pool.failing = True
        bad = await service.accept("f", None, b'{"n": 2}')
        await settle()
        await service.recorder.flush()
        owed = sorted((d.target, d.request_id) for d, _, _ in store.deliveries.values())
        assert owed == [(QUEUE + "bad", bad), (QUEUE + "ok", ok)]
        assert store.events == {}, "both finished"
        assert "discarded" in kinds(store, bad) and "discarded" not in kinds(store, ok)
        await service.close()

    asyncio.run(main())


def test_an_event_whose_function_went_away_is_dropped_at_its_retry():
    async def main() -> None:
        clock, store, pool, service, _ = await engine()
        request_id = await service.accept("f", None, b"{}")
        await settle()
        assert len(pool.runs) == 1 and request_id in store.events  # retry in 60 s
        await service.functions.delete("f", None)
        clock.advance(60)
        await settle()
        await service.recorder.flush()
        assert len(pool.runs) == 1 and store.events == {}
        assert kinds(store, request_id)[-1] == "dropped"
        await service.close()

    asyncio.run(main())


def test_a_throttle_from_the_pool_puts_the_event_back_without_counting_an_invocation():
    async def main() -> None:
        clock, store, pool, service, _ = await engine()

        async def refuse(config, tenant_id=None):
            raise errors.TooManyRequests("ConcurrentInvocationLimitExceeded")

        pool.acquire = refuse
        request_id = await service.accept("f", None, b"{}")
        await settle()
        await service.recorder.flush()
        event, owner, _ = store.events[request_id]
        assert (event.invocations, event.throttles, owner) == (0, 1, None)
        assert T0 < event.due_at <= T0 + 300, "retried within Lambda's throttle back-off"
        assert "throttled" in kinds(store, request_id)
        assert "retry_scheduled" in kinds(store, request_id)
        await service.close()

    asyncio.run(main())


def test_a_restart_takes_back_the_claims_of_the_engine_before_it():
    async def main() -> None:
        clock, store, pool, service, _ = await engine()
        pool.block = asyncio.Event()  # the attempt runs and never ends: the engine "dies"
        request_id = await service.accept("f", None, b"{}")
        await settle()
        assert store.events[request_id][1] is not None, "claimed"
        await service.close()
        pool.block = None
        pool.failing = False
        await service.start()  # the store says every claim is stale: it comes back
        await settle()
        assert [rid for rid, _ in pool.runs] == [request_id, request_id]
        assert store.events == {}
        await service.close()

    asyncio.run(main())


def test_a_drain_lets_running_attempts_finish_and_claims_nothing_more():
    async def main() -> None:
        clock, store, pool, service, _ = await engine()
        pool.block = asyncio.Event()
        pool.failing = False
        first = await service.accept("f", None, b"{}")
        await settle()
        draining = asyncio.ensure_future(service.drain())
        await settle()
        assert not draining.done(), "it waits for the attempt in flight"
        second = await service.accept("f", None, b"{}")
        await settle()
        pool.block.set()
        await draining
        assert [rid for rid, _ in pool.runs] == [first]
        assert list(store.events) == [second] and store.events[second][1] is None
        await service.close()

    asyncio.run(main())
