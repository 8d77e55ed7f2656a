"""Schedules: EventBridge scheduled rules and EventBridge Scheduler schedules, run by the engine.

A schedule names an expression and a Lambda target. Its *due times* follow from the
expression:

* `rate(n unit)` — every n minutes/hours/days (days are 24 h). A rule's first due time is
  one period after it was created or enabled; a Scheduler schedule without a start date
  invokes at once, then every period (the Scheduler guide, "Rate-based schedules").
  Rules: `1` takes the singular unit and more than 1 the plural ("rate(1 hours) and
  rate(5 hour) aren't valid"); Scheduler's own validation is laxer, so both forms pass there.
* `cron(…)` — the six-field dialect of `domain.cron`, in UTC for rules and in the
  schedule's `timezone` for Scheduler. Across a daylight-saving change a wall time that does
  not exist is skipped and a wall time that happens twice fires once (Scheduler guide,
  "Daylight savings time").
* `at(yyyy-mm-ddThh:mm:ss)` — Scheduler only: one due time, in the schedule's time zone.

What a due time sends (`payload`): a rule sends the target's Input, or else EventBridge's
"Scheduled Event"; a Scheduler schedule sends the target's Input with its context
attributes (`<aws.scheduler.scheduled-time>` …) filled in, or else `{}`.

Pure: no I/O, no clock (times are passed in, as epoch seconds).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
import zoneinfo
from dataclasses import dataclass
from typing import Any

from lamina.domain import cron, errors

SOURCES = ("events", "scheduler")
NAME_RE = re.compile(r"[\.\-_A-Za-z0-9]{1,64}")
MAX_EVENT_AGE_S = 86_400  # EventBridge and Scheduler stop retrying an event after 24 h
_UNITS = {"minute": 60, "hour": 3600, "day": 86_400}
_RATE = re.compile(r"rate\(\s*(\d+)\s+([a-z]+)\s*\)")
_CRON = re.compile(r"cron\((.*)\)", re.DOTALL)
_AT = re.compile(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")
UTC = dt.UTC


@dataclass(frozen=True, slots=True)
class Schedule:
    name: str  # unique in the engine; deploy uses the physical name it makes
    expression: str  # "rate(5 minutes)", "cron(0 12 * * ? *)", "at(2026-12-24T10:00:00)"
    target_arn: str  # a Lambda function ARN, maybe qualified (alias or version)
    input: str | None = None  # JSON text given by the target's Input; None: default payload
    source: str = "events"  # "events" (EventBridge rule) or "scheduler" (EventBridge Scheduler)
    enabled: bool = True
    timezone: str | None = None  # Scheduler's ScheduleExpressionTimezone
    stack: str | None = None  # the stack that made it (None: made by hand)


@dataclass(frozen=True, slots=True)
class ScheduleState:
    """Where a schedule stands, kept beside it in the store."""

    created: float  # engine time it was created, or last (re)timed
    next_due: float | None  # the next due time not fired yet (None: none left)
    last_due: float | None = None  # the last due time that fired
    last_request_id: str | None = None
    last_error: str | None = None  # why the last due time sent nothing (no such function…)
    fired: int = 0
    missed: int = 0  # due times skipped: older than 24 h when the engine came


# validation ---------------------------------------------------------------------------
def validate(schedule: Schedule) -> None:
    """Raise errors.InvalidParameterValue naming what is wrong with `schedule`."""
    if not isinstance(schedule.name, str) or not NAME_RE.fullmatch(schedule.name):
        raise errors.InvalidParameterValue(
            f"Schedule name {schedule.name!r} is not valid: 1-64 letters, digits, '.', '-' or '_'."
        )
    if schedule.source not in SOURCES:
        raise errors.InvalidParameterValue(
            f"Schedule {schedule.name}: Source must be one of events, scheduler "
            f"(got {schedule.source!r})."
        )
    if not isinstance(schedule.target_arn, str) or not schedule.target_arn:
        raise errors.InvalidParameterValue(f"Schedule {schedule.name}: TargetArn is required.")
    if schedule.input is not None:
        _check_input(schedule)
    if schedule.timezone is not None:
        if schedule.source != "scheduler":
            raise errors.InvalidParameterValue(
                f"Schedule {schedule.name}: a time zone is for Scheduler schedules only; "
                "EventBridge rules run in UTC."
            )
        zone(schedule)
    try:
        parse_expression(schedule.expression, schedule.source)
    except cron.CronError as exc:
        raise errors.InvalidParameterValue(
            f"Schedule {schedule.name}: ScheduleExpression {schedule.expression!r} is not "
            f"valid: {exc}."
        ) from None


def _check_input(schedule: Schedule) -> None:
    if not isinstance(schedule.input, str):
        raise errors.InvalidParameterValue(f"Schedule {schedule.name}: Input must be text.")
    if schedule.source == "events":  # a rule's Input must be valid JSON; Scheduler's is text
        try:
            json.loads(schedule.input)
        except (ValueError, RecursionError):
            raise errors.InvalidParameterValue(
                f"Schedule {schedule.name}: Input is not valid JSON."
            ) from None


def zone(schedule: Schedule) -> dt.tzinfo:
    if not schedule.timezone:
        return UTC
    try:
        return zoneinfo.ZoneInfo(schedule.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise errors.InvalidParameterValue(
            f"Schedule {schedule.name}: ScheduleExpressionTimezone {schedule.timezone!r} is "
            "not a time zone."
        ) from None


# expressions --------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Rate:
    seconds: int


@dataclass(frozen=True, slots=True)
class At:
    moment: dt.datetime  # naive wall time in the schedule's zone


Expression = Rate | cron.Cron | At


def parse_expression(text: Any, source: str = "events") -> Expression:
    """The parsed expression; cron.CronError says what is wrong."""
    if not isinstance(text, str):
        raise cron.CronError("it must be text")
    found = _RATE.fullmatch(text.strip())
    if found:
        return _rate(int(found.group(1)), found.group(2), source)
    found = _CRON.fullmatch(text.strip())
    if found:
        return cron.parse(found.group(1))
    found = _AT.fullmatch(text.strip())
    if found:
        if source != "scheduler":
            raise cron.CronError("at() is for Scheduler schedules only")
        try:
            return At(dt.datetime.fromisoformat(found.group(1)))
        except ValueError:
            raise cron.CronError("at() holds no real date and time") from None
    raise cron.CronError(
        "use rate(value unit), cron(fields)"
        + (" or at(yyyy-mm-ddThh:mm:ss)" if source == "scheduler" else "")
    )


def _rate(value: int, unit: str, source: str) -> Rate:
    if value < 1:
        raise cron.CronError("the rate's value must be a positive number")
    singular = unit.rstrip("s")
    if singular not in _UNITS or unit not in (singular, singular + "s"):
        raise cron.CronError(f"unknown unit {unit!r}: use minute(s), hour(s) or day(s)")
    if source == "events" and (unit == singular) != (value == 1):
        raise cron.CronError(
            "a value of 1 takes a singular unit (minute, hour, day) and a "
            "larger value a plural one (minutes, hours, days)"
        )
    return Rate(value * _UNITS[singular])


def first_due(schedule: Schedule, created: float) -> float | None:
    """The first due time of a schedule created (or enabled) at `created`."""
    expression = parse_expression(schedule.expression, schedule.source)
    if isinstance(expression, Rate):
        return created + (0 if schedule.source == "scheduler" else expression.seconds)
    if isinstance(expression, At):
        return expression.moment.replace(tzinfo=zone(schedule)).timestamp()
    return _next_cron(expression, zone(schedule), created)


def next_due(schedule: Schedule, due: float) -> float | None:
    """The due time after `due` (None: the schedule has no more)."""
    expression = parse_expression(schedule.expression, schedule.source)
    if isinstance(expression, Rate):
        return due + expression.seconds
    if isinstance(expression, At):
        return None
    return _next_cron(expression, zone(schedule), due)


def _next_cron(expression: cron.Cron, tz: dt.tzinfo, after: float) -> float | None:
    """The first wall-clock match in `tz` strictly after `after`: a wall time that does not
    exist that day is skipped, one that happens twice counts once (its first occurrence)."""
    wall = dt.datetime.fromtimestamp(after, tz).replace(tzinfo=None)
    while True:
        found = expression.next_after(wall)
        if found is None:
            return None
        moment = found.replace(tzinfo=tz, fold=0)
        if _exists(moment) and moment.timestamp() > after:
            return moment.timestamp()
        wall = found


def _exists(moment: dt.datetime) -> bool:
    """False for a wall time inside a daylight-saving gap (it round-trips elsewhere)."""
    back = dt.datetime.fromtimestamp(moment.timestamp(), moment.tzinfo)
    return back.replace(tzinfo=None) == moment.replace(tzinfo=None)


# payloads ----------------------------------------------------------------------------
def rule_arn(name: str, region: str, account: str) -> str:
    return f"arn:aws:events:{region}:{account}:rule/{name}"


def schedule_arn(name: str, region: str, account: str) -> str:
    return f"arn:aws:scheduler:{region}:{account}:schedule/default/{name}"


def arn(schedule: Schedule, region: str, account: str) -> str:
    return (rule_arn if schedule.source == "events" else schedule_arn)(
        schedule.name, region, account
    )


def iso_z(epoch: float) -> str:
    return dt.datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def payload(
    schedule: Schedule, due: float, region: str, account: str, execution_id: str | None = None
) -> bytes:
    """What the function receives for the due time `due`."""
    if schedule.source == "scheduler":
        text = schedule.input if schedule.input is not None else "{}"
        for key, value in (
            ("schedule-arn", arn(schedule, region, account)),
            ("scheduled-time", iso_z(due)),
            ("execution-id", execution_id or uuid.uuid4().hex[:16]),
            ("attempt-number", "1"),
        ):
            text = text.replace(f"<aws.scheduler.{key}>", value)
        return text.encode()
    if schedule.input is not None:
        return schedule.input.encode()
    return json.dumps(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": account,
            "time": iso_z(due),
            "region": region,
            "resources": [arn(schedule, region, account)],
            "detail": {},
        }
    ).encode()


# the wire shape of the admin API -----------------------------------------------------
def to_wire(schedule: Schedule) -> dict[str, Any]:
    return {
        "Name": schedule.name,
        "ScheduleExpression": schedule.expression,
        "TargetArn": schedule.target_arn,
        "Input": schedule.input,
        "Source": schedule.source,
        "State": "ENABLED" if schedule.enabled else "DISABLED",
        "ScheduleExpressionTimezone": schedule.timezone,
        "Stack": schedule.stack,
    }


def from_wire(name: str, document: dict[str, Any]) -> Schedule:
    """The schedule a PUT body describes (the inverse of `to_wire`)."""
    state = document.get("State", "ENABLED")
    if state not in ("ENABLED", "DISABLED"):
        raise errors.InvalidParameterValue(
            f"Schedule {name}: State must be ENABLED or DISABLED (got {state!r})."
        )
    for key in ("ScheduleExpression", "TargetArn"):
        if not isinstance(document.get(key), str):
            raise errors.InvalidParameterValue(f"Schedule {name}: {key} is required.")
    return Schedule(
        name=name,
        expression=document["ScheduleExpression"],
        target_arn=document["TargetArn"],
        input=document.get("Input"),
        source=document.get("Source", "events"),
        enabled=state == "ENABLED",
        timezone=document.get("ScheduleExpressionTimezone"),
        stack=document.get("Stack"),
    )


def state_to_wire(state: ScheduleState | None) -> dict[str, Any]:
    if state is None:
        return {}
    return {
        "NextDue": iso_z(state.next_due) if state.next_due is not None else None,
        "LastDue": iso_z(state.last_due) if state.last_due is not None else None,
        "LastRequestId": state.last_request_id,
        "LastError": state.last_error,
        "Fired": state.fired,
        "Missed": state.missed,
    }
