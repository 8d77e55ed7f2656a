"""What happens to an async event after an attempt: retry it, or give it up (spec §7.2).

Theory of operation
-------------------
Two failure classes, two counters:

* A **function error** (the function ran and failed: handler error, timeout, runtime exit,
  init failure, oversized response) is retried at most `MaximumRetryAttempts` times (default
  2), 60 s after the first failure and 120 s after the second (`invocations` counts runs).
* A **throttle** or **system error** (the function did not run) sends the event back to the
  queue with exponential back-off from 1 s, doubling, capped at 300 s. These retries do not
  count against `MaximumRetryAttempts` (`throttles` counts them).

Either way the look-ahead rule applies: if the retry would start after the event is
`MaximumEventAgeInSeconds` old, the event is discarded now with `EventAgeExceeded` (this is
what AWS recordings show: discarded with `approximateInvokeCount: 1` when the next retry
would have been too late). An event whose function has reserved concurrency 0 is discarded
at once with `ZeroReservedConcurrency`.

Pure functions of their inputs: no I/O, no clock (`now` is given), no randomness unless
passed in. Source: https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lamina.domain.model import AsyncEvent

FUNCTION_ERROR_DELAYS = (60.0, 120.0)
THROTTLE_FIRST = 1.0
THROTTLE_CAP = 300.0

RETRIES_EXHAUSTED = "RetriesExhausted"
EVENT_AGE_EXCEEDED = "EventAgeExceeded"
ZERO_RESERVED = "ZeroReservedConcurrency"


@dataclass(frozen=True, slots=True)
class Retry:
    """Run the event again at `at` (engine time)."""

    at: float
    reason: str  # function_error | throttled | system_error


@dataclass(frozen=True, slots=True)
class Discard:
    """Give the event up; `condition` goes into the on-failure record."""

    condition: str


Decision = Retry | Discard


def _unless_too_old(event: AsyncEvent, at: float, max_age: float, reason: str) -> Decision:
    if at - event.accepted_at > max_age:
        return Discard(EVENT_AGE_EXCEEDED)
    return Retry(at, reason)


def after_function_error(
    event: AsyncEvent, max_retries: int, max_age: float, now: float
) -> Decision:
    """Decide after the function ran `event.invocations` times and failed the last one."""
    retries_done = event.invocations - 1
    if retries_done >= max_retries:
        return Discard(RETRIES_EXHAUSTED)
    delay = FUNCTION_ERROR_DELAYS[min(retries_done, len(FUNCTION_ERROR_DELAYS) - 1)]
    return _unless_too_old(event, now + delay, max_age, "function_error")


def throttle_delay(throttles: int, jitter: Callable[[], float] = lambda: 0.0) -> float:
    """Back-off before the `throttles`-th retry: 1, 2, 4, … 256, 300, 300 … s (+ jitter)."""
    base = min(THROTTLE_FIRST * 2.0 ** max(throttles - 1, 0), THROTTLE_CAP)
    return base + base * 0.1 * jitter()


def after_throttle(
    event: AsyncEvent,
    max_age: float,
    now: float,
    reason: str = "throttled",
    jitter: Callable[[], float] = lambda: 0.0,
) -> Decision:
    """Decide after the function could not run (`event.throttles` already counts this one)."""
    return _unless_too_old(event, now + throttle_delay(event.throttles, jitter), max_age, reason)


def before_attempt(
    event: AsyncEvent, max_age: float, reserved: int | None, now: float
) -> Discard | None:
    """An event too old to run, or whose function may never run, is discarded unrun."""
    if reserved == 0:
        return Discard(ZERO_RESERVED)
    if now - event.accepted_at > max_age:
        return Discard(EVENT_AGE_EXCEEDED)
    return None
