"""Schedules the engine runs: EventBridge rules and Scheduler schedules, on virtual and scaled
engine time, across restarts, driven by boto3, the admin API and the `lamina` CLI."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import (
    FUNCTIONS,
    ROOT,
    Server,
    client,
    create_function,
    start_unsandboxed,
    zip_dir,
)

PACKAGE = zip_dir(FUNCTIONS / "events")
ARN = "arn:aws:lambda:us-east-1:123456789012:function:{}"


def admin(server: Server, method: str, path: str, body: object = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(server.endpoint + path, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
            return response.status, json.loads(text) if text else {}
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def advance(server: Server, seconds: float) -> float:
    status, body = admin(server, "POST", "/_lamina/clock/advance", {"Seconds": seconds})
    assert status == 200, body
    return body["Now"]


def runs(runs_dir: Path) -> list[dict]:
    path = runs_dir / "runs.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def lamina_cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lamina", *args, "--endpoint", server.endpoint],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(int(epoch), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch(text: str) -> float:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    path = tmp_path / "runs"
    path.mkdir()
    return path


def make_target(server: Server, name: str, runs_dir: Path) -> None:
    lam = client(server.endpoint)
    create_function(
        lam,
        name,
        PACKAGE,
        handler="index.record",
        Environment={"Variables": {"RUNS_DIR": str(runs_dir)}},
    )
    lam.close()


def test_a_daily_rule_fires_each_engine_day_on_virtual_time(tmp_path, runs_dir):
    """rate(1 day) in seconds: each due time sends EventBridge's Scheduled Event once, as an
    async invocation whose timeline names the schedule; a jump over three days fires three."""
    server = start_unsandboxed(tmp_path / "data", "--time-scale", "virtual")
    try:
        make_target(server, "daily", runs_dir)
        status, created = admin(
            server,
            "PUT",
            "/_lamina/schedules/nightly-report",
            {"ScheduleExpression": "rate(1 day)", "TargetArn": ARN.format("daily")},
        )
        assert status == 200, created
        assert created["Arn"] == "arn:aws:events:us-east-1:123456789012:rule/nightly-report"
        now = admin(server, "GET", "/_lamina/clock")[1]["Now"]
        first_due = epoch(created["NextDue"])
        assert abs(first_due - (now + 86_400)) <= 1
        advance(server, 86_399)  # a second before the due time: the schedule waits
        assert admin(server, "GET", "/_lamina/schedules/nightly-report")[1]["Fired"] == 0
        advance(server, 1)
        wait_for(lambda: len(runs(runs_dir)) == 1)
        event = runs(runs_dir)[0]["event"]
        assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
        assert event["time"] == iso(first_due) and event["detail"] == {}
        assert event["resources"] == [created["Arn"]]
        assert event["account"] == "123456789012" and event["region"] == "us-east-1"
        assert event["version"] == "0" and len(event["id"]) == 36

        advance(server, 2 * 86_400)
        wait_for(lambda: len(runs(runs_dir)) == 3)
        times = sorted(r["event"]["time"] for r in runs(runs_dir))
        assert times == [iso(first_due + n * 86_400) for n in range(3)], "each due time once"
        # a jump of three days: the due time then 48 h old is past EventBridge's 24 h
        advance(server, 3 * 86_400)
        wait_for(lambda: len(runs(runs_dir)) == 5)
        times = sorted(r["event"]["time"] for r in runs(runs_dir))
        assert times[3:] == [iso(first_due + n * 86_400) for n in (4, 5)]

        request_id = max(runs(runs_dir), key=lambda r: r["event"]["time"])["request_id"]
        wait_for(lambda: admin(server, "GET", f"/_lamina/invocations/{request_id}")[0] == 200)
        status, timeline = admin(server, "GET", f"/_lamina/invocations/{request_id}")
        accepted = next(r for r in timeline["Timeline"] if r["Kind"] == "accepted")
        assert accepted["source"] == "aws.events" and accepted["schedule"] == "nightly-report"
        assert accepted["scheduled_time"] == iso(first_due + 5 * 86_400)
        assert timeline["Invocation"]["InvocationType"] == "Event"

        listed = lamina_cli(server, "schedules")
        assert listed.returncode == 0, listed.stderr
        assert "nightly-report" in listed.stdout and "rate(1 day)" in listed.stdout
        shown = json.loads(lamina_cli(server, "schedules", "nightly-report", "--json").stdout)
        assert shown["Fired"] == 5 and shown["Missed"] == 1
        assert shown["LastRequestId"] == request_id
        assert shown["NextDue"] == iso(first_due + 6 * 86_400)
        invocations = lamina_cli(server, "invocations", "daily", "--type", "async")
        assert invocations.stdout.count("Event") == 5
    finally:
        server.stop()
    assert "Traceback" not in server.log(), server.log()


def test_rules_fire_on_scaled_time_with_their_input(tmp_path, runs_dir):
    """--time-scale 86400: a rate(1 day) rule fires about once a second, sending its Input;
    disabling it stops it; deleting it removes it."""
    server = start_unsandboxed(tmp_path / "data", "--time-scale", "86400")
    try:
        make_target(server, "scaled", runs_dir)
        changed = lamina_cli(
            server,
            "schedules",
            "every-day",
            "--expression",
            "rate(1 day)",
            "--target",
            "scaled",
            "--input",
            '{"job": "compact"}',
        )
        assert changed.returncode == 0, changed.stderr
        wait_for(lambda: len(runs(runs_dir)) >= 3, timeout=20)
        assert all(r["event"] == {"job": "compact"} for r in runs(runs_dir))
        status, _ = admin(
            server,
            "PUT",
            "/_lamina/schedules/every-day",
            {
                "ScheduleExpression": "rate(1 day)",
                "TargetArn": ARN.format("scaled"),
                "State": "DISABLED",
            },
        )
        assert status == 200
        settled = len(runs(runs_dir))
        stopped_at = admin(server, "GET", "/_lamina/clock")[1]["Now"]
        wait_for(lambda: admin(server, "GET", "/_lamina/clock")[1]["Now"] > stopped_at + 3 * 86_400)
        assert len(runs(runs_dir)) <= settled + 1  # one may have been queued already
        assert admin(server, "GET", "/_lamina/schedules/every-day")[1]["NextDue"] is None
        assert lamina_cli(server, "schedules", "every-day", "--delete").returncode == 0
        assert admin(server, "GET", "/_lamina/schedules/every-day")[0] == 404
    finally:
        server.stop()
    assert "Traceback" not in server.log(), server.log()


def test_a_restart_in_the_middle_of_a_schedule_fires_each_due_time_once(tmp_path, runs_dir):
    """Virtual time: the clock and the schedule go on where they were after a restart, with
    no due time fired twice. Scaled time: due times that passed while the engine was down
    fire once each when it comes back (they are younger than 24 h)."""

    # an event running when the engine is killed runs again after the restart (Lambda's
    # async invocation is at-least-once): the same request id; a due time never gets two
    def fired(folder: Path) -> dict[str, float]:
        return {r["request_id"]: epoch(r["event"]["time"]) for r in runs(folder)}

    data = tmp_path / "data"
    server = start_unsandboxed(data, "--time-scale", "virtual")
    try:
        make_target(server, "hourly", runs_dir)
        admin(
            server,
            "PUT",
            "/_lamina/schedules/hourly",
            {"ScheduleExpression": "rate(1 hour)", "TargetArn": ARN.format("hourly")},
        )
        advance(server, 2 * 3600)
        wait_for(lambda: len(fired(runs_dir)) == 2)
        before = admin(server, "GET", "/_lamina/clock")[1]["Now"]
    finally:
        server.stop(signal.SIGKILL)
    server = start_unsandboxed(data, "--time-scale", "virtual")
    try:
        assert admin(server, "GET", "/_lamina/clock")[1]["Now"] == before
        state = admin(server, "GET", "/_lamina/schedules/hourly")[1]
        first = min(fired(runs_dir).values())
        assert state["Fired"] == 2 and state["NextDue"] == iso(first + 2 * 3600), state
        advance(server, 3600)
        wait_for(lambda: len(fired(runs_dir)) == 3)
        times = sorted(fired(runs_dir).values())
        assert times[1] - times[0] == 3600 and times[2] - times[1] == 3600
    finally:
        server.stop()
    assert "Traceback" not in server.log(), server.log()

    scaled_runs = tmp_path / "scaled-runs"
    scaled_runs.mkdir()
    data = tmp_path / "scaled"
    server = start_unsandboxed(data, "--time-scale", "3600")
    try:
        make_target(server, "hourly", scaled_runs)
        admin(
            server,
            "PUT",
            "/_lamina/schedules/hourly",
            {"ScheduleExpression": "rate(1 hour)", "TargetArn": ARN.format("hourly")},
        )
        wait_for(lambda: len(runs(scaled_runs)) >= 2)
    finally:
        server.stop(signal.SIGKILL)
    time.sleep(2.5)  # 2.5 engine hours pass while the engine is down
    server = start_unsandboxed(data, "--time-scale", "3600")
    try:
        # the due times missed while down fire at once, as queued events whose runs may end
        # in any order: wait until six have run with no gap (a skipped one never fills it)
        def hourly() -> bool:
            times = sorted(fired(scaled_runs).values())
            return len(times) >= 6 and all(b - a == 3600 for a, b in itertools.pairwise(times))

        try:
            wait_for(hourly)
        except AssertionError:
            raise AssertionError(f"none skipped: {sorted(fired(scaled_runs).values())}") from None
        found = fired(scaled_runs)
        assert len(set(found.values())) == len(found), "no due time fired twice"
    finally:
        server.stop()
    assert "Traceback" not in server.log(), server.log()


def test_scheduler_schedules_use_their_time_zone_context_attributes_and_at(tmp_path, runs_dir):
    """EventBridge Scheduler: cron in a time zone, at() once, Input with context attributes."""
    server = start_unsandboxed(tmp_path / "data", "--time-scale", "virtual")
    try:
        make_target(server, "zoned", runs_dir)
        now = admin(server, "GET", "/_lamina/clock")[1]["Now"]
        import zoneinfo

        paris = zoneinfo.ZoneInfo("Europe/Paris")
        in_two_hours = dt.datetime.fromtimestamp(now + 7200, paris).replace(second=0)
        at_text = in_two_hours.strftime("%Y-%m-%dT%H:%M:%S")
        status, created = admin(
            server,
            "PUT",
            "/_lamina/schedules/once",
            {
                "ScheduleExpression": f"at({at_text})",
                "ScheduleExpressionTimezone": "Europe/Paris",
                "Source": "scheduler",
                "TargetArn": ARN.format("zoned"),
                "Input": '{"arn": "<aws.scheduler.schedule-arn>", '
                '"when": "<aws.scheduler.scheduled-time>"}',
            },
        )
        assert status == 200, created
        assert created["Arn"] == ("arn:aws:scheduler:us-east-1:123456789012:schedule/default/once")
        assert created["NextDue"] == iso(in_two_hours.timestamp())
        minute = in_two_hours.minute
        status, _ = admin(
            server,
            "PUT",
            "/_lamina/schedules/zoned-cron",
            {
                "ScheduleExpression": f"cron({minute} {in_two_hours.hour} * * ? *)",
                "ScheduleExpressionTimezone": "Europe/Paris",
                "Source": "scheduler",
                "TargetArn": ARN.format("zoned"),
            },
        )
        assert status == 200
        advance(server, 7200)
        wait_for(lambda: len(runs(runs_dir)) == 2)
        events = sorted((r["event"] for r in runs(runs_dir)), key=lambda e: "arn" in e)
        assert events[0] == {}  # Scheduler without Input
        assert events[1] == {"arn": created["Arn"], "when": iso(in_two_hours.timestamp())}
        advance(server, 86_400)
        wait_for(lambda: len(runs(runs_dir)) == 3)  # the cron again, the at() never
        once = admin(server, "GET", "/_lamina/schedules/once")[1]
        assert once["NextDue"] is None and once["Fired"] == 1
    finally:
        server.stop()
    assert "Traceback" not in server.log(), server.log()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"ScheduleExpression": "rate(1 hours)"}, "singular"),
        ({"ScheduleExpression": "rate(5 hour)"}, "plural"),
        ({"ScheduleExpression": "rate(0 minutes)"}, "positive"),
        ({"ScheduleExpression": "cron(0 12 * * * *)"}, "exactly one of day-of-month"),
        ({"ScheduleExpression": "cron(0 12 * * ?)"}, "6 fields"),
        ({"ScheduleExpression": "cron(0 12 ? * 3#1,6#3 *)"}, "one expression"),
        ({"ScheduleExpression": "at(2030-01-01T00:00:00)"}, "Scheduler schedules only"),
        (
            {
                "ScheduleExpression": "rate(5 minutes)",
                "ScheduleExpressionTimezone": "Mars/Olympus",
                "Source": "scheduler",
            },
            "not a time zone",
        ),
        ({"ScheduleExpression": "rate(5 minutes)", "Input": "{not json"}, "not valid JSON"),
        (
            {
                "ScheduleExpression": "rate(5 minutes)",
                "TargetArn": "arn:aws:lambda:eu-west-1:123456789012:function:x",
            },
            "not a Lambda function of this engine",
        ),
    ],
)
def test_bad_schedules_are_refused_with_a_clear_message(server, body, message):
    status, answer = admin(
        server, "PUT", "/_lamina/schedules/bad-one", {"TargetArn": ARN.format("anything"), **body}
    )
    assert status == 400
    assert message in answer["message"], answer
    assert admin(server, "GET", "/_lamina/schedules/bad-one")[0] == 404
    shown = lamina_cli(
        server, "schedules", "bad-one", "--expression", "rate(1 hours)", "--target", "x"
    )
    assert shown.returncode != 0 and "Traceback" not in shown.stderr
    assert len(shown.stderr.strip().splitlines()) == 1


def test_a_schedule_whose_function_is_missing_records_why_and_goes_on(tmp_path, runs_dir):
    server = start_unsandboxed(tmp_path / "data", "--time-scale", "virtual")
    try:
        admin(
            server,
            "PUT",
            "/_lamina/schedules/orphan",
            {"ScheduleExpression": "rate(1 minute)", "TargetArn": ARN.format("not-yet")},
        )
        advance(server, 60)
        wait_for(lambda: admin(server, "GET", "/_lamina/schedules/orphan")[1]["LastError"])
        state = admin(server, "GET", "/_lamina/schedules/orphan")[1]
        assert state["LastError"].startswith("ResourceNotFoundException")
        make_target(server, "not-yet", runs_dir)
        advance(server, 60)
        wait_for(lambda: len(runs(runs_dir)) == 1)
        assert admin(server, "GET", "/_lamina/schedules/orphan")[1]["LastError"] is None
    finally:
        server.stop()
    assert "Traceback" not in server.log(), server.log()


def test_two_engines_on_postgres_fire_each_due_time_once(postgres, tmp_path, runs_dir):
    """Only the engine leading "schedules" fires; when it dies, the other goes on from the
    next due time, and no due time is sent twice."""
    url = postgres.new_database(migrated=True)
    first = start_unsandboxed(tmp_path / "a", "--store", url, "--time-scale", "3600")
    second = start_unsandboxed(tmp_path / "b", "--store", url, "--time-scale", "3600")
    try:
        make_target(first, "pg-hourly", runs_dir)
        wait_for(lambda: admin(second, "GET", "/_lamina/functions/pg-hourly")[0] == 200)
        status, _ = admin(
            second,
            "PUT",
            "/_lamina/schedules/pg-hourly",
            {"ScheduleExpression": "rate(1 hour)", "TargetArn": ARN.format("pg-hourly")},
        )
        assert status == 200
        wait_for(lambda: admin(first, "GET", "/_lamina/schedules/pg-hourly")[0] == 200)

        def fired() -> dict[str, float]:
            return {r["request_id"]: epoch(r["event"]["time"]) for r in runs(runs_dir)}

        wait_for(lambda: len(fired()) >= 4)
        leaders = [
            s for s in (first, second) if admin(s, "GET", "/_lamina/schedules")[1]["Leading"]
        ]
        assert len(leaders) == 1
        leader = leaders[0]
        other = second if leader is first else first
        count = len(fired())
        leader.stop(signal.SIGKILL)
        wait_for(lambda: len(fired()) >= count + 4)
        assert admin(other, "GET", "/_lamina/schedules")[1]["Leading"]
        times = sorted(fired().values())
        assert len(set(times)) == len(times), "no due time fired twice"
        assert all(b - a == 3600 for a, b in itertools.pairwise(times)), "none skipped"
    finally:
        first.stop()
        second.stop()
