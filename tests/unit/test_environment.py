"""The execution environment with a fake process: the test is the runtime, calling the Runtime
API handlers as a runtime's requests would, and no child process is started.

What is checked: Init ends at the first `next`; an event is delivered with its invocation id;
an answer echoing another invocation's id is refused with 410; an idle environment is frozen
and thawed to deliver; retiring while held; a timeout kills; an exit is Runtime.ExitError;
the REPORT line carries the process's peak memory; JSON platform records and their level;
an Init over its limit is retried inside the first invocation (suppressed init), and what the
replaced runtime still sends is refused.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from lamina.domain import states
from lamina.domain.model import FunctionConfig, Invocation
from lamina.http.server import Request
from lamina.runtime.environment import (
    FREEZE_GRACE_S,
    RECHECK_S,
    STALLED_S,
    EnvironmentSettings,
    ExecutionEnvironment,
    _InvocationIds,
)
from lamina.runtime.interpreters import Interpreter
from lamina.runtime.launch import Launch, View
from lamina.runtime.reset import KeptTmps
from lamina.runtime.runtime_api import handlers
from lamina.runtime.sandbox import Support

CONFIG = FunctionConfig(
    name="f",
    runtime="python3.12",
    handler="index.handler",
    role="arn:aws:iam::123456789012:role/r",
    code_sha256="c2hh",
    code_size=1,
    revision_id="r1",
    last_modified="now",
    timeout=1,
)


class FakeProcess:
    """A runtime process that does nothing but record what the environment did to it."""

    def __init__(self, launch: Launch) -> None:
        self.launch = launch
        self.alive = True
        self.calls: list[str] = []
        self.peak_kb = 50 * 1024

    @property
    def runtime_pid(self) -> int:
        return 4242

    def start(self) -> None:
        self.calls.append("start")

    def freeze(self) -> None:
        self.calls.append("freeze")

    def thaw(self) -> None:
        self.calls.append("thaw")

    def kill(self) -> None:
        self.calls.append("kill")
        self.exit(-9)

    def exit(self, code: int) -> None:
        if self.alive:
            self.alive = False
            asyncio.get_running_loop().call_soon(self.launch.on_exit, code)

    def drain_output(self) -> None:
        self.calls.append("drain")

    def memory_kb(self) -> int:
        return 1024

    def peak_memory_kb(self) -> int:
        return self.peak_kb


class FakeLauncher:
    support = Support("bwrap", privileged=True, late_mounts=True)

    def __init__(self) -> None:
        self.processes: list[FakeProcess] = []
        self.discarded: list[str] = []
        self.kept = KeptTmps(self.discarded.append)

    def keep_tmp(self, process: FakeProcess, view: View) -> str | None:
        return f"tmp-of-{self.processes.index(process)}"

    def view(self, family: str, task_root: Path, opt_dir: Path | None, env_id: str) -> View:
        return View("/var/task", "/var/runtime", "/opt", None, None, opt_variable=False)

    def spawn(self, launch: Launch) -> FakeProcess:
        process = FakeProcess(launch)
        process.start()
        self.processes.append(process)
        return process

    def close(self) -> None:
        pass


class RuntimeConnection:
    """A runtime's connection as a request sees it (`http.server.Channel`), in process."""

    closed = False

    @property
    def _loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def write_interim(self, status: int) -> bool:
        return False


def Post(body: bytes = b"{}", **headers: str) -> Request:
    """A runtime's POST, as the handlers get it."""
    names = {k.replace("_", "-").lower(): v for k, v in headers.items()}
    return Request("POST", "/2018-06-01/runtime/invocation", "", names, body, RuntimeConnection())


