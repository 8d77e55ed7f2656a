"""Schedules the engine runs on its own clock (skeleton: the contract's names)."""

from __future__ import annotations

from lamina.domain import errors, schedules
from lamina.domain.schedules import Schedule


class ScheduleService:
    """Create, replace, delete and list schedules; fire them on the engine's clock."""

    def __init__(self) -> None:
        self._schedules: dict[str, Schedule] = {}

    async def put(self, schedule: Schedule) -> Schedule:
        schedules.validate(schedule)
        self._schedules[schedule.name] = schedule
        return schedule

    async def delete(self, name: str) -> None:
        if self._schedules.pop(name, None) is None:
            raise errors.ResourceNotFound(f"Schedule {name} does not exist.")

    def get(self, name: str) -> Schedule | None:
        return self._schedules.get(name)

    def list(self) -> list[Schedule]:
        return [self._schedules[k] for k in sorted(self._schedules)]
