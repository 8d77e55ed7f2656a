"""Lamina's own handlers for AWS's durable execution conformance requirements, suite child
(3-x): one function per requirement id, `h_<suite>_<n>`, written from the requirement's
description (aws-durable-execution-conformance-tests on PyPI)."""

import os

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import ChildConfig, Duration, StepConfig
from aws_durable_execution_sdk_python.serdes import SerDes
from common import NO_RETRY, fixed_retry, marker_path, replaying


@durable_execution
def h_3_1(event, context: DurableContext):
    return context.run_in_child_context(lambda child: child.step(lambda _: event), name="child")


@durable_execution
def h_3_2(event, context: DurableContext):
    return context.run_in_child_context(
        lambda child: child.step(lambda _: event["value"]), name=event["name"]
    )


@durable_execution
def h_3_3(event, context: DurableContext):
    def body(child):
        first = child.step(lambda _: event)
        return child.step(lambda _: first)

    return context.run_in_child_context(body, name="body")


@durable_execution
def h_3_4(event, context: DurableContext):
    return context.run_in_child_context(
        lambda child: child.step(
            lambda _: (_ for _ in ()).throw(RuntimeError("inner")), config=NO_RETRY
        ),
        name="failing",
    )


@durable_execution
def h_3_5(event, context: DurableContext):
    try:
        context.run_in_child_context(
            lambda child: child.step(
                lambda _: (_ for _ in ()).throw(RuntimeError("inner")), config=NO_RETRY
            )
        )
    except Exception:
        pass
    return context.step(lambda _: event)


@durable_execution
def h_3_6(event, context: DurableContext):
    def outer(child):
        child.step(lambda _: event)
        return child.run_in_child_context(lambda inner: inner.step(lambda _: event), name="inner")

    return context.run_in_child_context(outer, name="outer")


@durable_execution
def h_3_7(event, context: DurableContext):
    path = marker_path(context, "3-7")

    def run(_):
        if not os.path.exists(path):
            open(path, "w").close()
            raise RuntimeError("first attempt")
        return event

    return context.run_in_child_context(
        lambda child: child.step(run, config=StepConfig(retry_strategy=fixed_retry(3, 1))),
        name="retrying",
    )


@durable_execution
def h_3_9(event, context: DurableContext):
    value = context.run_in_child_context(lambda child: child.step(lambda _: event), name="child")
    context.wait(Duration.from_seconds(1))
    return value


@durable_execution
def h_3_10(event, context: DurableContext):
    def body(child):
        value = child.step(lambda _: event)
        child.wait(Duration.from_seconds(1))
        return value

    return context.run_in_child_context(body, name="body")


@durable_execution
def h_3_13(event, context: DurableContext):
    def body(child):
        child.wait(Duration.from_seconds(1))
        return event

    context.run_in_child_context(body, name="body")
    return context.step(lambda _: event)


@durable_execution
def h_3_15(event, context: DurableContext):
    def body(child):
        raise RuntimeError("thrown in the child body")

    return context.run_in_child_context(body, name="body")


@durable_execution
def h_3_16(event, context: DurableContext):
    return context.run_in_child_context(lambda child: None, name="empty")


@durable_execution
def h_3_18(event, context: DurableContext):
    def body(child):
        value = child.step(lambda _: event)
        child.wait(Duration.from_seconds(1))
        return value

    context.run_in_child_context(body, name="body")
    value = context.step(lambda _: event)
    context.wait(Duration.from_seconds(1))
    return value


@durable_execution
def h_3_8(event, context: DurableContext):
    def body(child):
        return child.step(
            lambda _: (_ for _ in ()).throw(RuntimeError("always fails")),
            config=StepConfig(retry_strategy=fixed_retry(2, 1)),
        )

    return context.run_in_child_context(body, name="exhausted")


@durable_execution
def h_3_12(event, context: DurableContext):
    first = not replaying(context)

    def run(_):
        if first:
            context.state.create_checkpoint()  # flushes ContextStarted and StepStarted
            os._exit(1)  # the process dies after they were checkpointed
        return event

    return context.run_in_child_context(lambda child: child.step(run))


class UppercaseResult(SerDes):
    """The child's result stored uppercased (as is, not JSON), read back as stored."""

    def serialize(self, value, serdes_context):
        return value.upper()

    def deserialize(self, data, serdes_context):
        return data


@durable_execution
def h_3_14(event, context: DurableContext):
    return context.run_in_child_context(
        lambda child: child.step(lambda _: event),
        name="upper",
        config=ChildConfig(serdes=UppercaseResult()),
    )


def replay_logger(child):
    """The child's durable logger with replay logging on: it logs while replaying too (the
    SDK's default drops those lines), so a re-execution shows in the log."""
    return child.logger.with_is_replaying(lambda: False)


@durable_execution
def h_3_11(event, context: DurableContext):
    def body(child):
        replay_logger(child).info(str(event))
        small = child.step(lambda _: event)
        return small * (300 * 1024 // max(1, len(small)) + 1)  # over 256 KB: ReplayChildren

    large = context.run_in_child_context(body, name="large")
    context.wait(Duration.from_seconds(1))
    return len(large)


@durable_execution
def h_3_17(event, context: DurableContext):
    def body(child):
        replay_logger(child).info(str(event))
        return event

    value = context.run_in_child_context(body, name="logs")
    context.wait(Duration.from_seconds(1))
    return value
