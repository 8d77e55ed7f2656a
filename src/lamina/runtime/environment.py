"""An execution environment: one runtime process, its Runtime API listener, its log stream.

Theory of operation (spec §9, §10), split as the Runtime Interface Emulator splits it
----------------------------------------------------------------------------------------
* Here: the lifecycle and the invocation in hand. `runtime_api/handlers.py` answers each
  Runtime API endpoint through the few methods below marked "Runtime API side"; the runtime's
  process is a `Process` (process.py) made by a launcher (launch.py: plain, or sandboxed with
  bubblewrap); `report.py` writes the platform records (START, REPORT with the peak memory…).
* `start()` opens a loopback listener (the runtime only knows `AWS_LAMBDA_RUNTIME_API=host:port`)
  and spawns the runtime. Init ends when the runtime first calls `next`; it may last
  `INIT_TIMEOUT_S`. If it does not end in time the runtime is started again inside the first
  invocation, bounded by the function's timeout (spec §20 #21).
* `invoke()` hands one event to the runtime's parked `next` and waits for `/response`,
  `/error`, the runtime's exit, the timeout or the memory limit.
* Two state tables in `domain.states` say what may happen when: RUNTIME (which Runtime API
  calls are allowed) and HOLD (held by a caller or free, frozen or running, retired).
* Between invocations the environment is frozen: once its runtime is parked in `next` and no
  invocation holds it, its process gets SIGSTOP; the next event thaws it with SIGCONT (sent
  once the event is written, so the runtime wakes once, with the event to read). The
  SIGSTOP waits `FREEZE_GRACE_S` (5 ms) after the environment went idle: a call
  taken in that time is handed to the parked runtime directly, without a freeze/thaw pair
  (on a machine not overloaded, most are; see docs/ARCHITECTURE.md, "Freezing"). One timer
  per event loop serves every environment's grace (`_Freezer`), and one per environment its
  invocations' timeouts (re-armed when it fires with a later invocation in hand): no timer
  is armed and cancelled per call.
* What the runtime writes (stdout and stderr, one pipe) is read by the event loop as it
  comes. A runtime writes its last lines before it answers, so the pipe is readable before
  the answer's socket is, and the loop reads it first (epoll reports ready descriptors in
  the order they became ready, and the answer is handled in a task, after the callbacks of
  that poll): the lines are in the log before END and REPORT without a read of the pipe on
  the answer's path (only a caller that wants the log tail gets one more read, to be sure).
* A timeout, a runtime exit, an out-of-memory kill or an init failure kill the environment; it
  is never reused. A plain function error (`/error`, then `next`) keeps it warm. Such a death
  is Lambda's reset: the runtime's /tmp is kept for the next runtime of the same function
  version (reset.py), which runs Init again in it.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import os
import shutil
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lamina.domain import errors, ids, limits, runtimes, states
from lamina.domain.debug import DEBUG_LIMIT_S, DebugSettings
from lamina.domain.model import FunctionConfig, Invocation, InvocationOutcome
from lamina.http import server as http
from lamina.runtime import bootstrap, logs, peers
from lamina.runtime.interpreters import Interpreter, task_bootstrap
from lamina.runtime.launch import Launch, Launcher
from lamina.runtime.process import Process
from lamina.runtime.report import PlatformLog
from lamina.runtime.reset import Kept
from lamina.runtime.runtime_api import handlers, wire
from lamina.runtime.runtime_api.server import runtime_api_handler, streams_body
from lamina.runtime.spares import eligible
from lamina.runtime.supervisor import SpawnError


@dataclass(frozen=True)
class EnvironmentSettings:
    """What every environment of one engine shares."""

    region: str
    data_dir: Path
    credentials: dict[str, str] = field(default_factory=dict)
    # With --auth sigv4: each function's own short-lived credentials, made as it starts
    credentials_of: Callable[[FunctionConfig], dict[str, str]] | None = None
    # ... and how long they last (seconds): the pool retires an environment before
    credentials_lifetime: float | None = None
    # With --assume-role: each environment's credentials of its function's role (STS), fetched
    # as it starts; raises errors.LaminaError when they cannot be had
    assume_role: Callable[[FunctionConfig], Awaitable[dict[str, str]]] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    log_max_bytes: int = 16 * 1024 * 1024
    sdk_path: str | None = None
    lambda_endpoint: str | None = None  # given to durable functions only
    init_timeout: float = limits.INIT_TIMEOUT_S
    freeze: bool = True

    def credentials_for(self, config: FunctionConfig) -> dict[str, str]:
        if self.credentials_of is None:
            return self.credentials
        return self.credentials_of(config)

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"


# Kill reasons that are a reset (reset.py), besides the runtime's own exit: its /tmp is kept
_RESETS = frozenset({"timeout", "oom", "init_error"})

# How long an idle environment (free, its runtime parked in `next`) runs on before SIGSTOP:
# a call that takes it meanwhile needs no freeze/thaw pair (docs/ARCHITECTURE.md, "Freezing").
FREEZE_GRACE_S = 0.005
# A freeze found this late (s) waits once RECHECK_S more: the engine was held up (`_Freezer`)
STALLED_S = 0.001
RECHECK_S = 0.002


class _Freezer:
    """The freezes due on one event loop: one timer for all its environments, not one armed
    and cancelled per call. An environment going idle is queued with a token (`add`); a call
    taking it within the grace only drops its token (nothing to cancel); when the grace of
    the queue's head is over, whatever is still idle under its token is frozen. The grace is
    the same for all, so the queue is in due order. The timer fires at the loop's millisecond
    resolution, as a `call_later(FREEZE_GRACE_S)` of its own would.

    A freeze found more than `STALLED_S` past its due time (the engine was held up:
    descheduled on a busy machine, or one long turn of its loop) is held once, `RECHECK_S`
    more, so that calls which came in meanwhile and still wait unread in their sockets (the
    loop runs its timers before it polls) are handed out first: frozen at once, the
    environment such a call then takes would be thawed again within a millisecond."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: collections.deque[tuple[float, ExecutionEnvironment, int]] = (
            collections.deque()
        )
        # freezes held after a stall (each once), in due order too
        self._held: collections.deque[tuple[float, ExecutionEnvironment, int]] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None

    def add(self, env: ExecutionEnvironment, token: int) -> None:
        due = time.monotonic() + FREEZE_GRACE_S
        self._queue.append((due, env, token))
        if self._timer is None:
            self._timer = self._loop.call_later(FREEZE_GRACE_S, self._fire)

    def _fire(self) -> None:
        self._timer = None
        queue, held = self._queue, self._held
        now = time.monotonic() + 0.0005  # the loop's timers fire to the millisecond
        while held and held[0][0] <= now:
            _, env, token = held.popleft()
            if env._freeze_token == token:
                env._freeze_now()
        while queue and queue[0][0] <= now:
            due, env, token = queue.popleft()
            if env._freeze_token != token:
                continue
            if now - due > STALLED_S:
                held.append((now + RECHECK_S, env, token))
            else:
                env._freeze_now()
        if queue or held:
            due = min(pending[0][0] for pending in (queue, held) if pending)
            self._timer = self._loop.call_later(max(0.001, due - now), self._fire)


