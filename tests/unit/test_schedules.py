"""Schedule expressions (pure) and the schedule service over the memory store."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random

import pytest

from lamina.domain import cron, errors, schedules
from lamina.domain.model import AsyncEvent
from lamina.domain.schedules import Schedule
from lamina.service.clock import VirtualClock
from lamina.service.schedules import ScheduleService
from lamina.storage.memory import MemoryStore

FN = "arn:aws:lambda:us-east-1:123456789012:function:f"
UTC = dt.UTC


def nexts(expression: str, start: dt.datetime, n: int = 3) -> list[str]:
    parsed, out, moment = cron.parse(expression), [], start
    for _ in range(n):
        moment = parsed.next_after(moment)
        if moment is None:
            break
        out.append(moment.strftime("%Y-%m-%d %H:%M"))
    return out


JAN_1_2024 = dt.datetime(2024, 1, 1)  # a Monday


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("0 10 * * ? *", ["2024-01-01 10:00", "2024-01-02 10:00", "2024-01-03 10:00"]),
        ("0/15 * * * ? *", ["2024-01-01 00:15", "2024-01-01 00:30", "2024-01-01 00:45"]),
        ("1/10 * * * ? *", ["2024-01-01 00:01", "2024-01-01 00:11", "2024-01-01 00:21"]),
        ("0 12 L * ? *", ["2024-01-31 12:00", "2024-02-29 12:00", "2024-03-31 12:00"]),
        ("0 12 L-2 * ? *", ["2024-01-29 12:00", "2024-02-27 12:00", "2024-03-29 12:00"]),
        ("0 0 LW * ? *", ["2024-01-31 00:00", "2024-02-29 00:00", "2024-03-29 00:00"]),
        ("0 12 15W * ? *", ["2024-01-15 12:00", "2024-02-15 12:00", "2024-03-15 12:00"]),
        # June 1 2024 is a Saturday: 1W is Monday the 3rd (W never leaves the month)
        ("0 12 1W 6 ? 2024", ["2024-06-03 12:00"]),
        # June 30 2024 is a Sunday: 30W is Friday the 28th
        ("0 12 30W 6 ? 2024-2025", ["2024-06-28 12:00", "2025-06-30 12:00"]),
        ("0 12 ? * 6#3 *", ["2024-01-19 12:00", "2024-02-16 12:00", "2024-03-15 12:00"]),
        ("0 12 ? * 5#5 *", ["2024-02-29 12:00", "2024-05-30 12:00", "2024-08-29 12:00"]),
        ("0 12 ? * 6L *", ["2024-01-26 12:00", "2024-02-23 12:00", "2024-03-29 12:00"]),
        ("0 12 ? * L *", ["2024-01-06 12:00", "2024-01-13 12:00", "2024-01-20 12:00"]),
        ("0 12 ? * MON-FRI *", ["2024-01-01 12:00", "2024-01-02 12:00", "2024-01-03 12:00"]),
        ("0 12 ? * FRI-MON *", ["2024-01-01 12:00", "2024-01-05 12:00", "2024-01-06 12:00"]),
        ("0 23-1 * * ? *", ["2024-01-01 01:00", "2024-01-01 23:00", "2024-01-02 00:00"]),
        ("0 12 ? JAN,FEB MON 2025", ["2025-01-06 12:00", "2025-01-13 12:00", "2025-01-20 12:00"]),
        ("0 8 1 */3 ? *", ["2024-04-01 08:00", "2024-07-01 08:00", "2024-10-01 08:00"]),
        ("0 12 31 2 ? *", []),
        ("15 10 ? * 7L 2024", ["2024-01-27 10:15", "2024-02-24 10:15", "2024-03-30 10:15"]),
        ("0 0 * * ? 2023", []),
    ],
)
def test_cron_next_matches(expression: str, expected: list[str]) -> None:
    start = JAN_1_2024 if "*/3" not in expression else dt.datetime(2024, 1, 1, 9)
    assert nexts(expression, start) == expected


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 12 * * * *", "exactly one"),
        ("0 12 ? * ? *", "exactly one"),
        ("0 12 * *", "6 fields"),
        ("60 * * * ? *", "out of range"),
        ("0 24 * * ? *", "range"),
        ("0 0 32 * ? *", "range"),
        ("0 0 ? 13 * *", "range"),
        ("0 0 ? * 8 *", "range"),
        ("0 0 ? * 0 *", "range"),
        ("0 0 * * ? 1969", "range"),
        ("0 0 * * ? 2200", "range"),
        ("0 0 ? * 3#1,6#3 *", "one expression"),
        ("0 0 ? * 3#6 *", "1-5"),
        ("*/0 * * * ? *", "increment"),
        ("x * * * ? *", "not a value"),
        ("0 0 L-31 * ? *", "offset"),
        ("0 0 5- * ? *", "not a value"),
    ],
)
def test_bad_cron_fields_are_named(expression: str, message: str) -> None:
    with pytest.raises(cron.CronError) as caught:
        cron.parse(expression)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("text", "source", "ok"),
    [
        ("rate(1 minute)", "events", True),
        ("rate(5 minutes)", "events", True),
        ("rate(1 hours)", "events", False),
        ("rate(5 hour)", "events", False),
        ("rate(1 day)", "events", True),
        ("rate(0 days)", "events", False),
        ("rate(1 minutes)", "scheduler", True),
        ("rate(2 weeks)", "events", False),
        ("at(2026-12-24T10:00:00)", "scheduler", True),
        ("at(2026-12-24T10:00:00)", "events", False),
        ("at(2026-02-30T10:00:00)", "scheduler", False),
        ("every 5 minutes", "events", False),
    ],
)
def test_expressions_follow_each_services_rules(text: str, source: str, ok: bool) -> None:
    schedule = Schedule("s", text, FN, source=source)
    if ok:
        schedules.validate(schedule)
    else:
        with pytest.raises(errors.InvalidParameterValue):
            schedules.validate(schedule)


def test_rate_due_times_rules_start_a_period_later_scheduler_at_once() -> None:
    rule = Schedule("r", "rate(5 minutes)", FN)
    assert schedules.first_due(rule, 1000.0) == 1300.0
    assert schedules.next_due(rule, 1300.0) == 1600.0
    assert (
        schedules.first_due(Schedule("s", "rate(5 minutes)", FN, source="scheduler"), 1000.0)
        == 1000.0
    )


def epoch(text: str, zone: str = "UTC") -> float:
    import zoneinfo

    return dt.datetime.fromisoformat(text).replace(tzinfo=zoneinfo.ZoneInfo(zone)).timestamp()


def test_scheduler_cron_in_a_time_zone_skips_the_spring_gap_and_fires_once_in_the_fall() -> None:
    tz = "America/New_York"
    daily = Schedule("d", "cron(30 2 * * ? *)", FN, source="scheduler", timezone=tz)
    # 2026-03-08 02:30 does not exist in New York: that day is skipped
    due = schedules.first_due(daily, epoch("2026-03-07T03:00:00", tz))
    assert due == epoch("2026-03-09T02:30:00", tz)
    # 2026-11-01 01:30 happens twice: it fires once, at the first
    hourly = Schedule("h", "cron(30 * * * ? *)", FN, source="scheduler", timezone=tz)
    due = schedules.first_due(hourly, epoch("2026-11-01T00:45:00", tz))
    first_half_past_one = due
    after = schedules.next_due(hourly, due)
    assert after - first_half_past_one == 2 * 3600  # the repeated 01:30 is not fired again
    # a rule's cron is UTC
    rule = Schedule("u", "cron(0 12 * * ? *)", FN)
    assert schedules.first_due(rule, epoch("2026-01-01T13:00:00")) == epoch("2026-01-02T12:00:00")


def test_payloads() -> None:
    rule = Schedule("nightly", "rate(1 day)", FN)
    event = json.loads(
        schedules.payload(rule, epoch("2026-01-02T03:04:05"), "eu-west-1", "111122223333")
    )
    assert {k: v for k, v in event.items() if k != "id"} == {
        "version": "0",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "111122223333",
        "time": "2026-01-02T03:04:05Z",
        "region": "eu-west-1",
        "resources": ["arn:aws:events:eu-west-1:111122223333:rule/nightly"],
        "detail": {},
    }
    with_input = Schedule("n", "rate(1 day)", FN, input='{"a": 1}')
    assert schedules.payload(with_input, 0, "r", "a") == b'{"a": 1}'
    scheduler = Schedule(
        "s",
        "rate(1 day)",
        FN,
        source="scheduler",
        input='{"t": "<aws.scheduler.scheduled-time>", "n": "<aws.scheduler.attempt-number>"}',
    )
    assert json.loads(schedules.payload(scheduler, 0, "r", "a")) == {
        "t": "1970-01-01T00:00:00Z",
        "n": "1",
    }
    assert (
        schedules.payload(Schedule("e", "rate(1 day)", FN, source="scheduler"), 0, "r", "a")
        == b"{}"
    )


class FakeAsync:
    """Stands in for AsyncInvokeService: builds events and remembers what was accepted."""

    def __init__(self, store: MemoryStore, clock: VirtualClock) -> None:
        self.store, self.clock, self.accepted_events = store, clock, []

    def prepare(self, name, qualifier, payload, trace_id=None) -> AsyncEvent:
        if name == "missing":
            raise errors.ResourceNotFound("Function not found: missing")
        now = self.clock.now()
        return AsyncEvent(f"r{len(self.store.events)}", name, qualifier, payload, now, now)

    def accepted(self, event, source=None) -> None:
        self.accepted_events.append((event, source))


def service() -> tuple[ScheduleService, MemoryStore, VirtualClock, FakeAsync]:
    store, clock = MemoryStore(), VirtualClock(1_000_000.0)
    fake = FakeAsync(store, clock)
    return ScheduleService(store, fake, clock, "us-east-1", "123456789012"), store, clock, fake


def test_each_due_time_fires_once_and_ones_older_than_a_day_are_missed() -> None:
    async def scenario() -> None:
        svc, store, clock, _fake = service()
        await svc.put(Schedule("h", "rate(1 hour)", FN))
        clock.advance(3 * 3600)
        await svc.fire_due(clock.now())
        await svc.fire_due(clock.now())  # again: nothing more
        assert len(store.events) == 3
        assert [json.loads(e.payload)["time"] for e, _, _ in store.events.values()] == [
            schedules.iso_z(1_000_000.0 + n * 3600) for n in (1, 2, 3)
        ]
        clock.advance(30 * 3600)  # 30 due times: the 5 older than 24 h are missed
        await svc.fire_due(clock.now())
        state = svc.state("h")
        assert (state.fired, state.missed) == (3 + 25, 5)
        assert state.next_due == 1_000_000.0 + 34 * 3600
        # the store refuses a due time fired already (another engine, or a stale cache)
        assert not await store.advance_schedule("h", 1_000_000.0 + 3600, state, "t", None)

    asyncio.run(scenario())


def test_a_missing_target_is_recorded_and_a_replacement_keeps_or_resets_due_times() -> None:
    async def scenario() -> None:
        svc, store, clock, _fake = service()
        target = "arn:aws:lambda:us-east-1:123456789012:function:missing"
        await svc.put(Schedule("m", "rate(1 minute)", target))
        clock.advance(60)
        await svc.fire_due(clock.now())
        assert svc.state("m").last_error.startswith("ResourceNotFoundException")
        assert not store.events and svc.state("m").next_due == 1_000_000.0 + 120
        await svc.put(Schedule("m", "rate(1 minute)", FN, input="{}"))  # same timing
        assert svc.state("m").next_due == 1_000_000.0 + 120
        await svc.put(Schedule("m", "rate(5 minutes)", FN))  # new timing
        assert svc.state("m").next_due == clock.now() + 300
        await svc.put(Schedule("m", "rate(5 minutes)", FN, enabled=False))
        assert svc.state("m").next_due is None
        with pytest.raises(errors.InvalidParameterValue):
            await svc.put(
                Schedule("x", "rate(5 minutes)", "arn:aws:lambda:eu-west-1:123456789012:function:f")
            )
        await svc.delete("m")
        with pytest.raises(errors.ResourceNotFound):
            await svc.delete("m")

    asyncio.run(scenario())


class _RandomCron:
    """Random expressions over the whole of AWS's cron grammar."""

    def __init__(self, rnd: random.Random) -> None:
        self.rnd = rnd

    def item(self, low: int, high: int, names: list[str]) -> str:
        rnd = self.rnd
        pick = rnd.random()
        if pick < 0.3:
            return str(rnd.randint(low, high))
        if pick < 0.5:
            a, b = sorted((rnd.randint(low, high), rnd.randint(low, high)))
            return f"{a}-{b}"
        if pick < 0.7:
            return f"{rnd.randint(low, high)}/{rnd.randint(1, (high - low) // 2 + 1)}"
        if pick < 0.8:
            return f"*/{rnd.randint(1, (high - low) // 2 + 1)}"
        return rnd.choice(names) if names and pick < 0.9 else "*"

    def field(self, low: int, high: int, names: list[str] | None = None) -> str:
        return ",".join(
            self.item(low, high, names or []) for _ in range(self.rnd.choice([1, 1, 2, 3]))
        )

    def day_of_month(self) -> str:
        rnd = self.rnd
        return rnd.choice(
            [
                "L",
                f"L-{rnd.randint(1, 5)}",
                f"{rnd.randint(2, 27)}W",
                self.field(1, 31),
                self.field(1, 31),
            ]
        )

    def day_of_week(self) -> str:
        rnd = self.rnd
        return rnd.choice(
            [
                f"{rnd.randint(1, 7)}L",
                f"{rnd.randint(1, 7)}#{rnd.randint(1, 4)}",
                self.field(1, 7, ["MON", "FRI", "SUN"]),
                self.field(1, 7),
            ]
        )

    def expression(self) -> str:
        by_month = self.rnd.random() < 0.5
        return " ".join(
            [
                self.field(0, 59),
                self.field(0, 23),
                self.day_of_month() if by_month else "?",
                self.field(1, 12, ["JAN", "JUN", "DEC"]),
                "?" if by_month else self.day_of_week(),
                self.rnd.choice(["*", "2024-2027"]),
            ]
        )


