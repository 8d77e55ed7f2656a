"""The `lamina` command: its client side (invocations, trace, logs) and the engine's durability.

The client commands run as `python -m lamina ... --endpoint URL` against a real engine. The
durability tests start engines of their own on a data directory, stop or SIGKILL them, and
look at what survives: functions, code, invocation records and logs, and no stray runtime
processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from tests.conftest import (
    FUNCTIONS,
    ROOT,
    Server,
    client,
    create_function,
    invoke_json,
    start_server,
    zip_dir,
)

PACKAGE = zip_dir(FUNCTIONS / "python")


def lamina(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "lamina", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert done.returncode == 0, f"lamina {' '.join(args)}: {done.stderr}"
    return done


def recorded(endpoint: str, function: str) -> list[dict]:
    return json.loads(lamina("invocations", function, "--endpoint", endpoint, "--json").stdout)


def trace(endpoint: str, request_id: str) -> dict:
    return json.loads(lamina("trace", request_id, "--endpoint", endpoint, "--json").stdout)


def request_id(response: dict) -> str:
    return response["ResponseMetadata"]["RequestId"]


def wait_until(predicate, timeout: float = 10.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Follower:
    """`lamina logs FUNCTION --follow` as a child process; its lines are kept as they come."""

    def __init__(self, endpoint: str, function: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lamina", "logs", function, "--follow", "--endpoint", endpoint],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 10.0) -> int:
        """Index of the first line containing `text`, once it has been printed."""

        def found() -> int | None:
            if self.process.poll() is not None:
                raise AssertionError(f"`lamina logs --follow` exited {self.process.returncode}")
            return next((i + 1 for i, line in enumerate(list(self.lines)) if text in line), None)

        return wait_until(found, timeout, f"{text!r} from `lamina logs --follow`") - 1

    def count(self, text: str) -> int:
        return sum(text in line for line in self.lines)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.kill()
        code = self.process.wait(10)
        self._reader.join(5)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()
        return code


@pytest.fixture
def follow(server) -> Iterator:
    started: list[Follower] = []

    def start(function: str) -> Follower:
        started.append(Follower(server.endpoint, function))
        return started[-1]

    yield start
    for follower in started:
        follower.stop()


@pytest.fixture
def engines(tmp_path) -> Iterator:
    """Start engines on tmp_path/data; every one still running is stopped at the end."""
    started: list[Server] = []

    def start(*args: str) -> Server:
        started.append(start_server(tmp_path / "data", "--idle-timeout", "60", *args))
        return started[-1]

    yield start
    for engine in started:
        engine.stop()


def proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state first), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(") ", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def test_invocations_lists_request_ids_with_their_status(server, lam, fname):
    create_function(lam, fname, PACKAGE, handler="index.sleep")
    good, _ = invoke_json(lam, fname, {"seconds": 0})
    bad, body = invoke_json(lam, fname, {"seconds": "soon"})
    assert bad["FunctionError"] == "Unhandled" and body["errorType"] == "TypeError"

    found = recorded(server.endpoint, fname)
    assert [item["RequestId"] for item in found] == [request_id(bad), request_id(good)]
    newest, oldest = found
    assert (oldest["Status"], oldest["ErrorType"]) == ("success", None)
    assert (newest["Status"], newest["ErrorType"]) == ("error", "TypeError")
    for item in found:
        assert item["FunctionName"] == fname
        assert item["InvocationType"] == "RequestResponse"
        assert item["Attempts"] == 1
        assert item["FinishedAt"] >= item["AcceptedAt"]
        assert item["DurationMs"] >= 0

    table = lamina("invocations", fname, "--endpoint", server.endpoint).stdout.splitlines()
    assert table[0].split()[:2] == ["ACCEPTED", "FUNCTION"] and table[0].endswith("REQUEST ID")
    rows = {line.split()[-1]: line for line in table[1:]}
    assert set(rows) == {request_id(good), request_id(bad)}
    assert " success " in rows[request_id(good)] and fname in rows[request_id(good)]
    assert " error " in rows[request_id(bad)] and "TypeError" in rows[request_id(bad)]

    assert fname in lamina("invocations", "--endpoint", server.endpoint).stdout


def test_trace_shows_accepted_then_a_cold_then_a_warm_attempt(server, lam, fname):
    create_function(lam, fname, PACKAGE, handler="index.echo")
    first = request_id(invoke_json(lam, fname, {"n": 1})[0])
    second = request_id(invoke_json(lam, fname, {"n": 2})[0])

    cold, warm = trace(server.endpoint, first), trace(server.endpoint, second)
    for got, wanted in ((cold, first), (warm, second)):
        assert got["Invocation"]["RequestId"] == wanted
        assert got["Invocation"]["Status"] == "success"
        assert [entry["Kind"] for entry in got["Timeline"]] == ["accepted", "attempt"]
        accepted, attempt = got["Timeline"]
        assert accepted["type"] == "RequestResponse" and accepted["version"] == "$LATEST"
        assert attempt["At"] >= accepted["At"]
        assert (attempt["attempt"], attempt["outcome"]) == (1, "success")
    cold_attempt, warm_attempt = cold["Timeline"][1], warm["Timeline"][1]
    assert cold_attempt["start"] == "cold" and cold_attempt["init_ms"] > 0
    assert warm_attempt["start"] == "warm" and "init_ms" not in warm_attempt
    assert warm_attempt["environment"] == cold_attempt["environment"]

    text = lamina("trace", first, "--endpoint", server.endpoint).stdout
    assert text.splitlines()[0].split() == [first, fname, "RequestResponse", "success"]
    assert "accepted" in text and "start=cold" in text


def test_trace_and_logs_of_unknown_things_fail_with_404(server, fname):
    missing = lamina("trace", "no-such-request", "--endpoint", server.endpoint, check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip() == "lamina: 404 Invocation not found: no-such-request"
    missing = lamina("logs", fname, "--endpoint", server.endpoint, check=False)
    assert missing.returncode == 1
    assert "lamina: 404 Function not found" in missing.stderr and fname in missing.stderr


def test_logs_prints_platform_lines_and_the_functions_output(server, lam, fname):
    create_function(lam, fname, PACKAGE, handler="index.log_lines")
    rid = request_id(lam.invoke(FunctionName=fname))
    lines = lamina("logs", fname, "--endpoint", server.endpoint).stdout.splitlines()
    messages = [line.split(" ", 1)[1] for line in lines]
    assert all(line[:4].isdigit() and line[10] == "T" for line in lines)
    start = messages.index(f"START RequestId: {rid} Version: $LATEST")
    end = messages.index(f"END RequestId: {rid}")
    assert start < messages.index("printed line") < end
    assert start < messages.index("to stderr") < end
    assert any("a warning from logging" in m for m in messages[start:end])
    assert messages[end + 1].startswith(f"REPORT RequestId: {rid}\tDuration: ")
    assert "Init Duration:" in messages[end + 1]
    assert any(m.startswith("INIT_START Runtime Version: ") for m in messages[:start])


def test_logs_follow_prints_lines_of_later_invocations(lam, fname, follow):
    create_function(lam, fname, PACKAGE, handler="index.log_lines")
    before = request_id(lam.invoke(FunctionName=fname))
    follower = follow(fname)
    follower.wait_for(f"REPORT RequestId: {before}")

    after = request_id(lam.invoke(FunctionName=fname))
    start = follower.wait_for(f"START RequestId: {after}")
    report = follower.wait_for(f"REPORT RequestId: {after}")
    printed = [i for i, line in enumerate(follower.lines) if line.endswith(" printed line")]
    assert any(start < i < report for i in printed)
    assert follower.stop() == -signal.SIGKILL
    assert follower.count(f"START RequestId: {before}") == 1
    assert follower.count(f"START RequestId: {after}") == 1


def test_logs_follow_keeps_lines_of_an_invocation_that_overlaps_a_shorter_one(
    server, lam, fname, follow
):
    create_function(lam, fname, PACKAGE, handler="index.sleep", Timeout=10)
    warmups = [
        threading.Thread(target=invoke_json, args=(lam, fname, {"seconds": 0.5})) for _ in range(2)
    ]
    for thread in warmups:
        thread.start()
    for thread in warmups:
        thread.join()
    follower = follow(fname)
    follower.wait_for("REPORT RequestId: ")

    long_call: list[dict] = []
    slow = threading.Thread(
        target=lambda: long_call.append(invoke_json(lam, fname, {"seconds": 2})[0])
    )
    slow.start()
    wait_until(
        lambda: len(server.get(f"/_lamina/invocations?function={fname}")["Invocations"]) == 3,
        what="the long invocation to be accepted",
    )
    short = request_id(invoke_json(lam, fname, {"seconds": 0})[0])
    follower.wait_for(f"REPORT RequestId: {short}")
    slow.join()
    long = request_id(long_call[0])
    follower.wait_for(f"REPORT RequestId: {long}")

    printed = [line.split(" ", 1)[1] for line in follower.lines]
    stored = [
        line.split(" ", 1)[1]
        for line in lamina("logs", fname, "--endpoint", server.endpoint).stdout.splitlines()
    ]
    assert f"START RequestId: {long} Version: $LATEST" in stored
    assert f"START RequestId: {long} Version: $LATEST" in printed, (
        "`lamina logs --follow` lost lines that `lamina logs` has: "
        f"{sorted(set(stored) - set(printed))}"
    )


def test_state_survives_a_restart(engines, fname):
    first = engines()
    lam = client(first.endpoint)
    create_function(
        lam,
        fname,
        PACKAGE,
        handler="index.echo",
        MemorySize=256,
        Environment={"Variables": {"KEPT": "yes"}},
    )
    before = lam.get_function(FunctionName=fname)["Configuration"]
    response, body = invoke_json(lam, fname, {"run": 1})
    assert body == {"run": 1}
    earlier = request_id(response)
    first.stop()
    assert first.process.returncode == 0, first.log()

    second = engines()
    lam = client(second.endpoint)
    after = lam.get_function(FunctionName=fname)["Configuration"]
    for key in (
        "CodeSha256",
        "RevisionId",
        "CodeSize",
        "MemorySize",
        "Handler",
        "Environment",
        "LastModified",
    ):
        assert after[key] == before[key], key
    assert after["State"] == "Active"
    response, body = invoke_json(lam, fname, {"run": 2})
    assert body == {"run": 2}
    later = request_id(response)

    found = {item["RequestId"]: item["Status"] for item in recorded(second.endpoint, fname)}
    assert found == {earlier: "success", later: "success"}
    assert [e["Kind"] for e in trace(second.endpoint, earlier)["Timeline"]] == [
        "accepted",
        "attempt",
    ]
    logs = lamina("logs", fname, "--endpoint", second.endpoint).stdout
    assert f"REPORT RequestId: {earlier}" in logs and f"REPORT RequestId: {later}" in logs


def test_sigkill_of_the_engine_ends_its_frozen_environment(engines, fname):
    engine = engines()
    lam = client(engine.endpoint)
    create_function(lam, fname, PACKAGE, handler="index.sleep")
    invoke_json(lam, fname, {"seconds": 0})
    # the runtime's pid on the host (in a sandbox it sees itself as pid 2)
    pid = engine.get(f"/_lamina/functions/{fname}")["Environments"][0]["Pid"]
    stat = wait_until(
        lambda: (s := proc_stat(pid)) and s[0] == "T" and s,
        what="the idle environment to be frozen",
    )
    ancestors, parent = [], int(stat[1])
    while parent > 1 and len(ancestors) < 5:  # the engine, or bwrap under the engine
        ancestors.append(parent)
        parent = int((proc_stat(parent) or ["", "0"])[1])
    assert engine.process.pid in ancestors
    started_at = stat[19]

    engine.stop(signal.SIGKILL)
    try:
        wait_until(
            lambda: (s := proc_stat(pid)) is None or s[0] in "ZX" or s[19] != started_at,
            timeout=5,
            what=f"runtime process {pid} to end after the engine was killed",
        )
    finally:
        if (s := proc_stat(pid)) is not None and s[0] not in "ZX" and s[19] == started_at:
            os.kill(pid, signal.SIGKILL)


def test_serve_help_mentions_the_main_flags():
    text = lamina("serve", "--help").stdout
    for flag in (
        "--host",
        "--port",
        "--data-dir",
        "--store",
        "--region",
        "--account",
        "--account-concurrency",
        "--idle-timeout",
        "--runtime",
        "--function-env",
        "--no-freeze",
        "--sample",
    ):
        assert flag in text, flag
    assert "LAMINA_PORT" in text and "9001" in text
    top = lamina("--help").stdout
    for command in ("serve", "invocations", "trace", "logs", "runtimes"):
        assert command in top, command
