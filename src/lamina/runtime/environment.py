"""An execution environment: one runtime process, its Runtime API listener, its log stream.

Theory of operation (spec §9, §10)
----------------------------------
* `start()` opens a loopback listener (the runtime only knows `AWS_LAMBDA_RUNTIME_API=host:port`)
  and spawns the runtime. Init ends when the runtime first calls `next`; it may last
  `INIT_TIMEOUT_S`. If it does not end in time the runtime is started again inside the first
  invocation, bounded by the function's timeout (spec §20 #21).
* `invoke()` hands one event to the runtime's parked `next` and waits for `/response`,
  `/error`, the runtime's exit, the timeout or the memory limit. The state table in
  `domain.states` decides which Runtime API calls are allowed when.
* Between invocations the environment is frozen: once its runtime is parked in `next` and no
  invocation holds it, its process group gets SIGSTOP; the next event thaws it with SIGCONT.
* A timeout, a runtime exit, an out-of-memory kill or an init failure kill the environment; it
  is never reused. A plain function error (`/error`, then `next`) keeps it warm.
* START / END / REPORT lines go to the environment's log stream. The REPORT line needs the
  runtime's peak memory from /proc, so unless the caller wants the log tail it is written just
  after the invocation returns, off the caller's path.
"""

from __future__ import annotations

import asyncio
import base64
import math
import os
import shutil
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lamina.domain import limits, runtimes, states
from lamina.domain.debug import DEBUG_LIMIT_S, DebugSettings
from lamina.domain.model import FunctionConfig, Invocation, InvocationOutcome
from lamina.http import server as http
from lamina.runtime import bootstrap, logs
from lamina.runtime.interpreters import Interpreter, task_bootstrap
from lamina.runtime.runtime_api import wire
from lamina.runtime.runtime_api.server import runtime_api_handler, streams_body
from lamina.runtime.spares import Spares, eligible
from lamina.runtime.supervisor import Child, SpawnError


@dataclass(frozen=True)
class EnvironmentSettings:
    """What every environment of one engine shares."""

    region: str
    data_dir: Path
    credentials: dict[str, str] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)
    log_max_bytes: int = 16 * 1024 * 1024
    sdk_path: str | None = None
    lambda_endpoint: str | None = None   # given to durable functions only
    init_timeout: float = limits.INIT_TIMEOUT_S
    freeze: bool = True

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"


def _exit_message(code: int) -> str:
    if code == 0:
        return "Runtime exited without providing a reason"
    if code > 0:
        return f"Runtime exited with error: exit status {code}"
    names = {signal.SIGKILL: "killed", signal.SIGSEGV: "segmentation fault",
             signal.SIGABRT: "aborted", signal.SIGTERM: "terminated"}
    try:
        name = names.get(signal.Signals(-code), signal.Signals(-code).name.lower())
    except ValueError:
        name = str(-code)
    return f"Runtime exited with error: signal: {name}"