def run(
    test: Any, tmp_path: Path, config: FunctionConfig = CONFIG, init_timeout: float = 10.0
) -> None:
    async def main() -> None:
        launcher = FakeLauncher()
        dead: list[ExecutionEnvironment] = []
        env = ExecutionEnvironment(
            config,
            tmp_path / "task",
            Interpreter("/usr/bin/python3", (3, 12)),
            EnvironmentSettings("us-east-1", tmp_path, init_timeout=init_timeout),
            dead.append,
            launcher,
        )
        await env.start()
        try:
            await test(env, launcher.processes, dead)
        finally:
            env.kill("test over")
            await asyncio.sleep(0)

    asyncio.run(main())


def invocation(request_id: str = "rid-1") -> Invocation:
    return Invocation(
        request_id,
        CONFIG,
        "arn:aws:lambda:us-east-1:123456789012:function:f",
        b'{"a": 1}',
        tenant_id="blue",
    )


async def next_event(env: ExecutionEnvironment) -> asyncio.Task[Any]:
    task = asyncio.ensure_future(handlers.next_invocation(env, None))
    await asyncio.sleep(0)
    return task


def log_text(env: ExecutionEnvironment) -> str:
    env.logs.flush()
    return env.logs.path.read_text()


def test_init_deliver_respond_and_report(tmp_path):
    async def test(env, processes, dead):
        assert processes[0].launch.argv == ["/usr/bin/python3", "-S", "/var/runtime/bootstrap.py"]
        assert processes[0].launch.env["LAMBDA_TASK_ROOT"] == "/var/task"
        assert "TMPDIR" not in processes[0].launch.env
        env.reserve()
        parked = await next_event(env)
        assert env.state == states.READY
        running = asyncio.ensure_future(env.invoke(invocation(), want_tail=True))
        response = await parked
        headers = dict(response.headers)
        assert headers["Lambda-Runtime-Aws-Request-Id"] == "rid-1"
        assert headers["Lambda-Runtime-Aws-Tenant-Id"] == "blue"
        invocation_id = headers["Lambda-Runtime-Invocation-Id"]
        answer = handlers.response(
            env, Post(b'{"ok": true}', **{"lambda-runtime-invocation-id": invocation_id}), "rid-1"
        )
        assert answer.status == 202
        outcome = await running
        assert (outcome.payload, outcome.function_error) == (b'{"ok": true}', False)
        assert outcome.init_ms is not None
        tail = outcome.log_tail.decode()
        assert "START RequestId: rid-1 Version: $LATEST" in tail
        assert "Max Memory Used: 50 MB" in tail and "Init Duration:" in tail
        assert "drain" in processes[0].calls

    run(test, tmp_path)


def test_invocation_ids_are_uuid_shaped_and_never_repeat():
    """Drawn once per environment and counted on: 32 hex digits, a version-4 UUID's shape."""
    made = [_InvocationIds() for _ in range(3)]
    seen = [ids.next() for ids in made for _ in range(1000)]
    assert len(set(seen)) == len(seen)
    for one in seen[::250]:
        assert re.fullmatch(r"[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}", one), one


def test_an_answer_for_another_invocation_is_gone(tmp_path):
    async def test(env, processes, dead):
        env.reserve()
        parked = await next_event(env)
        running = asyncio.ensure_future(env.invoke(invocation()))
        await parked
        stale = handlers.response(env, Post(**{"lambda-runtime-invocation-id": "old"}), "rid-1")
        assert stale.status == 410
        assert json.loads(stale.body)["errorType"] == "ErrorRuntimeInvokeTimeout"
        assert handlers.response(env, Post(), "other-id").status == 400  # InvalidRequestID
        assert not running.done()
        assert (
            handlers.error(env, Post(b'{"errorType": "E", "errorMessage": "m"}'), "rid-1").status
            == 202
        )  # no id echoed: accepted, as before
        outcome = await running
        assert outcome.function_error and outcome.error_type == "E"

    run(test, tmp_path)


async def _one_call_then_idle(env: ExecutionEnvironment) -> asyncio.Task[Any]:
    """Run one invocation, give the environment back and park the runtime in `next` again
    (the environment is idle now); returns the parked `next`."""
    env.reserve()
    parked = await next_event(env)
    first = asyncio.ensure_future(env.invoke(invocation()))
    await parked
    handlers.response(env, Post(), "rid-1")
    await first
    env.release()
    assert env.hold == states.FREE  # the runtime has not asked for the next event yet
    return await next_event(env)