def _next_five(text: str, start: dt.datetime) -> list[dt.datetime]:
    mine, ours, moment = cron.parse(text), [], start
    for _ in range(5):
        moment = mine.next_after(moment)
        if moment is None:
            break
        ours.append(moment)
    return ours


def test_cron_agrees_with_an_independent_reader_of_aws_cron() -> None:
    """Random expressions over the whole grammar, read by `aws-croniter` as well: wherever
    both accept one, the next five times agree. (That library refuses some forms AWS takes,
    such as `*` inside a list or a step in the year, and misses `LW`, `L` alone in
    day-of-week and a `W` pushed into the next month: those are in the cases above.)"""
    aws_croniter = pytest.importorskip("aws_croniter")
    rnd = random.Random(2026)
    expressions = _RandomCron(rnd)
    compared = 0
    for _ in range(400):
        text = expressions.expression()
        start = dt.datetime(
            2024, rnd.randint(1, 12), rnd.randint(1, 28), rnd.randint(0, 23), rnd.randint(0, 59)
        )
        try:
            theirs = aws_croniter.AwsCroniter(text)
        except Exception:
            continue
        ours = _next_five(text, start)  # we accept all they accept
        expected = [
            t.replace(tzinfo=None)
            for t in theirs.get_next(start.replace(tzinfo=UTC), n=5)
            if t is not None
        ]
        assert ours == expected, (text, start)
        compared += 1
    assert compared > 100
