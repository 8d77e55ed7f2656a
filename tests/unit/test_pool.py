"""The environment pool in process, with real runtimes and no engine: Lambda's bash custom
runtime (tests/functions/shell, curl against the Runtime API) and small bootstraps written
here, started by the plain launcher as child processes."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from lamina.domain import errors
from lamina.domain.model import FunctionConfig, Invocation
from lamina.runtime.environment import EnvironmentSettings, ExecutionEnvironment
from lamina.runtime.interpreters import Interpreters
from lamina.runtime.pool import EnvironmentPool
from lamina.storage.code import CodeStore
from tests.conftest import FUNCTIONS, make_zip, zip_dir

ARN = "arn:aws:lambda:us-east-1:123456789012:function:sh"

# A bash runtime whose Init takes $INIT_SLEEP seconds and which sleeps as long as its event
# says before answering.
SLEEPER = r"""#!/bin/bash
set -euo pipefail
api="http://${AWS_LAMBDA_RUNTIME_API}/2018-06-01/runtime"
sleep "${INIT_SLEEP:-0}"
while true; do
  headers=$(mktemp)
  event=$(curl -sS -D "$headers" "$api/invocation/next")
  id=$(grep -i '^lambda-runtime-aws-request-id:' "$headers" | tr -d '\r' | cut -d' ' -f2)
  rm -f "$headers"
  sleep "$event"
  curl -sS -o /dev/null -X POST -d "\"slept $event\"" "$api/invocation/$id/response"