_freezers: dict[asyncio.AbstractEventLoop, _Freezer] = {}


def _freezer_of(loop: asyncio.AbstractEventLoop) -> _Freezer:
    freezer = _freezers.get(loop)
    if freezer is None:
        for gone in [known for known in _freezers if known.is_closed()]:
            del _freezers[gone]  # loops gone by (tests run one per test)
        freezer = _freezers[loop] = _Freezer(loop)
    return freezer


class _InvocationIds:
    """The `Lambda-Runtime-Invocation-Id`s of one environment's invocations: 32 hex digits
    shaped as `uuid4().hex`, a random part drawn once and a counter after it, so each is
    unique in its environment (all its check needs) without 16 random bytes per call."""

    __slots__ = ("_count", "_prefix")

    def __init__(self) -> None:
        drawn = ids.hex_id()
        self._prefix = drawn[:17]  # up to the variant digit
        self._count = int(drawn[17:], 16) >> 1  # 59 bits: 15 digits for ever

    def next(self) -> str:
        self._count += 1
        return "%s%015x" % (self._prefix, self._count)  # `%`: no `__format__` call


def _exit_message(code: int) -> str:
    if code == 0:
        return "Runtime exited without providing a reason"
    if code > 0:
        return f"Runtime exited with error: exit status {code}"
    names = {
        signal.SIGKILL: "killed",
        signal.SIGSEGV: "segmentation fault",
        signal.SIGABRT: "aborted",
        signal.SIGTERM: "terminated",
    }
    try:
        name = names.get(signal.Signals(-code), signal.Signals(-code).name.lower())
    except ValueError:
        name = str(-code)
    return f"Runtime exited with error: signal: {name}"


