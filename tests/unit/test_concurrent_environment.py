"""A Managed Instances environment with a fake process: the test is a runtime with several
workers, calling the Runtime API handlers as their requests would.

What is checked: AWS_LAMBDA_MAX_CONCURRENCY reaches the runtime; several `next` parked at once
each get one event; answers in any order are matched by request id; a second answer and an
answer for an event never handed out are refused; an event waits for a `next`; a timeout
answers its caller without killing the environment and keeps the slot until the late answer
(410); the environment is never frozen; an exit fails everything in flight; a later
`/init/error` gets 403.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from lamina.domain import states
from lamina.runtime.concurrent import ConcurrentEnvironment
from lamina.runtime.environment import EnvironmentSettings
from lamina.runtime.interpreters import Interpreter
from lamina.runtime.runtime_api import handlers
from tests.unit.test_environment import CONFIG, FakeLauncher, Post, invocation

MANAGED = CONFIG.replace(
    memory_size=2048,
    capacity_provider={
        "CapacityProviderArn": "arn:aws:lambda:us-east-1:123456789012:capacity-provider:cp",
        "PerExecutionEnvironmentMaxConcurrency": 3,
        "ExecutionEnvironmentMemoryGiBPerVCpu": 2.0,
    },
)


def run(test: Any, tmp_path: Path, config=MANAGED) -> None:
    async def main() -> None:
        launcher = FakeLauncher()
        dead: list[ConcurrentEnvironment] = []
        env = ConcurrentEnvironment(
            config,
            tmp_path / "task",
            Interpreter("/usr/bin/python3", (3, 13)),
            EnvironmentSettings("us-east-1", tmp_path),
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


async def park(env: ConcurrentEnvironment) -> asyncio.Task[Any]:
    """One worker's `GET next`, parked until an event comes."""
    task = asyncio.ensure_future(handlers.next_invocation(env, None))
    await asyncio.sleep(0)
    return task


def request_id_of(response) -> str:
    return dict(response.headers)["Lambda-Runtime-Aws-Request-Id"]


def test_several_next_each_get_one_event_and_answers_match_by_request_id(tmp_path):
    async def test(env, processes, dead):
        launch = processes[0].launch
        assert launch.env["AWS_LAMBDA_MAX_CONCURRENCY"] == "3"
        assert launch.env["AWS_LAMBDA_LOG_FORMAT"] == "JSON", "Managed Instances log JSON"
        workers = [await park(env) for _ in range(3)]
        for _ in range(3):
            env.reserve()
        assert env.room == 0
        runs = [asyncio.ensure_future(env.invoke(invocation(f"rid-{n}"))) for n in range(3)]
        delivered = await asyncio.gather(*workers)
        assert sorted(request_id_of(r) for r in delivered) == ["rid-0", "rid-1", "rid-2"]
        assert env.in_flight == ["rid-0", "rid-1", "rid-2"]
        # answered out of order, each by its own request id
        for rid, body in (("rid-2", b'"two"'), ("rid-0", b'"zero"')):
            assert handlers.response(env, Post(body), rid).status == 202
        assert handlers.response(env, Post(b'"again"'), "rid-2").status == 400
        assert (
            handlers.error(env, Post(b'{"errorType": "E", "errorMessage": "m"}'), "rid-1").status
            == 202
        )
        outcomes = await asyncio.gather(*runs)
        assert [o.payload for o in outcomes[::2]] == [b'"zero"', b'"two"']
        assert outcomes[1].error_type == "E"
        assert "freeze" not in processes[0].calls
        for _ in range(3):
            env.release()
        assert env.room == 3 and env.hold == states.FREE and env.alive
        assert "freeze" not in processes[0].calls, "never frozen between invocations"
        env.logs.flush()
        reports = [
            json.loads(line.split("\t", 1)[1])
            for line in env.logs.path.read_text().splitlines()
            if "platform.report" in line
        ]
        assert sorted(r["record"]["requestId"] for r in reports) == ["rid-0", "rid-1", "rid-2"]

    run(test, tmp_path)


