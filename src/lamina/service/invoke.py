"""Synchronous invocation: resolve → admit → borrow an environment → run → record (spec §6.1).

There are no server-side retries for a synchronous invocation: the outcome, whatever it is,
goes back to the caller. The concurrency lease is taken before the environment and both are
released on every exit path. If the caller goes away, the invocation still runs to its end
and its outcome is recorded (spec §20 #11).

An SDK retry of a call (same `amz-sdk-invocation-id`) does not run the function again: it
attaches to the running call or gets its result (`service.calls`, spec §6.4). With
`--parity strict` every attempt runs, as on AWS, and the timeline marks the retries.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from random import getrandbits
from typing import Any

from lamina.domain import arns, errors, ids, tenancy
from lamina.domain.cluster import RunningCall
from lamina.domain.model import (
    LATEST,
    AttemptRecord,
    FunctionConfig,
    Invocation,
    InvocationSummary,
)
from lamina.service.attempt import Attempts, Throttled
from lamina.service.calls import ENGINE_LOST, CallKey, CallRegistry, CallResult, attempt_of
from lamina.service.catalog import FunctionCatalog
from lamina.service.ports import Clock
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
    request_id: str | None = None  # chosen by the caller (a function URL's event carries it)
    source: dict[str, object] | None = None  # what sent it (an HTTP API), for the timeline

    # written out: compiled, where @dataclass's would run interpreted (ARCHITECTURE.md, 13)
    def __init__(
        self,
        function: arns.FunctionRef,
        qualifier: str | None,
        payload: bytes,
        invocation_type: str = "RequestResponse",
        log_tail: bool = False,
        client_context: str | None = None,
        trace_id: str | None = None,
        tenant_id: str | None = None,
        sdk_invocation_id: str | None = None,
        sdk_request: str | None = None,
        request_id: str | None = None,
        source: dict[str, object] | None = None,
    ) -> None:
        self.function = function
        self.qualifier = qualifier
        self.payload = payload
        self.invocation_type = invocation_type
        self.log_tail = log_tail
        self.client_context = client_context
        self.trace_id = trace_id
        self.tenant_id = tenant_id
        self.sdk_invocation_id = sdk_invocation_id
        self.sdk_request = sdk_request
        self.request_id = request_id
        self.source = source


InvokeResult = CallResult


def new_trace_id(now: float | None = None) -> str:
    """An X-Ray trace header for an invocation that arrived without one (spec §4.1). Its 160
    random bits come from `random` (seeded from the OS; reseeded in a forked child): a
    trace id is unique, not secret, and no system call is made for it."""
    now = time.time() if now is None else now
    random = "%040x" % getrandbits(160)  # `%` formats an int without a `__format__` call
    return "Root=1-%08x-%s;Parent=%s;Sampled=0" % (int(now), random[:24], random[24:])


class InvokeService:
    """Runs synchronous invocations (see the module docstring)."""

    def __init__(
        self,
        functions: FunctionCatalog,
        attempts: Attempts,
        recorder: Recorder,
        clock: Clock,
        calls: CallRegistry,
        strict: bool = False,
    ) -> None:
        self.clock = clock
        self.functions = functions
        self.attempts = attempts
        self.limiter = attempts.limiter  # GetAccountSettings reads the unreserved limit
        self.recorder = recorder
        self.calls = calls
        self.strict = strict

    async def invoke(
        self, command: InvokeCommand, stream_sink: asyncio.Queue[Any] | None = None
    ) -> InvokeResult:
        """Run a synchronous invocation, or attach an SDK retry to the call it repeats.

        `stream_sink` receives a streamed response as it comes (InvokeWithResponseStream)."""
        name = command.function.name
        config = self.functions.route(name, command.qualifier)
        tenancy.check(config, command.tenant_id)
        if command.invocation_type == "DryRun":
            return InvokeResult(command.request_id or ids.request_id(), config.version, None)
        self.functions.check_invocable(config)
        key = None
        if command.sdk_invocation_id:
            key = CallKey(name, command.qualifier or LATEST, command.sdk_invocation_id)
            if not self.strict:
                attached = await self._attach(key, command, config)
                if attached is not None:
                    return attached
        request_id = command.request_id or ids.request_id()
        if key is None or self.strict:
            return await self._run_new(command, config, request_id, key, stream_sink)
        self.calls.start(key, request_id)
        try:
            result = await self._run_new(command, config, request_id, key, stream_sink)
        except BaseException as exc:
            self.calls.fail(key, exc)
            raise
        await self.calls.finish(key, result)
        return result

    async def _attach(
        self, key: CallKey, command: InvokeCommand, config: FunctionConfig
    ) -> InvokeResult | None:
        """The result of the call this request repeats, if it is running or just finished
        (here, or on another engine sharing the store)."""
        running = self.calls.running(key)
        if running is not None:
            request_id, future = running
            self._attached(request_id, command, "running")
            return await asyncio.shield(future)
        if attempt_of(command.sdk_request) > 1:
            finished = await self.calls.finished(key)
            if finished is not None:
                self._attached(finished.request_id, command, "finished")
                return finished
            found = await self.calls.elsewhere(key, config.timeout + 60.0, config.version)
            if found is not None:
                result, waited = found
                self._attached(
                    result.request_id,
                    command,
                    "finished" if waited is None else f"running on engine {waited.engine}",
                )
                if (
                    waited is not None
                    and result.outcome is not None
                    and result.outcome.error_type == ENGINE_LOST
                    and not waited.engine_alive
                ):
                    self._engine_lost(key, command, waited, result)
                return result
        return None

    def _engine_lost(
        self, key: CallKey, command: InvokeCommand, running: RunningCall, result: InvokeResult
    ) -> None:
        """The call's engine died under it: its record says so (that engine cannot)."""
        self.recorder.record(result.request_id, "engine_lost", {"engine": running.engine})
        summary = InvocationSummary(
            result.request_id,
            key.function,
            command.qualifier,
            command.invocation_type,
            running.started_at,
            status="error",
            finished_at=self.clock.now(),
            attempts=1,
            error_type=ENGINE_LOST,
        )
        self.recorder.summary(summary)

    def _attached(self, request_id: str, command: InvokeCommand, state: str) -> None:
        self.recorder.record(
            request_id,
            "attached",
            {
                "sdk_invocation_id": command.sdk_invocation_id,
                "sdk_request": command.sdk_request,
                "call": state,
            },
        )

    async def _run_new(
        self,
        command: InvokeCommand,
        config: FunctionConfig,
        request_id: str,
        key: CallKey | None,
        stream_sink: asyncio.Queue[Any] | None,
    ) -> InvokeResult:
        name = command.function.name
        invocation = Invocation(
            request_id,
            config,
            self.functions.arn(name, command.qualifier),
            command.payload,
            command.invocation_type,
            command.client_context,
            trace_id=command.trace_id or new_trace_id(),
            tenant_id=command.tenant_id,
        )
        accepted = self.clock.now()
        summary = InvocationSummary(
            request_id, name, command.qualifier, command.invocation_type, accepted
        )
        self.recorder.summary(summary)
        detail: dict[str, object] = {"type": command.invocation_type, "version": config.version}
        if command.source:
            detail.update(command.source)
        if command.sdk_invocation_id:
            detail["sdk_invocation_id"] = command.sdk_invocation_id
            detail["sdk_request"] = command.sdk_request
        if key is not None and self.strict:
            first = self.calls.first_request(key, request_id)
            if first is not None:  # on AWS this retry runs the function again; so it does here
                detail["sdk_retry_of"] = first
                self.recorder.record(
                    first,
                    "sdk_retry",
                    {"request_id": request_id, "sdk_request": command.sdk_request},
                )
        timeline = [AttemptRecord(request_id, accepted, "accepted", detail)]
        try:
            outcome = await self.attempts.run(
                invocation, want_tail=command.log_tail, stream_sink=stream_sink, timeline=timeline
            )
            if isinstance(outcome, Throttled):
                raise outcome.error
        except errors.LaminaError as exc:
            summary.status, summary.finished_at = "rejected", self.clock.now()
            summary.error_type = exc.error_type
            timeline.append(
                AttemptRecord(
                    request_id,
                    summary.finished_at,
                    "throttled" if exc.status == 429 else "rejected",
                    {"error": exc.error_type, **exc.members},
                )
            )
            summary.timeline = timeline
            self.recorder.summary(summary)
            raise
        summary.status, summary.finished_at, summary.attempts = outcome.outcome, self.clock.now(), 1
        summary.error_type = outcome.error_type
        summary.duration_ms = round(outcome.duration_ms, 3)
        summary.timeline = timeline
        self.recorder.summary(summary)
        return InvokeResult(request_id, config.version, outcome)
