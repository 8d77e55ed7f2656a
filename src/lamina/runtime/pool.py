"""Warm environments per function version: borrow, give back, expire, retire, watch memory.

* `acquire(config)` unpacks the function's package if this engine has not yet (another
  engine sharing the store may have created the function), then hands out an idle
  environment built from exactly this configuration (spec §20 #24), or starts a new one (a
  cold start). The environment is held until `release`; one environment runs one
  invocation at a time.
* Which idle one: among those still within their freeze grace (idle for less than 5 ms,
  `environment.FREEZE_GRACE_S`), the one idle longest, i.e. the next to be frozen; when all
  are frozen, the most recently used. So an environment frozen is taken only when none is
  warm (as with most-recently-used-first: the ones not needed stay frozen and expire), and
  the warm ones take turns rather than the newest taking every call while the older idle
  past the grace (fewer freezes per call at 16 clients, docs/PERFORMANCE.md). AWS
  documents no order (spec §9.4); a call still goes to a warm environment whenever there
  is one. With freezing off (`--no-freeze`) the most recently used serves first.
* Idle environments are frozen (see `environment`) and expire after `idle_timeout` seconds.
* `retire(name, version)` is called when `$LATEST` changes, a version or the function is
  deleted: idle environments of the old configuration end now, busy ones when released.
* `reload(folders)` is called when hot-reload folders changed: environments running from
  them (their code or a layer) end now if idle (frozen ones too), busy ones when released;
  provisioned ones are started again, so the next invocation runs the code as saved.
* Debug mode (domain.debug): a version with debug settings gets one environment at a time,
  started under the debugger; other invocations of that version wait for it.
* A reset environment's /tmp (reset.py, kept by the launcher) goes to the next environment
  of its configuration; one not taken is dropped with its configuration, or after
  `idle_timeout` seconds.
* A watchdog samples the resident memory of running environments every `memory_interval`
  seconds and kills one that exceeds its function's `MemorySize` (`Runtime.OutOfMemory`);
  each sample is one `pread` per /proc file of the runtime's tree (`supervisor.MemoryProbe`).
* A function on a capacity provider (Lambda Managed Instances) gets multi-concurrent
  environments (concurrent.py): an invocation goes to the busiest environment that still has a
  free slot (one starting counts), and only when none has one does another start, up to the
  version's MaxExecutionEnvironments (FunctionScalingConfig); past that, 429.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from lamina.domain import errors, observed, states
from lamina.domain.debug import DebugSettings
from lamina.domain.model import FunctionConfig
from lamina.domain.observed import EnvironmentView
from lamina.domain.scaling import ScalingRate
from lamina.runtime.concurrent import ConcurrentEnvironment
from lamina.runtime.environment import (
    EnvironmentSettings,
    ExecutionEnvironment,
    code_key,
    folders_of,
)
from lamina.runtime.interpreters import Interpreters
from lamina.runtime.launch import Launcher, PlainLauncher

_Key = tuple[str, str, str, str | None]  # a configuration's env_key, and the tenant
_RUNNING = states.HELD_STATES - states.FROZEN_STATES  # what the memory watchdog samples


class EnvironmentPool:
    """The engine's execution environments (see the module docstring)."""

    def __init__(
        self,
        settings: EnvironmentSettings,
        interpreters: Interpreters,
        code: Any,
        fetch_package: Callable[[str], Awaitable[bytes | None]],
        idle_timeout: float = 600.0,
        memory_interval: float = 0.1,
        max_starting: int = 16,
        min_free_memory_mb: int = 512,
        spares: bool = True,
        scaling_rate: int = 0,
        launcher: Launcher | None = None,
    ) -> None:
        self.settings = settings
        self.interpreters = interpreters
        self.code = code
        self.fetch_package = fetch_package
        self.max_starting = max_starting
        self.min_free_memory_mb = min_free_memory_mb
        self._starting: dict[str, int] = {}
        self._changed: dict[str, asyncio.Event] = {}
        self._provisioned: dict[tuple[str, str, str], int] = {}
        self.idle_timeout = idle_timeout
        self.memory_interval = memory_interval
        self._idle: dict[_Key, list[ExecutionEnvironment]] = {}
        self._shared: dict[_Key, list[ConcurrentEnvironment]] = {}  # multi-concurrent ones
        self._all: set[ExecutionEnvironment] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.launcher = launcher or PlainLauncher(settings.data_dir, settings.sdk_path, spares)
        self.scaling = ScalingRate(scaling_rate) if scaling_rate else None
        self.debug: dict[tuple[str, str], DebugSettings] = {}
        self._refilling: set[tuple[str, str, str]] = set()

    async def start(self) -> None:
        for name, loop in (
            ("lamina-env-reaper", self._reap_idle),
            ("lamina-env-memory", self._watch_memory),
            ("lamina-log-flush", self._flush_logs),
        ):
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
        self.launcher.close()

    # borrowing -------------------------------------------------------------------------
    async def acquire(
        self, config: FunctionConfig, tenant_id: str | None = None
    ) -> ExecutionEnvironment:
        """An environment for `config`, held by the caller until `release`.

        A provisioned environment serves first, then an idle one (the next to be frozen, or
        the most recently used if all are: see the module docstring); else a
        new one starts, at most `max_starting` at once per function (later callers wait
        for one to start or to be given back), and only while the machine keeps
        `min_free_memory_mb` free (else 429, rather than exhausting the machine) and, with a
        scaling rate, while the function may add an environment (else 429, as on Lambda).
        A PER_TENANT function's environments serve one tenant each: `tenant_id`'s own."""
        name = config.name
        tenant = tenant_id if config.tenant_isolation else None
        if self.debug and (name, config.version) in self.debug:
            return await self._acquire_debug(config, self.debug[(name, config.version)])
        if config.capacity_provider is not None:
            return await self._acquire_slot(config)
        while True:
            env = self._take_idle((*config.env_key, tenant))
            if env is not None:
                return env
            if self._starting.get(name, 0) < self.max_starting:
                break
            changed = self._changed.setdefault(name, asyncio.Event())
            changed.clear()
            await changed.wait()
        self._check_memory()
        if self.scaling is not None and not self.scaling.take(name, time.monotonic()):
            raise errors.TooManyRequests("ConcurrentInvocationLimitExceeded")
        return await self._start(config, provisioned=False, tenant_id=tenant)

    async def _acquire_slot(self, config: FunctionConfig) -> ExecutionEnvironment:
        """A slot in a multi-concurrent environment of `config` (see the module docstring)."""
        name, key = config.name, (*config.env_key, None)
        limit = (config.scaling or {}).get("MaxExecutionEnvironments")
        while True:
            best: ConcurrentEnvironment | None = None
            live = 0
            for env in self._shared.get(key, ()):
                if not env.reusable or self._aged(env):  # aged: ends at its next release
                    continue
                live += 1
                if env.room > 0 and (best is None or env.room < best.room):
                    best = env
            if best is not None:
                best.reserve()
                return best
            if limit is not None and live >= limit:
                raise errors.TooManyRequests(
                    "ConcurrentInvocationLimitExceeded",
                    f"Every execution environment of {config.plain_name} (MaxExecutionEnvironments: "
                    f"{limit}) has its PerExecutionEnvironmentMaxConcurrency invocations in "
                    "flight.",
                )
            if self._starting.get(name, 0) < self.max_starting:
                break
            changed = self._changed.setdefault(name, asyncio.Event())
            changed.clear()
            await changed.wait()
        self._check_memory()
        if self.scaling is not None and not self.scaling.take(name, time.monotonic()):
            raise errors.TooManyRequests("ConcurrentInvocationLimitExceeded")
        return await self._start(config, provisioned=False)

    def _take_idle(self, key: _Key) -> ExecutionEnvironment | None:
        stack = self._idle.get(key)
        if not stack:
            return None
        if self.settings.credentials_lifetime is not None:
            for env in [e for e in stack if not e.retired and self._aged(e)]:
                self._renew(env)
        if self._provisioned and key[:3] in self._provisioned:  # provisioned first, else latest
            for index in range(len(stack) - 1, -1, -1):
                if stack[index].provisioned and stack[index].reusable:
                    env = stack.pop(index)
                    env.reserve()
                    return env
        while stack and not stack[-1].reusable:
            stack.pop()
        if not stack:
            return None
        env = stack.pop(_within_grace(stack) if self.settings.freeze else -1)
        env.reserve()
        return env

    async def _acquire_debug(
        self, config: FunctionConfig, debug: DebugSettings
    ) -> ExecutionEnvironment:
        """The version's one debug environment: idle, or started now; while it is busy (or
        still ending, holding the port), wait for it."""
        while True:
            env = next(
                (
                    e
                    for e in self._all
                    if e.debug is not None
                    and e.alive
                    and (e.config.name, e.config.version) == (config.name, config.version)
                ),
                None,
            )
            if env is None:
                break
            if not env.reserved and env.reusable and env.config.env_key == config.env_key:
                stack = self._idle.get(_key(env), [])
                if env in stack:
                    stack.remove(env)
                env.reserve()
                return env
            if env.config.env_key != config.env_key or env.debug != debug:
                env.retire()  # built from an older configuration or debug setting
                if not env.reserved:
                    env.kill("retired")
            changed = self._changed.setdefault(config.name, asyncio.Event())
            changed.clear()
            await changed.wait()
        return await self._start(config, provisioned=False, debug=debug)

    def set_debug(self, settings: DebugSettings) -> None:
        """Debug mode on for a version: its environments so far end (idle now, busy when
        released), so that the next invocation starts under the debugger."""
        holder = any(
            e.debug is not None and e.debug.port == settings.port and e.alive for e in self._all
        )
        if not holder and not _port_free(settings.port):
            raise errors.ResourceConflict(
                f"Port {settings.port} on 127.0.0.1 is in use by another program; choose "
                "another with --port."
            )
        self.debug[(settings.function, settings.version)] = settings
        self.retire(settings.function, settings.version, reprovision=True)

    def clear_debug(self, function: str, version: str) -> None:
        if self.debug.pop((function, version), None) is not None:
            self.retire(function, version, reprovision=True)

    async def _start(
        self,
        config: FunctionConfig,
        provisioned: bool,
        debug: DebugSettings | None = None,
        tenant_id: str | None = None,
    ) -> ExecutionEnvironment:
        name = config.name
        self._starting[name] = self._starting.get(name, 0) + 1
        try:
            keys = [layer.key for layer in config.layers if layer.path is None]
            if config.code_path is None:
                keys.insert(0, code_key(config.code_sha256))
            for wanted in keys:
                if not self.code.has(wanted):
                    await self._unpack(wanted)
            task_root = (
                Path(config.code_path) if config.code_path is not None else self.code.tree(keys[0])
            )
            opt_dir, private_opt = await self._opt_dir(config)
            for tree in (task_root, opt_dir):
                if tree is not None and config.code_path is None:
                    self.code.open_to_all(tree)
            kind = (
                ConcurrentEnvironment
                if (config.capacity_provider is not None and debug is None and not provisioned)
                else ExecutionEnvironment
            )
            env = kind(
                config,
                task_root,
                self.interpreters.resolve(config.runtime or ""),
                self.settings,
                self._forget,
                self.launcher,
                provisioned=provisioned,
                opt_dir=opt_dir,
                debug=debug,
                tenant_id=tenant_id,
            )
            self._all.add(env)
            if isinstance(env, ConcurrentEnvironment):
                self._shared.setdefault(_key(env), []).append(env)
                env.on_room = lambda: self._notify(name)
            env.reserve()
            if private_opt:
                env.opt_dir = env.private_dir / "opt"
                await self._lay_out(
                    lambda: self.code.lay(
                        [
                            Path(r.path) if r.path is not None else self.code.tree(r.key)
                            for r in config.layers
                        ],
                        env.opt_dir,
                    )
                )
            await env.start()
        except BaseException:
            self._started(name)
            raise
        env.on_init(lambda: self._started(name))
        return env

    async def _opt_dir(self, config: FunctionConfig) -> tuple[Path | None, bool]:
        """(the function's /opt, whether it must be laid out for the environment alone).
        Packages' layers are merged once per ordered list; a single hot-reload layer is its
        folder as it is; several layers with a hot-reload one among them are laid out anew
        for each environment (a copy of the folder as it is when the environment starts)."""
        if not config.layers:
            return None, False
        hot = [layer.path for layer in config.layers if layer.path is not None]
        if not hot:
            return await self._lay_out(
                lambda: self.code.merged([layer.key for layer in config.layers])
            ), False
        if len(config.layers) == 1:
            return Path(hot[0]), False
        return None, True

    async def _lay_out(self, work: Callable[[], Path | None]) -> Path | None:
        try:
            return await asyncio.get_running_loop().run_in_executor(None, work)
        except OSError as exc:  # a full disk, a read-only data dir
            raise errors.ServiceError(
                f"Lamina could not lay out the function's layers: {exc}"
            ) from None

    def _started(self, name: str) -> None:
        self._starting[name] -= 1
        self._notify(name)

    def _notify(self, name: str) -> None:
        changed = self._changed.get(name)
        if changed is not None:
            changed.set()

    def _check_memory(self) -> None:
        free_mb = _available_memory_mb()
        if free_mb is not None and free_mb < self.min_free_memory_mb:
            raise errors.TooManyRequests(
                "ConcurrentInvocationLimitExceeded",
                f"Lamina did not start another execution environment: {free_mb} MB of memory "
                f"free, and it keeps {self.min_free_memory_mb} MB free (--min-free-memory).",
            )

    # provisioned concurrency ---------------------------------------------------------
    async def provision(self, config: FunctionConfig, count: int) -> int:
        """Keep `count` initialised environments of `config` (Init runs now, not at the
        first invoke); return how many are ready."""
        key = config.env_key
        self._provisioned[key] = count
        have = [e for e in self._all if e.config.env_key == key and e.provisioned and e.reusable]
        for env in have[count:]:
            env.provisioned = False
        starts = [self._start(config, provisioned=True) for _ in range(count - len(have))]
        ready = len(have[:count])
        for started in await asyncio.gather(*starts, return_exceptions=True):
            if isinstance(started, ExecutionEnvironment):
                if await started.initialized(max(float(config.timeout), 10.0)):
                    ready += 1
                    self.release(started)
        return ready

    def unprovision(self, config: FunctionConfig) -> None:
        self._provisioned.pop(config.env_key, None)
        for env in self._all:
            if env.config.env_key == config.env_key:
                env.provisioned = False

    def provisioned_ready(self, config: FunctionConfig) -> int:
        return sum(
            1
            for e in self._all
            if e.config.env_key == config.env_key and e.provisioned and e.reusable
        )

    async def _unpack(self, key: str) -> None:
        """Unpack a package another engine stored (several engines share one store)."""
        data = await self.fetch_package(key)
        if data is not None:  # checked when it was stored (it may have come from S3)
            await asyncio.get_running_loop().run_in_executor(None, self.code.put, data, False)

    def release(self, env: ExecutionEnvironment) -> None:
        """Give `env` back: it becomes idle (and frozen), or ends if it cannot be reused."""
        if self._aged(env) and not env.retired:
            env.retire()  # its credentials would expire: it ends here, at an idle point
            env.reprovision = env.provisioned
        if env.concurrent:
            env.release()  # one slot back; a retired environment ends with its last holder
            if not env.reusable and not env.reserved and env.alive:
                env.kill("retired")
            self._notify(env.config.name)
            return
        if not env.reusable:
            if env.alive:
                env.kill("retired")
            return
        env.release()
        self._idle.setdefault(_key(env), []).append(env)
        self._notify(env.config.name)

    def _aged(self, env: ExecutionEnvironment) -> bool:
        """Whether `env`'s credentials (--auth sigv4) could expire during another invocation
        (its function's timeout and 1% of the lifetime to spare; a debug session, which has
        no timeout, is not held to it): then it is not handed out again."""
        lifetime = self.settings.credentials_lifetime
        if lifetime is None:
            return False
        spare = env.config.timeout + lifetime / 100
        return time.monotonic() - env.credentials_at > lifetime - spare

    def _renew(self, env: ExecutionEnvironment) -> None:
        """An idle environment whose credentials are aged ends now (a provisioned one is
        started again, with fresh credentials), as Lambda recycles its environments."""
        env.retire()
        env.reprovision = env.provisioned
        env.kill("retired")

    def retire(self, name: str, version: str | None = None, reprovision: bool = False) -> None:
        """Environments of `name` (of one `version`, or all) built so far must not be reused
        (`reprovision`: provisioned ones are started again, the configuration being the same)."""
        self.launcher.kept.drop(
            lambda kept: kept.config.name == name and version in (None, kept.config.version)
        )
        for env in list(self._all):
            if env.config.name == name and version in (None, env.config.version):
                env.retire()
                env.reprovision = reprovision and env.provisioned
                if not env.reserved:
                    env.kill("retired")

    def reload(self, folders: set[str]) -> int:
        """Hot-reload folders changed: environments that run from them must not be reused
        (see the module docstring); how many were retired."""
        retired = 0
        self.launcher.kept.drop(lambda kept: any(f in folders for f in folders_of(kept.config)))
        for env in list(self._all):
            if env.retired or not any(f in folders for f in folders_of(env.config)):
                continue
            env.retire()
            env.reprovision = env.provisioned
            retired += 1
            if not env.reserved:
                env.kill("reloaded")
        return retired

    def _forget(self, env: ExecutionEnvironment) -> None:
        self._all.discard(env)
        self._notify(env.config.name)
        key = env.config.env_key
        target = self._provisioned.get(key)
        if (
            env.provisioned
            and target
            and (not env.retired or env.reprovision)
            and key not in self._refilling
        ):  # keep the provisioned count
            self._refilling.add(key)
            task = asyncio.get_running_loop().create_task(self._refill(env.config, target))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        shared = self._shared.get(_key(env))
        if shared is not None and env in shared:
            shared.remove(env)
            if not shared:
                del self._shared[_key(env)]
        stack = self._idle.get(_key(env))
        if stack and env in stack:
            stack.remove(env)
        if stack == []:
            self._idle.pop(_key(env), None)

    async def _refill(self, config: FunctionConfig, target: int) -> None:
        try:
            await asyncio.sleep(0)  # environments ended together are all forgotten first
            await self.provision(config, self._provisioned.get(config.env_key, target))
        finally:
            self._refilling.discard(config.env_key)

    # observing -------------------------------------------------------------------------
    def environments(self, name: str | None = None) -> list[ExecutionEnvironment]:
        return [env for env in self._all if name is None or env.config.name == name]

    def snapshot(self, name: str | None = None) -> list[EnvironmentView]:
        """Every live environment (of `name`) as it is now: starting, busy, warm or frozen."""
        now = time.monotonic()
        return sorted(
            (
                EnvironmentView(
                    env.id,
                    env.config.name,
                    env.config.version,
                    _state_of(env),
                    env.provisioned,
                    None if env.reserved else round(now - env.idle_since, 3),
                    env.stream_name,
                    env.runtime_pid,
                    _in_flight(env),
                    env.max_concurrency if isinstance(env, ConcurrentEnvironment) else 1,
                )
                for env in self.environments(name)
                if env.alive
            ),
            key=lambda view: (view.function, view.version, view.id),
        )

    async def _reap_idle(self) -> None:
        while True:
            await asyncio.sleep(min(5.0, max(self.idle_timeout / 4, 0.05)))
            cutoff = time.monotonic() - self.idle_timeout
            self.launcher.kept.expire(cutoff)
            for env in list(self._all):
                if not env.reserved and not env.provisioned and env.idle_since < cutoff:
                    env.kill("idle")
                elif not env.reserved and not env.retired and env.alive and self._aged(env):
                    self._renew(env)

    def flush_logs(self, name: str) -> None:
        """Make everything `name`'s environments wrote readable now (before reading logs)."""
        for env in list(self._all):
            if env.config.name == name:
                env.logs.flush()

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
                # a debug environment's debugger (debugpy's adapter) is not the function's
                if env.hold in _RUNNING and env.debug is None and env.alive:
                    try:
                        if env.memory_kb() > env.config.memory_size * 1024:
                            env.kill("oom")
                    except OSError:
                        pass


def _key(env: ExecutionEnvironment) -> _Key:
    return env.key


def _in_flight(env: ExecutionEnvironment) -> tuple[str, ...]:
    if isinstance(env, ConcurrentEnvironment):
        return tuple(env.in_flight)
    return (env.current.request_id,) if env.current is not None else ()


def _state_of(env: ExecutionEnvironment) -> str:
    if env.state == states.STARTING:
        return observed.STARTING
    if env.reserved:
        return observed.BUSY
    return observed.FROZEN if env.frozen else observed.WARM


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _available_memory_mb() -> int | None:
    try:
        with open("/proc/meminfo", "rb") as meminfo:
            for line in meminfo:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _within_grace(stack: list[ExecutionEnvironment]) -> int:
    """Where in `stack` (idle environments, most recently released last; the last one
    reusable) the next call's environment is: the one that has idled longest among those not
    yet frozen, i.e. the first to be frozen if no call took it, or the last if all are
    frozen. See the module docstring."""
    index = len(stack) - 1
    if stack[index].frozen:
        return index
    while index > 0:
        below = stack[index - 1]
        if below.frozen or not below.reusable:
            break
        index -= 1
    return index
