"""Tumbling window rules (domain/windows.py)."""

from __future__ import annotations

from lamina.domain.windows import MAX_STATE_BYTES, Window, state_of, too_large


def test_windows_are_aligned_on_arrival_time():
    window = Window.containing(1_700_000_007.9, 5)
    assert (window.start, window.end) == (1_700_000_005.0, 1_700_000_010.0)
    assert window.holds(1_700_000_005.0) and window.holds(1_700_000_009.99)
    assert not window.holds(1_700_000_010.0) and not window.holds(1_700_000_004.99)


def test_the_event_carries_the_window_the_state_and_the_flags():
    window = Window(1_607_497_440.0, 1_607_497_560.0, {"1": 282})
    event = window.event([{"r": 1}], "shardId-000000000006", "arn:stream", final=True)
    assert event == {
        "Records": [{"r": 1}],
        "window": {"start": "2020-12-09T07:04:00Z", "end": "2020-12-09T07:06:00Z"},
        "state": {"1": 282},
        "shardId": "shardId-000000000006",
        "eventSourceARN": "arn:stream",
        "isFinalInvokeForWindow": True,
        "isWindowTerminatedEarly": False,
    }


def test_a_response_without_a_state_object_is_a_failure():
    assert state_of(b'{"state": {"a": 1}, "batchItemFailures": []}') == {"a": 1}
    for payload in (
        b"",
        b"null",
        b'"ok"',
        b'{"batchItemFailures": []}',
        b'{"state": 3}',
        b"{not json",
    ):
        assert state_of(payload) is None, payload


def test_a_state_over_one_megabyte_ends_the_window_early():
    assert not too_large({"k": "x" * 1000})
    assert too_large({"k": "x" * MAX_STATE_BYTES})