def test_an_event_waits_for_a_worker_and_a_stranger_answer_is_refused(tmp_path):
    async def test(env, processes, dead):
        first = await park(env)  # Init ends with the first worker's `next`
        env.reserve()
        env.reserve()
        one = asyncio.ensure_future(env.invoke(invocation("rid-1")))
        two = asyncio.ensure_future(env.invoke(invocation("rid-2")))
        await asyncio.sleep(0)
        assert request_id_of(await first) == "rid-1"
        assert handlers.response(env, Post(), "rid-2").status == 400, "never handed out"
        second = await park(env)  # the queued event goes to the next `next` at once
        assert request_id_of(await second) == "rid-2"
        handlers.response(env, Post(b'"1"'), "rid-1")
        handlers.response(env, Post(b'"2"'), "rid-2")
        assert [o.payload for o in await asyncio.gather(one, two)] == [b'"1"', b'"2"']

    run(test, tmp_path)


def test_a_timeout_spares_the_environment_and_keeps_its_slot_until_answered(tmp_path):
    async def test(env, processes, dead):
        worker = await park(env)
        env.reserve()
        slow = asyncio.ensure_future(env.invoke(invocation("rid-slow")))
        delivered = await worker
        echo = dict(delivered.headers)["Lambda-Runtime-Invocation-Id"]
        outcome = await slow  # the function's timeout is 1 s
        env.release()
        assert outcome.error_type == "Sandbox.Timedout"
        assert env.alive and "kill" not in processes[0].calls and dead == []
        assert env.room == 2 and env.in_flight == ["rid-slow"], "its worker is still busy"
        late = handlers.response(env, Post(**{"lambda-runtime-invocation-id": echo}), "rid-slow")
        assert late.status == 410
        assert env.room == 3 and env.in_flight == []
        assert handlers.response(env, Post(), "rid-slow").status == 400

    run(test, tmp_path)


def test_a_queued_invocation_times_out_without_a_worker(tmp_path):
    async def test(env, processes, dead):
        worker = await park(env)
        env.reserve()
        env.reserve()
        first = asyncio.ensure_future(env.invoke(invocation("rid-1")))
        waiting = asyncio.ensure_future(env.invoke(invocation("rid-2")))
        await worker  # the only worker took rid-1 and never asks again
        outcome = await waiting
        assert outcome.error_type == "Sandbox.Timedout"
        handlers.response(env, Post(b'"late"'), "rid-1")  # rid-1 timed out too, by now
        await first
        assert env.in_flight == [] and env.alive
        assert env.room == 1, "two holders still counted until released"

    run(test, tmp_path)


def test_an_exit_fails_everything_in_flight(tmp_path):
    async def test(env, processes, dead):
        workers = [await park(env) for _ in range(2)]
        env.reserve()
        env.reserve()
        runs = [asyncio.ensure_future(env.invoke(invocation(f"rid-{n}"))) for n in range(2)]
        await asyncio.gather(*workers)
        processes[0].exit(1)
        outcomes = await asyncio.gather(*runs)
        assert {o.error_type for o in outcomes} == {"Runtime.ExitError"}
        await asyncio.sleep(0)
        assert dead == [env] and not env.alive

    run(test, tmp_path)


def test_only_the_first_init_error_counts(tmp_path):
    async def test(env, processes, dead):
        body = b'{"errorType": "Runtime.ImportModuleError", "errorMessage": "no"}'
        assert handlers.init_error(env, Post(body)).status == 202
        assert handlers.init_error(env, Post(body)).status == 403, "another worker's"
        env.reserve()
        outcome = await env.invoke(invocation())
        assert outcome.error_type == "Runtime.ImportModuleError"

    run(test, tmp_path)
