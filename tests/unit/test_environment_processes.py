"""One execution environment around a real runtime child (bash and curl against the Runtime
API), in process: freezing between calls, timeouts, a runtime that exits, an Init error.
test_environment.py checks the same state tables with a fake process; these run the real
one, through the pool that owns it (tests/unit/test_pool.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lamina.runtime.pool import EnvironmentPool
from lamina.storage.code import CodeStore
from tests.conftest import make_zip
from tests.unit.test_pool import call, config_of, run, sleeper, until

EXITS = """#!/bin/bash
api="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
curl -sS -o /dev/null "$api/invocation/next"
echo "leaving"
exit 3
"""

INIT_FAILS = """#!/bin/bash
api="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
curl -sS -o /dev/null -X POST -H 'Lambda-Runtime-Function-Error-Type: Runtime.NoConfig' \\
  -d '{"errorMessage":"no config","errorType":"Runtime.NoConfig"}' "$api/init/error"
sleep 5
"""


def state_of(pid: int) -> str:
    """The process's scheduling state letter (T: stopped)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def bootstrap(code: CodeStore, script: str, **changes):
    return config_of(code.put(make_zip({"bootstrap": script}, {"bootstrap": 0o755})), **changes)


def test_an_idle_environment_is_frozen_and_thawed_by_the_next_call(tmp_path):
    async def body(pool: EnvironmentPool, code: CodeStore) -> None:
        config = sleeper(code)
        env = await pool.acquire(config)
        await env.invoke(call(config, b"0", "r1"))
        pool.release(env)
        await until(lambda: env.frozen)
        # its process group got SIGSTOP (a runtime running on the other core stops a moment
        # after the signal is sent)
        await until(lambda: state_of(env.runtime_pid) == "T", within=1.0)
        assert pool.snapshot()[0].state == "frozen"
        again = await pool.acquire(config)
        outcome = await again.invoke(call(config, b"0", "r2"))
        assert outcome.payload == b'"slept 0"' and not env.frozen
        assert state_of(env.runtime_pid) != "T"
        pool.release(again)

    run(tmp_path, body)


def test_a_call_past_its_timeout_ends_the_environment(tmp_path):
    async def body(pool: EnvironmentPool, code: CodeStore) -> None:
        config = sleeper(code, timeout=1)
        env = await pool.acquire(config)
        outcome = await env.invoke(call(config, b"30"))
        assert outcome.error_type == "Sandbox.Timedout"
        assert b"Task timed out after 1.00 seconds" in outcome.payload
        pool.release(env)
        await until(lambda: not env.alive)

    run(tmp_path, body)


def test_a_runtime_that_exits_under_its_call_fails_it_with_the_exit_status(tmp_path):
    async def body(pool: EnvironmentPool, code: CodeStore) -> None:
        config = bootstrap(code, EXITS)
        env = await pool.acquire(config)
        outcome = await env.invoke(call(config))
        assert outcome.error_type == "Runtime.ExitError"
        assert b"exit status 3" in outcome.payload
        await until(lambda: not env.alive)
        pool.release(env)
        assert pool.environments() == []

    run(tmp_path, body)


def test_an_init_error_is_the_calls_answer(tmp_path):
    async def body(pool: EnvironmentPool, code: CodeStore) -> None:
        config = bootstrap(code, INIT_FAILS)
        env = await pool.acquire(config)
        outcome = await asyncio.wait_for(env.invoke(call(config)), 10)
        assert outcome.function_error and outcome.error_type == "Runtime.NoConfig"
        assert b"no config" in outcome.payload
        pool.release(env)
        await until(lambda: not env.alive)

    run(tmp_path, body)


# Prints a line naming its request just before it answers (stdout and stderr, one pipe).
SAYS = """#!/bin/bash
api="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
while true; do
  headers=$(mktemp)
  curl -sS -D "$headers" -o /dev/null "$api/invocation/next"
  id=$(grep -i '^lambda-runtime-aws-request-id:' "$headers" | tr -d '\\r' | cut -d' ' -f2)
  rm -f "$headers"
  echo "said $id"
  echo "warned $id" >&2
  curl -sS -o /dev/null -X POST -d '"ok"' "$api/invocation/$id/response"
done
"""


def test_what_a_runtime_writes_just_before_answering_is_logged_before_its_end(tmp_path):
    """Warm calls without a log tail: the output pipe is not read on the answer's path (the
    loop reads it first, being readable before the answer's socket is), and still every
    line a runtime wrote before answering is in its stream between START and END."""

    async def body(pool: EnvironmentPool, code: CodeStore) -> None:
        config = bootstrap(code, SAYS)
        ids = [f"r{n}" for n in range(12)]
        for rid in ids:
            env = await pool.acquire(config)
            outcome = await env.invoke(call(config, rid=rid))
            assert outcome.payload == b'"ok"'
            pool.release(env)
        await asyncio.sleep(0.01)
        pool.flush_logs(config.name)
        lines = [line.split("\t", 1)[1] for line in env.logs.path.read_text().splitlines()]
        for rid in ids:
            start = lines.index(f"START RequestId: {rid} Version: $LATEST")
            end = lines.index(f"END RequestId: {rid}")
            assert start < lines.index(f"said {rid}") < end
            assert start < lines.index(f"warned {rid}") < end
            assert lines[end + 1].startswith(f"REPORT RequestId: {rid}\tDuration: ")

    run(tmp_path, body)
