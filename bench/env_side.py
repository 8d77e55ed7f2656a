#!/usr/bin/env python3
"""CPU per warm call of the environment side alone: no sockets, no runtime processes.

Sixteen callers take an environment from a real `EnvironmentPool`, invoke it and give it back
(`acquire` → `ExecutionEnvironment.invoke` → `release`), while sixteen fake runtimes answer
through the real Runtime API handler (`runtime_api_handler`: `next`, its event encoded as the
HTTP server would, `/response`, the 202 encoded). The processes are fakes that do nothing
(freeze, thaw and drain cost nothing here), so what is measured is the Python of
environment.py, pool.py, logs.py, report.py and runtime_api/: the part of the engine's CPU
per call that those files own, with the pool's watchdog and log flusher running. Function
logs and REPORT lines go to a scratch directory, as in an engine.

  .venv/bin/python bench/env_side.py              # uvloop, 16 callers, 3 rounds of 20000 calls
  PYTHONPATH=/other/tree/src .venv/bin/python bench/env_side.py   # another tree's code

Prints µs of CPU per call (process time) per round and their median.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop

from lamina.api.stacks import _InProcess
from lamina.domain.model import FunctionConfig, Invocation
from lamina.http.server import Request
from lamina.runtime.environment import EnvironmentSettings, ExecutionEnvironment
from lamina.runtime.interpreters import Interpreter, Interpreters
from lamina.runtime.launch import Launch, View
from lamina.runtime.pool import EnvironmentPool
from lamina.runtime.reset import KeptTmps
from lamina.runtime.runtime_api import wire
from lamina.runtime.runtime_api.server import runtime_api_handler
from lamina.runtime.sandbox import Support

CONFIG = FunctionConfig(
    name="noop",
    runtime="python3.12",
    handler="index.handler",
    role="arn:aws:iam::123456789012:role/r",
    code_sha256="c2hh",
    code_size=1,
    revision_id="r1",
    last_modified="now",
    timeout=3,
)
ARN = "arn:aws:lambda:us-east-1:123456789012:function:noop"


class _Process:
    alive = True
    runtime_pid = 4242

    def __init__(self, launch: Launch) -> None:
        self.launch = launch

    def start(self) -> None:
        pass

    def freeze(self) -> None:
        pass

    def thaw(self) -> None:
        pass

    def kill(self) -> None:
        if self.alive:
            self.alive = False
            asyncio.get_running_loop().call_soon(self.launch.on_exit, -9)

    def drain_output(self) -> None:
        pass

    def memory_kb(self) -> int:
        return 20 * 1024

    def peak_memory_kb(self) -> int:
        return 30 * 1024


class _Launcher:
    support = Support("bwrap", privileged=True, late_mounts=True)

    def __init__(self) -> None:
        self.kept = KeptTmps(lambda _: None)

    def keep_tmp(self, process: Any, view: View) -> str | None:
        return None

    def view(self, family: str, task_root: Path, opt_dir: Path | None, env_id: str) -> View:
        return View("/var/task", "/var/runtime", "/opt", None, None, opt_variable=False)

    def spawn(self, launch: Launch) -> _Process:
        return _Process(launch)

    def close(self) -> None:
        pass


def _request(method: str, path: str, body: bytes, headers: dict[str, str]) -> Request:
    """A runtime's request as the Runtime API handler gets it (on an in-process channel)."""
    return Request(method, path, "", headers, body, _InProcess())


async def _runtime(env: ExecutionEnvironment) -> None:
    handle = runtime_api_handler(env, lambda: True)
    next_request = _request("GET", wire.NEXT, b"", {})
    while True:
        event = await handle(next_request)
        head = event.encode(True).split(b"\r\n\r\n", 1)[0].decode()  # as a runtime reads it
        headers = dict(line.split(": ", 1) for line in head.split("\r\n")[1:])
        request_id = headers["Lambda-Runtime-Aws-Request-Id"]
        answer = _request(
            "POST",
            f"{wire.INVOCATION}{request_id}/response",
            b'{"ok":true}',
            {wire.INVOCATION_ID: headers["Lambda-Runtime-Invocation-Id"]},
        )
        (await handle(answer)).encode(True)
        await asyncio.sleep(0)  # the runtime's own time


async def _caller(pool: EnvironmentPool, calls: int) -> None:
    for index in range(calls):
        env = await pool.acquire(CONFIG)
        try:
            await env.invoke(Invocation(f"rid-{index}-{id(env)}", CONFIG, ARN, b"{}"))
        finally:
            pool.release(env)
        await asyncio.sleep(0)  # the client's own time


async def _main(args: argparse.Namespace, scratch: Path) -> list[float]:
    settings = EnvironmentSettings("us-east-1", scratch)
    pool = EnvironmentPool(settings, Interpreters(), None, _no_fetch, launcher=_Launcher())  # type: ignore[arg-type]
    await pool.start()
    runtimes = []
    for _ in range(args.clients):
        env = ExecutionEnvironment(
            CONFIG,
            scratch / "task",
            Interpreter("/usr/bin/python3", (3, 12)),
            settings,
            pool._forget,
            pool.launcher,
        )
        pool._all.add(env)
        env.reserve()
        await env.start()
        runtimes.append(asyncio.ensure_future(_runtime(env)))
        await asyncio.sleep(0)
        await env.invoke(Invocation("warm", CONFIG, ARN, b"{}"))
        pool.release(env)
    figures = []
    for _ in range(args.rounds):
        per_caller = args.calls // args.clients
        began = time.process_time()
        await asyncio.gather(*(_caller(pool, per_caller) for _ in range(args.clients)))
        used = time.process_time() - began
        figures.append(used / (per_caller * args.clients) * 1e6)
        print(f"{figures[-1]:.1f} µs/call", flush=True)
    for task in runtimes:
        task.cancel()
    await pool.close()
    return figures


async def _no_fetch(key: str) -> bytes | None:
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--calls", type=int, default=20000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lamina-env-side-") as scratch:
        figures = uvloop.run(_main(args, Path(scratch)))
    print(f"median {statistics.median(figures):.1f} µs/call, min {min(figures):.1f}")


if __name__ == "__main__":
    main()
