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


class InvalidTransition(Exception):
    """The event is not allowed in the current state."""

    def __init__(self, table_name: str, state: str, event: str) -> None:
        super().__init__(f"State transition from {state} on {event} failed for {table_name}")
        self.state = state
        self.event = event


def transition(table: dict[str, dict[str, str]], state: str, event: str,
               table_name: str = "runtime") -> str:
    """The next state, or InvalidTransition when the table does not allow `event` in `state`."""
    try:
        return table[state][event]
    except KeyError:
        raise InvalidTransition(table_name, state, event) from None
