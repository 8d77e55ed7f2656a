"""service.attempt: the one invocation attempt, in process, with a fake environment pool.

What every invocation path relies on: a slot is held exactly while the function runs and is
given back on every exit (success, throttle, an environment that fails to start, an error
inside the engine); a throttle comes back as `Throttled` without an environment; the
attempt's records go to the caller's timeline or to the recorder; injected faults stand in
for the environment.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from lamina.domain import errors
from lamina.domain.model import (
    AttemptRecord,
    FunctionConfig,
    Invocation,
    InvocationOutcome,
    InvocationSummary,
)
from lamina.service.attempt import Attempts, Throttled
from lamina.service.clock import VirtualClock
from lamina.service.concurrency import RESERVED_FULL, ConcurrencyLimiter
from lamina.service.faults import FaultRule, FaultService
from lamina.service.records import Recorder
from lamina.storage.memory import MemoryStore

CONFIG = FunctionConfig(
    name="f",
    runtime="python3.12",
    handler="a.b",
    role="arn:aws:iam::123456789012:role/r",
    code_sha256="c2hh",
    code_size=10,
    revision_id="rev",
    last_modified="2026-01-01T00:00:00.000+0000",
)


class FakeEnvironment:
    def __init__(self, pool: FakePool, number: int) -> None:
        self.pool = pool
        self.id = f"env-{number}"

    async def invoke(
        self,
        invocation: Invocation,
        want_tail: bool = False,
        stream_sink: asyncio.Queue[Any] | None = None,
    ) -> InvocationOutcome:
        self.pool.in_flight_seen.append(self.pool.limiter.in_flight[invocation.config.name])
        self.pool.tails.append(want_tail)
        if self.pool.fail_inside is not None:
            raise self.pool.fail_inside
        return InvocationOutcome(
            b'{"ok":true}',
            duration_ms=1.23456,
            init_ms=None if self.pool.acquired > 1 else 100.0,
            environment_id=self.id,
        )


class FakePool:
    """Hands out fake environments; counts what is borrowed and given back."""

    def __init__(self, limiter: ConcurrencyLimiter) -> None:
        self.limiter = limiter
        self.acquired = 0
        self.released = 0
        self.in_flight_seen: list[int] = []
        self.tails: list[bool] = []
        self.refuse: errors.LaminaError | None = None
        self.fail_inside: BaseException | None = None

    async def acquire(
        self, config: FunctionConfig, tenant_id: str | None = None
    ) -> FakeEnvironment:
        if self.refuse is not None:
            raise self.refuse
        self.acquired += 1
        return FakeEnvironment(self, self.acquired)

    def release(self, env: FakeEnvironment) -> None:
        self.released += 1


class Kept:
    """The recorder's observer: what it was handed."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, dict[str, Any]]] = []

    def summary(self, summary: InvocationSummary) -> None:
        return None

    def record(self, request_id: str, kind: str, detail: dict[str, Any]) -> None:
        self.records.append((request_id, kind, detail))


def parts(
    reserved: int | None = None, faults: FaultService | None = None
) -> tuple[Attempts, FakePool, ConcurrencyLimiter, Recorder, Kept]:
    clock = VirtualClock(1_700_000_000.0)
    limiter = ConcurrencyLimiter(1000)
    if reserved is not None:
        limiter.set_reserved("f", reserved)
    pool = FakePool(limiter)
    kept = Kept()
    recorder = Recorder(MemoryStore(), clock, observer=kept)
    attempts = Attempts(limiter, pool, recorder, clock, faults)  # type: ignore[arg-type]
    return attempts, pool, limiter, recorder, kept


def invocation(request_id: str = "r-1") -> Invocation:
    return Invocation(request_id, CONFIG, "arn:aws:lambda:us-east-1:123456789012:function:f", b"{}")


def test_an_attempt_holds_a_slot_while_it_runs_and_records_itself_in_the_timeline() -> None:
    attempts, pool, limiter, recorder, kept = parts()
    timeline: list[AttemptRecord] = []
    outcome = asyncio.run(attempts.run(invocation(), attempt=2, want_tail=True, timeline=timeline))
    assert isinstance(outcome, InvocationOutcome) and outcome.payload == b'{"ok":true}'
    assert pool.in_flight_seen == [1] and pool.tails == [True]
    assert limiter.in_flight["f"] == 0 and limiter.unreserved_in_flight == 0
    assert (pool.acquired, pool.released) == (1, 1)
    assert [(r.request_id, r.kind) for r in timeline] == [("r-1", "attempt")]
    assert timeline[0].at == 1_700_000_000.0
    assert timeline[0].detail == {
        "attempt": 2,
        "environment": "env-1",
        "start": "cold",
        "outcome": "success",
        "duration_ms": 1.235,
        "init_ms": 100.0,
    }
    recorder.observe_pending()
    assert kept.records == []  # a caller's timeline is the caller's to record


