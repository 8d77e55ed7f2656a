"""Lamina's own handlers for AWS's durable execution conformance requirements, suite
wait_for_callback (7-x): one function per requirement id, `h_<suite>_<n>`, written from the
requirement's description (aws-durable-execution-conformance-tests on PyPI)."""

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration, WaitForCallbackConfig
from aws_durable_execution_sdk_python.serdes import JsonSerDes
from common import fixed_retry


def submit(callback_id, context):
    """The submitter: hands the callback id to the outside world (here: the log)."""
    print("callback", callback_id)


def _seconds(**durations):
    return WaitForCallbackConfig(
        **{key: Duration.from_seconds(value) for key, value in durations.items()}
    )


@durable_execution
def h_7_1(event, context: DurableContext):
    return context.wait_for_callback(submit, name=event)


@durable_execution
def h_7_2(event, context: DurableContext):
    return context.wait_for_callback(submit, name="approval")


@durable_execution
def h_7_3(event, context: DurableContext):
    return context.wait_for_callback(lambda callback_id, _: print("callback", callback_id))


@durable_execution
def h_7_4(event, context: DurableContext):
    return context.wait_for_callback(submit, name=event)


@durable_execution
def h_7_5(event, context: DurableContext):
    return context.wait_for_callback(submit, name=event, config=_seconds(timeout=3))


@durable_execution
def h_7_6(event, context: DurableContext):
    try:
        return context.wait_for_callback(submit, name=event)
    except Exception:  # noqa: BLE001 - the requirement: any callback failure is recovered
        return "recovered"


@durable_execution
def h_7_7(event, context: DurableContext):
    def always_throws(callback_id, _):
        raise RuntimeError("the submitter cannot reach the external system")

    return context.wait_for_callback(
        always_throws, name=event, config=WaitForCallbackConfig(retry_strategy=fixed_retry(2, 1))
    )


@durable_execution
def h_7_8(event, context: DurableContext):
    return context.run_in_child_context(
        lambda child: child.wait_for_callback(submit, name=event), name="wrapper"
    )


@durable_execution
def h_7_9(event, context: DurableContext):
    context.wait_for_callback(submit, name="first")
    return context.wait_for_callback(submit, name="second")


@durable_execution
def h_7_10(event, context: DurableContext):
    context.wait(Duration.from_seconds(1))
    context.step(lambda _: {"prepared": True})
    return context.wait_for_callback(submit, name=event)


@durable_execution
def h_7_11(event, context: DurableContext):
    found = context.wait_for_callback(
        submit, name=event, config=WaitForCallbackConfig(serdes=JsonSerDes())
    )
    return found["status"]


@durable_execution
def h_7_12(event, context: DurableContext):
    return context.wait_for_callback(submit, name=event, config=_seconds(heartbeat_timeout=5))


@durable_execution
def h_7_13(event, context: DurableContext):
    return context.wait_for_callback(submit, name=event, config=_seconds(heartbeat_timeout=10))


@durable_execution
def h_7_14(event, context: DurableContext):
    try:
        return context.wait_for_callback(submit, name=event, config=_seconds(timeout=3))
    except Exception:  # noqa: BLE001 - the requirement: the timeout is recovered
        return "timed-out-handled"


@durable_execution
def h_7_15(event, context: DurableContext):
    return context.wait_for_callback(submit, name=event)
