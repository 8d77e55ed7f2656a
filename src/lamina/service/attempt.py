"""One invocation attempt: the path every invocation takes to run its function (spec §8.2).

`Attempts.run` takes a concurrency slot (`limiter.lease`: taken in one plain call, or awaited
when engines share the store's quotas), borrows an environment (or answers with an injected
fault), runs the invocation in it, writes the attempt's records and gives the slot and the
environment back on every exit path. It returns the outcome, or
`Throttled` when the function did not run (no slot, no environment could start, an injected
throttle). The synchronous path (service.invoke) raises the throttle to its caller; the
asynchronous dispatcher, the event source mappings' batches and durable executions retry it
with their own rules. One implementation, so the four cannot drift apart.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from lamina.domain import errors
from lamina.domain.model import AttemptRecord, Invocation, InvocationOutcome
from lamina.service.concurrency import ConcurrencyLimiter
from lamina.service.faults import FaultService
from lamina.service.ports import Clock, EnvironmentPool
from lamina.service.records import Recorder


@dataclass(frozen=True, slots=True)
class Throttled:
    """The function did not run: `error` is the 429 Lambda answers (its Reason says why)."""

    error: errors.TooManyRequests

    @property
    def reason(self) -> str:
        return self.error.reason


class Attempts:
    """Runs one attempt of an invocation (see the module docstring)."""

    __slots__ = ("clock", "faults", "limiter", "pool", "recorder")

    def __init__(
        self,
        limiter: ConcurrencyLimiter,
        pool: EnvironmentPool,
        recorder: Recorder,
        clock: Clock,
        faults: FaultService | None = None,
    ) -> None:
        self.limiter = limiter
        self.pool = pool
        self.recorder = recorder
        self.clock = clock
        self.faults = faults or FaultService()

    async def run(
        self,
        invocation: Invocation,
        attempt: int = 1,
        want_tail: bool = False,
        stream_sink: asyncio.Queue[Any] | None = None,
        timeline: list[AttemptRecord] | None = None,
    ) -> InvocationOutcome | Throttled:
        """Run attempt number `attempt` of `invocation` in a slot and an environment. Its
        records go to `timeline` when given (a synchronous call keeps its own), else to the
        recorder."""
        config = invocation.config
        lease = self.limiter.lease(config.name, config.version)
        try:
            if not lease.take():  # engines sharing the store: the grant may have to grow
                await lease.wait()
            try:
                faults = self.faults
                rule = faults.match(config.name, attempt) if faults.rules else None
                if rule is not None:
                    self._note(
                        invocation,
                        timeline,
                        "fault_injected",
                        {"attempt": attempt, "action": rule.action},
                    )
                    outcome = self.faults.outcome(rule, invocation.request_id, config.timeout)
                else:
                    env = await self.pool.acquire(config, invocation.tenant_id)
                    try:
                        outcome = await env.invoke(invocation, want_tail, stream_sink)
                    finally:
                        self.pool.release(env)
                self._note(invocation, timeline, "attempt", attempt_detail(outcome, attempt))
                return outcome
            finally:
                lease.give()
        except errors.TooManyRequests as throttle:
            return Throttled(throttle)

    def _note(
        self,
        invocation: Invocation,
        timeline: list[AttemptRecord] | None,
        kind: str,
        detail: dict[str, Any],
    ) -> None:
        if timeline is None:
            self.recorder.record(invocation.request_id, kind, detail)
        else:
            timeline.append(AttemptRecord(invocation.request_id, self.clock.now(), kind, detail))


def attempt_detail(outcome: InvocationOutcome, attempt: int) -> dict[str, Any]:
    """The timeline's `attempt` entry: where and how the attempt ran, and how it ended."""
    detail: dict[str, Any] = {
        "attempt": attempt,
        "environment": outcome.environment_id,
        "start": "cold" if outcome.init_ms is not None else "warm",
        "outcome": outcome.outcome,
        "duration_ms": round(outcome.duration_ms, 3),
    }
    if outcome.init_ms is not None:
        detail["init_ms"] = round(outcome.init_ms, 3)
    if outcome.error_type:
        detail["error_type"] = outcome.error_type
    return detail