def test_without_a_timeline_the_records_go_to_the_recorder() -> None:
    attempts, pool, _, recorder, kept = parts()

    async def twice() -> None:
        await attempts.run(invocation("a"))
        await attempts.run(invocation("b"), attempt=3)

    asyncio.run(twice())
    recorder.observe_pending()
    assert [(r, k, d["attempt"], d["start"]) for r, k, d in kept.records] == [
        ("a", "attempt", 1, "cold"),
        ("b", "attempt", 3, "warm"),
    ]
    assert "init_ms" not in kept.records[1][2]


def test_no_slot_is_throttled_without_an_environment() -> None:
    attempts, pool, limiter, _, _ = parts(reserved=1)

    async def while_one_runs() -> Any:
        async with limiter.lease("f"):
            return await attempts.run(invocation())

    outcome = asyncio.run(while_one_runs())
    assert isinstance(outcome, Throttled)
    assert outcome.reason == RESERVED_FULL and outcome.error.status == 429
    assert pool.acquired == 0 and limiter.in_flight["f"] == 0


def test_reserved_zero_throttles_every_attempt() -> None:
    attempts, pool, limiter, _, _ = parts(reserved=0)
    outcome = asyncio.run(attempts.run(invocation()))
    assert isinstance(outcome, Throttled) and pool.acquired == 0


def test_an_environment_that_cannot_start_gives_the_slot_back() -> None:
    attempts, pool, limiter, _, _ = parts()
    pool.refuse = errors.TooManyRequests("ConcurrentInvocationLimitExceeded")
    outcome = asyncio.run(attempts.run(invocation()))
    assert isinstance(outcome, Throttled) and outcome.reason == "ConcurrentInvocationLimitExceeded"
    assert limiter.unreserved_in_flight == 0 and limiter.in_flight["f"] == 0


def test_other_refusals_and_engine_errors_propagate_with_slot_and_environment_back() -> None:
    attempts, pool, limiter, _, _ = parts()
    pool.refuse = errors.ResourceNotReady("The environment could not start.")
    with pytest.raises(errors.LaminaError):
        asyncio.run(attempts.run(invocation()))
    assert limiter.in_flight["f"] == 0
    pool.refuse, pool.fail_inside = None, RuntimeError("the engine broke")
    with pytest.raises(RuntimeError):
        asyncio.run(attempts.run(invocation()))
    assert (pool.acquired, pool.released) == (1, 1) and limiter.in_flight["f"] == 0


def test_a_cancelled_attempt_gives_slot_and_environment_back() -> None:
    attempts, pool, limiter, _, _ = parts()
    pool.fail_inside = asyncio.CancelledError()
    with pytest.raises(asyncio.CancelledError):
        asyncio.run(attempts.run(invocation()))
    assert (pool.acquired, pool.released) == (1, 1) and limiter.in_flight["f"] == 0


def test_injected_faults_stand_in_for_the_environment() -> None:
    faults = FaultService()
    faults.set("f", [FaultRule("throttle", attempts=[1]), FaultRule("error", attempts=[2])])
    attempts, pool, limiter, recorder, kept = parts(faults=faults)

    async def three() -> list[Any]:
        return [await attempts.run(invocation(), attempt=n) for n in (1, 2, 3)]

    first, second, third = asyncio.run(three())
    assert isinstance(first, Throttled) and limiter.in_flight["f"] == 0
    assert isinstance(second, InvocationOutcome) and second.function_error
    assert second.error_type == "InjectedError" and second.environment_id == "fault"
    assert isinstance(third, InvocationOutcome) and not third.function_error
    assert pool.acquired == 1  # only the third ran in an environment
    recorder.observe_pending()
    assert [(k, d.get("action"), d["attempt"]) for _, k, d in kept.records] == [
        ("fault_injected", "throttle", 1),
        ("fault_injected", "error", 2),
        ("attempt", None, 2),
        ("attempt", None, 3),
    ]