done
"""


def config_of(package: Any, name: str = "sh", **changes: Any) -> FunctionConfig:
    return FunctionConfig(
        name=name,
        runtime="provided.al2023",
        handler="x.y",
        role="arn:aws:iam::123456789012:role/r",
        code_sha256=package.sha256,
        code_size=package.size,
        revision_id="r1",
        last_modified="2026-01-01T00:00:00.000+0000",
        **changes,
    )


def call(config: FunctionConfig, payload: bytes = b'{"a": 1}', rid: str = "rid") -> Invocation:
    return Invocation(rid, config, ARN, payload)


Body = Callable[[EnvironmentPool, CodeStore], Awaitable[None]]


_STORED: dict[int, dict[str, bytes]] = {}  # each pool's packages "in the store", by id(pool)


def run(tmp_path: Path, body: Body, **pool_args: Any) -> None:
    """`body(pool, code)` on a started pool; the pool is closed after it, and every
    environment it started must be gone by then."""

    async def main() -> None:
        code = CodeStore(tmp_path / "code")
        stored: dict[str, bytes] = {}

        async def fetch(key: str) -> bytes | None:
            return stored.get(key)

        pool = EnvironmentPool(
            EnvironmentSettings("us-east-1", tmp_path),
            Interpreters(),
            code,
            fetch,
            spares=False,
            **pool_args,
        )
        _STORED[id(pool)] = stored  # (a compiled pool takes no attribute of a test's)
        await pool.start()
        try:
            await body(pool, code)
        finally:
            await pool.close()
            await connections_closed()
        assert pool.environments() == []

    asyncio.run(main())


async def connections_closed(within: float = 2.0) -> None:
    """Until every connection of this loop has taken its close. The runtimes were killed
    with their process groups: their Runtime API connections end with an EOF the loop takes
    a turn or two after the pool has seen the runtime exit; a loop closed before that leaves
    the transports to the garbage collector (ResourceWarning: unclosed transport)."""
    loop = asyncio.get_running_loop()
    transports = getattr(loop, "_transports", {})  # the selector loop's, by file descriptor
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and not all(
        t.is_closing() for t in list(transports.values())
    ):
        await asyncio.sleep(0.01)
    for _ in range(3):  # connection_lost, then the socket's close, are callbacks
        await asyncio.sleep(0)


def shell(code: CodeStore, name: str = "sh", **changes: Any) -> FunctionConfig:
    return config_of(code.put(zip_dir(FUNCTIONS / "shell")), name, **changes)


def sleeper(code: CodeStore, **changes: Any) -> FunctionConfig:
    return config_of(code.put(make_zip({"bootstrap": SLEEPER}, {"bootstrap": 0o755})), **changes)


async def used(pool: EnvironmentPool, config: FunctionConfig) -> ExecutionEnvironment:
    """An environment of `config` that has run one call and is idle again."""
    env = await pool.acquire(config)
    await env.invoke(call(config))
    pool.release(env)
    return env


async def until(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the pool did not get there in time"
        await asyncio.sleep(0.01)


def test_a_warm_environment_serves_the_next_call_without_init(tmp_path):
    async def body(pool: EnvironmentPool, code: CodeStore) -> None:
        config = shell(code)
        env = await pool.acquire(config)
        assert [v.state for v in pool.snapshot()] == ["starting"]
        first = await env.invoke(call(config, rid="r1"))
        assert first.payload == b'{"echo":{"a": 1},"handler":"x.y"}'
        assert first.init_ms is not None and not first.function_error
        assert pool.snapshot()[0].in_flight == ()
        pool.release(env)
        (view,) = pool.snapshot("sh")
        assert view.state in ("warm", "frozen") and view.idle_s is not None
        again = await pool.acquire(config)
        assert again is env, "the idle environment is reused"
        second = await again.invoke(call(config, b'{"fail": 1}', rid="r2"))
        assert second.init_ms is None
        assert second.function_error and second.error_type == "Custom.Failure"
        pool.release(again)
        pool.flush_logs("sh")
        text = env.logs.path.read_text()
        assert "handling r1" in text and "START RequestId: r2" in text and "handling r2" in text

    run(tmp_path, body)


def test_busy_environments_are_not_shared_and_a_warm_one_serves_before_a_frozen_one(tmp_path):
    async def body(pool: EnvironmentPool, code: CodeStore) -> None:
        config = shell(code)
        a, b = await asyncio.gather(pool.acquire(config), pool.acquire(config))
        assert a is not b and len(pool.environments("sh")) == 2
        outcomes = await asyncio.gather(
            a.invoke(call(config, b"1", "r1")), b.invoke(call(config, b"2", "r2"))
        )
        assert sorted(o.environment_id for o in outcomes) == sorted([a.id, b.id])
        pool.release(a)
        pool.release(b)
        await until(lambda: a.frozen and b.frozen)
        assert await pool.acquire(config) is b, "all frozen: the most recently used first"
        assert await pool.acquire(config) is a
        await asyncio.gather(a.invoke(call(config, rid="r3")), b.invoke(call(config, rid="r4")))
        assert not a.frozen and not b.frozen
        pool.release(b)
        pool.release(a)  # both within the freeze grace: the one idle longer is taken first
        assert await pool.acquire(config) is b, "the next to be frozen first"
        assert await pool.acquire(config) is a
        pool.release(a)
        pool.release(b)

    run(tmp_path, body)


def test_a_frozen_environment_is_taken_only_when_none_is_warm(tmp_path):
    """Three idle: two frozen and one warm (released within the freeze grace). The warm one
    is taken first, then the frozen ones, most recently used first: environments not
    needed stay frozen at the bottom and expire, as with most-recently-used-first."""

    async def body(pool: EnvironmentPool, code: CodeStore) -> None:
        config = shell(code)
        old, newer, warm = await asyncio.gather(*(pool.acquire(config) for _ in range(3)))
        await asyncio.gather(*(e.invoke(call(config, rid=e.id)) for e in (old, newer, warm)))
        pool.release(old)
        pool.release(newer)
        await until(lambda: old.frozen and newer.frozen)
        pool.release(warm)
        assert [await pool.acquire(config) for _ in range(3)] == [warm, newer, old]
        for env in (old, newer, warm):
            pool.release(env)

    run(tmp_path, body)


def test_with_freezing_off_the_most_recently_used_serves_first(tmp_path):
    """Nothing is frozen then, so taking the one idle longest would keep every environment
    in use and none would expire: the most recently used serves first."""

    async def body(pool: EnvironmentPool, code: CodeStore) -> None:
        pool.settings = dataclasses.replace(pool.settings, freeze=False)
        config = shell(code)
        a, b = await asyncio.gather(pool.acquire(config), pool.acquire(config))
        await asyncio.gather(a.invoke(call(config, rid="r1")), b.invoke(call(config, rid="r2")))
        pool.release(a)
        pool.release(b)
        await asyncio.sleep(0.02)
        assert not a.frozen and not b.frozen
        assert await pool.acquire(config) is b
        assert await pool.acquire(config) is a
        pool.release(a)
        pool.release(b)

    run(tmp_path, body)


def test_retired_environments_end_idle_now_and_busy_when_given_back(tmp_path):
    async def body(pool: EnvironmentPool, code: CodeStore) -> None:
        config = shell(code)
        idle, busy = await asyncio.gather(pool.acquire(config), pool.acquire(config))
        await asyncio.gather(idle.invoke(call(config, rid="r1")), busy.invoke(call(config)))
        pool.release(idle)
        pool.retire("sh")
        await until(lambda: not idle.alive)
        assert busy.alive, "a busy environment ends when it is given back"
        pool.release(busy)
        await until(lambda: not busy.alive)
        fresh = await pool.acquire(config)
        assert fresh not in (idle, busy)
        assert (await fresh.invoke(call(config))).init_ms is not None
        pool.release(fresh)

    run(tmp_path, body)


def test_an_other_configuration_gets_its_own_environment(tmp_path):
    async def body(pool: EnvironmentPool, code: CodeStore) -> None:
        config = shell(code)
        env = await used(pool, config)
        changed = config.replace(environment={"X": "1"}, deployment_id="d2")
        other = await pool.acquire(changed)
        assert other is not env
        assert (await other.invoke(call(changed))).payload.startswith(b'{"echo"')
        pool.release(other)
        named = shell(code, "other")
        assert await pool.acquire(named) not in (env, other)
        assert {v.function for v in pool.snapshot()} == {"sh", "other"}

    run(tmp_path, body)


def test_idle_environments_expire(tmp_path):
    async def body(pool: EnvironmentPool, code: CodeStore) -> None:
        config = shell(code)
        env = await used(pool, config)
        await until(lambda: not env.alive)
        assert pool.snapshot() == []

    run(tmp_path, body, idle_timeout=0.2)


def test_the_scaling_rate_refuses_a_new_environment_with_429(tmp_path):
    async def body(pool: EnvironmentPool, code: CodeStore) -> None:
        config = shell(code)
        first = await pool.acquire(config)
        with pytest.raises(errors.TooManyRequests):
            await pool.acquire(config)
        await first.invoke(call(config))
        pool.release(first)
        assert await pool.acquire(config) is first, "a warm one needs no new environment"

    run(tmp_path, body, scaling_rate=1)


def test_no_environment_starts_below_the_free_memory_kept(tmp_path):
    async def body(pool: EnvironmentPool, code: CodeStore) -> None:
        with pytest.raises(errors.TooManyRequests) as refused:
            await pool.acquire(shell(code))
        assert "--min-free-memory" in str(refused.value)
        assert pool.environments() == []

    run(tmp_path, body, min_free_memory_mb=1 << 40)


def test_one_starting_at_a_time_makes_the_next_caller_wait(tmp_path):
    async def body(pool: EnvironmentPool, code: CodeStore) -> None:
        config = sleeper(code, environment={"INIT_SLEEP": "0.4"})
        first = await pool.acquire(config)  # started; its Init runs on
        second = asyncio.ensure_future(pool.acquire(config))
        await asyncio.sleep(0.1)
        assert not second.done() and len(pool.environments()) == 1
        assert (await first.invoke(call(config, b"0", "r1"))).payload == b'"slept 0"'
        env = await second  # the first finished its Init: the next may start
        assert env is not first
        await env.invoke(call(config, b"0", "r2"))
        pool.release(first)
        pool.release(env)

    run(tmp_path, body, max_starting=1)


def test_provisioned_environments_serve_first_and_are_replaced(tmp_path):
    async def body(pool: EnvironmentPool, code: CodeStore) -> None:
        config = shell(code)
        assert await pool.provision(config, 2) == 2
        assert pool.provisioned_ready(config) == 2
        assert all(v.provisioned and v.state in ("warm", "frozen") for v in pool.snapshot())
        env = await pool.acquire(config)
        assert env.provisioned
        outcome = await env.invoke(call(config))
        assert outcome.init_ms is None, "Init ran when it was provisioned"
        pool.release(env)
        env.kill("test")
        await until(lambda: pool.provisioned_ready(config) == 2 and env not in pool.environments())
        pool.unprovision(config)
        assert pool.provisioned_ready(config) == 0

    run(tmp_path, body)


def test_a_package_stored_by_another_engine_is_fetched_and_unpacked(tmp_path):
    async def body(pool: EnvironmentPool, code: CodeStore) -> None:
        data = zip_dir(FUNCTIONS / "shell")
        elsewhere = CodeStore(tmp_path / "elsewhere").put(data)
        _STORED[id(pool)][elsewhere.key] = data
        config = config_of(elsewhere)
        assert not code.has(elsewhere.key)
        env = await pool.acquire(config)
        assert code.has(elsewhere.key)
        assert (await env.invoke(call(config))).payload.startswith(b'{"echo"')
        pool.release(env)

    run(tmp_path, body)


def test_a_hot_reload_folder_that_changed_retires_its_environments(tmp_path):
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "bootstrap").write_bytes((FUNCTIONS / "shell" / "bootstrap").read_bytes())
    (folder / "bootstrap").chmod(0o755)

    async def body(pool: EnvironmentPool, code: CodeStore) -> None:
        config = shell(code).replace(code_path=str(folder))
        env = await used(pool, config)
        assert pool.reload({str(tmp_path / "unrelated")}) == 0
        assert pool.reload({str(folder)}) == 1
        await until(lambda: not env.alive)

    run(tmp_path, body)


def test_an_environment_over_its_memory_is_killed_as_out_of_memory(tmp_path):
    async def body(pool: EnvironmentPool, code: CodeStore) -> None:
        config = sleeper(code, memory_size=1)  # 1 MB: bash alone is over it
        env = await pool.acquire(config)
        outcome = await env.invoke(call(config, b"5"))
        assert outcome.error_type == "Runtime.OutOfMemory"
        assert not env.alive or env.retired

    run(tmp_path, body, memory_interval=0.02)


def test_close_ends_every_environment(tmp_path):
    envs: list[ExecutionEnvironment] = []

    async def body(pool: EnvironmentPool, code: CodeStore) -> None:
        config = shell(code)
        envs.extend(await asyncio.gather(*(pool.acquire(config) for _ in range(3))))
        await asyncio.gather(*(e.invoke(call(config)) for e in envs))
        pool.release(envs[0])

    run(tmp_path, body)
    assert len(envs) == 3 and not any(e.alive for e in envs)
