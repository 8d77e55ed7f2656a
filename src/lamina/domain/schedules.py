"""Schedules: EventBridge rules and EventBridge Scheduler schedules the engine runs itself.

(Skeleton: the names of the contract with `deploy`; the expression grammar follows.)
Pure: no I/O, no clock (times are passed in).
"""

from __future__ import annotations

from dataclasses import dataclass

from lamina.domain import errors

SOURCES = ("events", "scheduler")


@dataclass(frozen=True, slots=True)
class Schedule:
    name: str              # unique in the engine; deploy uses the physical name it makes
    expression: str        # "rate(5 minutes)", "cron(0 12 * * ? *)", "at(2026-12-24T10:00:00)"
    target_arn: str        # a Lambda function ARN, maybe qualified (alias or version)
    input: str | None = None   # JSON text given by the target's Input; None: default payload
    source: str = "events"     # "events" (EventBridge rule) or "scheduler" (EventBridge Scheduler)
    enabled: bool = True
    timezone: str | None = None  # Scheduler's ScheduleExpressionTimezone
    stack: str | None = None     # the stack that made it (None: made by hand)


def validate(schedule: Schedule) -> None:
    """Raise errors.InvalidParameterValue naming what is wrong with `schedule`."""
    if not schedule.name:
        raise errors.InvalidParameterValue("Schedule name must not be empty.")
    if schedule.source not in SOURCES:
        raise errors.InvalidParameterValue(
            f"Schedule source must be one of {', '.join(SOURCES)}: {schedule.source}")
