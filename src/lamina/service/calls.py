"""One call runs once: SDK retries of a synchronous call attach to it (spec §6.4).

Theory of operation
-------------------
An AWS SDK sends the same `amz-sdk-invocation-id` on every attempt of one API call (botocore
and the JavaScript SDK v3 do; v2 sends none) and counts attempts in `amz-sdk-request`
(`attempt=N`). On Lambda each attempt runs the function again; a long call whose client
times out is run 3 to 5 times. Here, a request for the same function and qualifier with an
invocation id already seen:

* while that call runs, waits for it and gets its result;
* after it finished, less than `window` seconds ago, gets the stored result at once.

Results are kept in memory for the window (bounded by count); those of calls that ran at least
`persist_after_ms` are also written to the store, so a retry that arrives after an engine
restart still gets the result. Only retries (attempt 2 and later) look at finished calls,
so a first attempt costs no lookup.

In strict parity every attempt runs, as on AWS; this registry then only remembers which
request ran first, so the timeline marks the others as SDK retries of one call.

Across engines sharing PostgreSQL (`shared`), a retry may reach another engine than the one
running the call. Calls still running `REGISTER_AFTER_S` after they started are written to
`running_calls` in one batch (shorter calls, most of them, cost the store nothing); a call
written there stores its result when it ends, whatever its duration. A retry that this
engine does not know looks there (`elsewhere`): it waits for the result while the call runs
on a live engine, and answers as a failed call (`Runtime.ExitError`, stored for the next
retries) if that engine dies first. A call started moments before its retry may not be
written yet, so a retry that finds nothing looks once more after the batch interval.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import OrderedDict
from dataclasses import dataclass

from lamina.domain import errors
from lamina.domain.cluster import RunningCall
from lamina.domain.model import InvocationOutcome
from lamina.service.ports import Clock, Store

log = logging.getLogger("lamina.calls")
_ATTEMPT = re.compile(r"attempt=(\d+)")
REGISTER_AFTER_S = 0.01  # calls running this long are written where other engines see them
ENGINE_LOST = "Runtime.ExitError"


@dataclass(frozen=True, slots=True)
class CallKey:
    function: str
    qualifier: str
    invocation_id: str


@dataclass(slots=True)
class CallResult:
    """What a synchronous call answered (kept for the retries of that call); the outcome
    is None for a DryRun."""

    request_id: str
    executed_version: str
    outcome: InvocationOutcome | None

    # written out: compiled, where @dataclass's would run interpreted (ARCHITECTURE.md, 13)
    def __init__(
        self, request_id: str, executed_version: str, outcome: InvocationOutcome | None
    ) -> None:
        self.request_id = request_id
        self.executed_version = executed_version
        self.outcome = outcome


def attempt_of(header: str | None) -> int:
    """The attempt number an SDK puts in `amz-sdk-request` (1 when absent)."""
    match = _ATTEMPT.search(header or "")
    return int(match[1]) if match else 1


class CallRegistry:
    """Calls in flight and recently finished, by SDK invocation id."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        window: float,
        persist_after_ms: float = 1000.0,
        max_finished: int = 10_000,
        shared: bool = False,
    ) -> None:
        self.store = store
        self.shared = shared
        # shared: calls running here not yet written, written ones, written ones that ended
        # without a result (to forget in the next batch)
        self._unwritten: dict[CallKey, tuple[str, float]] = {}
        self._written: set[CallKey] = set()
        self._ended: list[CallKey] = []
        self._flush_timer: asyncio.TimerHandle | None = None
        self._flushing: asyncio.Task[None] | None = None
        self._notice = asyncio.Event()
        self.clock = clock
        self.window = window
        self.persist_after_ms = persist_after_ms
        self.max_finished = max_finished
        self._running: dict[CallKey, tuple[str, asyncio.Future[CallResult]]] = {}
        self._finished: OrderedDict[CallKey, tuple[CallResult, float]] = OrderedDict()
        self._first: OrderedDict[CallKey, str] = OrderedDict()

    def running(self, key: CallKey) -> tuple[str, asyncio.Future[CallResult]] | None:
        """(request id, future of the result) of the call running under `key`, if any."""
        return self._running.get(key)

    async def finished(self, key: CallKey) -> CallResult | None:
        """The result of a call under `key` that finished within the window, if any."""
        found = self._finished.get(key)
        if found is not None and self.clock.now() - found[1] <= self.window:
            return found[0]
        stored = await self.store.get_call_result(
            key.function, key.qualifier, key.invocation_id, self.clock.now() - self.window
        )
        return None if stored is None else CallResult(*stored)

    def start(self, key: CallKey, request_id: str) -> asyncio.Future[CallResult]:
        future: asyncio.Future[CallResult] = asyncio.get_running_loop().create_future()
        self._running[key] = (request_id, future)
        if self.shared:
            self._unwritten[key] = (request_id, self.clock.now())
            self._schedule_flush()
        return future

    async def finish(self, key: CallKey, result: CallResult) -> None:
        _, future = self._running.pop(key)
        future.set_result(result)
        now = self.clock.now()
        self._finished[key] = (result, now)
        while len(self._finished) > self.max_finished:
            self._finished.popitem(last=False)
        if self.shared and self._unwritten.pop(key, None) is None and key in self._written:
            self._written.discard(key)
            if self._flushing is not None:  # its row must be in before it is taken out
                await asyncio.shield(self._flushing)
            if result.outcome is not None:
                await self.store.finish_shared_call(  # type: ignore[attr-defined]
                    key.function,
                    key.qualifier,
                    key.invocation_id,
                    result.request_id,
                    result.executed_version,
                    result.outcome,
                    now,
                    now - self.window,
                )
            return
        if result.outcome is not None and result.outcome.duration_ms >= self.persist_after_ms:
            await self.store.put_call_result(
                key.function,
                key.qualifier,
                key.invocation_id,
                result.request_id,
                result.executed_version,
                result.outcome,
                now,
                now - self.window,
            )

    def fail(self, key: CallKey, error: BaseException) -> None:
        """The call did not produce a result (e.g. it was throttled): waiters get the error."""
        entry = self._running.pop(key, None)
        if entry is not None and not entry[1].done():
            entry[1].set_exception(error)
            entry[1].exception()  # retrieved here: no waiter is a fine outcome too
        if self.shared and self._unwritten.pop(key, None) is None and key in self._written:
            self._written.discard(key)
            self._ended.append(key)  # retries elsewhere stop waiting and run it
            self._schedule_flush()

    # across engines (shared store) ----------------------------------------------------
    def _schedule_flush(self) -> None:
        if self._flush_timer is None:
            self._flush_timer = asyncio.get_running_loop().call_later(
                REGISTER_AFTER_S, self._start_flush
            )

    def _start_flush(self) -> None:
        self._flush_timer = None
        if self._flushing is not None and not self._flushing.done():
            self._schedule_flush()  # one batch at a time, in order
            return
        self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        started = [
            (k.function, k.qualifier, k.invocation_id, request_id, at)
            for k, (request_id, at) in self._unwritten.items()
        ]
        ended = [(k.function, k.qualifier, k.invocation_id) for k in self._ended]
        self._written.update(self._unwritten)
        self._unwritten, self._ended = {}, []
        try:
            await self.store.register_calls(started, ended)  # type: ignore[attr-defined]
        except errors.StoreUnavailable as exc:
            log.warning("could not write %d running calls for other engines: %s", len(started), exc)

    def notice(self) -> None:
        """Another engine stored a result or forgot a call: waiters look again."""
        self._notice.set()
        self._notice = asyncio.Event()

    async def elsewhere(
        self, key: CallKey, patience: float, version: str
    ) -> tuple[CallResult, RunningCall | None] | None:
        """A retry this engine does not know: the result of the call running on (or
        finished by) another engine, waited for; None when no engine has it. The running
        call comes back too when this engine had to wait for it."""
        if not self.shared:
            return None
        found = await self._look(key)
        if found is None:  # started moments ago elsewhere, maybe not written yet
            await asyncio.sleep(REGISTER_AFTER_S * 4)
            found = await self._look(key)
        waited: RunningCall | None = None
        deadline = time.monotonic() + patience
        while isinstance(found, RunningCall):
            waited = found
            if not found.engine_alive or time.monotonic() > deadline:
                return await self._lost(key, found, version), waited
            notice = self._notice
            try:
                await asyncio.wait_for(notice.wait(), 1.0)
            except TimeoutError:
                pass
            found = await self._look(key)
        return None if found is None else (found, waited)

    async def _look(self, key: CallKey) -> CallResult | RunningCall | None:
        running: RunningCall | None = await self.store.running_call(  # type: ignore[attr-defined]
            key.function, key.qualifier, key.invocation_id
        )
        if running is not None:  # read first: a call ends by storing its result and
            return running  # forgetting its row in one transaction
        stored = await self.store.get_call_result(
            key.function, key.qualifier, key.invocation_id, self.clock.now() - self.window
        )
        return None if stored is None else CallResult(*stored)

    async def _lost(self, key: CallKey, running: RunningCall, version: str) -> CallResult:
        """The engine running the call died: it failed, as a call whose runtime is killed
        fails; that answer is stored for the next retries (unless a result came first)."""
        message = (
            f"RequestId: {running.request_id} Error: Runtime exited with error: "
            f"signal: killed (the engine {running.engine} running this invocation "
            "stopped before it finished)"
        )
        outcome = InvocationOutcome(
            json.dumps(
                {"errorType": ENGINE_LOST, "errorMessage": message}, separators=(",", ":")
            ).encode(),
            function_error=True,
            error_type=ENGINE_LOST,
        )
        now = self.clock.now()
        await self.store.finish_shared_call(  # type: ignore[attr-defined]
            key.function,
            key.qualifier,
            key.invocation_id,
            running.request_id,
            version,
            outcome,
            now,
            now - self.window,
        )
        stored = await self.store.get_call_result(
            key.function, key.qualifier, key.invocation_id, now - self.window
        )
        return (
            CallResult(*stored)
            if stored is not None
            else CallResult(running.request_id, version, outcome)
        )

    def first_request(self, key: CallKey, request_id: str) -> str | None:
        """Strict parity: the request that ran first under `key`, or None if this is it."""
        first = self._first.get(key)
        if first is None:
            self._first[key] = request_id
            while len(self._first) > self.max_finished:
                self._first.popitem(last=False)
        return first
