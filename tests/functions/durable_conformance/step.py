"""Lamina's own handlers for AWS's durable execution conformance requirements, suite step
(1-x): one function per requirement id, `h_<suite>_<n>`, written from the requirement's
description (aws-durable-execution-conformance-tests on PyPI)."""

import json
import os

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration, StepConfig, StepSemantics
from aws_durable_execution_sdk_python.retries import RetryDecision, RetryPresets
from aws_durable_execution_sdk_python.serdes import SerDes
from common import NO_RETRY, TransientError, fixed_retry, marker_path, marker_step


@durable_execution
def h_1_1(event, context: DurableContext):
    return context.step(lambda _: f"Hello, {event}!")


@durable_execution
def h_1_2(event, context: DurableContext):
    return context.step(lambda _: f"Hello, {event}!", name="custom_step_name")


@durable_execution
def h_1_3(event, context: DurableContext):
    first = context.step(lambda _: "first")
    return context.step(lambda _: f"{first}_second")


@durable_execution
def h_1_4(event, context: DurableContext):
    return context.step(
        lambda _: {
            "user": {"name": event["name"], "tags": event["tags"]},
            "count": len(event["tags"]),
        }
    )


@durable_execution
def h_1_5(event, context: DurableContext):
    return context.step(lambda _: None)


@durable_execution
def h_1_7(event, context: DurableContext):
    def greet(step_context):
        step_context.logger.info(f"Greeting step started for: {event}")
        greeting = f"Hello, {event}!"
        step_context.logger.info(f"Greeting step completed with: {greeting}")
        return greeting

    return context.step(greet)


@durable_execution
def h_1_8(event, context: DurableContext):
    value = context.step(lambda _: "computed")
    context.wait(Duration.from_seconds(2))
    return value


@durable_execution
def h_1_9(event, context: DurableContext):
    def run(step_context):
        print("step executed")
        return "cached_value"

    value = context.step(run)
    context.wait(Duration.from_seconds(1))
    return value


@durable_execution
def h_1_10(event, context: DurableContext):
    def run(step_context):
        print("step executed")
        raise RuntimeError("permanent failure")

    try:
        context.step(run, config=NO_RETRY)
    except Exception:
        pass
    context.wait(Duration.from_seconds(1))


@durable_execution
def h_1_11(event, context: DurableContext):
    return context.step(
        marker_step(context, "1-11", 1, "Operation succeeded"),
        config=StepConfig(retry_strategy=fixed_retry(3, 1)),
    )


@durable_execution
def h_1_12(event, context: DurableContext):
    context.step(
        lambda _: (_ for _ in ()).throw(RuntimeError("always fails")),
        config=StepConfig(retry_strategy=fixed_retry(4, 1)),
    )


@durable_execution
def h_1_13(event, context: DurableContext):
    return context.step(marker_step(context, "1-13", 2))


@durable_execution
def h_1_14(event, context: DurableContext):
    return context.step(
        marker_step(context, "1-14", 2), config=StepConfig(retry_strategy=fixed_retry(5, 2, 3))
    )


def _retry_transient(error, attempts):
    if (
        isinstance(error, TransientError)
        or "TransientError" in type(error).__name__
        or "TransientError" in str(getattr(error, "error_type", ""))
    ):
        return RetryDecision.retry(Duration.from_seconds(1))
    return RetryDecision.no_retry()


@durable_execution
def h_1_15(event, context: DurableContext):
    path = marker_path(context, "1-15")

    def run(step_context):
        if not os.path.exists(path):
            open(path, "w").close()
            raise TransientError("transient")
        return "done"

    return context.step(run, config=StepConfig(retry_strategy=_retry_transient))


@durable_execution
def h_1_16(event, context: DurableContext):
    def run(step_context):
        raise TransientError("transient")

    return context.step(
        run, config=StepConfig(retry_strategy=lambda error, attempts: RetryDecision.no_retry())
    )


@durable_execution
def h_1_17(event, context: DurableContext):
    def run(step_context):
        step_context.logger.info(str(event))
        os._exit(1)

    return context.step(
        run,
        name="at_most_once_flaky_step",
        config=StepConfig(
            step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY, retry_strategy=RetryPresets.none()
        ),
    )


@durable_execution
def h_1_18(event, context: DurableContext):
    path = marker_path(context, "1-18")  # a reset keeps /tmp, as on Lambda

    def run(step_context):
        step_context.logger.info(str(event))
        if not os.path.exists(path):
            open(path, "w").close()
            os._exit(1)
        return "succeeded on second attempt"

    return context.step(
        run,
        config=StepConfig(
            step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY, retry_strategy=fixed_retry(3, 1)
        ),
    )


@durable_execution
def h_1_19(event, context: DurableContext):
    context.step(lambda _: (_ for _ in ()).throw(RuntimeError("boom")), config=NO_RETRY)


@durable_execution
def h_1_20(event, context: DurableContext):
    try:
        context.step(lambda _: (_ for _ in ()).throw(RuntimeError("boom")), config=NO_RETRY)
    except Exception:
        pass
    return context.step(lambda _: "fallback_result")


class Uppercase(SerDes):
    """Stores string values uppercased (JSON); reads them back as stored."""

    def serialize(self, value, serdes_context):
        return json.dumps(value.upper() if isinstance(value, str) else value)

    def deserialize(self, data, serdes_context):
        return json.loads(data)


@durable_execution
def h_1_6(event, context: DurableContext):
    return context.step(lambda _: event, config=StepConfig(serdes=Uppercase()))
