"""Durable executions: start, checkpoint, re-invoke when something is due (spec: durable.md).

Theory of operation
-------------------
* `start` stores a new execution (its first history event, ExecutionStarted) before the
  invoke is answered; the ARN names function, version, execution name and id.
* Every change goes through `_change(arn, fn, ops)`: read the row and the operations `fn`
  needs, apply a `domain.durable` function, write back what changed if nobody changed the
  execution meanwhile (compare-and-set on `seq`), else read again. Checkpoints, timers,
  callbacks and invocation ends all take this path, on any engine sharing the store.
* One scheduler loop per engine sleeps on the engine clock until the earliest `due_at`
  (timers, an invocation owed, a lease run out), wakes early when this engine changes
  something, and advances each due execution: timers fire, an owed invocation is claimed
  (the row records who runs it and until when) and run on the synchronous path, a chained
  invoke is started. An invocation whose engine died is found when its lease runs out (or at
  start, on SQLite) and counted as failed, so the execution is invoked again: a step that ran
  but whose checkpoint was lost runs again (at-least-once).
* Timestamps handed to the function are wall-clock equivalents of engine times, so the SDK's
  in-process waits (parallel branches) agree with the compressed engine clock.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from lamina.domain import arns, durable, errors
from lamina.domain.durable import Execution
from lamina.domain.model import FunctionConfig, Invocation, InvocationSummary
from lamina.service.attempt import Attempts, Throttled
from lamina.service.functions import FunctionService
from lamina.service.invoke import InvokeCommand, InvokeService, new_trace_id
from lamina.service.ports import Clock
from lamina.service.records import Recorder

log = logging.getLogger("lamina.durable")

DUE_BATCH = 100
CAS_TRIES = 50
SYNC_POLL_S = 1.0  # real seconds between store reads of a synchronous caller's execution
SYNC_LIMIT_S = 900  # a synchronous invocation of a durable function: 15 minutes
PURGE_EVERY_S = 60.0  # real seconds between retention sweeps
LEASE_S = 15.0  # real seconds an engine holds a running invocation without renewing
RENEW_S = 5.0  # real seconds between renewals while the invocation runs
SHARED_RESCAN_S = 2.0  # a store shared with other engines: look for due work this often


class DurableService:
    """Durable executions (see the module docstring)."""

    def __init__(
        self,
        store: Any,
        functions: FunctionService,
        invoke: InvokeService,
        attempts: Attempts,
        recorder: Recorder,
        clock: Clock,
        region: str,
        account: str,
    ) -> None:
        self.store = store
        self.functions = functions
        self.invoke = invoke
        self.attempts = attempts
        self.recorder = recorder
        self.clock = clock
        self.region = region
        self.account = account
        self.owner = uuid.uuid4().hex
        self._wake = asyncio.Event()
        self._finished: dict[str, asyncio.Event] = {}
        self._busy: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.Task[None] | None = None

    # lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        if self.store.all_claims_are_stale:  # one engine: a running invocation died with it
            for arn in await self.store.running_executions():
                await self._change(arn, self._abandon_if_invoking, _ROOT)
        self._loop = asyncio.get_running_loop().create_task(self._schedule(), name="lamina-durable")

    async def close(self) -> None:
        tasks = [t for t in (self._loop, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def wake(self) -> None:
        """Look at the store now (another engine changed an execution)."""
        self._wake.set()

    def maybe_durable(self, name: str) -> bool:
        """A quick look for the Invoke path: False for a plain name of a function that is not
        durable (durability is fixed at creation, so $LATEST says it for every version)."""
        if ":" in name:
            return True
        try:
            return self.functions.entry(name).latest.durable_config is not None
        except errors.LaminaError:
            return False

    def is_durable(self, name: str, qualifier: str | None) -> bool:
        try:
            return self.functions.resolve(name, qualifier).durable_config is not None
        except errors.LaminaError:
            return False

    # starting -------------------------------------------------------------------------------
    async def start_execution(
        self,
        name: str,
        qualifier: str | None,
        payload: bytes,
        execution_name: str | None,
        sync: bool,
        trace_id: str | None = None,
        parent: dict[str, str] | None = None,
    ) -> tuple[Execution, bool]:
        """Start (or, for a repeated name and input, find) an execution: (it, is_new)."""
        config = self.functions.route(name, qualifier)
        self.functions.check_invocable(config)
        settings = config.durable_config or {}
        if sync and settings.get("ExecutionTimeout", 0) > SYNC_LIMIT_S:  # message unconfirmed
            raise errors.InvalidParameterValue(
                "You cannot synchronously invoke a durable function with an ExecutionTimeout "
                f"greater than {SYNC_LIMIT_S} seconds; invoke it asynchronously (Event)."
            )
        text = payload.decode("utf-8", errors="replace")
        execution_id = uuid.uuid4().hex
        exec_name = execution_name or execution_id
        ex = durable.start(
            self.execution_arn(config, exec_name, execution_id),
            execution_id,
            config.name,
            config.version,
            exec_name,
            text,
            int(settings["ExecutionTimeout"]),
            int(settings.get("RetentionPeriodInDays") or 14),
            self.clock.now(),
            trace_id or new_trace_id(),
            parent,
        )
        if await self.store.insert_execution(ex):
            self._wake.set()
            return ex, True
        found = await self.store.find_execution(config.name, exec_name)
        if found is None:  # deleted in between: try once more
            return await self.start_execution(
                name, qualifier, payload, execution_name, sync, trace_id, parent
            )
        existing = found[1]
        if existing.input != text or existing.version != config.version:
            raise errors.DurableExecutionAlreadyStarted(
                f"Durable execution with name {exec_name} already exists with a different input."
            )  # message unconfirmed
        return existing, False

    def execution_arn(self, config: FunctionConfig, name: str, execution_id: str) -> str:
        return (
            f"{self.functions.arn(config.name, config.version)}"
            f"/durable-execution/{name}/{execution_id}"
        )

    async def wait_for_end(self, arn: str) -> Execution:
        """A synchronous caller waits for the whole execution (Lambda: up to 15 minutes)."""
        event = self._finished.setdefault(arn, asyncio.Event())
        try:
            while True:
                ex = await self.get(arn)
                if ex.status != durable.RUNNING:
                    return ex
                try:
                    await asyncio.wait_for(event.wait(), SYNC_POLL_S)
                except TimeoutError:
                    pass
        finally:
            self._finished.pop(arn, None)

    # reading --------------------------------------------------------------------------------
    async def get(self, arn: str, operations: Any = None) -> Execution:
        """An execution's row; with `operations=all`, every operation too."""
        found = await self.store.get_execution(arn, operations)
        if found is None:
            raise errors.ResourceNotFound(f"Durable execution not found: {arn}")
        execution: Execution = found[1]
        return execution

    async def list(self, name: str, qualifier: str | None) -> list[Any]:
        self.functions.entry(name)  # 404 for an unknown function
        rows: list[Any] = await self.store.list_executions(name)
        if qualifier is not None:
            version = self.functions.resolve(name, qualifier).version
            rows = [r for r in rows if r[2] == version]
        return rows

    async def state(
        self, arn: str, token: str, marker: str | None, limit: int
    ) -> tuple[builtins.list[dict[str, Any]], str | None]:
        ex = await self.get(arn, all)
        durable.check_token(ex, token)
        return durable.state_page(ex, marker, limit, self.wall_seconds)

    def wall_seconds(self, engine_time: float) -> float:
        """An engine time as the wall-clock time a function compares with its own clock
        (under --time-scale N, engine seconds ahead are N times shorter)."""
        scale = self.clock.scale or 1.0
        return round(time.time() + (engine_time - self.clock.now()) / scale, 3)

    def wall_millis(self, engine_time: float) -> int:
        return int(self.wall_seconds(engine_time) * 1000)

    # changing -------------------------------------------------------------------------------
    async def history(
        self, arn: str, include_data: bool, marker: str | None, limit: int, reverse: bool
    ) -> tuple[builtins.list[dict[str, Any]], str | None]:
        ex = await self.get(arn)
        offset, next_marker = durable.history_window(ex, marker, limit)
        events = await self.store.execution_events(arn, offset, limit, reverse)
        return durable.history_page(events, include_data), next_marker

    async def replays(self, arn: str) -> tuple[Execution, builtins.list[dict[str, Any]]]:
        """An execution with every operation, and its invocations (replays) in order: request
        id, start, end, error (the one running has no end)."""
        ex = await self.get(arn, all)
        events = await self.store.execution_events(arn, 0, max(ex.event_count, 1), False)
        replays = [
            {
                "RequestId": d["RequestId"],
                "StartTimestamp": d["StartTimestamp"],
                "EndTimestamp": d["EndTimestamp"],
                "Error": (d.get("Error") or {}).get("Payload"),
            }
            for d in (
                e["InvocationCompletedDetails"]
                for e in events
                if e["EventType"] == "InvocationCompleted"
            )
        ]
        if ex.invoking is not None:
            replays.append(
                {
                    "RequestId": ex.invoking,
                    "StartTimestamp": ex.invocation_started,
                    "EndTimestamp": None,
                    "Error": None,
                }
            )
        return ex, replays

    async def recent(
        self, function: str | None, status: str | None, limit: int
    ) -> builtins.list[Any]:
        """Executions newest first (of one function, or of every one), by status."""
        names = (
            [function]
            if function
            else [f.name for f in self.functions.list() if f.durable_config is not None]
        )
        rows = [
            row
            for name in names
            for row in await self.store.list_executions(name)
            if status is None or row[4] == status
        ]
        return sorted(rows, key=lambda r: r[5], reverse=True)[:limit]

    async def _change(
        self,
        arn: str,
        fn: Callable[[Execution, float], Any],
        ops: Callable[[Execution], Any] | None,
    ) -> Any:
        """Apply `fn(ex, now)` and write it with compare-and-set; fn returns what the caller
        gets, or raises (nothing is written). A None result with nothing changed skips the
        write when `fn` returns the sentinel `UNCHANGED`. `ops(ex)` names the operations fn
        needs (ids, or `all`; None: the row alone)."""
        for _ in range(CAS_TRIES):
            found = await self.store.get_execution(arn, ops)
            if found is None:
                raise errors.ResourceNotFound(f"Durable execution not found: {arn}")
            seq, ex = found
            was_running, was_due = ex.status == durable.RUNNING, ex.next_due()
            result = fn(ex, self.clock.now())
            if result is UNCHANGED:
                return None
            if await self.store.update_execution(ex, seq):
                self._after_change(ex, was_running, was_due)
                return result
        raise errors.ServiceError(
            "The durable execution is changing too fast to update; try again."
        )

    def _after_change(self, ex: Execution, was_running: bool, was_due: float | None) -> None:
        if ex.next_due() != was_due:  # most checkpoints owe nothing new: no store scan
            self._wake.set()
        if was_running and ex.status != durable.RUNNING:
            event = self._finished.get(ex.arn)
            if event is not None:
                event.set()
            if ex.parent:
                self._spawn(self._report_to_parent(ex))

    async def checkpoint(
        self, arn: str, token: str, updates: builtins.list[dict[str, Any]]
    ) -> tuple[str | None, builtins.list[dict[str, Any]]]:
        for update in updates:
            if update.get("Type") == "CHAINED_INVOKE" and update.get("Action") == "START":
                update["_Target"] = self._chained_target(update, arn.split(":")[4])
        touched = [u["Id"] for u in updates if isinstance(u.get("Id"), str)]
        token_out, ops = await self._change(
            arn,
            lambda ex, now: durable.checkpoint(ex, token, updates, now),
            lambda ex: [*touched, *ex.undelivered],
        )
        return token_out, [durable.render_operation(op, self.wall_seconds) for op in ops]

    def _chained_target(self, update: dict[str, Any], account: str) -> dict[str, Any]:
        """The function a chained invoke starts: one of the execution's own `account`."""
        options = update.get("ChainedInvokeOptions") or {}
        try:
            ref = arns.parse_function_name(str(options.get("FunctionName")), self.region, account)
            config = self.functions.resolve(self.functions.key(account, ref.name), ref.qualifier)
        except errors.LaminaError as exc:
            return {"Error": {"ErrorType": exc.error_type, "ErrorMessage": exc.message}}
        target: dict[str, Any] = {"Version": config.version}
        if config.durable_config:
            child_id = uuid.uuid4().hex
            target["ChildArn"] = self.execution_arn(config, child_id, child_id)
        return target

    async def stop(self, arn: str, error: dict[str, Any] | None) -> float:
        def apply(ex: Execution, now: float) -> float:
            durable.stop(ex, error, now)
            return now

        stopped_at: float = await self._change(arn, apply, _ROOT)
        return stopped_at

    async def callback(
        self,
        callback_id: str,
        outcome: str,
        result: str | None = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        try:
            arn, op_id = durable.parse_callback_id(callback_id)
        except ValueError:
            raise errors.ResourceNotFound("Callback not found.") from None
        await self._change(
            arn,
            lambda ex, now: durable.complete_callback(ex, op_id, outcome, now, result, error),
            lambda ex: [op_id],
        )

    # scheduling -------------------------------------------------------------------------------
    async def _schedule(self) -> None:
        failures = 0
        purged = 0.0
        while True:
            self._wake.clear()
            now = self.clock.now()
            try:
                if time.monotonic() - purged > PURGE_EVERY_S:
                    await self.store.purge_executions(now)
                    purged = time.monotonic()
                for arn in await self.store.due_executions(now, DUE_BATCH):
                    if arn not in self._busy:
                        self._busy.add(arn)
                        self._spawn(self._advance(arn))
                next_due = await self.store.next_execution_due()
                failures = 0
            except Exception as exc:  # the store is away: say so, back off, try again
                failures += 1
                if failures == 1 or failures % 20 == 0:
                    log.warning("durable scheduler cannot reach the store: %s", exc)
                await asyncio.sleep(min(0.1 * 2**failures, 5.0))
                continue
            scale = max(self.clock.scale, 1.0)
            if next_due is not None and next_due <= now:
                next_due = now + 0.05 * scale  # busy ones: look again soon
            if not self.store.all_claims_are_stale:  # others' changes do not wake this engine
                next_due = min(next_due or float("inf"), now + SHARED_RESCAN_S * scale)
            await self.clock.wait(self._wake, next_due)

    async def _advance(self, arn: str) -> None:
        try:
            work = await self._change(arn, self._tick, self._tick_needs)
            if work:
                for kind, item in work:
                    self._spawn(
                        self._invoke(arn, item) if kind == "invoke" else self._chained(arn, *item)
                    )
        except errors.ResourceNotFound:
            pass
        except Exception:
            log.exception("advancing durable execution %s failed", arn)
        finally:
            self._busy.discard(arn)

    def _tick_needs(self, ex: Execution) -> Any:
        """An invocation about to start needs every operation; timers need theirs."""
        now = self.clock.now()
        if ex.status != durable.RUNNING:
            return []
        lost = ex.invoking is not None and ex.lease_until is not None and ex.lease_until <= now
        owed = (ex.invoke_due is not None and ex.invoke_due <= now) or any(
            at <= now for _, at in ex.deadlines.values()
        )
        return all if (ex.invoking is None or lost) and owed else list(ex.deadlines)

    def _tick(self, ex: Execution, now: float) -> Any:
        """Timers, a dead invocation, an owed invocation, chained invokes to start."""
        before = ex.to_json()
        if ex.invoking is not None and ex.lease_until is not None and ex.lease_until <= now:
            durable.abandon_invocation(ex, now)
        durable.fire_due(ex, now)
        work: list[tuple[str, Any]] = []
        if (
            ex.status == durable.RUNNING
            and ex.invoking is None
            and ex.complete
            and ex.invoke_due is not None
            and ex.invoke_due <= now
        ):
            request_id = str(uuid.uuid4())
            payload = durable.begin_invocation(ex, request_id, now, self.wall_millis)
            ex.lease_until = self._lease_until(ex)
            work.append(("invoke", (request_id, payload)))
        for op_id, run in ex.chained.items():
            if run.get("state") == "due":
                run["state"] = "running"
                work.append(("chained", (op_id, dict(run))))
        if ex.to_json() == before and not ex.dirty and not ex.new_events:
            return UNCHANGED
        return work

    def _lease_until(self, ex: Execution) -> float:
        """The engine running an invocation renews its lease every RENEW_S; one that dies
        stops, and another engine takes the execution on LEASE_S later."""
        if self.clock.scale == 0:
            return float("inf")  # virtual time: only a test moves it; never expire a lease
        return self.clock.now() + LEASE_S * max(self.clock.scale, 1.0)

    async def _renew(self, arn: str, request_id: str) -> None:
        def apply(ex: Execution, now: float) -> Any:
            if ex.invoking != request_id:
                return UNCHANGED
            ex.lease_until = self._lease_until(ex)
            return None

        while True:
            await asyncio.sleep(RENEW_S)
            try:
                await self._change(arn, apply, None)
            except errors.ResourceNotFound:
                return
            except Exception as exc:  # the store is away: the next renewal tries again
                log.warning("could not renew the lease of %s: %s", arn, exc)

    @staticmethod
    def _abandon_if_invoking(ex: Execution, now: float) -> Any:
        if ex.invoking is None:
            return UNCHANGED
        durable.abandon_invocation(ex, now)
        return None

    # one invocation ---------------------------------------------------------------------------
    async def _invoke(self, arn: str, item: tuple[str, dict[str, Any]]) -> None:
        request_id, payload = item
        ex = await self.get(arn)
        output, failure = None, None
        renewing = asyncio.get_running_loop().create_task(self._renew(arn, request_id))
        try:
            config = self.functions.resolve(ex.function, ex.version)
            output, failure = await self._run(ex, config, request_id, payload)
        except errors.TooManyRequests as throttle:
            failure = {"ErrorType": "TooManyRequestsException", "ErrorMessage": throttle.reason}
        except errors.LaminaError as exc:
            failure = {"ErrorType": exc.error_type, "ErrorMessage": exc.message}
        finally:
            renewing.cancel()
        await asyncio.shield(
            self._change(
                arn,
                lambda e, now: durable.end_invocation(e, request_id, now, output, failure),
                _ROOT,
            )
        )

    async def _run(
        self, ex: Execution, config: FunctionConfig, request_id: str, payload: dict[str, Any]
    ) -> tuple[Any, dict[str, Any] | None]:
        accepted = self.clock.now()
        replay = len(ex.invocations)
        summary = InvocationSummary(request_id, ex.function, ex.version, "Durable", accepted)
        self.recorder.summary(summary)
        self.recorder.record(
            request_id,
            "durable_invocation",
            {"execution": ex.arn, "replay": replay - 1, "name": ex.name},
            accepted,
        )
        invocation = Invocation(
            request_id,
            config,
            self.functions.arn(ex.function, ex.version),
            json.dumps(payload, separators=(",", ":")).encode(),
            "Event",
            trace_id=ex.trace_id,
        )
        outcome = await self.attempts.run(invocation)
        if isinstance(outcome, Throttled):
            raise outcome.error
        summary.status = outcome.outcome
        summary.finished_at, summary.attempts = self.clock.now(), 1
        summary.error_type, summary.duration_ms = outcome.error_type, round(outcome.duration_ms, 3)
        self.recorder.summary(summary)
        if outcome.function_error:
            return None, _failure_of(outcome.payload, outcome.error_type)
        try:
            return json.loads(outcome.payload or b"null"), None
        except ValueError:
            return None, None

    # chained invokes -------------------------------------------------------------------------
    async def _chained(self, arn: str, op_id: str, run: dict[str, Any]) -> None:
        if run.get("error"):
            await self._chained_done(arn, op_id, "FAILED", error=run["error"])
            return
        account = arn.split(":")[4]  # the execution's: its chained invokes stay in it
        ref = arns.parse_function_name(run["function"], self.region, account)
        ref = arns.FunctionRef(self.functions.key(account, ref.name), ref.qualifier)
        payload = (run.get("payload") or "null").encode()
        if run.get("child"):
            child_name = run["child"].rsplit("/", 2)[1]
            try:
                await self.start_execution(
                    ref.name,
                    run.get("version"),
                    payload,
                    child_name,
                    sync=False,
                    parent={"arn": arn, "op": op_id},
                )
            except errors.LaminaError as exc:
                await self._chained_done(
                    arn,
                    op_id,
                    "FAILED",
                    error={"ErrorType": exc.error_type, "ErrorMessage": exc.message},
                )
            return
        try:
            result = await self.invoke.invoke(
                InvokeCommand(ref, run.get("version"), payload, tenant_id=run.get("tenant"))
            )
        except errors.LaminaError as exc:
            await self._chained_done(
                arn,
                op_id,
                "FAILED",
                error={"ErrorType": exc.error_type, "ErrorMessage": exc.message},
            )
            return
        outcome = result.outcome
        assert outcome is not None  # only a DryRun has none
        if outcome.function_error:
            await self._chained_done(
                arn, op_id, "FAILED", error=_failure_of(outcome.payload, outcome.error_type)
            )
        else:
            await self._chained_done(
                arn, op_id, "SUCCEEDED", result=outcome.payload.decode("utf-8", "replace")
            )

    async def _report_to_parent(self, child: Execution) -> None:
        assert child.parent is not None
        status = {
            durable.SUCCEEDED: "SUCCEEDED",
            durable.FAILED: "FAILED",
            durable.TIMED_OUT: "TIMED_OUT",
            durable.STOPPED: "STOPPED",
        }[child.status]
        await self._chained_done(
            child.parent["arn"], child.parent["op"], status, result=child.result, error=child.error
        )

    async def _chained_done(
        self,
        arn: str,
        op_id: str,
        status: str,
        result: str | None = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        def apply(ex: Execution, now: float) -> Any:
            changed = durable.chained_finished(ex, op_id, status, now, result, error)
            return None if changed else UNCHANGED

        try:
            await self._change(arn, apply, lambda ex: [op_id])
        except errors.ResourceNotFound:
            pass

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _ROOT(ex: Execution) -> list[str]:
    """What ends an execution needs: its root operation (`finish` always loads it)."""
    return []


class _Unchanged:
    """Returned by a change function that changed nothing: nothing is written."""


UNCHANGED: Any = _Unchanged()


def _failure_of(payload: bytes, error_type: str | None) -> dict[str, Any]:
    """A function error as an ErrorObject (from Lambda's {errorType, errorMessage} body)."""
    try:
        body = json.loads(payload or b"{}")
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    error: dict[str, Any] = {
        "ErrorType": str(body.get("errorType") or error_type or "Unhandled"),
        "ErrorMessage": str(body.get("errorMessage") or ""),
    }
    if isinstance(body.get("stackTrace"), list):
        error["StackTrace"] = [str(line) for line in body["stackTrace"]]
    return error