def test_idle_environment_is_frozen_and_thawed_to_deliver(tmp_path):
    async def test(env, processes, dead):
        parked = await _one_call_then_idle(env)
        assert env.hold == states.FREE, "idle, not frozen before the grace is over"
        await asyncio.sleep(FREEZE_GRACE_S * 2)
        assert env.hold == states.FROZEN and env.frozen
        assert processes[0].calls[-1] == "freeze"
        env.reserve()
        assert env.hold == states.HELD_FROZEN  # reserved, still stopped until delivery
        second = asyncio.ensure_future(env.invoke(invocation("rid-2")))
        await parked
        assert processes[0].calls[-1] == "thaw" and env.hold == states.HELD
        handlers.response(env, Post(), "rid-2")
        assert (await second).init_ms is None  # warm

    run(test, tmp_path)


def test_taken_within_the_freeze_grace_is_handed_over_without_freeze_or_thaw(tmp_path):
    """A call that takes an idle environment before the grace ends goes straight to the
    parked runtime: no SIGSTOP/SIGCONT pair; idle again, it is frozen after the grace."""

    async def test(env, processes, dead):
        parked = await _one_call_then_idle(env)
        env.reserve()
        second = asyncio.ensure_future(env.invoke(invocation("rid-2")))
        await parked
        handlers.response(env, Post(), "rid-2")
        await second
        await asyncio.sleep(FREEZE_GRACE_S * 2)
        assert "freeze" not in processes[0].calls and "thaw" not in processes[0].calls
        env.release()
        await next_event(env)
        # frozen after the grace (later on a loaded machine: a late freeze waits once more)
        deadline = time.monotonic() + 2
        while not env.frozen and time.monotonic() < deadline:
            await asyncio.sleep(FREEZE_GRACE_S)
        assert env.frozen and processes[0].calls.count("freeze") == 1

    run(test, tmp_path)


def test_a_freeze_due_while_the_engine_was_held_up_waits_once_for_calls_come_meanwhile(tmp_path):
    """The engine held up past an idle environment's grace (descheduled, a long turn of its
    loop): the freeze is held `RECHECK_S` more, so that a call which came in meanwhile takes
    the environment without a freeze/thaw pair; not taken, it is frozen then, and a freeze
    found on time is not held."""

    async def test(env, processes, dead):
        parked = await _one_call_then_idle(env)
        time.sleep(FREEZE_GRACE_S + 4 * STALLED_S)  # the loop cannot run its timer
        for _ in range(3):
            await asyncio.sleep(0)  # the late timer has fired: the freeze is held
        assert not env.frozen and "freeze" not in processes[0].calls
        env.reserve()  # the call that waited meanwhile
        second = asyncio.ensure_future(env.invoke(invocation("rid-2")))
        await parked
        handlers.response(env, Post(), "rid-2")
        await second
        assert "freeze" not in processes[0].calls and "thaw" not in processes[0].calls
        env.release()
        await next_event(env)
        time.sleep(FREEZE_GRACE_S + 4 * STALLED_S)
        for _ in range(3):
            await asyncio.sleep(0)
        assert not env.frozen, "held once more"
        await asyncio.sleep(RECHECK_S * 3)
        assert env.frozen and processes[0].calls.count("freeze") == 1

    run(test, tmp_path)


def test_a_warm_tail_holds_its_own_invocation_only(tmp_path):
    """A warm call captures its log lines only when its caller wants the tail; the next
    call's tail starts at its own START, whatever the calls before it wrote."""

    async def test(env, processes, dead):
        parked = await _one_call_then_idle(env)  # a call without the tail
        env.reserve()
        second = asyncio.ensure_future(env.invoke(invocation("rid-2"), want_tail=True))
        await parked
        processes[0].launch.on_output(b"from the second call\n")
        handlers.response(env, Post(), "rid-2")
        tail = (await second).log_tail.decode()
        assert tail.startswith("START RequestId: rid-2 ")
        assert "from the second call" in tail and "rid-1" not in tail
        assert "REPORT RequestId: rid-2" in tail
        assert "START RequestId: rid-1" in log_text(env)  # the first call is in the stream

    run(test, tmp_path)


