"""CloudWatch Logs calls for Lambda's log groups on the engine's port, with boto3's logs client,
the AWS CLI v1 (`aws logs get-log-events`, `filter-log-events`, `describe-log-streams`) and the
AWS CLI v2's `aws logs tail` (Debian's awscli package; v1 has no `tail`), following new lines."""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.acceptance.conftest import module_client, module_engine
from tests.acceptance.test_aws_cli import AWS
from tests.conftest import client, create_function, invoke_json, make_zip

AWS2 = next(
    (
        p
        for p in ("/usr/bin/aws", "/usr/local/bin/aws", shutil.which("aws") or "")
        if p
        and Path(p).exists()
        and subprocess.run([p, "--version"], capture_output=True, text=True).stdout.startswith(
            "aws-cli/2"
        )
    ),
    None,
)
STREAM = re.compile(r"\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}")
PRINTS = make_zip(
    {
        "index.py": "def handler(event, context):\n"
        "    print(f\"hello from {event['n']}\")\n"
        "    return event['n']\n"
    }
)


engine = module_engine("cwlogs")


@pytest.fixture(scope="module")
def function(engine) -> str:
    """A function with two streams: three invocations in the first environment, two in a
    second one (a configuration change retires the first)."""
    lam = client(engine.endpoint)
    name = f"logs-{int(time.time() * 1000) % 10**8}"
    create_function(lam, name, PRINTS)
    for n in range(3):
        invoke_json(lam, name, {"n": n})
    lam.update_function_configuration(FunctionName=name, Description="second environment")
    lam.get_waiter("function_updated_v2").wait(FunctionName=name)
    for n in range(3, 5):
        invoke_json(lam, name, {"n": n})
    lam.close()
    return name


logs = module_client("logs")


def cli_env(tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_PAGER": "",
    }


def test_groups_and_streams(logs, function):
    group = f"/aws/lambda/{function}"
    found = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert [g["logGroupName"] for g in found] == [group]
    assert found[0]["arn"] == f"arn:aws:logs:us-east-1:123456789012:log-group:{group}:*"
    assert found[0]["storedBytes"] > 0
    streams = logs.describe_log_streams(logGroupName=group)["logStreams"]
    assert len(streams) == 2 and all(STREAM.fullmatch(s["logStreamName"]) for s in streams)
    assert [s["logStreamName"] for s in streams] == sorted(s["logStreamName"] for s in streams)
    newest = logs.describe_log_streams(
        logGroupName=group, orderBy="LastEventTime", descending=True, limit=1
    )
    assert newest["logStreams"][0]["lastEventTimestamp"] == max(
        s["lastEventTimestamp"] for s in streams
    )
    assert "nextToken" in newest
    with pytest.raises(logs.exceptions.InvalidParameterException) as raised:
        logs.describe_log_streams(
            logGroupName=group, orderBy="LastEventTime", logStreamNamePrefix="2"
        )
    assert (
        raised.value.response["Error"]["Message"]
        == "Cannot order by LastEventTime with a logStreamNamePrefix."
    )
    with pytest.raises(logs.exceptions.ResourceNotFoundException) as raised:
        logs.describe_log_streams(logGroupName="/aws/lambda/no-such-function")
    assert raised.value.response["Error"]["Message"] == "The specified log group does not exist."


def test_get_log_events_pages_forward_and_backward(logs, function):
    group = f"/aws/lambda/{function}"
    first = sorted(
        logs.describe_log_streams(logGroupName=group)["logStreams"],
        key=lambda s: s["firstEventTimestamp"],
    )[0]["logStreamName"]
    whole = logs.get_log_events(logGroupName=group, logStreamName=first, startFromHead=True)
    messages = [e["message"] for e in whole["events"]]
    assert messages[0].startswith("INIT_START Runtime Version: ")
    assert all(m.endswith("\n") for m in messages)
    assert [m for m in messages if m.startswith("hello from")] == [
        "hello from 0\n",
        "hello from 1\n",
        "hello from 2\n",
    ]
    assert sum(m.startswith("REPORT RequestId: ") for m in messages) == 3
    paged, token = [], None
    while True:
        arguments = {"nextToken": token} if token else {"startFromHead": True}
        page = logs.get_log_events(logGroupName=group, logStreamName=first, limit=4, **arguments)
        paged += page["events"]
        if page["nextForwardToken"] == token:
            break
        token = page["nextForwardToken"]
    assert paged == whole["events"]
    last_two = logs.get_log_events(logGroupName=group, logStreamName=first, limit=2)
    assert last_two["events"] == whole["events"][-2:]
    before = logs.get_log_events(
        logGroupName=group, logStreamName=first, limit=2, nextToken=last_two["nextBackwardToken"]
    )
    assert before["events"] == whole["events"][-4:-2]
    with pytest.raises(logs.exceptions.ResourceNotFoundException) as raised:
        logs.get_log_events(logGroupName=group, logStreamName="2020/01/01/[$LATEST]" + "0" * 32)
    assert raised.value.response["Error"]["Message"] == "The specified log stream does not exist."


