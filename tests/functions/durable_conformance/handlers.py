"""Lamina's own handlers for AWS's durable execution conformance requirements (one function
per requirement id, `h_<suite>_<n>`), written from each requirement's description. The
requirement YAMLs and the validator come from PyPI's aws-durable-execution-conformance-tests;
the Python SDK's own handlers live only on GitHub, so these are ours."""

import os

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import (
    CallbackConfig,
    Duration,
    StepConfig,
    StepSemantics,
)
from aws_durable_execution_sdk_python.retries import (
    JitterStrategy,
    RetryDecision,
    RetryPresets,
    RetryStrategyConfig,
    create_retry_strategy,
)

NO_RETRY = StepConfig(retry_strategy=RetryPresets.none())
ECHO = os.environ.get("ECHO_FUNCTION", "durable-echo")
FAILING = os.environ.get("FAILING_FUNCTION", "durable-fail")


class TransientError(Exception):
    pass


# step ---------------------------------------------------------------------------------------
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
    return context.step(lambda _: {"user": {"name": event["name"], "tags": event["tags"]},
                                   "count": len(event["tags"])})


@durable_execution
def h_1_5(event, context: DurableContext):
    return context.step(lambda _: None)


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


def _fixed(max_attempts, delay, backoff=1.0):
    return create_retry_strategy(RetryStrategyConfig(
        max_attempts=max_attempts, initial_delay=Duration.from_seconds(delay),
        backoff_rate=backoff, jitter_strategy=JitterStrategy.NONE))


def _marker_step(context, key, fail_times, result="ok"):
    """Fails `fail_times` times, counted in a file of the execution (the environment's
    /tmp is shared by the replays that run in it, as on Lambda's warm reuse)."""
    path = f"{os.environ.get('TMPDIR', '/tmp')}/{key}-{context.state.durable_execution_arn[-12:]}"

    def run(step_context):
        count = int(open(path).read()) if os.path.exists(path) else 0
        with open(path, "w") as handle:
            handle.write(str(count + 1))
        if count < fail_times:
            raise RuntimeError(f"failure {count + 1}")
        return result
    return run


@durable_execution
def h_1_11(event, context: DurableContext):
    return context.step(_marker_step(context, "1-11", 1, "Operation succeeded"),
                        config=StepConfig(retry_strategy=_fixed(3, 1)))


@durable_execution
def h_1_12(event, context: DurableContext):
    context.step(lambda _: (_ for _ in ()).throw(RuntimeError("always fails")),
                 config=StepConfig(retry_strategy=_fixed(4, 1)))


@durable_execution
def h_1_13(event, context: DurableContext):
    return context.step(_marker_step(context, "1-13", 2))


@durable_execution
def h_1_14(event, context: DurableContext):
    return context.step(_marker_step(context, "1-14", 2),
                        config=StepConfig(retry_strategy=_fixed(5, 2, 3)))


def _retry_transient(error, attempts):
    if isinstance(error, TransientError) or "TransientError" in type(error).__name__ or \
            "TransientError" in str(getattr(error, "error_type", "")):
        return RetryDecision.retry(Duration.from_seconds(1))
    return RetryDecision.no_retry()


@durable_execution
def h_1_15(event, context: DurableContext):
    path = f"{os.environ.get('TMPDIR', '/tmp')}/1-15-{context.state.durable_execution_arn[-12:]}"

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
    return context.step(run, config=StepConfig(
        retry_strategy=lambda error, attempts: RetryDecision.no_retry()))


@durable_execution
def h_1_17(event, context: DurableContext):
    def run(step_context):
        step_context.logger.info(str(event))
        os._exit(1)
    return context.step(run, name="at_most_once_flaky_step", config=StepConfig(
        step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY,
        retry_strategy=RetryPresets.none()))


@durable_execution
def h_1_18(event, context: DurableContext):
    path = f"{os.environ.get('TMPDIR', '/tmp')}/1-18-{context.state.durable_execution_arn[-12:]}"

    def run(step_context):
        step_context.logger.info(str(event))
        if not os.path.exists(path):
            open(path, "w").close()
            os._exit(1)
        return "succeeded on second attempt"
    return context.step(run, config=StepConfig(
        step_semantics=StepSemantics.AT_MOST_ONCE_PER_RETRY, retry_strategy=_fixed(3, 1)))


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


# wait ---------------------------------------------------------------------------------------
@durable_execution
def h_2_1(event, context: DurableContext):
    context.wait(Duration.from_seconds(2))


@durable_execution
def h_2_2(event, context: DurableContext):
    context.wait(Duration.from_seconds(2), name="custom_wait_name")


@durable_execution
def h_2_3(event, context: DurableContext):
    context.wait(Duration.from_seconds(2), name="wait-1")
    context.wait(Duration.from_seconds(2), name="wait-2")
    return {"completedWaits": 2}


@durable_execution
def h_2_4(event, context: DurableContext):
    context.wait(Duration.from_minutes(1))


@durable_execution
def h_2_5(event, context: DurableContext):
    context.wait(Duration.from_hours(1))


