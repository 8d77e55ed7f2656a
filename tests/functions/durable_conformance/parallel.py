"""Lamina's own handlers for AWS's durable execution conformance requirements, suite parallel
(8-x): one function per requirement id, `h_<suite>_<n>`, written from the requirement's
description (aws-durable-execution-conformance-tests on PyPI)."""

import json

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import (
    CompletionConfig,
    Duration,
    NestingType,
    ParallelBranch,
    ParallelConfig,
)
from aws_durable_execution_sdk_python.serdes import SerDes
from common import projection

ONE_AT_A_TIME = ParallelConfig(max_concurrency=1)


def _config(**completion) -> ParallelConfig:
    return ParallelConfig(max_concurrency=1, completion_config=CompletionConfig(**completion))


def _returns(value):
    return lambda child: value


def _raises(message="branch failed"):
    def run(child):
        raise RuntimeError(message)

    return run


def _step(value):
    return lambda child: child.step(lambda _: value)


@durable_execution
def h_8_1(event, context: DurableContext):
    return context.parallel(
        [_step("task-1"), _step("task-2")], name="parallel", config=ONE_AT_A_TIME
    ).get_results()


@durable_execution
def h_8_2(event, context: DurableContext):
    return context.parallel(
        [_returns("alpha"), _returns("beta")], config=ONE_AT_A_TIME
    ).get_results()


@durable_execution
def h_8_3(event, context: DurableContext):
    branches = [
        ParallelBranch(func=_returns("one"), name="first"),
        ParallelBranch(func=_returns("two"), name="second"),
    ]
    return context.parallel(branches, name="named", config=ONE_AT_A_TIME).get_results()


@durable_execution
def h_8_4(event, context: DurableContext):
    return context.parallel(
        [_returns("hello"), _returns(42), _returns({"k": "v"})], name="types", config=ONE_AT_A_TIME
    ).get_results()


@durable_execution
def h_8_5(event, context: DurableContext):
    return context.parallel([], name="empty").get_results()


@durable_execution
def h_8_6(event, context: DurableContext):
    result = context.parallel(
        [_returns("ok"), _raises(), _returns("never")],
        name="failfast",
        config=_config(tolerated_failure_count=0),
    )
    return projection(result)


@durable_execution
def h_8_7(event, context: DurableContext):
    result = context.parallel(
        [_raises(), _returns("never")], name="throwing", config=_config(tolerated_failure_count=0)
    )
    result.throw_if_error()
    return result.get_results()


@durable_execution
def h_8_8(event, context: DurableContext):
    result = context.parallel(
        [_returns("done")] * 4, name="min-successful", config=_config(min_successful=2)
    )
    return projection(result, "completionReason", "successCount", "totalCount")


@durable_execution
def h_8_9(event, context: DurableContext):
    result = context.parallel(
        [_returns("a"), _raises(), _returns("c")],
        name="tolerated",
        config=_config(tolerated_failure_count=1),
    )
    return projection(result)


@durable_execution
def h_8_10(event, context: DurableContext):
    result = context.parallel(
        [_raises(), _raises(), _returns("never")],
        name="tolerated-exceeded",
        config=_config(tolerated_failure_count=1),
    )
    return projection(result, "completionReason", "successCount", "failureCount", "totalCount")


@durable_execution
def h_8_11(event, context: DurableContext):
    return context.parallel(
        [_returns("r0"), _returns("r1"), _returns("r2")],
        name="concurrent",
        config=ParallelConfig(max_concurrency=2),
    ).get_results()


@durable_execution
def h_8_12(event, context: DurableContext):
    return context.parallel(
        [_step("fa"), _step("fb")],
        name="flat",
        config=ParallelConfig(max_concurrency=1, nesting_type=NestingType.FLAT),
    ).get_results()


@durable_execution
def h_8_13(event, context: DurableContext):
    result = context.parallel(
        [_raises(), _raises(), _returns("c"), _returns("d")],
        name="tolerated-pct",
        config=_config(tolerated_failure_percentage=25),
    )
    return projection(result, "completionReason", "successCount", "failureCount", "totalCount")


@durable_execution
def h_8_14(event, context: DurableContext):
    def waits(child):
        child.wait(Duration.from_seconds(2))
        return "b1"

    return context.parallel([_step("b0"), waits], name="resume", config=ONE_AT_A_TIME).get_results()


class Wrapped(SerDes):
    """Each branch result as the envelope {"wrapped": value}, and back."""

    def serialize(self, value, serdes_context):
        return json.dumps({"wrapped": value})

    def deserialize(self, data, serdes_context):
        return json.loads(data)["wrapped"]


@durable_execution
def h_8_15(event, context: DurableContext):
    return context.parallel(
        [_returns("x"), _returns("y")],
        name="serdes",
        config=ParallelConfig(max_concurrency=1, item_serdes=Wrapped()),
    ).get_results()


@durable_execution
def h_8_16(event, context: DurableContext):
    result = context.parallel(
        [_raises(), _raises(), _raises()],
        name="all-fail",
        config=_config(tolerated_failure_count=3),
    )
    return projection(result)


@durable_execution
def h_8_17(event, context: DurableContext):
    result = context.parallel(
        [_returns("a"), _raises(), _returns("c")],
        name="min-not-reached",
        config=_config(min_successful=3),
    )
    return projection(result)


@durable_execution
def h_8_18(event, context: DurableContext):
    result = context.parallel(
        [_raises(), _raises(), _returns("c"), _returns("d")],
        name="combined",
        config=_config(min_successful=3, tolerated_failure_count=1),
    )
    return projection(result, "completionReason", "successCount", "failureCount", "totalCount")


@durable_execution
def h_8_19(event, context: DurableContext):
    return context.parallel(
        [_returns("a"), _returns("b")],
        name="bad-concurrency",
        config=ParallelConfig(max_concurrency=0),
    ).get_results()


@durable_execution
def h_8_20(event, context: DurableContext):
    result = context.parallel(
        [_returns("a"), _raises(), _returns("c")],
        name="accessors",
        config=_config(tolerated_failure_count=1),
    )
    return {
        "hasFailure": result.has_failure,
        "successCount": len(result.succeeded()),
        "failureCount": len(result.failed()),
        "errorCount": len(result.get_errors()),
    }


@durable_execution
def h_8_21(event, context: DurableContext):
    def outer(child):
        return child.parallel(
            [_step("i1"), _step("i2")], name="inner", config=ONE_AT_A_TIME
        ).get_results()

    return context.parallel([outer], name="outer", config=ONE_AT_A_TIME).get_results()


@durable_execution
def h_8_22(event, context: DurableContext):
    result = context.parallel(
        [_raises(), _returns("b"), _returns("c"), _returns("d")],
        name="pct-boundary",
        config=_config(tolerated_failure_percentage=25),
    )
    return projection(result)