def test_filter_log_events_across_streams(logs, function):
    group = f"/aws/lambda/{function}"
    found = logs.filter_log_events(logGroupName=group, filterPattern='"hello from"')["events"]
    assert [e["message"] for e in found] == [f"hello from {n}\n" for n in range(5)]
    assert len({e["logStreamName"] for e in found}) == 2
    assert len({e["eventId"] for e in found}) == 5
    everything = logs.filter_log_events(logGroupName=group)["events"]
    assert [e["timestamp"] for e in everything] == sorted(e["timestamp"] for e in everything)
    paged = [
        e
        for page in logs.get_paginator("filter_log_events").paginate(
            logGroupName=group, PaginationConfig={"PageSize": 3}
        )
        for e in page["events"]
    ]
    assert paged == everything
    quiet = logs.filter_log_events(logGroupName=group, filterPattern="RequestId -REPORT -END")
    assert quiet["events"] and all(e["message"].startswith("START ") for e in quiet["events"])
    either = logs.filter_log_events(logGroupName=group, filterPattern='?"from 1" ?"from 4"')
    assert [e["message"] for e in either["events"]] == ["hello from 1\n", "hello from 4\n"]
    later = logs.filter_log_events(
        logGroupName=group, filterPattern="hello", startTime=found[3]["timestamp"]
    )
    assert [e["message"] for e in later["events"]][-1] == "hello from 4\n"
    with pytest.raises(logs.exceptions.InvalidParameterException) as raised:
        logs.filter_log_events(logGroupName=group, filterPattern='{ $.level = "ERROR"')
    assert raised.value.response["Error"]["Message"].startswith("Invalid filter pattern")


