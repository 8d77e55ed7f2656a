"""State machines as tables that refuse every transition they do not list.

Runtime of an execution environment (spec §10.5)
-------------------------------------------------
    STARTING ──next──▶ READY ──deliver──▶ INVOKING ──response|error──▶ RESPONDED ──next──▶ READY
       │                                    │
       └──init_error──▶ INIT_FAILED          └──(exit, timeout, oom: see below)

Rules:
* `next` from STARTING ends Init; from RESPONDED it ends the Invoke phase. A `next` while
  INVOKING is the runtime breaking the protocol (403 InvalidStateTransition), and so is a
  second `response` for one event.
* An environment is handed an event only in READY, that is, while its runtime is parked in
  `next`: one event per environment at a time (spec §9.4).
* `exit` (the runtime process ended), `timeout`, `oom` and `kill` lead from any state to DEAD,
  the only state with no way out: a dead environment is never reused.

A handler checks its input (request id, sizes) before it asks for the transition.

Holding of an environment (who may use it, whether its process is stopped)
--------------------------------------------------------------------------
    FREE ──reserve──▶ HELD ──release──▶ FREE          FREE ──freeze──▶ FROZEN
    FROZEN ──reserve──▶ HELD_FROZEN ──thaw──▶ HELD      (thawed when an event is delivered)
    any ──retire──▶ RETIRED (not held: end it now) or HELD_RETIRED* (end it when released)

Rules:
* Only a FREE environment is frozen (its runtime parked in `next`, no invocation holding it);
  a held one is thawed when its event is delivered, not when it is reserved.
* A retired environment (its configuration changed, or it was deleted) is never handed out
  again; RETIRED has no way out.

One invocation in a multi-concurrent environment (Lambda Managed Instances)
---------------------------------------------------------------------------
    QUEUED ──deliver──▶ DELIVERED ──response|error──▶ DONE
       │                    │
       └──timeout──▶ DONE    └──timeout──▶ OVERRUN ──response|error──▶ DONE

Rules:
* Such an environment stays READY after Init and takes up to PerExecutionEnvironmentMaxConcurrency
  invocations at once; each has its own row here, its own request id and its own timer.
* An invocation waits QUEUED until a worker of the runtime parks in `next` (one `next` gets one
  event). A timeout while queued ends it (the runtime never saw it).
* A timeout after delivery answers the caller, but the environment is not stopped (AWS does not
  enforce the timeout on Managed Instances): the invocation is OVERRUN, and its slot stays taken
  until the runtime answers it (that answer is refused with 410, its caller has gone).
* A second answer for one invocation, or an answer for one never delivered, is refused.
"""

from __future__ import annotations

STARTING = "Starting"
READY = "Ready"
INVOKING = "Invoking"
RESPONDED = "ResponseSent"
INIT_FAILED = "InitError"
DEAD = "Dead"

_TERMINAL = {"exit": DEAD, "timeout": DEAD, "oom": DEAD, "kill": DEAD}

RUNTIME = {
    STARTING: {"next": READY, "init_error": INIT_FAILED, **_TERMINAL},
    READY: {"deliver": INVOKING, **_TERMINAL},
    INVOKING: {"response": RESPONDED, "error": RESPONDED, **_TERMINAL},
    RESPONDED: {"next": READY, **_TERMINAL},
    INIT_FAILED: dict(_TERMINAL),
    DEAD: {},
}


FREE = "Free"
FROZEN = "Frozen"
HELD = "Held"
HELD_FROZEN = "HeldFrozen"
HELD_RETIRED = "HeldRetired"
HELD_RETIRED_FROZEN = "HeldRetiredFrozen"
RETIRED = "Retired"

HOLD = {
    FREE: {"reserve": HELD, "freeze": FROZEN, "retire": RETIRED},
    FROZEN: {"reserve": HELD_FROZEN, "thaw": FREE, "retire": RETIRED},
    HELD: {"release": FREE, "retire": HELD_RETIRED},
    HELD_FROZEN: {"thaw": HELD, "release": FROZEN, "retire": HELD_RETIRED_FROZEN},
    HELD_RETIRED: {"release": RETIRED, "retire": HELD_RETIRED},
    HELD_RETIRED_FROZEN: {"thaw": HELD_RETIRED, "release": RETIRED, "retire": HELD_RETIRED_FROZEN},
    RETIRED: {"retire": RETIRED},
}
HELD_STATES = frozenset((HELD, HELD_FROZEN, HELD_RETIRED, HELD_RETIRED_FROZEN))
FROZEN_STATES = frozenset((FROZEN, HELD_FROZEN, HELD_RETIRED_FROZEN))
RETIRED_STATES = frozenset((RETIRED, HELD_RETIRED, HELD_RETIRED_FROZEN))


QUEUED = "Queued"
DELIVERED = "Delivered"
OVERRUN = "Overrun"
DONE = "Done"

FLIGHT = {
    QUEUED: {"deliver": DELIVERED, "timeout": DONE, "kill": DONE},
    DELIVERED: {"response": DONE, "error": DONE, "timeout": OVERRUN, "kill": DONE},
    OVERRUN: {"response": DONE, "error": DONE, "kill": DONE},
    DONE: {},
}


class InvalidTransition(Exception):
    """The event is not allowed in the current state."""

    def __init__(self, table_name: str, state: str, event: str) -> None:
        super().__init__(f"State transition from {state} on {event} failed for {table_name}")
        self.state = state
        self.event = event


def transition(
    table: dict[str, dict[str, str]], state: str, event: str, table_name: str = "runtime"
) -> str:
    """The next state, or InvalidTransition when the table does not allow `event` in `state`."""
    try:
        return table[state][event]
    except KeyError:
        raise InvalidTransition(table_name, state, event) from None
