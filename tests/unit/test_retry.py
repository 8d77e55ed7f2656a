"""The async retry rules (domain.retry), with engine time given explicitly."""

import pytest

from lamina.domain import retry
from lamina.domain.model import AsyncEvent

T0 = 1_000_000.0


def event(invocations: int = 0, throttles: int = 0, accepted: float = T0) -> AsyncEvent:
    return AsyncEvent("r", "f", None, b"{}", accepted, accepted, invocations, throttles)


def test_function_errors_retry_at_60_then_120_then_give_up():
    assert retry.after_function_error(event(1), 2, 21600, T0 + 1) == retry.Retry(
        T0 + 61, "function_error"
    )
    assert retry.after_function_error(event(2), 2, 21600, T0 + 62) == retry.Retry(
        T0 + 182, "function_error"
    )
    assert retry.after_function_error(event(3), 2, 21600, T0 + 183) == retry.Discard(
        "RetriesExhausted"
    )
    assert retry.after_function_error(event(1), 0, 21600, T0 + 1) == retry.Discard(
        "RetriesExhausted"
    )


def test_event_age_is_checked_before_scheduling_the_retry():
    # max age 60: the retry would start at +61 → discarded now, after one run
    assert retry.after_function_error(event(1), 2, 60, T0 + 1) == retry.Discard("EventAgeExceeded")
    # max age 150: the first retry (+61) fits, the second (+182) does not
    assert isinstance(retry.after_function_error(event(1), 2, 150, T0 + 1), retry.Retry)
    assert retry.after_function_error(event(2), 2, 150, T0 + 62) == retry.Discard(
        "EventAgeExceeded"
    )


@pytest.mark.parametrize(
    "throttles, delay", [(1, 1), (2, 2), (3, 4), (9, 256), (10, 300), (30, 300)]
)
def test_throttle_backoff_doubles_to_five_minutes(throttles, delay):
    assert retry.throttle_delay(throttles) == delay
    assert delay <= retry.throttle_delay(throttles, jitter=lambda: 1.0) <= delay * 1.1


def test_throttles_do_not_count_as_retries_but_age_still_applies():
    decision = retry.after_throttle(event(invocations=0, throttles=5), 21600, T0 + 10)
    assert decision == retry.Retry(T0 + 26, "throttled")
    assert retry.after_throttle(event(throttles=10), 100, T0 + 10) == retry.Discard(
        "EventAgeExceeded"
    )


def test_before_attempt():
    assert retry.before_attempt(event(), 21600, 0, T0) == retry.Discard("ZeroReservedConcurrency")
    assert retry.before_attempt(event(), 60, None, T0 + 61) == retry.Discard("EventAgeExceeded")
    assert retry.before_attempt(event(), 60, 5, T0 + 59) is None
