"""Durable executions: the operations of one execution and what is due next (pure).

Theory of operation
-------------------
A durable execution is one run of a durable function that may span many *invocations*
(replays). The SDK inside the function checkpoints *operations* (STEP, WAIT, CALLBACK,
CONTEXT, CHAINED_INVOKE, EXECUTION) with CheckpointDurableExecution; this module applies
those updates to an `Execution`, appends AWS's history events as things happen, and says
what the engine owes the execution next:

* **Timers** (`deadlines`): a wait's scheduled end (→ SUCCEEDED, WaitSucceeded), a step
  retry's next attempt (PENDING → READY), a callback's timeout or heartbeat timeout
  (→ TIMED_OUT, CallbackTimedOut), and the execution timeout (→ TIMED_OUT).
* **An invocation** (`invoke_due`): after the start, after a failed invocation (back-off),
  and whenever the engine changed an operation the function has not yet seen
  (`undelivered`) while no invocation runs. An invocation that returns PENDING while
  something it has not seen is ready is followed by another at once.
* **Checkpoint tokens** are single-use: each accepted checkpoint and each invocation start
  issue the next one; a stale token is refused, so a zombie invocation cannot write.

* **Storage shape**: the execution's own fields are one row; its operations and its history
  are stored apart. A change works on the operations it loaded (`operations`; `complete`
  when all are), marks those it changed (`dirty`) and appends new history events
  (`new_events`), so the store writes only what changed.

Everything is a function of its inputs (`now` is given); times are engine seconds.
Wire shapes (Operation, Event) are kept as dicts with float timestamps; the API renders them.
Sources: botocore's Lambda model (2025-12-01 operations) and
https://docs.aws.amazon.com/lambda/latest/dg/durable-functions.html
"""

from __future__ import annotations

import base64
import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from lamina.domain import errors

RUNNING, SUCCEEDED, FAILED, TIMED_OUT, STOPPED = (
    "RUNNING",
    "SUCCEEDED",
    "FAILED",
    "TIMED_OUT",
    "STOPPED",
)
STATUSES = (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, STOPPED)
TERMINAL_OP = frozenset(("SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT", "STOPPED"))
DEFAULT_RETENTION_DAYS = 14
TIMEOUT_RANGE = (1, 31_622_400)
RETENTION_RANGE = (1, 90)
_PART: dict[str, bool] = {"part": True}  # a field kept outside the execution's row
MAX_INVOCATION_FAILURES = 6  # consecutive failed invocations before the execution fails
STATE_PAGE = 1000  # operations per GetDurableExecutionState page


