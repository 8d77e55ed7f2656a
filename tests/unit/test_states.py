import pytest

from lamina.domain import states


def test_the_invoke_cycle():
    state = states.STARTING
    for event, expected in (
        ("next", states.READY),
        ("deliver", states.INVOKING),
        ("response", states.RESPONDED),
        ("next", states.READY),
        ("deliver", states.INVOKING),
        ("error", states.RESPONDED),
    ):
        state = states.transition(states.RUNTIME, state, event)
        assert state == expected


@pytest.mark.parametrize(
    "state, event",
    [
        (states.INVOKING, "next"),
        (states.RESPONDED, "response"),
        (states.READY, "response"),
        (states.STARTING, "deliver"),
        (states.DEAD, "next"),
        (states.DEAD, "exit"),
        (states.INIT_FAILED, "next"),
    ],
)
def test_everything_else_is_refused(state, event):
    with pytest.raises(states.InvalidTransition):
        states.transition(states.RUNTIME, state, event)


@pytest.mark.parametrize(
    "state", [states.STARTING, states.READY, states.INVOKING, states.RESPONDED, states.INIT_FAILED]
)
def test_every_live_state_can_die(state):
    for event in ("exit", "timeout", "oom", "kill"):
        assert states.transition(states.RUNTIME, state, event) == states.DEAD


def test_an_invocation_in_a_managed_instances_environment():
    for events, end in (
        (("deliver", "response"), states.DONE),
        (("deliver", "error"), states.DONE),
        (("timeout",), states.DONE),
        (("deliver", "timeout"), states.OVERRUN),
        (("deliver", "timeout", "response"), states.DONE),
    ):
        state = states.QUEUED
        for event in events:
            state = states.transition(states.FLIGHT, state, event, "invocation")
        assert state == end, events


@pytest.mark.parametrize(
    "state, event",
    [
        (states.QUEUED, "response"),
        (states.DELIVERED, "deliver"),
        (states.OVERRUN, "timeout"),
        (states.DONE, "response"),
        (states.DONE, "timeout"),
    ],
)
def test_an_invocation_is_answered_once(state, event):
    with pytest.raises(states.InvalidTransition):
        states.transition(states.FLIGHT, state, event, "invocation")
