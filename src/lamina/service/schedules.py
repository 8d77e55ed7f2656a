"""Schedules the engine runs on its own clock: EventBridge rules and Scheduler schedules that
invoke a Lambda function asynchronously.

Theory of operation
-------------------
* A schedule is kept in the store with its state; its `next_due` is the next due time not
  fired yet (`domain.schedules` computes due times from the expression).
* One task per engine waits on the engine clock until the earliest `next_due`, then fires
  each due time in order. Firing queues the async event (`async_invoke.prepare`) and moves
  `next_due` on **in one transaction guarded by the due time**: a due time fires once, across
  restarts and among engines (`Store.advance_schedule`). The event then takes the async
  path: durable queue, retries, destinations, the timeline (`accepted` says which schedule).
* A due time older than 24 hours of engine time when the engine gets to it (the engine was
  down, or a virtual clock jumped) is not fired: EventBridge and Scheduler give up on an
  event after 24 hours. It is counted as missed. Younger ones fire late, each once, in
  order, with the `time` they were due.
* A target that cannot be invoked (no such function…) is recorded on the schedule
  (`last_error`) and the schedule goes on, as a failed invocation does on EventBridge.
* With several engines on PostgreSQL only the engine holding `Store.try_lead("schedules")`
  fires; the others keep their lists current from notifications.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from typing import Any

from lamina.domain import arns, errors, schedules
from lamina.domain.model import AsyncEvent
from lamina.domain.schedules import Schedule, ScheduleState
from lamina.service.async_invoke import AsyncInvokeService
from lamina.service.ports import Clock

log = logging.getLogger("lamina.schedules")

LEAD_CHECK_S = 2.0  # real seconds between looks at who leads (and at the store)


class ScheduleService:
    """Create, replace, delete and list schedules; fire them on the engine's clock."""

    def __init__(
        self, store: Any, async_invoke: AsyncInvokeService, clock: Clock, region: str, account: str
    ) -> None:
        self.store = store
        self.async_invoke = async_invoke
        self.clock = clock
        self.region = region
        self.account = account
        self._schedules: dict[str, tuple[Schedule, ScheduleState]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.leading = False

    # lifecycle -------------------------------------------------------------------------
    async def load(self) -> None:
        self._schedules = {s.name: (s, st) for s, st in await self.store.list_schedules()}
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="lamina-schedules")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    # the contract's operations -----------------------------------------------------------
    async def put(self, schedule: Schedule) -> Schedule:
        """Create or replace `schedule`. A replacement with the same timing (expression,
        time zone, source, state) keeps its due times; another starts them anew from now."""
        schedules.validate(schedule)
        self._target(schedule)
        current = self._schedules.get(schedule.name)
        if current is not None and _same_timing(current[0], schedule):
            state = current[1]
        else:
            now = self.clock.now()
            state = ScheduleState(
                created=now,
                next_due=schedules.first_due(schedule, now) if schedule.enabled else None,
            )
            if current is not None:  # the history stays with the name
                old = current[1]
                state = dataclasses.replace(
                    state,
                    last_due=old.last_due,
                    fired=old.fired,
                    last_request_id=old.last_request_id,
                    missed=old.missed,
                )
        await self.store.put_schedule(schedule, state)
        self._schedules[schedule.name] = (schedule, state)
        self._wake.set()
        return schedule

    async def delete(self, name: str) -> None:
        if name not in self._schedules:
            raise errors.ResourceNotFound(f"Schedule {name} does not exist.")
        await self.store.delete_schedule(name)
        self._schedules.pop(name, None)
        self._wake.set()

    def get(self, name: str) -> Schedule | None:
        found = self._schedules.get(name)
        return found[0] if found else None

    def list(self) -> list[Schedule]:
        return [self._schedules[k][0] for k in sorted(self._schedules)]

    def state(self, name: str) -> ScheduleState | None:
        found = self._schedules.get(name)
        return found[1] if found else None

    def arn(self, schedule: Schedule) -> str:
        return schedules.arn(schedule, self.region, self.account)

    def _target(self, schedule: Schedule) -> arns.FunctionRef:
        try:
            return arns.keyed(
                arns.parse_function_name(schedule.target_arn, self.region, None, field="TargetArn"),
                self.account,
            )
        except errors.LaminaError as exc:
            raise errors.InvalidParameterValue(
                f"Schedule {schedule.name}: TargetArn {schedule.target_arn!r} is not a Lambda "
                f"function of this engine: {exc.message or exc.error_type}"
            ) from None

    # firing ----------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            self._wake.clear()
            wake_at: float | None = None
            try:
                self.leading = await self.store.try_lead("schedules")
                if self.leading:
                    wake_at = await self.fire_due(self.clock.now())
            except errors.StoreUnavailable as exc:
                log.warning("schedules cannot reach the store: %s", exc)
            except Exception:
                log.exception("the schedule runner failed; it goes on")
            try:
                await asyncio.wait_for(self.clock.wait(self._wake, wake_at), LEAD_CHECK_S)
            except TimeoutError:
                pass

    async def fire_due(self, now: float) -> float | None:
        """Fire every due time up to `now`; return the next due time after it."""
        for name in sorted(self._schedules, key=lambda n: self._schedules[n][1].next_due or 0):
            while True:
                found = self._schedules.get(name)
                if found is None:
                    break
                schedule, state = found
                if not schedule.enabled or state.next_due is None or state.next_due > now:
                    break
                if not await self._fire(schedule, state, now):
                    await self.load()  # another engine or a user changed it: start over
                    return now
        pending = [
            st.next_due
            for s, st in self._schedules.values()
            if s.enabled and st.next_due is not None
        ]
        return min(pending) if pending else None

    async def _fire(self, schedule: Schedule, state: ScheduleState, now: float) -> bool:
        due = state.next_due
        assert due is not None
        if due < now - schedules.MAX_EVENT_AGE_S:
            return await self._skip_stale(schedule, state, now)
        event, error = self._event(schedule, due)
        after = dataclasses.replace(
            state,
            next_due=schedules.next_due(schedule, due),
            last_due=due,
            last_error=error,
            last_request_id=event.request_id if event else state.last_request_id,
            fired=state.fired + 1,
        )
        token = uuid.uuid4().hex
        if not await self.store.advance_schedule(schedule.name, due, after, token, event):
            return False
        self._schedules[schedule.name] = (schedule, after)
        if event is not None:
            self.async_invoke.accepted(
                event,
                {
                    "source": f"aws.{schedule.source}",
                    "schedule": schedule.name,
                    "scheduled_time": schedules.iso_z(due),
                },
            )
        else:
            log.warning(
                "schedule %s could not invoke %s: %s", schedule.name, schedule.target_arn, error
            )
        return True

    def _event(self, schedule: Schedule, due: float) -> tuple[AsyncEvent | None, str | None]:
        target = self._target(schedule)
        body = schedules.payload(schedule, due, self.region, self.account)
        try:
            return self.async_invoke.prepare(target.name, target.qualifier, body), None
        except errors.LaminaError as exc:
            return None, f"{exc.error_type}: {exc.message}"

    async def _skip_stale(self, schedule: Schedule, state: ScheduleState, now: float) -> bool:
        """Move past the due times older than 24 h without firing them (counted missed)."""
        due, missed = state.next_due, 0
        while due is not None and due < now - schedules.MAX_EVENT_AGE_S and missed < 100_000:
            due = schedules.next_due(schedule, due)
            missed += 1
        after = dataclasses.replace(state, next_due=due, missed=state.missed + missed)
        assert state.next_due is not None
        if not await self.store.advance_schedule(
            schedule.name, state.next_due, after, uuid.uuid4().hex, None
        ):
            return False
        log.warning(
            "schedule %s missed %d due times older than 24 h (the engine was down, "
            "or its clock jumped)",
            schedule.name,
            missed,
        )
        self._schedules[schedule.name] = (schedule, after)
        return True


def _same_timing(old: Schedule, new: Schedule) -> bool:
    return (old.expression, old.timezone, old.source, old.enabled) == (
        new.expression,
        new.timezone,
        new.source,
        new.enabled,
    )