class ExecutionEnvironment:
    """One environment for one function version (see the module docstring)."""

    def __init__(self, config: FunctionConfig, task_root: Path, interpreter: Interpreter | None,
                 settings: EnvironmentSettings,
                 on_dead: Callable[[ExecutionEnvironment], None],
                 provisioned: bool = False, spares: Spares | None = None,
                 opt_dir: Path | None = None, debug: DebugSettings | None = None) -> None:
        self.id = uuid.uuid4().hex
        self.opt_dir = opt_dir  # the function's layers, merged (Lambda's /opt)
        # debug mode (domain.debug): the runtime listens for a debugger, and neither the
        # function's timeout nor Init's limit applies
        self.debug = debug
        self.timeout = float(DEBUG_LIMIT_S if debug is not None else config.timeout)
        self.init_timeout = float(DEBUG_LIMIT_S) if debug is not None else settings.init_timeout
        self.reprovision = False  # retired by a hot reload: a provisioned one starts again
        self.spares = spares
        self.provisioned = provisioned
        self.config = config
        self.task_root = task_root
        self.interpreter = interpreter
        self.settings = settings
        self._on_dead = on_dead
        self.state = states.STARTING
        self.reserved = False
        self.retired = False
        self.frozen = False
        self.idle_since = time.monotonic()
        self.stream_name = bootstrap.log_stream_name(config.version, ident=self.id)
        self.logs = logs.LogStream(
            settings.logs_dir / config.name / (self.stream_name.replace("/", "-") + ".log"),
            settings.log_max_bytes)
        self._loop = asyncio.get_running_loop()
        self._listener: asyncio.Server | None = None
        self._address = ""
        self._child: Child | None = None
        self._spawned_at = 0.0
        self._init_ms: float | None = None
        # Resolved when Init ends: None on success, else a maker of the failure's outcome.
        self._init_done: asyncio.Future[_FailureMaker | None] = self._loop.create_future()
        self._served = False
        self._next_waiter: asyncio.Future[http.Response] | None = None
        self._pending: Invocation | None = None
        self._current: Invocation | None = None
        self._outcome: asyncio.Future[InvocationOutcome] | None = None
        self._delivered_at = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._kill_reason: str | None = None
        self._report: str | None = None
        self._stream_sink: asyncio.Queue[Any] | None = None
        self._peak = 0
        self._peak_read_at = 0.0
        self._tmp = settings.data_dir / "envs" / self.id / "tmp"

    # lifecycle -------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self.state not in (states.DEAD, states.INIT_FAILED)

    @property
    def private_dir(self) -> Path:
        """The environment's own folder (its TMPDIR's parent), removed when it ends."""
        return self._tmp.parent

    @property
    def reusable(self) -> bool:
        """Whether the pool may hand this environment another invocation."""
        return self.alive and self._kill_reason is None and not self.retired

    async def start(self) -> None:
        """Open the Runtime API listener and spawn the runtime; Init continues on its own."""
        self._listener = await http.serve(
            runtime_api_handler(self), "127.0.0.1", 0,
            body_limit=_response_limit, too_large=self.response_too_large,
            streams_body=streams_body)
        port = self._listener.sockets[0].getsockname()[1]
        self._address = f"127.0.0.1:{port}"
        self._tmp.mkdir(parents=True, exist_ok=True)
        self.logs.begin_capture()
        if self.interpreter is not None and self.interpreter.warning:
            self.logs.platform(self.interpreter.warning)
        self._spawn()

    def _spawn(self) -> None:
        argv, runtime_dir = bootstrap.runtime_command(
            self.config, self.interpreter.path if self.interpreter else None, self.task_root,
            self.settings.sdk_path, self.opt_dir, self.debug)
        env = bootstrap.environment(
            self.config, region=self.settings.region, api_address=self._address,
            task_root=self.task_root, runtime_dir=runtime_dir, stream=self.stream_name,
            tmp_dir=self._tmp, credentials=self.settings.credentials,
            interpreter=self.interpreter.path if self.interpreter else None,
            extra=self.settings.extra_env, opt_dir=self.opt_dir,
            lambda_endpoint=self.settings.lambda_endpoint,
            initialization_type="provisioned-concurrency" if self.provisioned else "on-demand")
        env.update(bootstrap.lamina_variables(self.config, self._tmp.parent, self.debug))
        self.logs.platform(f"INIT_START Runtime Version: {self.config.runtime}\t"
                           f"Runtime: {argv[0]}")
        self._spawned_at = time.monotonic()
        failure = self._spawn_problem(argv)
        if failure is None:
            spare = None
            variables = {**self.settings.extra_env, **self.config.environment}
            if self.spares is not None and self.opt_dir is None and self.debug is None \
                    and eligible(
                    runtimes.family(self.config.runtime or ""), variables, self.task_root):
                spare = self.spares.take(argv)
            child = Child(argv, env, str(self.task_root), self.logs.write_output,
                          lambda code: self._on_exit(child, code), spare=spare)
            try:
                child.start()
                self._child = child
                return
            except SpawnError as exc:
                failure = str(exc)
        self._fail_init("Runtime.InvalidEntrypoint", failure)

    def _spawn_problem(self, argv: list[str]) -> str | None:
        if self.config.code_path is not None or self.opt_dir is not None:
            for folder in folders_of(self.config):
                if not os.path.isdir(folder):
                    return (f"The hot-reload folder {folder} does not exist (the function's "
                            "code names it: S3Bucket is the hot-reload bucket, S3Key the "
                            "folder). Create it, or update the function's code.")
        family = (self.config.runtime or "").split(".")[0].rstrip("0123456789")
        if family == "provided" and task_bootstrap(self.task_root, self.opt_dir) is None:
            return ("Couldn't find valid bootstrap(s): "
                    f"[{self.task_root / 'bootstrap'} {self.opt_dir or '/opt'}/bootstrap]")
        if family in ("python", "nodejs") and self.interpreter is None:
            return (f"No interpreter for {self.config.runtime} on this machine; map one with "
                    f"`lamina serve --runtime {self.config.runtime}=PATH`")
        return None

    def _fail_init(self, error_type: str, message: str) -> None:
        self.logs.platform(f"INIT_REPORT Init Duration: {self._elapsed_ms():.2f} ms\t"
                           f"Phase: init\tStatus: error\tError Type: {error_type}")
        if not self._init_done.done():
            self._init_done.set_result(_platform_failure(error_type, message))
        self._die("init_error" if self.state == states.STARTING else "kill")

    def kill(self, reason: str = "kill") -> None:
        """End the environment now: the runtime's process group gets SIGKILL."""
        self._kill_reason = self._kill_reason or reason
        if self._child is not None and self._child.alive:
            self._child.kill()
        else:
            self._die("kill")

    def _on_exit(self, child: Child, code: int) -> None:
        if child is not self._child:
            return  # a runtime replaced by a re-init
        message = _exit_message(code)
        error_type = "Runtime.OutOfMemory" if self._kill_reason == "oom" else "Runtime.ExitError"
        if not self._init_done.done():
            self._fail_init(error_type, message)
        if self._current is not None:
            self._finish(_platform_failure(error_type, message)(self._current.request_id))
        self._die("exit")

    def _die(self, event: str) -> None:
        if self.state == states.DEAD:
            return
        if not self._init_done.done():
            self._init_done.set_result(_platform_failure(
                "Runtime.ExitError", "Runtime exited without providing a reason"))
        self.state = states.transition(states.RUNTIME, self.state, event) \
            if event in states.RUNTIME[self.state] else states.DEAD
        if self.state == states.INIT_FAILED:
            if self._child is not None and self._child.alive:
                self._child.kill()
            self.state = states.DEAD
        if self._next_waiter is not None and not self._next_waiter.done():
            self._next_waiter.cancel()
        if self._pending is not None:
            self._pending = None
        if self._listener is not None:
            self._listener.close()
        self._flush_report()
        self.logs.close()
        shutil.rmtree(self._tmp.parent, ignore_errors=True)
        self._on_dead(self)

    # invoking --------------------------------------------------------------------------
    async def invoke(self, invocation: Invocation, want_tail: bool = False,
                     stream_sink: asyncio.Queue[Any] | None = None) -> InvocationOutcome:
        """Run one invocation here; the outcome says what the caller gets (spec §4.4).

        With `stream_sink`, a response the runtime streams is passed on piece by piece as
        ("start", content type, request id), ("chunk", bytes)…, ("end", None); without, it
        is collected.
        """
        self._stream_sink = stream_sink
        # A provisioned environment did its Init before any invoke: its first one is warm.
        cold, self._served = not self._served and not self.provisioned, True
        self._flush_report()
        if cold:
            failure = await self._wait_init(invocation)
            if failure is not None:
                return self._close_invocation(invocation, failure, want_tail, cold=True)
        else:
            self.logs.begin_capture()
        self.logs.platform(f"START RequestId: {invocation.request_id} "
                           f"Version: {self.config.version}")
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
        if maker is None:
            self._init_ms = self._elapsed_ms()
            return None
        failure = maker(invocation.request_id)
        failure.init_ms = self._elapsed_ms()
        return failure

    async def _reinit(self, invocation: Invocation) -> _FailureMaker | None:
        """Init ran out of time: start the runtime again, within the function's timeout."""
        self.logs.platform(f"INIT_REPORT Init Duration: {self._elapsed_ms():.2f} ms\t"
                           "Phase: init\tStatus: timeout")
        old, self._child = self._child, None
        if old is not None:
            old.kill()
        self._spawn()
        try:
            return await asyncio.wait_for(asyncio.shield(self._init_done), self.timeout)
        except TimeoutError:
            self.logs.platform(self._timeout_line(invocation.request_id))
            maker = _platform_failure("Sandbox.Timedout",
                                      f"Task timed out after {self.timeout:.2f} seconds")
            self._init_done.set_result(maker)
            self.kill("timeout")
            return maker

    def _deliver(self, invocation: Invocation) -> None:
        waiter = self._next_waiter
        if self.state != states.READY or waiter is None or waiter.done():
            self._pending = invocation  # handed over when the runtime next calls `next`
            return
        self._pending = None
        self.state = states.transition(states.RUNTIME, self.state, "deliver")
        if self.frozen:
            self.frozen = False
            assert self._child is not None
            self._child.thaw()
        self._delivered_at = time.monotonic()
        deadline_ms = int(time.time() * 1000 + self.timeout * 1000)
        self._timer = self._loop.call_later(self.timeout, self._on_timeout, invocation)
        waiter.set_result(wire.next_response(invocation, deadline_ms))

    def _on_timeout(self, invocation: Invocation) -> None:
        if self._current is not invocation:
            return
        self.logs.platform(self._timeout_line(invocation.request_id))
        self._finish(_platform_failure(
            "Sandbox.Timedout", f"Task timed out after {self.timeout:.2f} seconds"
        )(invocation.request_id))
        self.kill("timeout")

    def _timeout_line(self, request_id: str) -> str:
        return f"{logs.iso_now()} {request_id} Task timed out after {self.timeout:.2f} seconds"

    def _finish(self, outcome: InvocationOutcome) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        outcome.duration_ms = (time.monotonic() - self._delivered_at) * 1000
        self._current = None
        if self._outcome is not None and not self._outcome.done():
            self._outcome.set_result(outcome)

    def _close_invocation(self, invocation: Invocation, outcome: InvocationOutcome,
                          want_tail: bool, cold: bool) -> InvocationOutcome:
        outcome.environment_id = self.id
        if cold and outcome.init_ms is None:
            outcome.init_ms = self._init_ms
        self._report = self._report_lines(invocation, outcome)
        if want_tail:
            self._flush_report()
            outcome.log_tail = logs.tail(self.logs.end_capture())
        else:
            self.logs.end_capture()
            self._loop.call_soon(self._flush_report)
        return outcome

    def _report_lines(self, invocation: Invocation, outcome: InvocationOutcome) -> str:
        duration = outcome.duration_ms
        line = (f"END RequestId: {invocation.request_id}\n"
                f"REPORT RequestId: {invocation.request_id}\tDuration: {duration:.2f} ms\t"
                f"Billed Duration: {max(1, math.ceil(duration))} ms\t"
                f"Memory Size: {self.config.memory_size} MB\tMax Memory Used: {_PEAK} MB")
        if outcome.init_ms is not None:
            line += f"\tInit Duration: {outcome.init_ms:.2f} ms"
        return line

    def _flush_report(self) -> None:
        if self._report is None:
            return
        report, self._report = self._report, None
        for line in report.replace(_PEAK, str(max(1, self._peak_kb() // 1024))).split("\n"):
            self.logs.platform(line)

    def _peak_kb(self) -> int:
        """The runtime's peak memory, read from /proc at most every 0.5 s (it only grows,
        and reading it costs ~40 us, a tenth of a warm invoke): a REPORT line may show a
        peak up to half a second old."""
        now = time.monotonic()
        if self._child is not None and now - self._peak_read_at > 0.5:
            self._peak = self._child.peak_memory_kb() or self._peak
            self._peak_read_at = now
        return self._peak

    def _elapsed_ms(self) -> float:
        return (time.monotonic() - self._spawned_at) * 1000

    # holding and freezing --------------------------------------------------------------
    def reserve(self) -> None:
        self.reserved = True

    def release(self) -> None:
        self.reserved = False
        self.idle_since = time.monotonic()
        self._maybe_freeze()

    def _maybe_freeze(self) -> None:
        if (self.settings.freeze and not self.reserved and not self.frozen and self.debug is None
                and self.state == states.READY and self._child is not None):
            self.frozen = True
            self._child.freeze()

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
            self.logs.platform(f"INIT_REPORT Init Duration: {self._init_ms:.2f} ms\t"
                               "Phase: init\tStatus: success")
            self.logs.end_capture()
        return failure is None

    def memory_kb(self) -> int:
        return self._child.memory_kb() if self._child is not None else 0

    # Runtime API (called by runtime_api.server) ----------------------------------------
    async def on_next(self) -> http.Response:
        if self.state == states.INVOKING:
            return wire.invalid_transition(self.state, states.READY)
        if self.state in (states.STARTING, states.RESPONDED):
            self.state = states.transition(states.RUNTIME, self.state, "next")
            if not self._init_done.done():
                self._init_done.set_result(None)
        elif self.state != states.READY:
            return wire.invalid_transition(self.state, states.READY)
        if self._next_waiter is not None and not self._next_waiter.done():
            self._next_waiter.cancel()  # the runtime reconnected and asked again
        waiter = self._next_waiter = self._loop.create_future()
        if self._pending is not None:
            self._deliver(self._pending)
        else:
            self._maybe_freeze()
        return await waiter

    def _check_current(self, request_id: str) -> http.Response | None:
        if self._current is None or request_id != self._current.request_id:
            return wire.invalid_request_id()
        if self.state != states.INVOKING:
            return wire.invalid_transition(self.state, states.RESPONDED)
        return None

    def on_response(self, request_id: str, body: bytes, content_type: str | None,
                    response_mode: str | None) -> http.Response:
        refusal = self._check_current(request_id)
        if refusal is not None:
            return refusal
        if response_mode is not None and response_mode.lower() != "streaming":
            self._complete(InvocationOutcome(
                wire.platform_error("Runtime.InvalidResponseModeHeader",
                                    "Invalid function response mode"),
                function_error=True, error_type="Runtime.InvalidResponseModeHeader"))
            return wire.error(400, "InvalidFunctionResponseMode", "Invalid function response mode")
        self._complete(InvocationOutcome(body, content_type or "application/json"))
        return wire.ACCEPTED

    async def on_response_stream(self, request_id: str, stream: http.BodyStream,
                                 content_type: str | None) -> http.Response:
        """A response the runtime streams (chunked, errors in trailers; spec §5.3)."""
        refusal = self._check_current(request_id)
        if refusal is not None:
            return refusal
        invocation, sink = self._current, self._stream_sink
        content_type = content_type or "application/octet-stream"
        if sink is not None:
            sink.put_nowait(("start", content_type, request_id))
        collected, total = bytearray(), 0
        async for chunk in stream:
            total += len(chunk)
            if self._current is not invocation:
                continue  # timed out or killed meanwhile: drain and drop
            if sink is not None:
                sink.put_nowait(("chunk", chunk))
            elif total <= limits.RESPONSE_PAYLOAD:
                collected += chunk
        if sink is not None:
            sink.put_nowait(("end", None))
        if self._current is not invocation or stream.aborted:
            return wire.ACCEPTED
        self._complete(self._streamed_outcome(stream.trailers, bytes(collected), total,
                                              content_type, buffered=sink is None))
        return wire.ACCEPTED

    @staticmethod
    def _streamed_outcome(trailers: dict[str, str], collected: bytes, total: int,
                          content_type: str, buffered: bool) -> InvocationOutcome:
        error_type = trailers.get(wire.ERROR_TYPE)
        if error_type:
            body = base64.b64decode(trailers.get(wire.ERROR_BODY, "")) or wire.platform_error(
                error_type, "")
            return InvocationOutcome(body, "application/json", True, error_type, streamed=True)
        limit = limits.RESPONSE_PAYLOAD if buffered else limits.STREAMED_RESPONSE
        if total > limit:
            return InvocationOutcome(
                wire.platform_error("Function.ResponseSizeTooLarge",
                                    "Response payload size exceeded maximum allowed payload "
                                    f"size ({limit} bytes)."),
                function_error=True, error_type="Function.ResponseSizeTooLarge", streamed=True)
        return InvocationOutcome(collected, content_type, streamed=True)

    def on_error(self, request_id: str, body: bytes, content_type: str | None,
                 error_type: str | None) -> http.Response:
        refusal = self._check_current(request_id)
        if refusal is not None:
            return refusal
        self._complete(InvocationOutcome(
            wire.error_document(body, content_type), "application/json", function_error=True,
            error_type=wire.error_type_of(error_type, body)))
        return wire.ACCEPTED

    def _complete(self, outcome: InvocationOutcome) -> None:
        self.state = states.transition(states.RUNTIME, self.state, "response")
        if self._child is not None:
            self._child.drain_output()
        self._finish(outcome)

    def on_init_error(self, body: bytes, error_type: str | None) -> http.Response:
        if self.state != states.STARTING:
            return wire.invalid_transition(self.state, states.INIT_FAILED)
        kind = wire.error_type_of(error_type, body)
        self.logs.platform(f"INIT_REPORT Init Duration: {self._elapsed_ms():.2f} ms\t"
                           f"Phase: init\tStatus: error\tError Type: {kind}")
        content_type = "application/json" if _is_json(body) else "application/octet-stream"
        outcome = InvocationOutcome(body, content_type, function_error=True, error_type=kind)
        self._init_done.set_result(lambda _request_id: outcome)
        self.state = states.transition(states.RUNTIME, self.state, "init_error")
        self._loop.call_later(0.05, self.kill, "init_error")
        return wire.ACCEPTED

    def response_too_large(self, path: str, size: int) -> http.Response:
        current = self._current
        if current is not None and self.state == states.INVOKING:
            self._complete(InvocationOutcome(
                wire.platform_error("Function.ResponseSizeTooLarge",
                                    "Response payload size exceeded maximum allowed payload "
                                    f"size ({limits.RESPONSE_PAYLOAD} bytes)."),
                function_error=True, error_type="Function.ResponseSizeTooLarge"))
        return wire.too_large(limits.RESPONSE_PAYLOAD)


_PEAK = "\x00peak\x00"


def _response_limit(path: str) -> int:
    return limits.RESPONSE_PAYLOAD
_FailureMaker = Callable[[str], InvocationOutcome]


def _platform_failure(error_type: str, message: str) -> _FailureMaker:
    """A platform-detected failure, made into an outcome once the request id is known."""
    def make(request_id: str) -> InvocationOutcome:
        return InvocationOutcome(
            wire.platform_error(error_type, f"RequestId: {request_id} Error: {message}"),
            function_error=True, error_type=error_type)
    return make


def _is_json(body: bytes) -> bool:
    import json
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def folders_of(config: FunctionConfig) -> list[str]:
    """The hot-reload folders a version runs from: its code's and its layers'."""
    folders = [layer.path for layer in config.layers if layer.path is not None]
    return [config.code_path, *folders] if config.code_path is not None else folders


def code_key(code_sha256: str) -> str:
    """The on-disk name of a package from its base64 CodeSha256."""
    return base64.b64decode(code_sha256).hex()
