"""Asynchronous invocation: accept into a durable queue, dispatch, retry, deliver (spec §7).

Theory of operation
-------------------
* `accept` checks the request, writes the event to the store and only then answers 202: an
  accepted event survives a crash of the engine.
* One dispatcher task claims due events per function, no more than the function's free
  concurrency (so 10,000 events queued behind a reserved concurrency of 1 are taken one at a
  time, not thrashed), and runs each claimed event as an *attempt* on the same path as a
  synchronous call: concurrency slot, environment, timeout. It sleeps on a timer set to the
  next due time, or until woken by a new event or a finished attempt: no polling interval.
* After an attempt, `domain.retry` decides: success, a retry at a given time (the event goes
  back to the queue), or discard (RetriesExhausted, EventAgeExceeded, ZeroReservedConcurrency).
  The request id stays the same across all attempts of one event.
* What is owed to destinations and the dead-letter queue (`service.destinations`) is
  written in the same transaction that removes the event from the queue; the destinations'
  own loop delivers it.
* At-least-once: claims carry a lease; on start the claims of a dead engine are released, so
  an event that was running when the engine died runs again. Engines sharing PostgreSQL
  claim under their engine id, and the claims of an engine whose cluster lease ran out are
  released as soon as another engine notices (`release_dead_soon`), not after the claim's
  own lease (the function's timeout and a minute). An engine claims only while it trusts its
  own cluster lease (`may_claim`); an engine stalled past its lease (counted dead while
  alive) may still finish an attempt another engine then runs again: at-least-once.
* `drain` (SIGTERM) stops claiming, lets the attempts running finish, and hands back what
  this engine had claimed and not run.

All times are engine time (`service.clock`), so `--time-scale` compresses hours of retries.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from lamina.domain import errors, retry, tenancy
from lamina.domain.model import (
    LATEST,
    AsyncEvent,
    Delivery,
    Invocation,
    InvocationOutcome,
    InvocationSummary,
)
from lamina.service.attempt import Attempts, Throttled
from lamina.service.catalog import FunctionCatalog
from lamina.service.concurrency import ConcurrencyLimiter
from lamina.service.destinations import CLAIM_BATCH, Destinations, store_trouble
from lamina.service.event_configs import EventConfigService
from lamina.service.invoke import new_trace_id
from lamina.service.ports import Clock, Store
from lamina.service.records import Recorder

log = logging.getLogger("lamina.async")

BLOCKED_POLL_S = 0.05  # real seconds, only while due events wait for capacity
LEASE_SWEEP_S = 5.0  # real seconds between looks for expired claims
STORE_PATIENCE_S = 120.0  # how long an attempt's result waits for the store to return


class AsyncInvokeService:
    """Accepts `Event` invocations and runs them with Lambda's retry rules."""

    def __init__(
        self,
        store: Store,
        functions: FunctionCatalog,
        configs: EventConfigService,
        attempts: Attempts,
        limiter: ConcurrencyLimiter,
        recorder: Recorder,
        clock: Clock,
        destinations: Destinations,
        owner: str | None = None,
        release_dead: Callable[[], Awaitable[int]] | None = None,
        may_claim: Callable[[], bool] | None = None,
    ) -> None:
        self.store = store
        self.release_dead = release_dead
        self.may_claim = may_claim
        self._sweep_now = False
        self.functions = functions
        self.configs = configs
        self.attempts = attempts
        self.limiter = limiter
        self.recorder = recorder
        self.clock = clock
        self.destinations = destinations
        self.owner = owner or destinations.owner
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loops: list[asyncio.Task[None]] = []

    # lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        now = self.clock.now()
        released = await self.store.release_claims(
            float("inf") if self.store.all_claims_are_stale else now, self.owner
        )
        if released:
            log.info("released %d claims of a previous engine: those events run again", released)
        loop = asyncio.get_running_loop()
        self._loops = [loop.create_task(self._dispatch_loop(), name="lamina-async-dispatch")]

    async def close(self) -> None:
        for task in [*self._loops, *self._tasks]:
            task.cancel()
        await asyncio.gather(*self._loops, *self._tasks, return_exceptions=True)

    async def drain(self) -> None:
        """Stop claiming; let the attempts that run finish; give back what is still claimed
        (and announce it, so other engines take it at once)."""
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops = []
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        released = await self.store.release_claims(0.0, self.owner)
        if released:
            log.info("handed %d claimed events and deliveries back to the queue", released)

    def release_dead_soon(self) -> None:
        """An engine sharing the store died: take back its claims now."""
        if self.release_dead is not None:
            self._sweep_now = True
            self._wake.set()

    def wake(self) -> None:
        """Look at the queue now (another engine queued something, or a slot is free)."""
        self._wake.set()

    # accepting -------------------------------------------------------------------------
    async def accept(
        self,
        name: str,
        qualifier: str | None,
        payload: bytes,
        trace_id: str | None = None,
        tenant_id: str | None = None,
    ) -> str:
        """Store an Event invocation durably; return its request id (then answer 202)."""
        event = self.prepare(name, qualifier, payload, trace_id, tenant_id)
        await self.store.enqueue_event(event)
        self.accepted(event)
        return event.request_id

    def prepare(
        self,
        name: str,
        qualifier: str | None,
        payload: bytes,
        trace_id: str | None = None,
        tenant_id: str | None = None,
    ) -> AsyncEvent:
        """The event `accept` would queue (the function must exist and be invocable); a
        caller that stores it in its own transaction (a schedule) then calls `accepted`."""
        config = self.functions.invoked(name, qualifier)
        tenancy.check(config, tenant_id)
        self.functions.check_invocable(config)
        now = self.clock.now()
        return AsyncEvent(
            str(uuid.uuid4()),
            name,
            qualifier,
            payload,
            now,
            now,
            trace_id=trace_id or new_trace_id(),
            tenant_id=tenant_id,
        )

    def accepted(self, event: AsyncEvent, source: dict[str, Any] | None = None) -> None:
        """Record an event now in the queue and wake the dispatcher; `source` says what
        sent it (a schedule), in the timeline's `accepted` entry."""
        now = event.accepted_at
        self.recorder.summary(
            InvocationSummary(
                event.request_id, event.function, event.qualifier, "Event", now, status="queued"
            )
        )
        self.recorder.record(event.request_id, "accepted", {"type": "Event", **(source or {})}, now)
        self.recorder.record(event.request_id, "queued", {"due": now}, now)
        self._wake.set()

    # dispatching -----------------------------------------------------------------------
    async def _dispatch_loop(self) -> None:
        failures = 0
        swept = time.monotonic()
        while True:
            self._wake.clear()
            now = self.clock.now()
            try:
                if self._sweep_now or time.monotonic() - swept > LEASE_SWEEP_S:
                    self._sweep_now = False
                    await self._release_expired(now)
                    swept = time.monotonic()
                blocked = await self._dispatch_due(now)
                next_due = await self.store.next_due(after=now)
                failures = 0
            except Exception as exc:
                failures += 1
                await store_trouble("the async dispatcher", exc, failures)
                continue
            wake_at = self._wake_time(now, next_due, blocked)
            log.debug("dispatcher sleeps until %s (now %s, blocked %s)", wake_at, now, blocked)
            await self.clock.wait(self._wake, wake_at)

    def _wake_time(self, now: float, next_due: float | None, blocked: bool) -> float | None:
        """The next due time after `now`; sooner while due events wait for capacity (an
        attempt that ends wakes the dispatcher at once, a synchronous call does not)."""
        if blocked and self.clock.scale > 0:
            poll = now + BLOCKED_POLL_S * self.clock.scale
            return poll if next_due is None else min(poll, next_due)
        return next_due

    async def _dispatch_due(self, now: float) -> bool:
        """Claim and start what is due at `now`; True when some of it waits for capacity.
        An engine that cannot trust its cluster lease claims nothing: the others may count
        it dead at any moment and run again what it claimed (see `may_claim`)."""
        if self.may_claim is not None and not self.may_claim():
            return True
        blocked = False
        for function, count in (await self.store.due_functions(now)).items():
            reserved = self.limiter.reserved.get(function)
            free = (
                count
                if reserved == 0
                else await self.limiter.room(function, min(count, CLAIM_BATCH))
            )
            if free <= 0:
                blocked = True
                continue
            claimed = await self.store.claim_events(
                function,
                now,
                min(count, free, CLAIM_BATCH),
                self.owner,
                self._lease_until(function),
            )
            for event in claimed:
                self._spawn(self._attempt(event))
            blocked |= count > len(claimed)
        return blocked

    async def _release_expired(self, now: float) -> None:
        """Claims whose lease ran out (their engine died, or the store failed mid-attempt)
        go back to the queue: those events run again (at-least-once)."""
        released = await self.store.release_claims(now, owner="")
        if self.release_dead is not None:
            released += await self.release_dead()
        if released:
            log.info("%d expired claims went back to the queue", released)

    def _lease_until(self, function: str) -> float:
        """A claim is held for the function's timeout plus a minute of real time."""
        if self.clock.scale == 0:
            return float("inf")  # virtual time: only a test moves it; never expire a claim
        try:
            timeout = self.functions.resolve(function, None).timeout
        except errors.LaminaError:
            timeout = 900
        return self.clock.now() + (timeout + 60) * max(self.clock.scale, 1.0)

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # one attempt -------------------------------------------------------------------------
    async def _attempt(self, event: AsyncEvent) -> None:
        try:
            await self._run_attempt(event)
        except asyncio.CancelledError:
            raise  # the engine is stopping: the claim's lease brings the event back
        except Exception as exc:
            if isinstance(exc, errors.StoreUnavailable):
                log.warning("async attempt of %s could not be recorded: %s", event.request_id, exc)
            else:
                log.exception("async attempt of %s failed inside the engine", event.request_id)
            try:
                await asyncio.shield(self._after_throttle(event, "system_error"))
            except errors.StoreUnavailable:
                pass  # the claim stays until its lease expires; then the event runs again
        finally:
            self._wake.set()

    async def _run_attempt(self, event: AsyncEvent) -> None:
        try:
            config = self.functions.route(event.function, event.qualifier)
        except errors.ResourceNotFound:
            await self._drop(event, "the function or qualifier no longer exists")
            return
        settings = self.configs.effective(event.function, event.qualifier)
        now = self.clock.now()
        discard = retry.before_attempt(
            event, settings.max_age, self.limiter.reserved.get(event.function), now
        )
        if discard is not None:
            await self._give_up(event, discard.condition, None, config.version)
            return
        invocation = Invocation(
            event.request_id,
            config,
            self.functions.arn(event.function, event.qualifier),
            event.payload,
            "Event",
            trace_id=event.trace_id,
            tenant_id=event.tenant_id,
        )
        outcome = await self.attempts.run(invocation, attempt=event.invocations + 1)
        if isinstance(outcome, Throttled):  # no slot, no environment, or injected
            self.recorder.record(event.request_id, "throttled", {"reason": outcome.reason})
            await self._after_throttle(event, "throttled")
            return
        event.invocations += 1
        await asyncio.shield(self._after_outcome(event, outcome, config.version))

    async def _after_outcome(
        self, event: AsyncEvent, outcome: InvocationOutcome, version: str
    ) -> None:
        if not outcome.function_error:
            await self._finish(
                event,
                "success",
                self.destinations.owed(event, "Success", outcome, version, success=True),
            )
            return
        settings = self.configs.effective(event.function, event.qualifier)
        decision = retry.after_function_error(
            event, settings.retries, settings.max_age, self.clock.now()
        )
        if isinstance(decision, retry.Retry):
            await self._reschedule(event, decision)
        else:
            await self._give_up(event, decision.condition, outcome, version)

    async def _after_throttle(self, event: AsyncEvent, reason: str) -> None:
        event.throttles += 1
        settings = self.configs.effective(event.function, event.qualifier)
        decision = retry.after_throttle(
            event, settings.max_age, self.clock.now(), reason, jitter=random.random
        )
        if isinstance(decision, retry.Retry):
            await self._reschedule(event, decision)
        else:
            await self._give_up(event, decision.condition, None, LATEST)

    async def _reschedule(self, event: AsyncEvent, decision: retry.Retry) -> None:
        event.due_at = decision.at
        now = self.clock.now()  # the delay as decided, not as long as the write took
        await self._durably(lambda: self.store.reschedule_event(event))
        self.recorder.record(
            event.request_id,
            "retry_scheduled",
            {
                "at": decision.at,
                "delay_s": round(decision.at - now, 3),
                "reason": decision.reason,
                "invocations": event.invocations,
                "throttles": event.throttles,
            },
            now,
        )
        self._summary(event, "retrying")

    async def _give_up(
        self, event: AsyncEvent, condition: str, outcome: InvocationOutcome | None, version: str
    ) -> None:
        self.recorder.record(
            event.request_id,
            "discarded",
            {"condition": condition, "invocations": event.invocations},
        )
        await self._finish(
            event,
            "failed",
            self.destinations.owed(event, condition, outcome, version, success=False),
            error_type=condition,
        )

    async def _drop(self, event: AsyncEvent, why: str) -> None:
        self.recorder.record(event.request_id, "dropped", {"reason": why})
        await self._finish(event, "dropped", [])

    async def _durably(self, write: Any) -> None:
        """Write an attempt's result; while the store is down, keep trying (the function
        has run: running it again would be a needless duplicate)."""
        for failures in range(1, 1_000_000):
            try:
                await write()
                return
            except errors.StoreUnavailable as exc:
                if failures * 5.0 > STORE_PATIENCE_S:
                    raise  # the claim's lease will bring the event back
                await store_trouble("recording an attempt", exc, failures)

    async def _finish(
        self,
        event: AsyncEvent,
        status: str,
        deliveries: list[Delivery],
        error_type: str | None = None,
    ) -> None:
        await self._durably(lambda: self.store.finish_event(event.request_id, deliveries))
        self.destinations.queued(event.request_id, deliveries)
        self._summary(event, status, error_type)

    def _summary(self, event: AsyncEvent, status: str, error_type: str | None = None) -> None:
        finished = self.clock.now() if status in ("success", "failed", "dropped") else None
        self.recorder.summary(
            InvocationSummary(
                event.request_id,
                event.function,
                event.qualifier,
                "Event",
                event.accepted_at,
                status=status,
                finished_at=finished,
                attempts=event.invocations,
                error_type=error_type,
            )
        )