class ExecutionEnvironment:
    """One environment for one function version (see the module docstring)."""

    concurrent = False  # one invocation at a time (concurrent.py: Lambda Managed Instances)

    def __init__(
        self,
        config: FunctionConfig,
        task_root: Path,
        interpreter: Interpreter | None,
        settings: EnvironmentSettings,
        on_dead: Callable[[ExecutionEnvironment], None],
        launcher: Launcher,
        provisioned: bool = False,
        opt_dir: Path | None = None,
        tenant_id: str | None = None,
        debug: DebugSettings | None = None,
    ) -> None:
        self.id = ids.hex_id()
        self.opt_dir = opt_dir  # the function's layers, merged (Lambda's /opt)
        # debug mode (domain.debug): the runtime listens for a debugger, and neither the
        # function's timeout nor Init's limit applies
        self.debug = debug
        self.timeout = float(DEBUG_LIMIT_S if debug is not None else config.timeout)
        self.init_timeout = float(DEBUG_LIMIT_S) if debug is not None else settings.init_timeout
        self.reprovision = False  # retired by a hot reload: a provisioned one starts again
        self.launcher = launcher
        self.provisioned = provisioned
        self.tenant_id = tenant_id  # PER_TENANT functions: the one tenant it serves
        self.key = (*config.env_key, tenant_id)  # what the pool keeps it under
        self.config = config
        self.task_root = task_root
        self.interpreter = interpreter
        self.settings = settings
        self._on_dead = on_dead
        self.state = states.STARTING
        self.hold = states.FREE
        self.idle_since = time.monotonic()
        self.credentials_at = self.idle_since  # when its credentials were made (at spawn)
        self._credentials: dict[str, str] | None = None  # its role's (--assume-role)
        self.stream_name = bootstrap.log_stream_name(config.version, ident=self.id)
        self.logs = logs.LogStream(
            self._stream_path(self.stream_name),
            settings.log_max_bytes,
        )
        self.platform = PlatformLog(self.logs, config, self._peak_kb)
        self.family = runtimes.family(config.runtime or "")
        self.view = launcher.view(self.family, task_root, opt_dir, self.id)
        self.private_dir = settings.data_dir / "envs" / self.id  # removed when it ends
        self._loop = asyncio.get_running_loop()
        self._freezer = _freezer_of(self._loop)
        self._freeze_token = 0  # queued in the freezer while idle (0: not queued)
        self._idle_count = 0
        self._listener: asyncio.Server | None = None
        self._generation = 0  # of the Runtime API listener (a re-init opens a new one)
        self._invoke_began = 0.0  # a suppressed init: the invocation began before it
        self._address = ""
        self._process: Process | None = None
        self._spawned_at = 0.0
        self._init_ms: float | None = None
        # Resolved when Init ends: None on success, else a maker of the failure's outcome.
        self._init_done: asyncio.Future[_FailureMaker | None] = self._loop.create_future()
        self._served = False
        self._next_waiter: asyncio.Future[http.Response] | None = None
        self._pending: Invocation | None = None
        self._current: Invocation | None = None
        self._invocation_id = ""
        self._invocation_ids = _InvocationIds()
        self._outcome: asyncio.Future[InvocationOutcome] | None = None
        self._delivered_at = 0.0
        self._deadline = 0.0  # when the invocation in hand times out (monotonic)
        self._deadline_of: Invocation | None = None  # ... the invocation it is of
        # one timeout timer, re-armed when it fires early rather than armed and cancelled
        # per call: it fires at the deadline of the invocation it was armed for, and if
        # another is in hand by then, it is armed again for that one's
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._kill_reason: str | None = None
        self.stream_sink: asyncio.Queue[Any] | None = None

    # holding ---------------------------------------------------------------------------
    @property
    def reserved(self) -> bool:
        return self.hold in states.HELD_STATES

    @property
    def frozen(self) -> bool:
        return self.hold in states.FROZEN_STATES

    @property
    def retired(self) -> bool:
        return self.hold in states.RETIRED_STATES

    def _holding(self, event: str) -> None:
        try:  # `states.transition`, inlined: two or three a call
            self.hold = states.HOLD[self.hold][event]
        except KeyError:
            raise states.InvalidTransition("hold", self.hold, event) from None

    def reserve(self) -> None:
        self._holding("reserve")
        self._cancel_freeze()  # taken within the grace: handed over without a freeze/thaw

    def release(self) -> None:
        self._holding("release")
        self.idle_since = time.monotonic()
        self._maybe_freeze()

    def retire(self) -> None:
        """Never hand this environment out again (ended now if free, else when released)."""
        self._holding("retire")

    def _maybe_freeze(self) -> None:
        """Idle now (free, the runtime parked in `next`): freeze after the grace."""
        if self.settings.freeze and not self._freeze_token and self._idle():
            self._idle_count += 1
            self._freeze_token = self._idle_count
            self._freezer.add(self, self._idle_count)

    def _idle(self) -> bool:
        return (
            self.hold == states.FREE
            and self.debug is None
            and self.state == states.READY
            and self._process is not None
        )

    def _freeze_now(self) -> None:
        self._freeze_token = 0
        if self._idle():
            self._holding("freeze")
            assert self._process is not None
            self._process.freeze()

    def _cancel_freeze(self) -> None:
        self._freeze_token = 0  # its entry in the freezer's queue is void

    # lifecycle -------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self.state not in (states.DEAD, states.INIT_FAILED)

    @property
    def reusable(self) -> bool:
        """Whether the pool may hand this environment another invocation."""
        return self.alive and self._kill_reason is None and not self.retired

    async def start(self) -> None:
        """Open the Runtime API listener and spawn the runtime; Init continues on its own."""
        await self._listen()
        self.view = self.launcher.view(self.family, self.task_root, self.opt_dir, self.id)
        if self.view.tmp_dir:
            Path(self.view.tmp_dir).mkdir(parents=True, exist_ok=True)
        self.logs.begin_capture()
        if self.interpreter is not None and self.interpreter.warning:
            self.platform.warning(self.interpreter.warning)
        if self.settings.assume_role is not None:
            try:
                self._credentials = await self.settings.assume_role(self.config)
                self.credentials_at = time.monotonic()
            except errors.LaminaError as exc:
                self._fail_init("Runtime.Unknown", exc.message)
                return
            if not self.alive:  # ended while STS answered (the engine stopping): no runtime
                return
        self._spawn()

    async def _listen(self) -> None:
        """A Runtime API listener for the runtime about to be spawned. A re-init replaces the
        listener: what the replaced runtime still sends (a `next` in flight when it was
        killed) is refused, never taken for the new runtime's."""
        if self._listener is not None:
            self._listener.close()
        self._generation += 1
        generation = self._generation
        handle = runtime_api_handler(self, lambda: generation == self._generation)
        self._listener = await http.serve(
            handle,
            "127.0.0.1",
            0,
            body_limit=limits.RESPONSE_PAYLOAD,
            too_large=self._too_large,
            streams_body=streams_body,
            accept=self._own_connection,
            coalesce=True,  # the 202 to a pipelined answer goes out with the next event
        )
        self._address = f"127.0.0.1:{http.bound_port(self._listener)}"

    def _spawn(self, suppressed: bool = False) -> None:
        kept = self._kept_tmp()
        if kept is not None and kept.stream is not None and kept.stream != self.stream_name:
            self.stream_name = kept.stream  # a reset environment's, which goes on here
            self.logs.move_to(self._stream_path(kept.stream))
        bootstrap_path = self._bootstrap_path()
        argv = bootstrap.runtime_command(
            self.config,
            self.interpreter.path if self.interpreter else None,
            self.view,
            bootstrap_path,
            self.debug,
            self.interpreter.release if self.interpreter else None,
        )
        kind = "provisioned-concurrency" if self.provisioned else "on-demand"
        env = bootstrap.environment(
            self.config,
            region=self.settings.region,
            api_address=self._address,
            view=self.view,
            stream=self.stream_name,
            credentials=self._credentials or self.settings.credentials_for(self.config),
            interpreter=self.interpreter.path if self.interpreter else None,
            extra=self.settings.extra_env,
            initialization_type=kind,
            lambda_endpoint=self.settings.lambda_endpoint,
        )
        env.update(bootstrap.lamina_variables(self.config, self.view.private_dir, self.debug))
        env.update(self._runtime_variables())
        if not suppressed:  # a suppressed init runs inside the invocation, after START
            self.platform.init_start(kind, argv[0])
        self._spawned_at = time.monotonic()
        if self._credentials is None:  # a role's are kept for the environment's life
            self.credentials_at = self._spawned_at
        failure = self._spawn_problem(argv[0])
        if failure is None:
            variables = {**self.settings.extra_env, **self.config.environment}
            cell: list[Process] = []
            launch = Launch(
                argv,
                env,
                self.view.task_root,
                self.logs.write_output,
                lambda code: self._on_exit(cell[0] if cell else None, code),
                self.family,
                self.task_root,
                self.opt_dir,
                self.interpreter.path if self.interpreter else None,
                self.config.ephemeral_storage,
                spare=self.debug is None
                and eligible(self.family, variables, self.task_root, self.opt_dir),
                kept_tmp=None if kept is None else kept.path,
            )
            try:
                cell.append(self.launcher.spawn(launch))
                self._process = cell[0]
                return
            except SpawnError as exc:
                failure = str(exc)
        elif kept is not None:  # not started: what a reset kept waits for the next runtime
            self.launcher.kept.put(self._reset_key(), kept.config, kept.path, kept.stream)
        self._fail_init("Runtime.InvalidEntrypoint", failure)

    def _own_connection(self, peer: tuple[str, int], local: tuple[str, int]) -> bool:
        """Only this environment's runtime (and what it started) reaches its Runtime API."""
        process = self._process
        return process is not None and peers.is_own(peer, local, process.runtime_pid)

    def _runtime_variables(self) -> dict[str, str]:
        """Variables this kind of environment adds for its runtime (none here)."""
        return {}

    def _bootstrap_path(self) -> str | None:
        """A `provided` function's executable as its runtime sees it: the package's bootstrap,
        else a layer's (Lambda's /opt/bootstrap)."""
        if self.family != "provided":
            return None
        found = task_bootstrap(self.task_root, self.opt_dir)
        if found is None:
            return None
        root = self.view.task_root if found.parent == self.task_root else self.view.opt_dir
        return f"{root}/bootstrap"

    def _spawn_problem(self, program: str) -> str | None:
        if self.config.code_path is not None or self.opt_dir is not None:
            for folder in folders_of(self.config):
                if not os.path.isdir(folder):
                    return (
                        f"The hot-reload folder {folder} does not exist (the function's "
                        "code names it: S3Bucket is the hot-reload bucket, S3Key the "
                        "folder). Create it, or update the function's code."
                    )
        if self.family == "provided":
            found = task_bootstrap(self.task_root, self.opt_dir)
            if found is None:
                return (
                    "Couldn't find valid bootstrap(s): "
                    f"[{self.view.task_root}/bootstrap {self.view.opt_dir or '/opt'}/bootstrap]"
                )
            if not _executable(found, by_others=self.launcher.support.active):
                return f"fork/exec {program}: permission denied"
        if self.family in ("python", "nodejs") and self.interpreter is None:
            return (
                f"No interpreter for {self.config.runtime} on this machine; map one with "
                f"`lamina serve --runtime {self.config.runtime}=PATH`"
            )
        return None

    def _fail_init(self, error_type: str, message: str) -> None:
        self.platform.init_report(
            self._elapsed_ms(),
            "error",
            error_type,
            phase="invoke" if self._invoke_began else "init",
        )
        if not self._init_done.done():
            self._init_done.set_result(_platform_failure(error_type, message))
        self._die("init_error" if self.state == states.STARTING else "kill")

    def kill(self, reason: str = "kill") -> None:
        """End the environment now: the runtime and what it started get SIGKILL."""
        self._kill_reason = self._kill_reason or reason
        if self._process is not None and self._process.alive:
            self._process.kill()
            if reason in _RESETS:
                self._keep_tmp()
        else:
            self._die("kill")

    def _keep_tmp(self) -> None:
        """A reset: the runtime's /tmp waits for the next runtime of this version (reset.py).
        Not for a debug session, a retired configuration, nor Managed Instances."""
        if self._process is None or self.concurrent or self.debug is not None or self.retired:
            return
        kept = self.launcher.keep_tmp(self._process, self.view)
        self.launcher.kept.put(self._reset_key(), self.config, kept, self.stream_name)

    def _kept_tmp(self) -> Kept | None:
        """The /tmp and log stream a reset of this version kept, now this runtime's
        (reset.py)."""
        if self.concurrent or self.debug is not None:
            return None
        return self.launcher.kept.take(self._reset_key())

    def _reset_key(self) -> tuple[str, str, str, str | None]:
        return (*self.config.env_key, self.tenant_id)

    def _stream_path(self, stream: str) -> Path:
        return self.settings.logs_dir / self.config.name / (stream.replace("/", "-") + ".log")

    def _on_exit(self, process: Process | None, code: int) -> None:
        if process is not self._process:
            return  # a runtime replaced by a re-init
        if self._kill_reason is None:  # it crashed
            self._keep_tmp()
        message = _exit_message(code)
        error_type = "Runtime.OutOfMemory" if self._kill_reason == "oom" else "Runtime.ExitError"
        if not self._init_done.done():
            self._fail_init(error_type, message)
        self._fail_in_hand(_platform_failure(error_type, message))
        self._die("exit")

    def _fail_in_hand(self, failure: _FailureMaker) -> None:
        """The runtime is gone: the invocation in hand fails as `failure` says."""
        if self._current is not None:
            self._finish(failure(self._current.request_id))

    def _die(self, event: str) -> None:
        if self.state == states.DEAD:
            return
        self._cancel_freeze()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._init_done.done():
            self._init_done.set_result(
                _platform_failure("Runtime.ExitError", "Runtime exited without providing a reason")
            )
        self.state = (
            states.transition(states.RUNTIME, self.state, event)
            if event in states.RUNTIME[self.state]
            else states.DEAD
        )
        if self.state == states.INIT_FAILED:
            if self._process is not None and self._process.alive:
                self._process.kill()
            self.state = states.DEAD
        self._drop_waiters()
        if self._listener is not None:
            self._listener.close()
        self.platform.flush()
        self.logs.close()
        shutil.rmtree(self.private_dir, ignore_errors=True)
        self._on_dead(self)

    def _drop_waiters(self) -> None:
        """The runtime's parked `next` (and an event not yet handed over) go with it."""
        if self._next_waiter is not None and not self._next_waiter.done():
            self._next_waiter.cancel()
        self._pending = None

    # invoking --------------------------------------------------------------------------
    async def invoke(
        self,
        invocation: Invocation,
        want_tail: bool = False,
        stream_sink: asyncio.Queue[Any] | None = None,
    ) -> InvocationOutcome:
        """Run one invocation here; the outcome says what the caller gets (spec §4.4).

        With `stream_sink`, a response the runtime streams is passed on piece by piece as
        ("start", content type, request id), ("chunk", bytes)…, ("end", None); without, it
        is collected.
        """
        self.stream_sink = stream_sink
        # A provisioned environment did its Init before any invoke: its first one is warm.
        cold, self._served = not self._served and not self.provisioned, True
        self.platform.flush()
        if cold:
            failure = await self._wait_init(invocation)
            if failure is not None:
                return self._close_invocation(invocation, failure, want_tail, cold=True)
        elif want_tail:  # the log tail is all the capture is for: without it, none
            self.logs.begin_capture()
        if not self._invoke_began:  # a suppressed init wrote START before it
            self.platform.start(invocation.request_id)
        self._outcome = self._loop.create_future()
        self._current = invocation
        self._deliver(invocation)
        outcome = await self._outcome
        return self._close_invocation(invocation, outcome, want_tail, cold)

    async def _wait_init(self, invocation: Invocation) -> InvocationOutcome | None:
        try:
            maker = await asyncio.wait_for(asyncio.shield(self._init_done), self.init_timeout)
        except TimeoutError:
            maker = await self._reinit(invocation)
        suppressed = bool(self._invoke_began)
        if maker is None:
            # a suppressed init is part of the invocation: in its Duration, not Init Duration
            self._init_ms = None if suppressed else self._elapsed_ms()
            return None
        failure = maker(invocation.request_id)
        if suppressed:
            failure.duration_ms = (time.monotonic() - self._invoke_began) * 1000
            self._invoke_began = 0.0
        else:
            failure.init_ms = self._elapsed_ms()
        return failure

    async def _reinit(self, invocation: Invocation) -> _FailureMaker | None:
        """Init ran out of time: Lambda retries it inside the first invocation ("suppressed
        init"), bounded by the function's timeout, which then covers Init and the handler."""
        self.platform.init_report(self._elapsed_ms(), "timeout")
        self.platform.start(invocation.request_id)
        self._invoke_began = time.monotonic()
        if self._process is not None:
            self._process.kill()
            self._keep_tmp()  # for the runtime started next, in the same environment
        self._process = None
        await self._listen()
        self._spawn(suppressed=True)
        try:
            return await asyncio.wait_for(asyncio.shield(self._init_done), self.timeout)
        except TimeoutError:
            self.platform.timeout(invocation.request_id, self.timeout)
            maker = _platform_failure(
                "Sandbox.Timedout", f"Task timed out after {self.timeout:.2f} seconds"
            )
            self._init_done.set_result(maker)
            self.kill("timeout")
            return maker

    def _deliver(self, invocation: Invocation) -> None:
        waiter = self._next_waiter
        if self.state != states.READY or waiter is None or waiter.done():
            self._pending = invocation  # handed over when the runtime next calls `next`
            return
        self._pending = None
        self.state = states.RUNTIME[self.state]["deliver"]  # allowed (checked above)
        frozen = self.frozen
        if frozen:
            self._holding("thaw")
        # after a suppressed init, the invocation (and its timeout) began with that init
        now = time.monotonic()
        self._delivered_at = self._invoke_began or now
        self._invoke_began = 0.0
        remaining = max(0.0, self.timeout - (now - self._delivered_at))
        deadline_ms = int(time.time() * 1000 + remaining * 1000)
        self._deadline = deadline = now + remaining
        self._deadline_of = invocation
        if self._timer is None or self._timer_at > deadline:
            self._arm_timer(deadline, now)
        self._invocation_id = self._invocation_ids.next()
        waiter.set_result(wire.next_response(invocation, deadline_ms, self._invocation_id))
        if frozen:
            # SIGCONT after the event is written: the waiter's connection task, woken just
            # above, runs first and writes it, so the runtime resumes with its event already
            # in its socket (one wake-up instead of two)
            assert self._process is not None
            self._loop.call_soon(self._process.thaw)

    def _arm_timer(self, at: float, now: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = self._loop.call_later(at - now, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        invocation = self._current
        if invocation is None or invocation is not self._deadline_of:
            return  # none in hand, or not yet delivered (`_deliver` arms it then)
        now = time.monotonic()
        if now + 0.001 < self._deadline:  # a later invocation in hand: armed for its own
            self._arm_timer(self._deadline, now)
        else:  # (the loop's timers fire to the millisecond, as `call_later` alone did)
            self._on_timeout(invocation)

    def _on_timeout(self, invocation: Invocation) -> None:
        if self._current is not invocation:
            return
        self.platform.timeout(invocation.request_id, self.timeout)
        self._finish(
            _platform_failure(
                "Sandbox.Timedout", f"Task timed out after {self.timeout:.2f} seconds"
            )(invocation.request_id)
        )
        self.kill("timeout")

    def _finish(self, outcome: InvocationOutcome) -> None:
        outcome.duration_ms = (time.monotonic() - self._delivered_at) * 1000
        self._current = None
        if self._outcome is not None and not self._outcome.done():
            self._outcome.set_result(outcome)

    def _close_invocation(
        self, invocation: Invocation, outcome: InvocationOutcome, want_tail: bool, cold: bool
    ) -> InvocationOutcome:
        outcome.environment_id = self.id
        if cold and outcome.init_ms is None:
            outcome.init_ms = self._init_ms
        self.platform.pending(invocation.request_id, outcome)
        if want_tail:
            if self._process is not None:
                self._process.drain_output()  # already read (see `complete`); to be sure
            self.platform.flush()
            outcome.log_tail = logs.tail(self.logs.end_capture())
        else:
            self.logs.end_capture()
            self._loop.call_soon(self.platform.flush)
        return outcome

    def _peak_kb(self) -> int:
        return self._process.peak_memory_kb() if self._process is not None else 0

    def _elapsed_ms(self) -> float:
        return (time.monotonic() - self._spawned_at) * 1000

    def on_init(self, callback: Callable[[], None]) -> None:
        """Call `callback` once Init is over (succeeded, failed, timed out or killed)."""
        self._init_done.add_done_callback(lambda _: callback())

    async def initialized(self, timeout: float) -> bool:
        """Wait for Init (provisioned concurrency: up to the function's timeout)."""
        try:
            failure = await asyncio.wait_for(asyncio.shield(self._init_done), timeout)
        except TimeoutError:
            self.kill("init_timeout")
            return False
        if failure is None:
            self._init_ms = self._elapsed_ms()
            self.platform.init_report(
                self._init_ms, "success", initialization_type="provisioned-concurrency"
            )
            self.logs.end_capture()
        return failure is None

    def memory_kb(self) -> int:
        return self._process.memory_kb() if self._process is not None else 0

    @property
    def runtime_pid(self) -> int:
        """The runtime's process id on the host (not the one it sees in a sandbox)."""
        return self._process.runtime_pid if self._process is not None else 0

    # Runtime API side (runtime_api/handlers.py) ----------------------------------------
    @property
    def current(self) -> Invocation | None:
        return self._current

    def invocation_of(self, request_id: str) -> Invocation | None:
        """The invocation in hand if it is `request_id`'s (None once it is over)."""
        current = self._current
        return current if current is not None and current.request_id == request_id else None

    def sink_of(self, request_id: str) -> asyncio.Queue[Any] | None:
        return self.stream_sink

    async def next_event(self, request: http.Request | None = None) -> http.Response:
        if self.state == states.INVOKING:
            return wire.invalid_transition(self.state, states.READY)
        if self.state in (states.STARTING, states.RESPONDED):
            self.state = states.RUNTIME[self.state]["next"]  # allowed (checked above)
            if not self._init_done.done():
                self._init_done.set_result(None)
        elif self.state != states.READY:
            return wire.invalid_transition(self.state, states.READY)
        if self._next_waiter is not None and not self._next_waiter.done():
            self._next_waiter.cancel()  # the runtime reconnected and asked again
        waiter: asyncio.Future[http.Response] = self._loop.create_future()
        self._next_waiter = waiter
        if self._pending is not None:
            self._deliver(self._pending)
        else:
            self._maybe_freeze()
        return await waiter

    def refuse(self, request_id: str, invocation_id: str | None) -> http.Response | None:
        """Why an answer for `request_id` cannot be taken now (None: it can)."""
        if self._current is None or request_id != self._current.request_id:
            return wire.invalid_request_id()
        if invocation_id is not None and invocation_id != self._invocation_id:
            return wire.invoke_gone()
        if self.state != states.INVOKING:
            return wire.invalid_transition(self.state, states.RESPONDED)
        return None

    def complete(self, outcome: InvocationOutcome, request_id: str = "") -> None:
        """The invocation in hand has its answer (`refuse` checked `request_id` is it)."""
        if self.state != states.INVOKING:
            return
        self.state = states.RUNTIME[self.state]["response"]  # allowed (checked above)
        self._finish(outcome)

    def init_error(self, body: bytes, error_type: str | None) -> http.Response:
        if self.state != states.STARTING:
            return wire.invalid_transition(self.state, states.INIT_FAILED)
        kind = wire.error_type_of(error_type, body)
        self.platform.init_report(
            self._elapsed_ms(), "error", kind, phase="invoke" if self._invoke_began else "init"
        )
        content_type = "application/json" if handlers.is_json(body) else "application/octet-stream"
        outcome = InvocationOutcome(body, content_type, function_error=True, error_type=kind)
        self._init_done.set_result(lambda _request_id: outcome)
        self.state = states.transition(states.RUNTIME, self.state, "init_error")
        self._loop.call_later(0.05, self.kill, "init_error")
        return wire.ACCEPTED

    def _too_large(self, path: str, size: int) -> http.Response:
        return handlers.too_large(self, handlers.request_id_of(path))


def _executable(path: Path, by_others: bool) -> bool:
    """Whether the runtime may execute `path` (sandboxed: as a user who does not own it)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return bool(mode & 0o001) if by_others else bool(mode & 0o111)


_FailureMaker = Callable[[str], InvocationOutcome]


def _platform_failure(error_type: str, message: str) -> _FailureMaker:
    """A platform-detected failure, made into an outcome once the request id is known."""

    def make(request_id: str) -> InvocationOutcome:
        return InvocationOutcome(
            wire.platform_error(error_type, f"RequestId: {request_id} Error: {message}"),
            function_error=True,
            error_type=error_type,
        )

    return make


def folders_of(config: FunctionConfig) -> list[str]:
    """The hot-reload folders a version runs from: its code's and its layers'."""
    folders = [layer.path for layer in config.layers if layer.path is not None]
    return [config.code_path, *folders] if config.code_path is not None else folders


def code_key(code_sha256: str) -> str:
    """The on-disk name of a package from its base64 CodeSha256."""
    return base64.b64decode(code_sha256).hex()