@pytest.mark.skipif(not AWS.exists(), reason=f"{AWS} missing: run scripts/setup --test")
def test_the_aws_cli_v1_reads_log_events(engine, function, tmp_path):
    group = f"/aws/lambda/{function}"

    def aws(*args: str) -> str:
        done = subprocess.run(
            [str(AWS), "logs", *args, "--endpoint-url", engine.endpoint, "--output", "text"],
            env=cli_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    streams = aws(
        "describe-log-streams", "--log-group-name", group, "--query", "logStreams[].logStreamName"
    ).split()
    assert len(streams) == 2
    events = aws(
        "get-log-events",
        "--log-group-name",
        group,
        "--log-stream-name",
        streams[0],
        "--start-from-head",
        "--query",
        "events[].message",
    )
    assert "START RequestId:" in events
    assert "hello from 3" in aws(
        "filter-log-events",
        "--log-group-name",
        group,
        "--filter-pattern",
        "hello",
        "--query",
        "events[].message",
    )


@pytest.mark.skipif(
    AWS2 is None, reason="AWS CLI v2 missing (scripts/setup --test installs Debian's awscli)"
)
def test_aws_logs_tail_follows_new_lines(engine, function, tmp_path):
    group = f"/aws/lambda/{function}"
    done = subprocess.run(
        [
            AWS2,
            "logs",
            "tail",
            group,
            "--since",
            "1h",
            "--format",
            "short",
            "--endpoint-url",
            engine.endpoint,
        ],
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert [line.split(" ", 1)[1] for line in done.stdout.splitlines() if "hello from" in line] == [
        f"hello from {n}" for n in range(5)
    ]

    follower = subprocess.Popen(
        [
            AWS2,
            "logs",
            "tail",
            group,
            "--follow",
            "--since",
            "1m",
            "--format",
            "short",
            "--endpoint-url",
            engine.endpoint,
        ],
        env={**cli_env(tmp_path), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        lam = client(engine.endpoint)
        invoke_json(lam, function, {"n": "followed"})
        lam.close()
        deadline, seen = time.monotonic() + 30, b""
        while b"hello from followed" not in seen:  # tail polls every 5 s
            assert time.monotonic() < deadline, seen
            ready, _, _ = select.select([follower.stdout], [], [], 1.0)
            if ready:
                seen += os.read(follower.stdout.fileno(), 65536)
            assert follower.poll() is None, follower.stderr.read()
    finally:
        follower.terminate()
        follower.wait(10)
        follower.stdout.close()
        follower.stderr.close()


STRUCTURED = make_zip(
    {
        "index.py": """import json

def handler(event, context):
    for n, (level, latency) in enumerate([("INFO", 20), ("ERROR", 250), ("WARN", 120)]):
        print(json.dumps({"level": level, "latency": latency, "n": n}))
    print("10.0.0.1 alice GET /a 200 512")
    print("10.0.0.2 bob GET /b 404 1534")
    return "ok"
"""
    }
)


@pytest.fixture(scope="module")
def structured(engine) -> str:
    """A function whose log has JSON lines and space-delimited access-log lines."""
    lam = client(engine.endpoint)
    name = f"logs-json-{int(time.time() * 1000) % 10**8}"
    create_function(lam, name, STRUCTURED)
    invoke_json(lam, name, {})
    lam.close()
    return f"/aws/lambda/{name}"


def messages(logs, group: str, pattern: str) -> list[str]:
    return [
        e["message"].rstrip("\n")
        for e in logs.filter_log_events(logGroupName=group, filterPattern=pattern)["events"]
    ]


def test_json_and_space_delimited_filter_patterns(logs, structured):
    def levels(pattern: str) -> list[str]:
        return [json.loads(m)["level"] for m in messages(logs, structured, pattern)]

    assert levels('{ $.level = "ERROR" }') == ["ERROR"]
    assert levels("{ $.latency > 100 }") == ["ERROR", "WARN"]
    assert levels('{ $.latency > 100 && $.level != "ERROR" }') == ["WARN"]
    assert levels('{ $.level = "INFO" || $.latency >= 250 }') == ["INFO", "ERROR"]
    assert levels("{ $.trace NOT EXISTS && $.level = W* }") == ["WARN"]
    assert levels("{ $.level IS NULL }") == []
    assert messages(logs, structured, "[ip, user, ..., status = 404, bytes]") == [
        "10.0.0.2 bob GET /b 404 1534"
    ]
    assert messages(logs, structured, "[ip, user = a*, ...]") == ["10.0.0.1 alice GET /a 200 512"]
    assert len(messages(logs, structured, "[..., status >= 200 && status < 500, bytes]")) == 2
    assert messages(logs, structured, '?"/a 200" ?"/b 404"') == [
        "10.0.0.1 alice GET /a 200 512",
        "10.0.0.2 bob GET /b 404 1534",
    ]
    assert messages(logs, structured, "GET -alice") == ["10.0.0.2 bob GET /b 404 1534"]


@pytest.mark.skipif(not AWS.exists(), reason=f"{AWS} missing: run scripts/setup --test")
def test_the_aws_cli_filters_with_json_and_space_delimited_patterns(engine, structured, tmp_path):
    def filtered(pattern: str) -> list[str]:
        done = subprocess.run(
            [
                str(AWS),
                "logs",
                "filter-log-events",
                "--log-group-name",
                structured,
                "--filter-pattern",
                pattern,
                "--endpoint-url",
                engine.endpoint,
                "--output",
                "json",
                "--query",
                "events[].message",
            ],
            env=cli_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return [m.rstrip("\n") for m in json.loads(done.stdout)]

    assert [json.loads(m)["n"] for m in filtered('{ $.level = "ERROR" }')] == [1]
    assert [json.loads(m)["n"] for m in filtered("{ $.latency > 100 }")] == [1, 2]
    assert filtered("[ip, user, ..., status = 404, bytes]") == ["10.0.0.2 bob GET /b 404 1534"]
    done = subprocess.run(
        [
            str(AWS),
            "logs",
            "filter-log-events",
            "--log-group-name",
            structured,
            "--filter-pattern",
            "{ $.latency > }",
            "--endpoint-url",
            engine.endpoint,
        ],
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0 and "InvalidParameterException" in done.stderr