@dataclass(slots=True)
class Execution:
    """One durable execution: its operations, its history and what is due."""

    arn: str
    id: str
    function: str
    version: str
    name: str
    input: str
    started_at: float
    timeout: int
    retention_days: int = DEFAULT_RETENTION_DAYS
    status: str = RUNNING
    result: str | None = None
    error: dict[str, Any] | None = None
    ended_at: float | None = None
    op_count: int = 0  # operations started (their positions)
    event_count: int = 0  # history events so far (the last EventId)
    deadlines: dict[str, list[Any]] = field(default_factory=dict)  # op id → [kind, at]
    undelivered: list[str] = field(default_factory=list)
    token_seq: int = 0
    invoking: str | None = None
    invocation_started: float | None = None
    lease_until: float | None = None  # an invocation not ended by then is lost
    invoke_due: float | None = None
    failures: int = 0
    final: dict[str, Any] | None = None  # EXECUTION SUCCEED/FAIL from a checkpoint
    chained: dict[str, dict[str, Any]] = field(default_factory=dict)  # op id → invoke to run
    parent: dict[str, str] | None = None  # {"arn", "op"} of a chained invoke
    trace_id: str | None = None
    invocations: list[str] = field(default_factory=list)  # request ids, in order
    # not in the execution's own row: its operations (those loaded: `complete` when all
    # are) and, until they are stored, what changed (`dirty`) and the new history events
    operations: dict[str, dict[str, Any]] = field(default_factory=dict, metadata=_PART)
    complete: bool = field(default=False, metadata=_PART)
    dirty: set[str] = field(default_factory=set, metadata=_PART)
    new_events: list[dict[str, Any]] = field(default_factory=list, metadata=_PART)

    # (de)serialising for the store ---------------------------------------------------
    def load(self, operations: list[dict[str, Any]], complete: bool = False) -> None:
        """Operations read from the store (`complete`: all of them, in order)."""
        for op in operations:
            self.operations[op["Id"]] = op
        self.complete = complete

    def saved(self) -> None:
        """The store has what changed."""
        self.dirty.clear()
        self.new_events.clear()

    def to_json(self) -> str:
        """The execution's own row (without its operations and history)."""
        # not dataclasses.asdict: its deep copy of every operation and event was most of a
        # checkpoint's cost (the fields are plain JSON values already)
        return json.dumps({name: getattr(self, name) for name in _FIELDS}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Execution:
        fields = json.loads(text)
        for legacy in ("operations", "events"):  # a row of migration 0015's form
            fields.pop(legacy, None)
        return cls(**fields)

    @property
    def expires_at(self) -> float | None:
        """When its history is deleted (retention counts from the end)."""
        return None if self.ended_at is None else self.ended_at + self.retention_days * 86400

    def token(self) -> str:
        return base64.b64encode(f"{self.id}:{self.token_seq}".encode()).decode()

    def next_due(self) -> float | None:
        """The engine time at which something is owed to this execution."""
        if self.status != RUNNING:
            return None
        times: list[float] = [at for _, at in self.deadlines.values()]
        times.append(self.started_at + self.timeout)
        if self.invoke_due is not None and self.invoking is None:
            times.append(self.invoke_due)
        if self.invoking is not None and self.lease_until is not None:
            times.append(self.lease_until)
        if any(c.get("state") == "due" for c in self.chained.values()):
            times.append(self.started_at)
        return min(times)


_FIELDS = tuple(f.name for f in dataclasses.fields(Execution) if not f.metadata.get("part"))


def check_config(timeout: object, retention: object) -> None:
    """DurableConfig's ranges, as the model constrains them."""
    for value, name, (low, high) in (
        (timeout, "durableConfig.executionTimeout", TIMEOUT_RANGE),
        (retention, "durableConfig.retentionPeriodInDays", RETENTION_RANGE),
    ):
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise errors.InvalidParameterValue(f"{name} must be an integer")
        if value < low:
            raise errors.ValidationError.field(
                value, name, f"Member must have value greater than or equal to {low}"
            )
        if value > high:
            raise errors.ValidationError.field(
                value, name, f"Member must have value less than or equal to {high}"
            )


def start(
    arn: str,
    execution_id: str,
    function: str,
    version: str,
    name: str,
    payload: str,
    timeout: int,
    retention_days: int,
    now: float,
    trace_id: str | None = None,
    parent: dict[str, str] | None = None,
) -> Execution:
    ex = Execution(
        arn,
        execution_id,
        function,
        version,
        name,
        payload,
        now,
        timeout,
        retention_days,
        trace_id=trace_id,
        parent=parent,
        invoke_due=now,
    )
    ex.complete = True
    _put(
        ex,
        {
            "Id": execution_id,
            "Type": "EXECUTION",
            "StartTimestamp": now,
            "Status": "STARTED",
            "ExecutionDetails": {"InputPayload": payload},
        },
    )
    _event(
        ex,
        "ExecutionStarted",
        None,
        now,
        {"Input": {"Payload": payload, "Truncated": False}, "ExecutionTimeout": timeout},
    )
    return ex


# checkpoints -----------------------------------------------------------------------------
def check_token(ex: Execution, token: str) -> None:
    if ex.status != RUNNING or ex.invoking is None or token != ex.token():
        raise errors.InvalidParameterValue("Invalid Checkpoint Token")


def checkpoint(
    ex: Execution, token: str, updates: list[dict[str, Any]], now: float
) -> tuple[str | None, list[dict[str, Any]]]:
    """Apply the SDK's updates; return (the next token, the operations the function has not
    seen). No token once the execution's own result was checkpointed (the SDK stops)."""
    check_token(ex, token)
    changed: list[str] = []
    for update in updates:
        changed.append(_apply(ex, update, now))
    ex.token_seq += 1
    seen = list(dict.fromkeys(ex.undelivered + [c for c in changed if c]))
    ex.undelivered = []
    ops = [ex.operations[i] for i in seen if i in ex.operations]
    return (None if ex.final is not None else ex.token()), ops


def _apply(ex: Execution, update: dict[str, Any], now: float) -> str:
    kind, action, op_id = update.get("Type"), update.get("Action"), update.get("Id")
    if not isinstance(op_id, str) or not op_id:
        raise errors.InvalidParameterValue("Operation Id is required.")
    if kind == "EXECUTION":
        if action not in ("SUCCEED", "FAIL"):
            raise errors.InvalidParameterValue(f"Invalid action {action} for EXECUTION.")
        ex.final = (
            {"Result": update.get("Payload")}
            if action == "SUCCEED"
            else {"Error": update.get("Error") or {}}
        )
        return ""
    handler = _HANDLERS.get((str(kind), str(action)))
    if handler is None:
        raise errors.InvalidParameterValue(f"Invalid action {action} for operation type {kind}.")
    current = ex.operations.get(op_id)
    handler(ex, update, current, now)
    return op_id


def _new_op(
    update: dict[str, Any], current: dict[str, Any] | None, now: float, status: str
) -> dict[str, Any]:
    op: dict[str, Any] = (
        dict(current)
        if current
        else {"Id": update["Id"], "Type": update["Type"], "StartTimestamp": now}
    )
    for key in ("ParentId", "Name", "SubType"):
        if update.get(key) is not None:
            op[key] = update[key]
    op["Status"] = status
    if status in TERMINAL_OP:
        op["EndTimestamp"] = now
    return op


def _put(ex: Execution, op: dict[str, Any]) -> None:
    """Record an operation's new state (a new one gets the next position)."""
    if "_Position" not in op:
        op["_Position"] = ex.op_count
        ex.op_count += 1
    ex.operations[op["Id"]] = op
    ex.dirty.add(op["Id"])


def _require(current: dict[str, Any] | None, allowed: tuple[str | None, ...], what: str) -> None:
    status = None if current is None else current["Status"]
    if status not in allowed:
        raise errors.InvalidParameterValue(
            f"Cannot {what}: operation {current['Id'] if current else ''} is {status}."
        )


def _step_start(
    ex: Execution, update: dict[str, Any], cur: dict[str, Any] | None, now: float
) -> None:
    _require(cur, (None, "READY", "STARTED"), "start the step")
    op = _new_op(update, cur, now, "STARTED")
    op.setdefault("StepDetails", {"Attempt": 0})
    op["StepDetails"].pop("NextAttemptTimestamp", None)
    _put(ex, op)
    _event(ex, "StepStarted", op, now, {})


def _step_end(
    ex: Execution, update: dict[str, Any], cur: dict[str, Any] | None, now: float
) -> None:
    action = update["Action"]
    _require(cur, (None, "STARTED", "READY"), f"{action.lower()} the step")
    status = {"SUCCEED": "SUCCEEDED", "FAIL": "FAILED", "RETRY": "PENDING"}[action]
    op = _new_op(update, cur, now, status)
    details = dict(op.get("StepDetails") or {"Attempt": 0})
    details["Attempt"] = details.get("Attempt", 0) + 1
    for key, member in (("Result", "Payload"), ("Error", "Error")):
        details.pop(key, None)
        if update.get(member) is not None:
            details[key] = update[member]
    retry: dict[str, Any] = {"CurrentAttempt": details["Attempt"]}
    if action == "RETRY":
        delay = int((update.get("StepOptions") or {}).get("NextAttemptDelaySeconds") or 0)
        details["NextAttemptTimestamp"] = now + delay
        retry["NextAttemptDelaySeconds"] = delay
        ex.deadlines[op["Id"]] = ["retry", now + delay]
    op["StepDetails"] = details
    _put(ex, op)
    if update.get("Error") is not None or action == "FAIL":
        _event(
            ex, "StepFailed", op, now, {"Error": _error(update.get("Error")), "RetryDetails": retry}
        )
    else:
        _event(
            ex,
            "StepSucceeded",
            op,
            now,
            {"Result": _result(update.get("Payload")), "RetryDetails": retry},
        )


def _wait_start(
    ex: Execution, update: dict[str, Any], cur: dict[str, Any] | None, now: float
) -> None:
    _require(cur, (None,), "start the wait")
    seconds = int((update.get("WaitOptions") or {}).get("WaitSeconds") or 0)
    if not 1 <= seconds <= TIMEOUT_RANGE[1]:
        raise errors.InvalidParameterValue("WaitSeconds must be between 1 and 31622400.")
    op = _new_op(update, cur, now, "STARTED")
    op["WaitDetails"] = {"ScheduledEndTimestamp": now + seconds, "Duration": seconds}
    _put(ex, op)
    ex.deadlines[op["Id"]] = ["wait", now + seconds]
    _event(
        ex, "WaitStarted", op, now, {"Duration": seconds, "ScheduledEndTimestamp": now + seconds}
    )


def _wait_cancel(
    ex: Execution, update: dict[str, Any], cur: dict[str, Any] | None, now: float
) -> None:
    _require(cur, ("STARTED",), "cancel the wait")
    op = _new_op(update, cur, now, "CANCELLED")
    _put(ex, op)
    ex.deadlines.pop(op["Id"], None)
    _event(ex, "WaitCancelled", op, now, {"Error": _error(update.get("Error"))})


def _context(ex: Execution, update: dict[str, Any], cur: dict[str, Any] | None, now: float) -> None:
    action = update["Action"]
    if action == "START":
        _require(cur, (None,), "start the context")
    else:
        _require(cur, ("STARTED",), f"{action.lower()} the context")
    status = {"START": "STARTED", "SUCCEED": "SUCCEEDED", "FAIL": "FAILED"}[action]
    op = _new_op(update, cur, now, status)
    details = dict(op.get("ContextDetails") or {})
    replay = (update.get("ContextOptions") or {}).get("ReplayChildren")
    if replay is not None:
        details["ReplayChildren"] = replay
    if update.get("Payload") is not None:
        details["Result"] = update["Payload"]
    if update.get("Error") is not None:
        details["Error"] = update["Error"]
    op["ContextDetails"] = details
    _put(ex, op)
    if action == "START":
        _event(ex, "ContextStarted", op, now, {})
    elif action == "SUCCEED":
        body = {} if update.get("Payload") is None else {"Result": _result(update["Payload"])}
        _event(ex, "ContextSucceeded", op, now, body)
    else:
        _event(ex, "ContextFailed", op, now, {"Error": _error(update.get("Error"))})


def callback_id(ex: Execution, op_id: str) -> str:
    """A callback's id: names its execution and operation (base64, as the model wants)."""
    return base64.b64encode(f"{ex.arn}#{op_id}".encode()).decode()


def parse_callback_id(value: str) -> tuple[str, str]:
    """(execution ARN, operation id) of a callback id; ValueError if it is not one."""
    arn, _, op_id = base64.b64decode(value.encode(), validate=True).decode().rpartition("#")
    if not arn or not op_id:
        raise ValueError("not a callback id")
    return arn, op_id


def _callback_start(
    ex: Execution, update: dict[str, Any], cur: dict[str, Any] | None, now: float
) -> None:
    _require(cur, (None,), "start the callback")
    options = update.get("CallbackOptions") or {}
    op = _new_op(update, cur, now, "STARTED")
    op["CallbackDetails"] = {"CallbackId": callback_id(ex, op["Id"])}
    _put(ex, op)
    timeout = int(options.get("TimeoutSeconds") or 0)
    heartbeat = int(options.get("HeartbeatTimeoutSeconds") or 0)
    op["_timeouts"] = [timeout, heartbeat]
    _arm_callback(ex, op, now)
    details: dict[str, Any] = {"CallbackId": op["CallbackDetails"]["CallbackId"]}
    if heartbeat:
        details["HeartbeatTimeout"] = heartbeat
    if timeout:
        details["Timeout"] = timeout
    _event(ex, "CallbackStarted", op, now, details)


def _arm_callback(ex: Execution, op: dict[str, Any], now: float, beat: bool = False) -> None:
    timeout, heartbeat = op["_timeouts"]
    candidates = []
    if timeout:
        candidates.append(["timeout", op["StartTimestamp"] + timeout])
    if heartbeat:
        candidates.append(["heartbeat", now + heartbeat])
    if candidates:
        ex.deadlines[op["Id"]] = min(candidates, key=lambda c: c[1])
    elif not beat:
        ex.deadlines.pop(op["Id"], None)


def _chained_start(
    ex: Execution, update: dict[str, Any], cur: dict[str, Any] | None, now: float
) -> None:
    """The engine resolved the target beforehand (`update["_Target"]`: the version it will run
    and, for a durable target, the child execution's ARN), so the history says it now."""
    _require(cur, (None,), "start the chained invoke")
    options = update.get("ChainedInvokeOptions") or {}
    if not options.get("FunctionName"):
        raise errors.InvalidParameterValue("ChainedInvokeOptions.FunctionName is required.")
    target = update.get("_Target") or {}
    op = _new_op(update, cur, now, "STARTED")
    op["ChainedInvokeDetails"] = {}
    _put(ex, op)
    run = {
        "state": "due",
        "function": options["FunctionName"],
        "payload": update.get("Payload"),
        "tenant": options.get("TenantId"),
        "version": target.get("Version"),
        "child": target.get("ChildArn"),
        "error": target.get("Error"),
    }
    ex.chained[op["Id"]] = run
    details: dict[str, Any] = {"FunctionName": run["function"]}
    if run["tenant"]:
        details["TenantId"] = run["tenant"]
    details["Input"] = _result(run["payload"])
    if run["version"]:
        details["ExecutedVersion"] = run["version"]
    if run["child"]:
        details["DurableExecutionArn"] = run["child"]
    _event(ex, "ChainedInvokeStarted", op, now, details)


def chained_finished(
    ex: Execution,
    op_id: str,
    status: str,
    now: float,
    result: str | None = None,
    error: dict[str, Any] | None = None,
) -> bool:
    """Record how a chained invoke ended (SUCCEEDED, FAILED, TIMED_OUT, STOPPED).

    While an invocation of the execution runs, the outcome is held and recorded when that
    invocation ends: as on Lambda, where the invocation that started a chained invoke has
    suspended before the target answers, the history reads ChainedInvokeStarted,
    InvocationCompleted, ChainedInvoke<Outcome>, whatever the target's speed."""
    op = ex.operations.get(op_id)
    if ex.status != RUNNING or op is None or op["Status"] != "STARTED":
        return False
    if ex.invoking is not None:
        ex.chained[op_id] = {"state": "held", "status": status, "result": result, "error": error}
        return True
    ex.chained.pop(op_id, None)
    op = _new_op({}, op, now, status)
    op["ChainedInvokeDetails"] = (
        {"Result": result} if status == "SUCCEEDED" else {"Error": error or {}}
    )
    _put(ex, op)
    kind = {
        "SUCCEEDED": "Succeeded",
        "FAILED": "Failed",
        "TIMED_OUT": "TimedOut",
        "STOPPED": "Stopped",
    }[status]
    body = {"Result": _result(result)} if status == "SUCCEEDED" else {"Error": _error(error)}
    _event(ex, f"ChainedInvoke{kind}", op, now, body)
    _engine_changed(ex, op_id, now)
    return True


_HANDLERS = {
    ("STEP", "START"): _step_start,
    ("STEP", "SUCCEED"): _step_end,
    ("STEP", "FAIL"): _step_end,
    ("STEP", "RETRY"): _step_end,
    ("WAIT", "START"): _wait_start,
    ("WAIT", "CANCEL"): _wait_cancel,
    ("CONTEXT", "START"): _context,
    ("CONTEXT", "SUCCEED"): _context,
    ("CONTEXT", "FAIL"): _context,
    ("CALLBACK", "START"): _callback_start,
    ("CHAINED_INVOKE", "START"): _chained_start,
}


# callbacks from outside --------------------------------------------------------------------
def complete_callback(
    ex: Execution,
    op_id: str,
    outcome: str,
    now: float,
    result: str | None = None,
    error: dict[str, Any] | None = None,
) -> None:
    """SendDurableExecutionCallbackSuccess / Failure / Heartbeat."""
    op = ex.operations.get(op_id)
    if op is None or op.get("Type") != "CALLBACK":
        raise errors.ResourceNotFound("Callback not found.")
    if ex.status != RUNNING or op["Status"] != "STARTED":
        raise errors.CallbackTimeout(
            f"Callback {op['CallbackDetails']['CallbackId']} is "
            f"{op['Status'] if ex.status == RUNNING else ex.status}."
        )
    if outcome == "heartbeat":
        _arm_callback(ex, op, now, beat=True)
        return
    ex.deadlines.pop(op_id, None)
    status = "SUCCEEDED" if outcome == "success" else "FAILED"
    op = _new_op({}, op, now, status)
    details = dict(op["CallbackDetails"])
    if status == "SUCCEEDED":
        details["Result"] = result
        _event(ex, "CallbackSucceeded", op, now, {"Result": _result(result)})
    else:
        details["Error"] = error or {}
        _event(ex, "CallbackFailed", op, now, {"Error": _error(error)})
    op["CallbackDetails"] = details
    _put(ex, op)
    _engine_changed(ex, op_id, now)


# time ---------------------------------------------------------------------------------------
def fire_due(ex: Execution, now: float) -> bool:
    """Apply every timer due by `now`; True if anything changed."""
    if ex.status != RUNNING:
        return False
    if now >= ex.started_at + ex.timeout:
        finish(
            ex,
            TIMED_OUT,
            now,
            error={
                "ErrorType": "Execution.Timeout",
                "ErrorMessage": "The durable execution timed out.",
            },
        )
        return True
    changed = False
    for op_id, (kind, at) in sorted(ex.deadlines.items(), key=lambda item: item[1][1]):
        if at > now:
            continue
        changed = True
        del ex.deadlines[op_id]
        op = ex.operations[op_id]
        if kind == "wait":
            op = _new_op({}, op, now, "SUCCEEDED")
            _put(ex, op)
            _event(ex, "WaitSucceeded", op, now, {"Duration": op["WaitDetails"]["Duration"]})
        elif kind == "retry":
            _put(ex, {**op, "Status": "READY"})
        else:
            reason = "Callback.Timeout" if kind == "timeout" else "Callback.Heartbeat"
            op = _new_op({}, op, now, "TIMED_OUT")
            error = {
                "ErrorType": reason,
                "ErrorMessage": "Callback timed out"
                if kind == "timeout"
                else "Callback heartbeat timed out",
            }
            op["CallbackDetails"] = {**op["CallbackDetails"], "Error": error}
            _put(ex, op)
            _event(ex, "CallbackTimedOut", op, now, {"Error": _error(error)})
        _engine_changed(ex, op_id, now)
    return changed


def _engine_changed(ex: Execution, op_id: str, now: float) -> None:
    if op_id not in ex.undelivered:
        ex.undelivered.append(op_id)
    if ex.invoking is None:
        ex.invoke_due = now


# invocations --------------------------------------------------------------------------------
def begin_invocation(
    ex: Execution, request_id: str, now: float, stamp: Any = None
) -> dict[str, Any]:
    """The invocation input (DurableExecutionArn, CheckpointToken, InitialExecutionState)."""
    ex.token_seq += 1
    ex.invoking, ex.invocation_started, ex.invoke_due = request_id, now, None
    ex.undelivered = []
    ex.invocations.append(request_id)
    operations, marker = state_page(ex, None, STATE_PAGE, stamp)
    state: dict[str, Any] = {"Operations": operations}
    if marker:
        state["NextMarker"] = marker
    return {
        "DurableExecutionArn": ex.arn,
        "CheckpointToken": ex.token(),
        "InitialExecutionState": state,
    }


def state_page(
    ex: Execution, marker: str | None, limit: int, stamp: Any = None
) -> tuple[list[dict[str, Any]], str | None]:
    assert ex.complete, "a state page needs every operation"
    ops = list(ex.operations.values())
    start = _offset(marker)
    page = [render_operation(op, stamp) for op in ops[start : start + limit]]
    return page, (str(start + limit) if start + limit < len(ops) else None)


def end_invocation(
    ex: Execution, request_id: str, now: float, output: Any, failure: dict[str, Any] | None
) -> None:
    """Record how an invocation ended and decide what follows.

    `failure` is the function's error (crash, timeout, unhandled), else `output` is what the
    handler returned: the SDK's {"Status": SUCCEEDED | FAILED | PENDING, ...}."""
    if ex.invoking != request_id:
        return
    details: dict[str, Any] = {
        "StartTimestamp": ex.invocation_started,
        "EndTimestamp": now,
        "RequestId": request_id,
    }
    if failure is not None:
        details["Error"] = _error(failure)
    ex.invoking, ex.invocation_started, ex.lease_until = None, None, None
    ex.token_seq += 1
    if ex.status != RUNNING:
        _event(ex, "InvocationCompleted", None, now, details)
        return
    _event(ex, "InvocationCompleted", None, now, details)
    for op_id, run in list(ex.chained.items()):
        if run.get("state") == "held":  # outcomes that came while it ran (chained_finished)
            chained_finished(ex, op_id, run["status"], now, run["result"], run["error"])
    if failure is not None:
        _invocation_failed(ex, failure, now)
        return
    status = output.get("Status") if isinstance(output, dict) else None
    if status == "SUCCEEDED":
        final = ex.final or {}
        result = output.get("Result") or final.get("Result")
        finish(ex, SUCCEEDED, now, result=result)
    elif status == "FAILED":
        finish(
            ex,
            FAILED,
            now,
            error=output.get("Error")
            or (ex.final or {}).get("Error")
            or {"ErrorType": "Unknown", "ErrorMessage": "The execution failed."},
        )
    elif status == "PENDING":
        ex.failures = 0
        if ex.undelivered:
            ex.invoke_due = now
    else:
        finish(
            ex,
            FAILED,
            now,
            error={
                "ErrorType": "InvalidDurableExecutionOutput",
                "ErrorMessage": "The function did not return a durable execution status "
                "(SUCCEEDED, FAILED or PENDING): does its handler use the "
                "durable execution SDK?",
            },
        )


def _invocation_failed(ex: Execution, failure: dict[str, Any], now: float) -> None:
    ex.failures += 1
    if ex.failures >= MAX_INVOCATION_FAILURES:
        finish(ex, FAILED, now, error=failure)
        return
    ex.invoke_due = now + min(2 ** (ex.failures - 1), 60)


def abandon_invocation(ex: Execution, now: float) -> None:
    """The engine running the invocation died: the invocation is counted as failed."""
    if ex.invoking is not None:
        end_invocation(
            ex,
            ex.invoking,
            now,
            None,
            {
                "ErrorType": "Lamina.EngineLost",
                "ErrorMessage": "The engine running this invocation stopped before it ended.",
            },
        )


def finish(
    ex: Execution,
    status: str,
    now: float,
    result: str | None = None,
    error: dict[str, Any] | None = None,
) -> None:
    if ex.status != RUNNING:
        return
    ex.status, ex.ended_at = status, now
    ex.deadlines.clear()
    ex.invoke_due = None
    for run in ex.chained.values():
        run["state"] = "abandoned"
    root = ex.operations.get(ex.id)
    if root is not None:
        _put(ex, {**root, "Status": status, "EndTimestamp": now})
    if status == SUCCEEDED:
        ex.result = result
        _event(ex, "ExecutionSucceeded", None, now, {"Result": _result(result)})
        return
    ex.error = error or {}
    kind = {FAILED: "ExecutionFailed", TIMED_OUT: "ExecutionTimedOut", STOPPED: "ExecutionStopped"}[
        status
    ]
    _event(ex, kind, None, now, {"Error": _error(ex.error)})


def stop(ex: Execution, error: dict[str, Any] | None, now: float) -> None:
    if ex.status != RUNNING:
        raise errors.ResourceConflict(f"The durable execution is already {ex.status}.")
    finish(
        ex,
        STOPPED,
        now,
        error=error
        or {"ErrorType": "Execution.Stopped", "ErrorMessage": "The execution was stopped."},
    )


# history and rendering ------------------------------------------------------------------------
def _event(
    ex: Execution, kind: str, op: dict[str, Any] | None, now: float, details: dict[str, Any]
) -> None:
    ex.event_count += 1
    event: dict[str, Any] = {"EventType": kind, "EventId": ex.event_count, "EventTimestamp": now}
    if op is not None:
        if op.get("SubType"):
            event["SubType"] = op["SubType"]
        event["Id"] = op["Id"]
        for key in ("Name", "ParentId"):
            if op.get(key) is not None:
                event[key] = op[key]
    else:
        event["Id"] = ex.id
    event[f"{kind}Details"] = details
    ex.new_events.append(event)


def _result(payload: str | None) -> dict[str, Any]:
    return {} if payload is None else {"Payload": payload, "Truncated": False}


def _error(error: dict[str, Any] | None) -> dict[str, Any]:
    return {"Payload": error or {}, "Truncated": False}


def history_window(ex: Execution, marker: str | None, limit: int) -> tuple[int, str | None]:
    """The page of GetDurableExecutionHistory a marker asks for: (offset, the next marker)."""
    start = _offset(marker)
    return start, (str(start + limit) if start + limit < ex.event_count else None)


def history_page(events: list[dict[str, Any]], include_data: bool) -> list[dict[str, Any]]:
    return events if include_data else [_without_data(e) for e in events]


def _without_data(event: dict[str, Any]) -> dict[str, Any]:
    out = dict(event)
    for key, value in event.items():
        if key.endswith("Details") and isinstance(value, dict):
            out[key] = {
                k: (
                    {kk: vv for kk, vv in v.items() if kk != "Payload"}
                    if k in ("Input", "Result") and isinstance(v, dict)
                    else v
                )
                for k, v in value.items()
            }
    return out


def render_operation(op: dict[str, Any], stamp: Any = None) -> dict[str, Any]:
    """An Operation as the API returns it; `stamp` renders timestamps (default: as is)."""
    stamp = stamp or (lambda t: t)
    out = {k: v for k, v in op.items() if not k.startswith("_")}
    for key in ("StartTimestamp", "EndTimestamp"):
        if out.get(key) is not None:
            out[key] = stamp(out[key])
    if "WaitDetails" in out:
        out["WaitDetails"] = {
            "ScheduledEndTimestamp": stamp(op["WaitDetails"]["ScheduledEndTimestamp"])
        }
    if "StepDetails" in out and "NextAttemptTimestamp" in out["StepDetails"]:
        out["StepDetails"] = {
            **out["StepDetails"],
            "NextAttemptTimestamp": stamp(out["StepDetails"]["NextAttemptTimestamp"]),
        }
    return out


def _offset(marker: str | None) -> int:
    if not marker:
        return 0
    if not marker.isdigit():
        raise errors.InvalidParameterValue("Invalid Marker value.")
    return int(marker)
