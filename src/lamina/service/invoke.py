"""Synchronous invocation: resolve → admit → borrow an environment → run → record (spec §6.1).

There are no server-side retries for a synchronous invocation: the outcome, whatever it is,
goes back to the caller. The concurrency lease is taken before the environment and both are
released on every exit path. If the caller goes away, the invocation still runs to its end
and its outcome is recorded (spec §20 #11).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from lamina.domain import arns, errors
from lamina.domain.model import Invocation, InvocationOutcome, InvocationSummary
from lamina.service.clock import RealClock
from lamina.service.concurrency import ConcurrencyLimiter
from lamina.service.functions import FunctionService
from lamina.service.ports import EnvironmentPool
from lamina.service.records import Recorder


@dataclass(slots=True)
class InvokeCommand:
    """A decoded Invoke request."""

    function: arns.FunctionRef
    qualifier: str | None
    payload: bytes
    invocation_type: str = "RequestResponse"
    log_tail: bool = False
    client_context: str | None = None
    trace_id: str | None = None
    tenant_id: str | None = None
    sdk_invocation_id: str | None = None
    sdk_request: str | None = None


@dataclass(slots=True)
class InvokeResult:
    request_id: str
    executed_version: str
    outcome: InvocationOutcome | None  # None for DryRun


def new_trace_id(now: float | None = None) -> str:
    """An X-Ray trace header for an invocation that arrived without one (spec §4.1)."""
    now = time.time() if now is None else now
    return (f"Root=1-{int(now):08x}-{uuid.uuid4().hex[:24]};"
            f"Parent={uuid.uuid4().hex[:16]};Sampled=0")


class InvokeService:
    """Runs synchronous invocations (see the module docstring)."""

    def __init__(self, functions: FunctionService, pool: EnvironmentPool,
                 limiter: ConcurrencyLimiter, recorder: Recorder, clock: RealClock) -> None:
        self.clock = clock
        self.functions = functions
        self.pool = pool
        self.limiter = limiter
        self.recorder = recorder

    async def invoke(self, command: InvokeCommand) -> InvokeResult:
        name = command.function.name
        config = self.functions.resolve(name, command.qualifier)
        if command.invocation_type == "DryRun":
            return InvokeResult(str(uuid.uuid4()), config.version, None)
        self.functions.check_invocable(config)
        request_id = str(uuid.uuid4())
        invocation = Invocation(
            request_id, config, self.functions.arn(name, command.qualifier),
            command.payload, command.invocation_type, command.client_context,
            trace_id=command.trace_id or new_trace_id(), tenant_id=command.tenant_id)
        accepted = self.clock.now()
        summary = InvocationSummary(request_id, name, command.qualifier, command.invocation_type,
                                    accepted)
        self.recorder.summary(summary)
        detail = {"type": command.invocation_type, "version": config.version}
        if command.sdk_invocation_id:
            detail["sdk_invocation_id"] = command.sdk_invocation_id
            detail["sdk_request"] = command.sdk_request
        self.recorder.record(request_id, "accepted", detail, accepted)
        try:
            with self.limiter.lease(name):
                outcome = await self.run_attempt(invocation, want_tail=command.log_tail)
        except errors.LaminaError as exc:
            summary.status, summary.finished_at = "rejected", self.clock.now()
            summary.error_type = exc.error_type
            self.recorder.record(request_id, "throttled" if exc.status == 429 else "rejected",
                                 {"error": exc.error_type, **exc.members})
            self.recorder.summary(summary)
            raise
        summary.status, summary.finished_at, summary.attempts = outcome.outcome, self.clock.now(), 1
        summary.error_type = outcome.error_type
        summary.duration_ms = round(outcome.duration_ms, 3)
        self.recorder.summary(summary)
        return InvokeResult(request_id, config.version, outcome)

    async def run_attempt(self, invocation: Invocation, attempt: int = 1,
                          want_tail: bool = False) -> InvocationOutcome:
        """Run one attempt in an environment (the caller holds a concurrency slot)."""
        env = await self.pool.acquire(invocation.config)
        try:
            outcome = await env.invoke(invocation, want_tail)
        finally:
            self.pool.release(env)
        detail = {"attempt": attempt, "environment": outcome.environment_id,
                  "start": "cold" if outcome.init_ms is not None else "warm",
                  "outcome": outcome.outcome, "duration_ms": round(outcome.duration_ms, 3)}
        if outcome.init_ms is not None:
            detail["init_ms"] = round(outcome.init_ms, 3)
        if outcome.error_type:
            detail["error_type"] = outcome.error_type
        self.recorder.record(invocation.request_id, "attempt", detail)
        return outcome