# child contexts -------------------------------------------------------------------------------
@durable_execution
def h_3_1(event, context: DurableContext):
    return context.run_in_child_context(lambda child: child.step(lambda _: event), name="child")


@durable_execution
def h_3_2(event, context: DurableContext):
    return context.run_in_child_context(
        lambda child: child.step(lambda _: event["value"]), name=event["name"])


@durable_execution
def h_3_3(event, context: DurableContext):
    def body(child):
        first = child.step(lambda _: event)
        return child.step(lambda _: first)
    return context.run_in_child_context(body, name="body")


@durable_execution
def h_3_4(event, context: DurableContext):
    return context.run_in_child_context(
        lambda child: child.step(lambda _: (_ for _ in ()).throw(RuntimeError("inner")),
                                 config=NO_RETRY), name="failing")


@durable_execution
def h_3_5(event, context: DurableContext):
    try:
        context.run_in_child_context(
            lambda child: child.step(lambda _: (_ for _ in ()).throw(RuntimeError("inner")),
                                     config=NO_RETRY))
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
    path = f"{os.environ.get('TMPDIR', '/tmp')}/3-7-{context.state.durable_execution_arn[-12:]}"

    def run(_):
        if not os.path.exists(path):
            open(path, "w").close()
            raise RuntimeError("first attempt")
        return event
    return context.run_in_child_context(
        lambda child: child.step(run, config=StepConfig(retry_strategy=_fixed(3, 1))),
        name="retrying")


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


# callbacks -------------------------------------------------------------------------------------
@durable_execution
def h_4_1(event, context: DurableContext):
    return context.create_callback(name=event).result()


@durable_execution
def h_4_2(event, context: DurableContext):
    return context.create_callback(name="approval").result()


@durable_execution
def h_4_3(event, context: DurableContext):
    return context.create_callback(
        name=event, config=CallbackConfig(timeout=Duration.from_seconds(5))).result()


@durable_execution
def h_4_4(event, context: DurableContext):
    return context.create_callback(
        name=event, config=CallbackConfig(heartbeat_timeout=Duration.from_seconds(5))).result()


@durable_execution
def h_4_5(event, context: DurableContext):
    return context.create_callback(
        name=event, config=CallbackConfig(heartbeat_timeout=Duration.from_seconds(10))).result()


@durable_execution
def h_4_6(event, context: DurableContext):
    return context.create_callback(name=event).result()


@durable_execution
def h_4_12(event, context: DurableContext):
    value = context.create_callback(name=event).result()
    context.wait(Duration.from_seconds(2))
    return value


@durable_execution
def h_4_13(event, context: DurableContext):
    try:
        message = context.create_callback(name=event).result()
    except Exception as error:
        message = f"callback failed: {error}"
    context.wait(Duration.from_seconds(2))
    return message


@durable_execution
def h_4_17(event, context: DurableContext):
    first = context.create_callback(name=event[0]).result()
    second = context.create_callback(name=event[1]).result()
    return [first, second]


@durable_execution
def h_4_18(event, context: DurableContext):
    a = context.create_callback(name=event[0])
    b = context.create_callback(name=event[1])
    return [a.result(), b.result()]


@durable_execution
def h_4_19(event, context: DurableContext):
    a = context.create_callback(name=event[0])
    b = context.create_callback(name=event[1])
    second = b.result()
    return [a.result(), second]


# chained invokes -----------------------------------------------------------------------------
@durable_execution
def echo(event, context: DurableContext):
    return event


@durable_execution
def fail(event, context: DurableContext):
    raise RuntimeError("the target fails")


@durable_execution
def h_5_1(event, context: DurableContext):
    return context.invoke(ECHO, event)


@durable_execution
def h_5_2(event, context: DurableContext):
    return context.invoke(ECHO, event["payload"], name=event["name"])


@durable_execution
def h_5_3(event, context: DurableContext):
    return context.invoke(ECHO, event)


@durable_execution
def h_5_4(event, context: DurableContext):
    return context.invoke(ECHO, None)


@durable_execution
def h_5_5(event, context: DurableContext):
    return context.invoke(FAILING, event)


@durable_execution
def h_5_6(event, context: DurableContext):
    try:
        return context.invoke(FAILING, event)
    except Exception:
        return "fallback"


@durable_execution
def h_5_9(event, context: DurableContext):
    value = context.invoke(ECHO, "cached")
    context.wait(Duration.from_seconds(1))
    return value


@durable_execution
def h_5_10(event, context: DurableContext):
    try:
        context.invoke(FAILING, event)
    except Exception:
        pass
    context.wait(Duration.from_seconds(1))
    return "recovered"


@durable_execution
def h_5_11(event, context: DurableContext):
    value = context.step(lambda _: "from step")
    return context.invoke(ECHO, value)


@durable_execution
def h_5_12(event, context: DurableContext):
    value = context.invoke(ECHO, "from invoke")
    return context.step(lambda _: value)


@durable_execution
def h_5_13(event, context: DurableContext):
    return context.run_in_child_context(lambda child: child.invoke(ECHO, "inside"))


@durable_execution
def h_5_14(event, context: DurableContext):
    first = context.invoke(ECHO, "one")
    second = context.invoke(ECHO, "two")
    return [first, second]
