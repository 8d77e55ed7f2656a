"""EventBridge's six-field cron dialect: parse, validate, and find the next matching minute.

    cron(minutes hours day-of-month month day-of-week year)

    field          values            wildcards
    minutes        0-59              , - * /
    hours          0-23              , - * /
    day-of-month   1-31              , - * ? / L W     (L, L-n, nW, LW)
    month          1-12 or JAN-DEC   , - * /
    day-of-week    1-7 or SUN-SAT    , - * ? L #       (L alone is 7, nL, n#k)
    year           1970-2199         , - * /

Rules (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-cron-expressions.html):
exactly one of day-of-month and day-of-week is `?`; `#` makes the day-of-week field one
expression only (`3#1,6#3` is refused); `a/n` starts at a and steps by n up to the field's
end; a range may wrap (`FRI-MON`, `22-2`), as in Quartz, whose dialect EventBridge follows.
`W` is the weekday nearest to the day within the same month; `L-n` is n days before the last.

Times are wall-clock minutes (naive datetimes): the caller maps them to a time zone.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

MONTHS = {
    name: i + 1
    for i, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
    )
}
DAYS = {name: i + 1 for i, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
FIELDS = (
    ("minutes", 0, 59),
    ("hours", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 1, 7),
    ("year", 1970, 2199),
)
_RANGE = re.compile(r"(\w+)(?:-(\w+))?(?:/(\d+))?")


class CronError(ValueError):
    """The expression is not one EventBridge accepts; the message says which part."""


@dataclass(frozen=True, slots=True)
class DaySpec:
    """How a day of a month is chosen: plain days, or one of the special forms."""

    days: frozenset[int] = frozenset()  # day-of-month numbers, or weekdays (1=SUN)
    last: int | None = None  # L / L-n: last day minus n
    weekday_near: int | None = None  # nW; 0 for LW
    nth: tuple[int, int] | None = None  # (weekday, k): n#k
    last_weekday: int | None = None  # nL: last such weekday of the month
    any: bool = False  # ?


@dataclass(frozen=True, slots=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    day_of_month: DaySpec
    months: frozenset[int]
    day_of_week: DaySpec
    years: frozenset[int]

    def days_in(self, year: int, month: int) -> list[int]:
        """The days of `month` that match, ascending."""
        length = calendar.monthrange(year, month)[1]
        spec, by_week = (
            (self.day_of_month, False) if not self.day_of_month.any else (self.day_of_week, True)
        )
        return sorted(
            d for d in _matching_days(spec, by_week, year, month, length) if 1 <= d <= length
        )

    def next_after(self, moment: dt.datetime) -> dt.datetime | None:
        """The first matching minute strictly after `moment` (naive wall time), or None
        when no later minute matches (the years ran out)."""
        start = moment.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        for year in sorted(y for y in self.years if y >= start.year):
            for month in sorted(self.months):
                if (year, month) < (start.year, start.month):
                    continue
                found = self._in_month(year, month, start)
                if found is not None:
                    return found
        return None

    def _in_month(self, year: int, month: int, start: dt.datetime) -> dt.datetime | None:
        same_month = (year, month) == (start.year, start.month)
        for day in self.days_in(year, month):
            if same_month and day < start.day:
                continue
            same_day = same_month and day == start.day
            for hour in sorted(self.hours):
                if same_day and hour < start.hour:
                    continue
                same_hour = same_day and hour == start.hour
                for minute in sorted(self.minutes):
                    if same_hour and minute < start.minute:
                        continue
                    return dt.datetime(year, month, day, hour, minute)
        return None


def _matching_days(spec: DaySpec, by_week: bool, year: int, month: int, length: int) -> set[int]:
    first_weekday = (calendar.weekday(year, month, 1) + 1) % 7 + 1  # 1=SUN … 7=SAT

    def weekday(day: int) -> int:
        return (first_weekday - 1 + day - 1) % 7 + 1

    if not by_week:
        if spec.last is not None:
            return {length - spec.last}
        if spec.weekday_near is not None:
            return {_nearest_weekday(spec.weekday_near or length, length, weekday)}
        return set(spec.days)
    if spec.nth is not None:
        wanted, k = spec.nth
        first = 1 + (wanted - first_weekday) % 7
        return {first + 7 * (k - 1)}
    if spec.last_weekday is not None:
        last = length - (weekday(length) - spec.last_weekday) % 7
        return {last}
    return {d for d in range(1, length + 1) if weekday(d) in spec.days}


def _nearest_weekday(day: int, length: int, weekday: Callable[[int], int]) -> int:
    """The weekday (Mon–Fri) nearest to `day`, never leaving the month (Quartz's W)."""
    day = min(day, length)
    name = weekday(day)
    if name == 7:  # Saturday: Friday, or Monday when the 1st is a Saturday
        return day - 1 if day > 1 else day + 2
    if name == 1:  # Sunday: Monday, or Friday when it is the last day
        return day + 1 if day < length else day - 2
    return day


# parsing -----------------------------------------------------------------------------
def parse(text: str) -> Cron:
    """The six fields of `cron(...)`'s inside; CronError names what is wrong."""
    fields = text.split()
    if len(fields) != 6:
        raise CronError(f"a cron expression has 6 fields, {len(fields)} given")
    minutes, hours, dom, month, dow, year = (f.upper() for f in fields)
    if (dom == "?") == (dow == "?"):
        raise CronError("exactly one of day-of-month and day-of-week must be ?")
    return Cron(
        _values(minutes, 0),
        _values(hours, 1),
        _day_of_month(dom),
        _values(month, 3, MONTHS),
        _day_of_week(dow),
        _values(year, 5),
    )


def _values(text: str, index: int, names: dict[str, int] | None = None) -> frozenset[int]:
    name, low, high = FIELDS[index]
    found: set[int] = set()
    for item in text.split(","):
        found |= _item(item, name, low, high, names)
    return frozenset(found)


def _item(item: str, name: str, low: int, high: int, names: dict[str, int] | None) -> set[int]:
    if item == "*":
        return set(range(low, high + 1))
    head, _, step_text = item.partition("/")
    if step_text:
        if not step_text.isdigit() or int(step_text) == 0:
            raise CronError(f"{name}: bad increment in {item!r}")
        step = int(step_text)
    else:
        step = 1
    if head == "*":
        start, end = low, high
    else:
        first, dash, last = head.partition("-")
        start = _number(first, name, low, high, names)
        if dash:
            end = _number(last, name, low, high, names)
        else:
            end = high if step_text else start
    if start <= end:
        return set(range(start, end + 1, step))
    span = list(range(start, high + 1)) + list(range(low, end + 1))  # a wrapping range
    return set(span[::step])


def _number(text: str, name: str, low: int, high: int, names: dict[str, int] | None) -> int:
    if names and text in names:
        return names[text]
    if not text.isdigit():
        raise CronError(f"{name}: {text!r} is not a value")
    value = int(text)
    if not low <= value <= high:
        raise CronError(f"{name}: {value} is out of range {low}-{high}")
    return value


def _day_of_month(text: str) -> DaySpec:
    if text == "?":
        return DaySpec(any=True)
    if text == "L":
        return DaySpec(last=0)
    if text == "LW":
        return DaySpec(weekday_near=0)
    found = re.fullmatch(r"L-(\d+)", text)
    if found:
        offset = int(found.group(1))
        if not 0 <= offset <= 30:
            raise CronError(f"day-of-month: {text!r}: the offset from L is 0-30")
        return DaySpec(last=offset)
    found = re.fullmatch(r"(\d+)W", text)
    if found:
        day = _number(found.group(1), "day-of-month", 1, 31, None)
        return DaySpec(weekday_near=day)
    return DaySpec(days=_values(text, 2))


def _day_of_week(text: str) -> DaySpec:
    if text == "?":
        return DaySpec(any=True)
    if text == "L":
        return DaySpec(days=frozenset({7}))
    if "#" in text:
        found = re.fullmatch(r"(\w+)#(\d+)", text)
        if not found:
            raise CronError(f"day-of-week: {text!r}: '#' allows one expression only")
        day = _number(found.group(1), "day-of-week", 1, 7, DAYS)
        k = int(found.group(2))
        if not 1 <= k <= 5:
            raise CronError(f"day-of-week: {text!r}: the week of the month is 1-5")
        return DaySpec(nth=(day, k))
    found = re.fullmatch(r"(\w+?)L", text)
    if found:
        return DaySpec(last_weekday=_number(found.group(1), "day-of-week", 1, 7, DAYS))
    return DaySpec(days=_values(text, 4, DAYS))
