"""Lamina's own handlers for AWS's durable execution conformance requirements, suite
wait_for_condition (6-x): one function per requirement id, `h_<suite>_<n>`, written from the
requirement's description (aws-durable-execution-conformance-tests on PyPI)."""

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration, JitterStrategy
from aws_durable_execution_sdk_python.serdes import SerDes
from aws_durable_execution_sdk_python.waits import (
    WaitForConditionConfig,
    WaitForConditionDecision,
    WaitStrategyConfig,
    create_wait_strategy,
)


def _until(keep_polling, delay=1, max_attempts=60):
    """Poll every `delay` seconds (no jitter, no backoff) while `keep_polling(state)`."""
    return create_wait_strategy(
        WaitStrategyConfig(
            should_continue_polling=keep_polling,
            max_attempts=max_attempts,
            initial_delay=Duration.from_seconds(delay),
            backoff_rate=1,
            jitter_strategy=JitterStrategy.NONE,
        )
    )


def _count_to(threshold, initial=0, **options):
    return WaitForConditionConfig(
        wait_strategy=_until(lambda state: state < threshold, **options), initial_state=initial
    )


def _increment(state, check_context):
    return state + 1


@durable_execution
def h_6_1(event, context: DurableContext):
    return context.wait_for_condition(_increment, _count_to(event))


@durable_execution
def h_6_2(event, context: DurableContext):
    return context.wait_for_condition(lambda state, _: state, _count_to(5, initial=5))


@durable_execution
def h_6_3(event, context: DurableContext):
    return context.wait_for_condition(_increment, _count_to(event), name="poll-status")


@durable_execution
def h_6_4(event, context: DurableContext):
    return context.wait_for_condition(_increment, _count_to(event, initial=5))


@durable_execution
def h_6_5(event, context: DurableContext):
    return context.wait_for_condition(_increment, _count_to(event, delay=2))


@durable_execution
def h_6_6(event, context: DurableContext):
    return context.wait_for_condition(
        _increment,
        WaitForConditionConfig(
            wait_strategy=_until(lambda state: True, max_attempts=3), initial_state=event
        ),
    )


def _raises(state, check_context):
    raise RuntimeError("the status service is down")


@durable_execution
def h_6_7(event, context: DurableContext):
    return context.wait_for_condition(_raises, _count_to(1))


@durable_execution
def h_6_8(event, context: DurableContext):
    try:
        return context.wait_for_condition(_raises, _count_to(1))
    except Exception:  # noqa: BLE001 - the requirement: any check failure is recovered
        return "recovered"


@durable_execution
def h_6_9(event, context: DurableContext):
    def check(state, _):
        attempts = state["attempts"] + 1
        return {"status": "DONE" if attempts >= 2 else "PENDING", "attempts": attempts}

    return context.wait_for_condition(
        check,
        WaitForConditionConfig(
            wait_strategy=_until(lambda state: state["status"] == "PENDING"),
            initial_state={"status": "PENDING", "attempts": 0},
        ),
    )


@durable_execution
def h_6_10(event, context: DurableContext):
    return context.wait_for_condition(
        lambda state, _: None,
        WaitForConditionConfig(
            wait_strategy=lambda state, attempts: WaitForConditionDecision.stop_polling(),
            initial_state=None,
        ),
    )


class Reversed(SerDes):
    """The state string stored reversed behind a marker, and read back."""

    def serialize(self, value, serdes_context):
        return "rev:" + value[::-1]

    def deserialize(self, data, serdes_context):
        return data.removeprefix("rev:")[::-1]


@durable_execution
def h_6_11(event, context: DurableContext):
    return context.wait_for_condition(
        lambda state, _: state + "x",
        WaitForConditionConfig(
            wait_strategy=_until(lambda state: len(state) < 2), initial_state="", serdes=Reversed()
        ),
    )


@durable_execution
def h_6_12(event, context: DurableContext):
    reached = context.wait_for_condition(_increment, _count_to(event))
    return context.step(lambda _: reached * 10)


@durable_execution
def h_6_13(event, context: DurableContext):
    first = context.wait_for_condition(_increment, _count_to(2))
    return context.wait_for_condition(_increment, _count_to(4, initial=first))
