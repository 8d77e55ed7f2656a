"""One execution environment around a real runtime child (bash and curl against the Runtime
API), in process: freezing between calls, timeouts, a runtime that exits, an Init error.
test_environment.py checks the same state tables with a fake process; these run the real
one, through the pool that owns it (tests/unit/test_pool.py)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from lamina.runtime import supervisor
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


_TREE = """
import subprocess, sys, time
print("ready", flush=True)
sys.stdin.readline()
child = subprocess.Popen(["sleep", "30"])
print(child.pid, flush=True)
sys.stdin.readline()
child.kill(); child.wait()
print("gone", flush=True)
time.sleep(30)
"""


def _held(pid: int) -> set[str]:
    names = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            names.add(os.readlink(f"/proc/self/fd/{fd}"))
        except FileNotFoundError:
            pass  # the listing's own
    return {name for name in names if name.startswith(f"/proc/{pid}/")}


def test_the_memory_probe_follows_the_tree_and_keeps_no_file_of_what_ended():
    """The watchdog's probe keeps /proc files open between reads: it counts a child started
    after its first read, lets go of that child's files once it ends, reads 0 for a tree
    that is gone, and holds nothing after `close`."""
    parent = subprocess.Popen(
        [sys.executable, "-c", _TREE], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert parent.stdin is not None and parent.stdout is not None
    probe = supervisor.MemoryProbe()
    try:
        assert parent.stdout.readline() == b"ready\n"
        alone = probe.tree_rss_kb(parent.pid)
        assert alone > 1000  # an interpreter's RSS, in kB
        assert probe.peak_rss_kb(parent.pid) >= alone
        assert len(_held(parent.pid)) == 3  # statm, children, status
        parent.stdin.write(b"start\n")
        parent.stdin.flush()
        child = int(parent.stdout.readline())
        assert probe.tree_rss_kb(parent.pid) > alone  # sleep's RSS counted with it
        assert len(_held(child)) == 2
        parent.stdin.write(b"end\n")
        parent.stdin.flush()
        assert parent.stdout.readline() == b"gone\n"
        assert probe.tree_rss_kb(parent.pid) > 1000
        assert not _held(child)
        parent.kill()
        parent.wait()
        assert probe.tree_rss_kb(parent.pid) == 0
        assert len(_held(parent.pid)) == 1  # only status, until close
    finally:
        probe.close()
        parent.kill()
        parent.wait()
        parent.stdin.close()
        parent.stdout.close()
    assert not _held(parent.pid)
