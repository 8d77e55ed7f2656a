"""A multi-concurrent execution environment: Lambda Managed Instances' invocation model.

A function on a capacity provider runs in environments that each take up to
`PerExecutionEnvironmentMaxConcurrency` (N) invocations at once. Sources: AWS's "Understanding
the Lambda Managed Instances execution environment" and its runtime pages; awslambdaric 4.x
(N worker processes, each its own `next` loop), aws-lambda-ric 4.x for Node.js (worker threads,
each taking events as fast as `next` hands them and running them concurrently), aws-lambda-go
(N goroutines over one client).

Theory of operation (what differs from `environment.ExecutionEnvironment`)
------------------------------------------------------------------------
* The runtime is told `AWS_LAMBDA_MAX_CONCURRENCY=N` and starts its workers. Init ends when the
  first worker calls `next`; the first `/init/error` fails it (a later one gets 403, which
  AWS's runtime interface clients expect and ignore).
* The runtime may park several `next` at once. The engine hands each parked `next` one event,
  and never more than N in flight: the pool reserves a slot per invocation
  (`reserve`/`release` count holders) and `room` says how many are left. An invocation that
  finds no parked `next` waits QUEUED (domain.states.FLIGHT) until a worker asks.
* Every answer names its request id: `/response` and `/error` are matched to their invocation
  (and its `Lambda-Runtime-Invocation-Id`), so answers may come in any order.
* Each invocation has its own timer, started when it reaches the environment. A timeout
  answers that caller with `Sandbox.Timedout` and leaves the environment and its other
  invocations running: AWS does not enforce the timeout here, the handler runs on (its
  `context` shows no time left). Its slot stays taken until the runtime answers it (OVERRUN);
  that late answer gets 410.
* The environment is never frozen: Managed Instances environments run continuously.
* The runtime exiting (or being killed for memory) fails every invocation in flight.
* Logs are JSON (AWS: Managed Instances always use the structured JSON format), so every
  record carries its requestId; lines of concurrent invocations interleave in one stream.
  START and REPORT are written per invocation as it starts and ends. A log tail
  (`LogType: Tail`) is the stream's last 4 KB, other invocations' lines included.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lamina.domain import capacity, ids, states
from lamina.domain.debug import DebugSettings
from lamina.domain.model import FunctionConfig, Invocation, InvocationOutcome
from lamina.http import server as http
from lamina.runtime import logs
from lamina.runtime.environment import (
    EnvironmentSettings,
    ExecutionEnvironment,
    _FailureMaker,
    _platform_failure,
)
from lamina.runtime.interpreters import Interpreter
from lamina.runtime.launch import Launcher
from lamina.runtime.runtime_api import wire


@dataclass(slots=True, eq=False)
class Flight:
    """One invocation in the environment (its row in domain.states.FLIGHT)."""

    invocation: Invocation
    outcome: asyncio.Future[InvocationOutcome]
    deadline_ms: int
    sink: asyncio.Queue[Any] | None
    state: str = states.QUEUED
    invocation_id: str = ""
    arrived_at: float = 0.0
    delivered_at: float = 0.0
    timer: asyncio.TimerHandle | None = None

    def step(self, event: str) -> None:
        self.state = states.transition(states.FLIGHT, self.state, event, "invocation")


def managed_config(config: FunctionConfig) -> FunctionConfig:
    """The configuration as the environment applies it: JSON logs, whatever LoggingConfig says
    (AWS: functions on Managed Instances always log in the structured JSON format)."""
    if config.log_format == "JSON":
        return config
    return config.replace(log_format="JSON", application_log_level="INFO", system_log_level="INFO")


class ConcurrentEnvironment(ExecutionEnvironment):
    """One Managed Instances environment (see the module docstring)."""

    concurrent = True

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
        # (every parameter spelled out: compiled, `*args` would reach the base's as one tuple)
        super().__init__(
            managed_config(config),
            task_root,
            interpreter,
            settings,
            on_dead,
            launcher,
            provisioned,
            opt_dir,
            tenant_id,
            debug,
        )
        provider = config.capacity_provider or {}
        self.max_concurrency = max(1, int(provider.get("PerExecutionEnvironmentMaxConcurrency", 1)))
        self.vcpus = capacity.vcpus(config.memory_size, provider)
        self.holders = 0
        self.on_room: Callable[[], None] | None = None  # a slot came free (the pool's notice)
        self._flights: dict[str, Flight] = {}
        self._queue: deque[Flight] = deque()
        self._waiters: deque[tuple[asyncio.Future[http.Response], http.Request | None]] = deque()
        self._overrun: dict[str, Flight] = {}
        self.logs.begin_capture()

    # holding: one hold per invocation ----------------------------------------------------
    @property
    def room(self) -> int:
        """How many more invocations this environment may take now."""
        return self.max_concurrency - self.holders - len(self._overrun)

    def reserve(self) -> None:
        self.holders += 1
        if self.holders == 1:
            self._holding("reserve")

    def release(self) -> None:
        self.holders -= 1
        if self.holders == 0:
            self._holding("release")
            self.idle_since = time.monotonic()

    def _maybe_freeze(self) -> None:
        """Never frozen: a Managed Instances environment runs continuously."""

    def _runtime_variables(self) -> dict[str, str]:
        variables = {"AWS_LAMBDA_MAX_CONCURRENCY": str(self.max_concurrency)}
        if self.family == "nodejs":  # Lamina's Node.js runtime: one worker thread per vCPU
            variables["LAMINA_VCPUS"] = str(self.vcpus)
        return variables

    @property
    def in_flight(self) -> list[str]:
        """Request ids of the invocations here now (overrun ones included), oldest first."""
        return [*self._overrun, *self._flights]

    # invoking --------------------------------------------------------------------------
    async def invoke(
        self,
        invocation: Invocation,
        want_tail: bool = False,
        stream_sink: asyncio.Queue[Any] | None = None,
    ) -> InvocationOutcome:
        request_id = invocation.request_id
        cold = not self._init_done.done()
        if cold or self._init_done.result() is not None:  # waiting for Init, or it failed
            failure = await self._wait_init(invocation)
            if failure is not None:
                return self._close(invocation, failure, want_tail, cold=True)
        if not self.alive:  # ended while this caller waited for Init
            return self._close(
                invocation,
                _platform_failure("Runtime.ExitError", "Runtime exited without providing a reason")(
                    request_id
                ),
                want_tail,
                cold,
            )
        now = time.monotonic()
        flight = Flight(
            invocation,
            self._loop.create_future(),
            int(time.time() * 1000 + self.timeout * 1000),
            stream_sink,
            arrived_at=now,
        )
        flight.timer = self._loop.call_later(self.timeout, self._on_flight_timeout, flight)
        self._flights[request_id] = flight
        self.platform.start(request_id)
        self._dispatch(flight)
        outcome = await flight.outcome
        return self._close(invocation, outcome, want_tail, cold)

    async def _wait_init(self, invocation: Invocation) -> InvocationOutcome | None:
        """Init, shared by every invocation that came before it ended; it is not started
        again on a timeout (the environment fails and the pool starts another)."""
        try:
            maker = await asyncio.wait_for(asyncio.shield(self._init_done), self.init_timeout)
        except TimeoutError:
            if not self._init_done.done():
                self.platform.init_report(self._elapsed_ms(), "timeout")
                self._init_done.set_result(
                    _platform_failure(
                        "Sandbox.Timedout", f"Init timed out after {self.init_timeout:.2f} seconds"
                    )
                )
                self.kill("timeout")
            maker = self._init_done.result()
        if maker is None:
            if self._init_ms is None:
                self._init_ms = self._elapsed_ms()
            return None
        failure = maker(invocation.request_id)
        failure.init_ms = self._elapsed_ms()
        return failure

    def _dispatch(self, flight: Flight) -> None:
        """Hand `flight` to a parked `next`, or queue it until a worker asks."""
        while self._waiters:
            waiter, request = self._waiters.popleft()
            if waiter.done():
                continue
            if request is not None and not request.connected:
                waiter.cancel()  # that worker went away: its `next` answers no one
                continue
            waiter.set_result(self._deliver_flight(flight))
            return
        self._queue.append(flight)

    def _deliver_flight(self, flight: Flight) -> http.Response:
        flight.step("deliver")
        flight.delivered_at = time.monotonic()
        flight.invocation_id = ids.hex_id()
        return wire.next_response(flight.invocation, flight.deadline_ms, flight.invocation_id)

    def _on_flight_timeout(self, flight: Flight) -> None:
        request_id = flight.invocation.request_id
        if self._flights.get(request_id) is not flight:
            return
        del self._flights[request_id]
        flight.timer = None
        self.platform.timeout(request_id, self.timeout)
        delivered = flight.state == states.DELIVERED
        flight.step("timeout")
        if delivered:
            self._overrun[request_id] = flight  # its worker runs on: the slot stays taken
        else:
            self._queue.remove(flight)
        self._settle(
            flight,
            _platform_failure(
                "Sandbox.Timedout", f"Task timed out after {self.timeout:.2f} seconds"
            )(request_id),
        )

    def _settle(self, flight: Flight, outcome: InvocationOutcome) -> None:
        if flight.timer is not None:
            flight.timer.cancel()
            flight.timer = None
        start = flight.delivered_at or flight.arrived_at
        outcome.duration_ms = (time.monotonic() - start) * 1000
        if not flight.outcome.done():
            flight.outcome.set_result(outcome)

    def _close(
        self, invocation: Invocation, outcome: InvocationOutcome, want_tail: bool, cold: bool
    ) -> InvocationOutcome:
        outcome.environment_id = self.id
        if cold and outcome.init_ms is None:
            outcome.init_ms = self._init_ms
        self.platform.pending(invocation.request_id, outcome)
        self.platform.flush()  # now: another invocation may end before the loop turns
        if want_tail:
            outcome.log_tail = logs.tail(self.logs.captured())
        return outcome

    def _fail_in_hand(self, failure: _FailureMaker) -> None:
        flights, self._flights = list(self._flights.values()), {}
        self._queue.clear()
        self._overrun.clear()
        for flight in flights:
            flight.step("kill")
            self._settle(flight, failure(flight.invocation.request_id))

    def _drop_waiters(self) -> None:
        while self._waiters:
            waiter, _ = self._waiters.popleft()
            if not waiter.done():
                waiter.cancel()
        if self._flights:  # killed, not exited: fail what is still in flight
            self._fail_in_hand(
                _platform_failure("Runtime.ExitError", "Runtime exited without providing a reason")
            )

    # Runtime API side -------------------------------------------------------------------
    def invocation_of(self, request_id: str) -> Invocation | None:
        flight = self._flights.get(request_id)
        return flight.invocation if flight is not None else None

    def sink_of(self, request_id: str) -> asyncio.Queue[Any] | None:
        flight = self._flights.get(request_id)
        return flight.sink if flight is not None else None

    async def next_event(self, request: http.Request | None = None) -> http.Response:
        if self.state == states.STARTING:
            self.state = states.transition(states.RUNTIME, self.state, "next")
            if not self._init_done.done():
                self._init_done.set_result(None)
        elif self.state != states.READY:
            return wire.invalid_transition(self.state, states.READY)
        while self._queue:
            flight = self._queue.popleft()
            if flight.state == states.QUEUED:
                return self._deliver_flight(flight)
        waiter: asyncio.Future[http.Response] = self._loop.create_future()
        entry = (waiter, request)
        self._waiters.append(entry)
        try:
            return await waiter
        finally:
            if not waiter.done() or waiter.cancelled():
                try:
                    self._waiters.remove(entry)
                except ValueError:
                    pass

    def refuse(self, request_id: str, invocation_id: str | None) -> http.Response | None:
        flight = self._flights.get(request_id)
        if flight is None:
            late = self._overrun.pop(request_id, None)
            if late is None:
                return wire.invalid_request_id()
            late.step("response")  # its caller has had Sandbox.Timedout; the slot is free
            if self.on_room is not None:
                self.on_room()
            return wire.invoke_gone()
        if flight.state != states.DELIVERED:
            return wire.invalid_request_id()  # an event the runtime was never given
        if invocation_id is not None and invocation_id != flight.invocation_id:
            return wire.invoke_gone()
        return None

    def complete(self, outcome: InvocationOutcome, request_id: str = "") -> None:
        flight = self._flights.pop(request_id, None)
        if flight is None:
            return
        flight.step("response")
        if self._process is not None:
            self._process.drain_output()
        self._settle(flight, outcome)