def test_retired_while_held_is_not_reused(tmp_path):
    async def test(env, processes, dead):
        env.reserve()
        env.retire()
        assert env.hold == states.HELD_RETIRED and env.reserved and not env.reusable
        env.release()
        assert env.hold == states.RETIRED

    run(test, tmp_path)


def test_timeout_kills_the_process(tmp_path):
    async def test(env, processes, dead):
        env.reserve()
        parked = await next_event(env)
        outcome = await asyncio.gather(env.invoke(invocation()), parked)
        assert outcome[0].error_type == "Sandbox.Timedout"
        assert b"Task timed out after 1.00 seconds" in outcome[0].payload
        await asyncio.sleep(0.01)
        assert "kill" in processes[0].calls and dead == [env] and not env.alive

    run(test, tmp_path)


def test_a_call_after_a_quick_one_times_out_at_its_own_deadline(tmp_path):
    """One timeout timer per environment, armed for the first call's deadline: when it fires
    with a later call in hand it is armed again for that call's, which times out then."""

    async def test(env, processes, dead):
        env.timeout = 0.3
        env.reserve()
        parked = await next_event(env)
        first = asyncio.ensure_future(env.invoke(invocation("rid-1")))
        await parked
        handlers.response(env, Post(), "rid-1")
        assert not (await first).function_error
        parked = await next_event(env)
        await asyncio.sleep(0.15)
        began = time.monotonic()
        second = asyncio.ensure_future(env.invoke(invocation("rid-2")))
        await parked
        await asyncio.sleep(0.25)  # past the first call's deadline
        assert not second.done() and env.alive
        outcome = await second
        assert outcome.error_type == "Sandbox.Timedout"
        assert time.monotonic() - began >= 0.29
        assert 290 <= outcome.duration_ms < 1000

    run(test, tmp_path)


def test_exit_during_an_invocation_is_runtime_exit_error(tmp_path):
    async def test(env, processes, dead):
        env.reserve()
        parked = await next_event(env)
        running = asyncio.ensure_future(env.invoke(invocation()))
        await parked
        processes[0].exit(-11)
        outcome = await running
        assert outcome.error_type == "Runtime.ExitError"
        assert b"signal: segmentation fault" in outcome.payload

    run(test, tmp_path)


def test_json_platform_records_and_their_level(tmp_path):
    config = CONFIG.replace(log_format="JSON", system_log_level="INFO")

    async def test(env, processes, dead):
        assert processes[0].launch.env["AWS_LAMBDA_LOG_FORMAT"] == "JSON"
        env.reserve()
        parked = await next_event(env)
        running = asyncio.ensure_future(env.invoke(invocation()))
        await parked
        handlers.response(env, Post(), "rid-1")
        await running
        await asyncio.sleep(0)
        records = [json.loads(line.split("\t", 1)[1]) for line in log_text(env).splitlines()]
        kinds = [r["type"] for r in records]
        assert kinds == ["platform.initStart", "platform.start", "platform.report"]
        report = records[-1]["record"]
        assert report["status"] == "success" and report["metrics"]["maxMemoryUsedMB"] == 50
        assert report["metrics"]["memorySizeMB"] == 128

    run(test, tmp_path, config)


