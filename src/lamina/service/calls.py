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
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from dataclasses import dataclass

from lamina.domain.model import InvocationOutcome
from lamina.service.clock import RealClock
from lamina.service.ports import Store

_ATTEMPT = re.compile(r"attempt=(\d+)")


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


def attempt_of(header: str | None) -> int:
    """The attempt number an SDK puts in `amz-sdk-request` (1 when absent)."""
    match = _ATTEMPT.search(header or "")
    return int(match[1]) if match else 1


class CallRegistry:
    """Calls in flight and recently finished, by SDK invocation id."""

    def __init__(self, store: Store, clock: RealClock, window: float, persist_after_ms: float = 1000.0,
                 max_finished: int = 10_000) -> None:
        self.store = store
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
        stored = await self.store.get_call_result(key.function, key.qualifier,
                                                  key.invocation_id, self.clock.now() - self.window)
        return None if stored is None else CallResult(*stored)

    def start(self, key: CallKey, request_id: str) -> asyncio.Future[CallResult]:
        future: asyncio.Future[CallResult] = asyncio.get_running_loop().create_future()
        self._running[key] = (request_id, future)
        return future

    async def finish(self, key: CallKey, result: CallResult) -> None:
        _, future = self._running.pop(key)
        future.set_result(result)
        now = self.clock.now()
        self._finished[key] = (result, now)
        while len(self._finished) > self.max_finished:
            self._finished.popitem(last=False)
        if result.outcome is not None and result.outcome.duration_ms >= self.persist_after_ms:
            await self.store.put_call_result(
                key.function, key.qualifier, key.invocation_id, result.request_id,
                result.executed_version, result.outcome, now, now - self.window)

    def fail(self, key: CallKey, error: BaseException) -> None:
        """The call did not produce a result (e.g. it was throttled): waiters get the error."""
        entry = self._running.pop(key, None)
        if entry is not None and not entry[1].done():
            entry[1].set_exception(error)
            entry[1].exception()  # retrieved here: no waiter is a fine outcome too

    def first_request(self, key: CallKey, request_id: str) -> str | None:
        """Strict parity: the request that ran first under `key`, or None if this is it."""
        first = self._first.get(key)
        if first is None:
            self._first[key] = request_id
            while len(self._first) > self.max_finished:
                self._first.popitem(last=False)
        return first
