"""service.destinations and service.batches in process: the memory store, a virtual clock,
a fake environment pool, a sender that fails as told. No engine process.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from lamina.domain import retry
from lamina.domain.code import CodeSource
from lamina.domain.model import AsyncEvent, Delivery, EventSourceMapping, InvocationSummary
from lamina.domain.settings import FunctionSettings
from lamina.service.attempt import Attempts
from lamina.service.batches import BatchRunner
from lamina.service.clock import VirtualClock
from lamina.service.concurrency import ConcurrencyLimiter
from lamina.service.destinations import Destinations
from lamina.service.event_configs import EventConfigService
from lamina.service.functions import CreateFunction, FunctionService
from lamina.service.records import Recorder
from lamina.storage.memory import MemoryStore
from tests.unit.test_async_service import T0, FakePackages, FakePool, settle

QUEUE = "arn:aws:sqs:us-east-1:123456789012:failures"


class Sender:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[Delivery] = []

    async def send(self, delivery: Delivery) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("queue unreachable")
        self.sent.append(delivery)

    async def close(self) -> None:
        return None


class Kept:
    def __init__(self) -> None:
        self.kinds: list[str] = []

    def summary(self, summary: InvocationSummary) -> None:
        return None

    def record(self, request_id: str, kind: str, detail: dict[str, Any]) -> None:
        self.kinds.append(kind)


async def parts(sender: Sender | None = None) -> dict[str, Any]:
    clock, store = VirtualClock(T0), MemoryStore()
    pool, limiter, kept = FakePool(clock), ConcurrencyLimiter(1000), Kept()
    recorder = Recorder(store, clock, observer=kept)
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
    configs = EventConfigService(store, functions, clock)
    await configs.put("f", None, merge=False, on_failure=QUEUE)
    destinations = Destinations(store, functions, configs, recorder, clock, sender, "engine")
    return {
        "clock": clock,
        "store": store,
        "pool": pool,
        "limiter": limiter,
        "kept": kept,
        "recorder": recorder,
        "functions": functions,
        "destinations": destinations,
    }


def test_a_failed_event_owes_its_on_failure_record() -> None:
    async def main() -> None:
        p = await parts()
        event = AsyncEvent("r-1", "f", None, b'{"order":42}', T0, T0, invocations=3)
        owed = p["destinations"].owed(
            event, retry.RETRIES_EXHAUSTED, None, "$LATEST", success=False
        )
        assert [(d.kind, d.target) for d in owed] == [("on_failure", QUEUE)]
        record = json.loads(owed[0].body)
        assert record["requestContext"]["condition"] == "RetriesExhausted"
        assert record["requestContext"]["approximateInvokeCount"] == 3
        assert record["requestPayload"] == {"order": 42}
        assert p["destinations"].owed(event, "Success", None, "$LATEST", success=True) == []

    asyncio.run(main())


def test_a_delivery_is_retried_with_back_off_and_every_try_recorded() -> None:
    async def main() -> None:
        sender = Sender(failures=2)
        p = await parts(sender)
        clock, destinations = p["clock"], p["destinations"]
        destinations.start()
        await destinations.owe(Delivery("d-1", "r-1", "on_failure", QUEUE, b"{}", {}, 0, T0))
        await settle()
        assert sender.sent == [] and p["store"].deliveries["d-1"][0].attempts == 1
        for attempt in (1, 2):
            clock.advance(retry.throttle_delay(attempt))
            await settle()
        assert [d.id for d in sender.sent] == ["d-1"] and p["store"].deliveries == {}
        p["recorder"].observe_pending()
        assert p["kept"].kinds == [
            "destination_retry",
            "destination_retry",
            "destination_delivered",
        ]
        await destinations.close()

    asyncio.run(main())


def test_a_lambda_destination_becomes_a_new_async_event() -> None:
    async def main() -> None:
        p = await parts()
        accepted: list[tuple[str, str | None, bytes]] = []

        async def accept(name: str, qualifier: str | None, payload: bytes) -> str:
            accepted.append((name, qualifier, payload))
            return "r-2"

        destinations = p["destinations"]
        destinations.accept = accept
        destinations.start()
        target = "arn:aws:lambda:us-east-1:123456789012:function:other:live"
        await destinations.owe(Delivery("d-1", "r-1", "on_success", target, b"{}", {}, 0, T0))
        await settle()
        assert accepted == [("other", "live", b"{}")]
        await destinations.close()

    asyncio.run(main())


class State:
    def __init__(self) -> None:
        self.results: list[str] = []
        self.seen: dict[str, Any] = {}

    def current(self, mapping_id: str) -> EventSourceMapping | None:
        return None

    def processed(self, mapping_id: str, result: str) -> None:
        self.results.append(result)

    def observe(self, mapping_id: str, **seen: Any) -> None:
        self.seen.update(seen)


def test_a_batch_runs_through_the_attempt_and_a_throttle_comes_back_as_none() -> None:
    async def main() -> None:
        p = await parts()
        owed: list[Delivery] = []

        async def owe(delivery: Delivery) -> None:
            owed.append(delivery)

        attempts = Attempts(p["limiter"], p["pool"], p["recorder"], p["clock"])
        runner = BatchRunner(
            attempts, p["functions"], p["store"], p["recorder"], p["clock"], State(), owe
        )
        mapping = EventSourceMapping(
            "m-1", "f", None, QUEUE, "sqs", "Enabled", "", T0, on_failure=QUEUE
        )
        request_id = runner.begin_batch(mapping, {"records": 2})
        outcome = await runner.invoke_batch(mapping, request_id, b'{"Records":[]}', 1)
        assert outcome is not None and outcome.function_error  # FakePool fails by default
        assert p["pool"].runs[0][0] == request_id
        p["limiter"].set_reserved("f", 0)
        assert await runner.invoke_batch(mapping, request_id, b"{}", 2) is None
        await runner.send_on_failure(mapping, request_id, b"record")
        assert [(d.request_id, d.target, d.body) for d in owed] == [(request_id, QUEUE, b"record")]
        assert runner.function_timeout(mapping) == 3
        assert runner.function_arn(mapping).endswith(":function:f")
        p["recorder"].observe_pending()
        assert p["kept"].kinds == ["accepted", "attempt", "throttled"]

    asyncio.run(main())