async def http_get(writer: asyncio.StreamWriter, reader: asyncio.StreamReader, path: str) -> int:
    """A GET on an open connection to a Runtime API listener: the status it answers, or 0
    when the listener closed the connection instead (the peer check refuses a process that
    is not the environment's runtime)."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    line = await reader.readline()
    return int(line.split()[1]) if line else 0


def test_suppressed_init_runs_inside_the_first_invocation(tmp_path):
    """Init over its limit (here 0.05 s): killed, retried with a new runtime inside the
    invocation; the call succeeds; REPORT has no Init Duration, its Duration covers the
    retried Init, and START comes before it, as Lambda logs a suppressed init."""

    async def test(env, processes, dead):
        host, port = env._address.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))  # the first runtime's
        env.reserve()
        running = asyncio.ensure_future(env.invoke(invocation(), want_tail=True))
        while len(processes) < 2:
            await asyncio.sleep(0.01)
        assert "kill" in processes[0].calls
        assert env._address != f"{host}:{port}"  # the new runtime has a listener of its own
        # the killed runtime's `next`, sent late, must not end the new runtime's Init
        assert await http_get(writer, reader, "/2018-06-01/runtime/invocation/next") in (403, 0)
        writer.close()
        assert env.state == states.STARTING and not running.done()
        await asyncio.sleep(0.1)  # the retried Init takes a while: part of the Duration
        parked = await next_event(env)
        response = await parked
        deadline = int(dict(response.headers)["Lambda-Runtime-Deadline-Ms"])
        invocation_id = dict(response.headers)["Lambda-Runtime-Invocation-Id"]
        assert (
            handlers.response(
                env, Post(b'"ok"', **{"lambda-runtime-invocation-id": invocation_id}), "rid-1"
            ).status
            == 202
        )
        outcome = await running
        assert (outcome.payload, outcome.function_error, outcome.init_ms) == (b'"ok"', False, None)
        assert outcome.duration_ms >= 100
        tail = outcome.log_tail.decode()
        assert "Phase: init\tStatus: timeout" in tail
        assert tail.index("INIT_REPORT") < tail.index("START RequestId: rid-1")
        assert "INIT_START" not in tail  # AWS's log tail leaves it out
        assert log_text(env).count("INIT_START") == 1  # the retried Init writes no second one
        report = next(line for line in tail.splitlines() if line.startswith("REPORT"))
        assert "Init Duration" not in report
        # the function's timeout (1 s) covers the retried Init and the handler
        assert deadline - time.time() * 1000 < 950

    run(test, tmp_path, init_timeout=0.05)


def test_suppressed_init_over_the_function_timeout_times_out(tmp_path):
    async def test(env, processes, dead):
        env.reserve()
        outcome = await env.invoke(invocation(), want_tail=True)
        assert outcome.error_type == "Sandbox.Timedout" and outcome.init_ms is None
        assert 900 <= outcome.duration_ms < 2000
        assert json.loads(outcome.payload)["errorMessage"].endswith(
            "Task timed out after 1.00 seconds"
        )
        assert len(processes) == 2 and "kill" in processes[1].calls

    run(test, tmp_path, init_timeout=0.05)


def test_a_suppressed_init_that_fails_reports_its_phase_as_invoke(tmp_path):
    async def test(env, processes, dead):
        env.reserve()
        running = asyncio.ensure_future(env.invoke(invocation(), want_tail=True))
        while len(processes) < 2:
            await asyncio.sleep(0.01)
        body = b'{"errorType": "ImportError", "errorMessage": "no module"}'
        assert (
            handlers.init_error(
                env,
                Post(body, **{"lambda-runtime-function-error-type": "Runtime.ImportModuleError"}),
            ).status
            == 202
        )
        outcome = await running
        assert outcome.function_error and outcome.error_type == "Runtime.ImportModuleError"
        tail = outcome.log_tail.decode()
        assert "Phase: init\tStatus: timeout" in tail
        assert "Phase: invoke\tStatus: error\tError Type: Runtime.ImportModuleError" in tail
        assert tail.index("START RequestId: rid-1") < tail.index("Phase: invoke")

    run(test, tmp_path, init_timeout=0.05)


async def _another(env: ExecutionEnvironment, config: FunctionConfig = CONFIG) -> FakeProcess:
    """A new environment of `config` on `env`'s launcher: its runtime."""
    other = ExecutionEnvironment(
        config, env.task_root, env.interpreter, env.settings, lambda _e: None, env.launcher
    )
    await other.start()
    other.kill("test over")
    await asyncio.sleep(0)
    return env.launcher.processes[-1]  # type: ignore[attr-defined, no-any-return]


