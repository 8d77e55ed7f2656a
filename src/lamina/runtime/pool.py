"""Warm environments per function version: borrow, give back, expire, retire, watch memory.

* `acquire(config)` unpacks the function's package if this engine has not yet (another
  engine sharing the store may have created the function), then hands out the most recently used idle environment built from exactly this
  configuration (spec §20 #24), or starts a new one (a cold start). The environment is held
  until `release`; one environment runs one invocation at a time.
* Idle environments are frozen (see `environment`) and expire after `idle_timeout` seconds.
* `retire(name, version)` is called when `$LATEST` changes, a version or the function is
  deleted: idle environments of the old configuration end now, busy ones when released.
* A watchdog samples the resident memory of running environments every `memory_interval`
  seconds and kills one that exceeds its function's `MemorySize` (`Runtime.OutOfMemory`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from lamina.domain.model import FunctionConfig
from lamina.runtime.environment import EnvironmentSettings, ExecutionEnvironment, code_key
from lamina.runtime.interpreters import Interpreters


class EnvironmentPool:
    """The engine's execution environments (see the module docstring)."""

    def __init__(self, settings: EnvironmentSettings, interpreters: Interpreters, code: Any,
                 fetch_package: Callable[[str], Awaitable[bytes | None]],
                 idle_timeout: float = 600.0, memory_interval: float = 0.1) -> None:
        self.settings = settings
        self.interpreters = interpreters
        self.code = code
        self.fetch_package = fetch_package
        self.idle_timeout = idle_timeout
        self.memory_interval = memory_interval
        self._idle: dict[tuple[str, str, str], list[ExecutionEnvironment]] = {}
        self._all: set[ExecutionEnvironment] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        for name, loop in (("lamina-env-reaper", self._reap_idle),
                           ("lamina-env-memory", self._watch_memory),
                           ("lamina-log-flush", self._flush_logs)):
            task = asyncio.get_running_loop().create_task(loop(), name=name)
            self._tasks.add(task)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for env in list(self._all):
            env.kill("shutdown")
        deadline = time.monotonic() + 5
        while self._all and time.monotonic() < deadline:
            await asyncio.sleep(0.01)

    # borrowing -------------------------------------------------------------------------
    async def acquire(self, config: FunctionConfig) -> ExecutionEnvironment:
        """An environment for `config`, held by the caller until `release`."""
        stack = self._idle.get(config.env_key)
        while stack:
            env = stack.pop()
            if env.reusable:
                env.reserve()
                return env
        key = code_key(config.code_sha256)
        if not self.code.has(key):
            await self._unpack(key)
        env = ExecutionEnvironment(
            config, self.code.tree(key),
            self.interpreters.resolve(config.runtime or ""), self.settings, self._forget)
        self._all.add(env)
        env.reserve()
        await env.start()
        return env

    async def _unpack(self, key: str) -> None:
        """Unpack a package another engine stored (several engines share one store)."""
        data = await self.fetch_package(key)
        if data is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.code.put, data)

    def release(self, env: ExecutionEnvironment) -> None:
        """Give `env` back: it becomes idle (and frozen), or ends if it cannot be reused."""
        if not env.reusable:
            if env.alive:
                env.kill("retired")
            return
        env.release()
        self._idle.setdefault(env.config.env_key, []).append(env)

    def retire(self, name: str, version: str | None = None) -> None:
        """Environments of `name` (of one `version`, or all) built so far must not be reused."""
        for env in list(self._all):
            if env.config.name == name and version in (None, env.config.version):
                env.retired = True
                if not env.reserved:
                    env.kill("retired")

    def _forget(self, env: ExecutionEnvironment) -> None:
        self._all.discard(env)
        stack = self._idle.get(env.config.env_key)
        if stack and env in stack:
            stack.remove(env)
        if stack == []:
            self._idle.pop(env.config.env_key, None)

    # observing -------------------------------------------------------------------------
    def environments(self, name: str | None = None) -> list[ExecutionEnvironment]:
        return [env for env in self._all if name is None or env.config.name == name]

    async def _reap_idle(self) -> None:
        while True:
            await asyncio.sleep(min(5.0, max(self.idle_timeout / 4, 0.05)))
            cutoff = time.monotonic() - self.idle_timeout
            for env in list(self._all):
                if not env.reserved and env.idle_since < cutoff:
                    env.kill("idle")

    async def _flush_logs(self) -> None:
        """Make what functions write readable (`lamina logs --follow`) within 0.2 s."""
        while True:
            await asyncio.sleep(0.2)
            for env in list(self._all):
                env.logs.flush()

    async def _watch_memory(self) -> None:
        while True:
            await asyncio.sleep(self.memory_interval)
            for env in list(self._all):
                if env.reserved and env.alive and not env.frozen:
                    with contextlib.suppress(OSError):
                        if env.memory_kb() > env.config.memory_size * 1024:
                            env.kill("oom")
