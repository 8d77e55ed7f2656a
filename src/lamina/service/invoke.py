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
                 limiter: ConcurrencyLimiter, recorder: Recorder) -> None:
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
        if command.invocation_type == "Event":
            raise errors.InvalidParameterValue(
                "Lamina does not run InvocationType Event yet: asynchronous invocation (a "
                "durable queue with Lambda's retries) is being built.")
        request_id = str(uuid.uuid4())
        invocation = Invocation(
            request_id, config, self.functions.arn(name, command.qualifier),
            command.payload, command.invocation_type, command.client_context,
            trace_id=command.trace_id or new_trace_id(), tenant_id=command.tenant_id)
        accepted = time.time()
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
                outcome = await self._run(invocation, command.log_tail)
        except Exception as exc:
            summary.status, summary.finished_at = "rejected", time.time()
            summary.error_type = getattr(exc, "error_type", type(exc).__name__)
            self.recorder.record(request_id, "rejected", {"error": summary.error_type})
            self.recorder.summary(summary)
            raise
        self._finished(summary, outcome)
        return InvokeResult(request_id, config.version, outcome)

    async def _run(self, invocation: Invocation, want_tail: bool) -> InvocationOutcome:
        env = await self.pool.acquire(invocation.config)
        try:
            return await env.invoke(invocation, want_tail)
        finally:
            self.pool.release(env)

    def _finished(self, summary: InvocationSummary, outcome: InvocationOutcome) -> None:
        now = time.time()
        summary.status = outcome.outcome
        summary.finished_at = now
        summary.attempts = 1
        summary.error_type = outcome.error_type
        summary.duration_ms = round(outcome.duration_ms, 3)
        detail = {"attempt": 1, "environment": outcome.environment_id,
                  "start": "cold" if outcome.init_ms is not None else "warm",
                  "outcome": outcome.outcome, "duration_ms": summary.duration_ms}
        if outcome.init_ms is not None:
            detail["init_ms"] = round(outcome.init_ms, 3)
        if outcome.error_type:
            detail["error_type"] = outcome.error_type
        self.recorder.record(summary.request_id, "attempt", detail, now)
        self.recorder.summary(summary)