def test_a_timeout_keeps_tmp_for_the_next_runtime_of_the_same_version_only(tmp_path):
    """Lambda's reset keeps /tmp: the runtime that timed out leaves it for the next one of
    the same function version, not for another function's, and only once."""

    async def test(env, processes, dead):
        env.reserve()
        parked = await next_event(env)
        outcome, _ = await asyncio.gather(env.invoke(invocation()), parked)
        assert outcome.error_type == "Sandbox.Timedout"
        assert len(env.launcher.kept) == 1  # kept at the kill, before the runtime is reaped
        other_function = await _another(env, replace(CONFIG, name="g"))
        assert other_function.launch.kept_tmp is None
        other_version = await _another(env, replace(CONFIG, version="2"))
        assert other_version.launch.kept_tmp is None
        assert (await _another(env)).launch.kept_tmp == "tmp-of-0"
        assert (await _another(env)).launch.kept_tmp is None  # taken once
        assert env.launcher.discarded == []

    run(test, tmp_path)


def test_a_crash_keeps_tmp_an_ordinary_end_does_not(tmp_path):
    async def test(env, processes, dead):
        env.reserve()
        parked = await next_event(env)
        running = asyncio.ensure_future(env.invoke(invocation()))
        await parked
        processes[0].exit(1)
        assert (await running).error_type == "Runtime.ExitError"
        assert len(env.launcher.kept) == 1
        replacement = await _another(env)
        assert replacement.launch.kept_tmp == "tmp-of-0"
        for reason in ("idle", "retired", "shutdown"):
            ended = ExecutionEnvironment(
                CONFIG, env.task_root, env.interpreter, env.settings, dead.append, env.launcher
            )
            await ended.start()
            ended.kill(reason)
            await asyncio.sleep(0)
            assert not ended.alive and len(env.launcher.kept) == 0, reason

    run(test, tmp_path)


def test_a_retried_init_keeps_the_environments_tmp(tmp_path):
    async def test(env, processes, dead):
        env.reserve()
        running = asyncio.ensure_future(env.invoke(invocation()))
        while len(processes) < 2:
            await asyncio.sleep(0.01)
        assert processes[1].launch.kept_tmp == "tmp-of-0" and len(env.launcher.kept) == 0
        running.cancel()

    run(test, tmp_path, init_timeout=0.05)


def test_kept_tmps_are_dropped_by_configuration_and_age():
    dropped: list[str] = []
    kept = KeptTmps(dropped.append)
    kept.put(("f", "$LATEST", "d1", None), CONFIG, "a")
    kept.put(("f", "$LATEST", "d1", "blue"), CONFIG, "b")
    assert kept.take(("f", "$LATEST", "d1", "red")) is None  # another tenant's
    assert kept.drop(lambda k: k.path == "b") == 1 and dropped == ["b"]
    assert kept.expire(time.monotonic() - 60) == 0
    assert kept.expire(time.monotonic() + 1) == 1 and dropped == ["b", "a"]
    assert len(kept) == 0 and kept.take(("f", "$LATEST", "d1", None)) is None


def test_an_init_error_keeps_tmp(tmp_path):
    async def test(env, processes, dead):
        body = b'{"errorType": "ImportError", "errorMessage": "no module"}'
        assert handlers.init_error(env, Post(body)).status == 202
        await asyncio.sleep(0.1)  # the runtime is killed 50 ms after it reported
        assert not env.alive and "kill" in processes[0].calls
        kept = env.launcher.kept.take((*CONFIG.env_key, None))
        assert kept is not None and kept.path == "tmp-of-0" and kept.stream == env.stream_name

    run(test, tmp_path)
