"""Store operations for schedules, HTTP APIs and the engine clock's anchor (migration 0014),
over the same two primitives as `base.SqlStore` (which takes them in as a mixin)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from lamina.domain import apis
from lamina.domain.apis import HttpApi
from lamina.domain.model import AsyncEvent
from lamina.domain.schedules import Schedule, ScheduleState
from lamina.storage import rows

_COMPACT = (",", ":")


class EventsQueries:
    """Schedules, HTTP APIs and the clock anchor (see the module docstring)."""

    async def _query(
        self, name: str, params: dict[str, Any] | None = None
    ) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    async def _change(self, *steps: Any) -> list[list[tuple[Any, ...]]]:
        raise NotImplementedError

    # schedules -----------------------------------------------------------------------
    async def put_schedule(self, schedule: Schedule, state: ScheduleState) -> None:
        await self._change(("put_schedule", schedule_row(schedule, state)))

    async def delete_schedule(self, name: str) -> None:
        await self._change(("delete_schedule", {"name": name}))

    async def list_schedules(self) -> list[tuple[Schedule, ScheduleState]]:
        return [
            (Schedule(**json.loads(r[0])), ScheduleState(**json.loads(r[1])))
            for r in await self._query("list_schedules")
        ]

    async def advance_schedule(
        self, name: str, due: float, state: ScheduleState, token: str, event: AsyncEvent | None
    ) -> bool:
        """Move a schedule past its due time `due` (and queue `event` for it) in one
        transaction, unless `due` is no longer its next due time (another engine fired it,
        or a user changed the schedule): then nothing is written and False is returned."""
        steps: list[tuple[str, Any]] = [
            (
                "advance_schedule",
                {
                    "name": name,
                    "due": due,
                    "next_due": state.next_due,
                    "token": token,
                    "state": json.dumps(dataclasses.asdict(state), separators=_COMPACT),
                },
            )
        ]
        if event is not None:
            steps.append(("enqueue_scheduled_event", {**rows.event_row(event), "token": token}))
        steps.append(("schedule_advanced", {"token": token}))
        results = await self._change(*steps)
        return bool(results[-1] and results[-1][0][0])

    # HTTP APIs -----------------------------------------------------------------------
    async def put_http_api(self, api: HttpApi) -> None:
        await self._change(
            (
                "put_http_api",
                {
                    "api_id": api.api_id,
                    "config": json.dumps(apis.to_wire(api), separators=_COMPACT),
                },
            )
        )

    async def delete_http_api(self, api_id: str) -> None:
        await self._change(("delete_http_api", {"api_id": api_id}))

    async def list_http_apis(self) -> list[HttpApi]:
        found = []
        for (text,) in await self._query("list_http_apis"):
            document = json.loads(text)
            found.append(apis.from_wire(document["ApiId"], document))
        return found

    # the engine clock ------------------------------------------------------------------
    async def get_engine_clock(self) -> tuple[float, float, str] | None:
        found = await self._query("get_engine_clock")
        return (float(found[0][0]), float(found[0][1]), str(found[0][2])) if found else None

    async def put_engine_clock(self, engine_time: float, wall_time: float, scale: str) -> None:
        await self._change(
            (
                "put_engine_clock",
                {"engine_time": engine_time, "wall_time": wall_time, "scale": scale},
            )
        )


def schedule_row(schedule: Schedule, state: ScheduleState) -> dict[str, Any]:
    return {
        "name": schedule.name,
        "next_due": state.next_due,
        "config": json.dumps(dataclasses.asdict(schedule), separators=_COMPACT),
        "state": json.dumps(dataclasses.asdict(state), separators=_COMPACT),
    }


class EventsMemory:
    """The same operations kept in dictionaries (`storage.memory.MemoryStore`)."""

    def __init__(self) -> None:
        self.schedules: dict[str, tuple[Schedule, ScheduleState]] = {}
        self.http_apis: dict[str, HttpApi] = {}
        self.engine_clock: tuple[float, float, str] | None = None
        self.scheduled_events: list[AsyncEvent] = []

    async def put_schedule(self, schedule: Schedule, state: ScheduleState) -> None:
        self.schedules[schedule.name] = (schedule, state)

    async def delete_schedule(self, name: str) -> None:
        self.schedules.pop(name, None)

    async def list_schedules(self) -> list[tuple[Schedule, ScheduleState]]:
        return [self.schedules[k] for k in sorted(self.schedules)]

    async def advance_schedule(
        self, name: str, due: float, state: ScheduleState, token: str, event: AsyncEvent | None
    ) -> bool:
        current = self.schedules.get(name)
        if current is None or current[1].next_due != due:
            return False
        self.schedules[name] = (current[0], state)
        if event is not None:
            await self.enqueue_event(event)  # type: ignore[attr-defined]
        return True

    async def put_http_api(self, api: HttpApi) -> None:
        self.http_apis[api.api_id] = api

    async def delete_http_api(self, api_id: str) -> None:
        self.http_apis.pop(api_id, None)

    async def list_http_apis(self) -> list[HttpApi]:
        return [self.http_apis[k] for k in sorted(self.http_apis)]

    async def get_engine_clock(self) -> tuple[float, float, str] | None:
        return self.engine_clock

    async def put_engine_clock(self, engine_time: float, wall_time: float, scale: str) -> None:
        self.engine_clock = (engine_time, wall_time, scale)
