"""Lamina's own handlers for AWS's durable execution conformance requirements, suite map
(9-x): one function per requirement id, `h_<suite>_<n>`, written from the requirement's
description (aws-durable-execution-conformance-tests on PyPI)."""

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import (
    CompletionConfig,
    Duration,
    MapConfig,
    NestingType,
)
from aws_durable_execution_sdk_python.serdes import JsonSerDes, SerDes
from common import projection

ONE_AT_A_TIME = MapConfig(max_concurrency=1)


def _config(**completion) -> MapConfig:
    return MapConfig(max_concurrency=1, completion_config=CompletionConfig(**completion))


def _fail_on(*bad):
    """A map function that raises for the items in `bad` and returns the others."""

    def run(context, item, index, items):
        if item in bad:
            raise RuntimeError(f"item {item} failed")
        return item

    return run


@durable_execution
def h_9_1(event, context: DurableContext):
    def greet(child, item, index, items):
        return child.step(lambda _: f"Hello, {item}!")

    return context.map(event, greet, name="map", config=ONE_AT_A_TIME).get_results()


@durable_execution
def h_9_2(event, context: DurableContext):
    return context.map(
        event, lambda child, item, index, items: item * 2, config=ONE_AT_A_TIME
    ).get_results()


@durable_execution
def h_9_3(event, context: DurableContext):
    return context.map(
        event, lambda child, item, index, items: item + index, name="indexed", config=ONE_AT_A_TIME
    ).get_results()


@durable_execution
def h_9_4(event, context: DurableContext):
    return context.map([], lambda child, item, index, items: item, name="empty").get_results()


@durable_execution
def h_9_5(event, context: DurableContext):
    result = context.map(
        ["ok", "bad", "never"],
        _fail_on("bad"),
        name="failfast",
        config=_config(tolerated_failure_count=0),
    )
    return projection(result)


@durable_execution
def h_9_6(event, context: DurableContext):
    result = context.map(
        ["bad", "never"],
        _fail_on("bad"),
        name="throwing",
        config=_config(tolerated_failure_count=0),
    )
    result.throw_if_error()
    return result.get_results()


@durable_execution
def h_9_7(event, context: DurableContext):
    result = context.map(
        ["i0", "i1", "i2", "i3"],
        lambda child, item, index, items: "done",
        name="min-successful",
        config=_config(min_successful=2),
    )
    return projection(result, "completionReason", "successCount", "totalCount")


@durable_execution
def h_9_8(event, context: DurableContext):
    result = context.map(
        ["i0", "i1", "i2"],
        _fail_on("i1"),
        name="tolerated",
        config=_config(tolerated_failure_count=1),
    )
    return projection(result)


@durable_execution
def h_9_9(event, context: DurableContext):
    result = context.map(
        ["i0", "i1", "i2"],
        _fail_on("i0", "i1"),
        name="tolerated-exceeded",
        config=_config(tolerated_failure_count=1),
    )
    return projection(result, "completionReason", "successCount", "failureCount", "totalCount")


@durable_execution
def h_9_10(event, context: DurableContext):
    result = context.map(
        ["i0", "i1", "i2", "i3"],
        _fail_on("i0", "i1"),
        name="tolerated-pct",
        config=_config(tolerated_failure_percentage=25),
    )
    return projection(result, "completionReason", "successCount", "failureCount", "totalCount")


@durable_execution
def h_9_11(event, context: DurableContext):
    return context.map(
        ["i0", "i1", "i2"],
        lambda child, item, index, items: f"r{index}",
        name="concurrent",
        config=MapConfig(max_concurrency=2),
    ).get_results()


@durable_execution
def h_9_12(event, context: DurableContext):
    def run(child, item, index, items):
        return child.step(lambda _: item)

    return context.map(
        ["fa", "fb"],
        run,
        name="flat",
        config=MapConfig(max_concurrency=1, nesting_type=NestingType.FLAT),
    ).get_results()


@durable_execution
def h_9_13(event, context: DurableContext):
    return context.map(
        event,
        lambda child, item, index, items: item * 10,
        name="named-items",
        config=MapConfig(max_concurrency=1, item_namer=lambda item, index: f"item-{item}"),
    ).get_results()


class Wrapped(SerDes):
    """Each iteration's result as `wrapped:<value>` (not JSON), and back."""

    def serialize(self, value, serdes_context):
        return f"wrapped:{value}"

    def deserialize(self, data, serdes_context):
        return data.removeprefix("wrapped:")


@durable_execution
def h_9_14(event, context: DurableContext):
    return context.map(
        ["x", "y"],
        lambda child, item, index, items: item.upper(),
        name="serdes",
        config=MapConfig(max_concurrency=1, item_serdes=Wrapped()),
    ).get_results()


@durable_execution
def h_9_15(event, context: DurableContext):
    def run(child, item, index, items):
        if index == 1:
            child.wait(Duration.from_seconds(1))
        return child.step(lambda _: item)

    return context.map(["r0", "r1"], run, name="suspend", config=ONE_AT_A_TIME).get_results()


@durable_execution
def h_9_16(event, context: DurableContext):
    result = context.map(
        [0, 1, 2, 3],
        lambda child, item, index, items: f"{item}" * 70_000,
        name="large",
        config=ONE_AT_A_TIME,
    )
    return projection(result, "successCount", "totalCount")


@durable_execution
def h_9_17(event, context: DurableContext):
    results = context.map(
        ["a", "b"],
        lambda child, item, index, items: item.upper(),
        name="then-wait",
        config=ONE_AT_A_TIME,
    ).get_results()
    context.wait(Duration.from_seconds(1))
    return results


@durable_execution
def h_9_18(event, context: DurableContext):
    result = context.map(
        ["ok", "fail"],
        _fail_on("fail"),
        name="fail-then-wait",
        config=_config(tolerated_failure_count=1),
    )
    context.wait(Duration.from_seconds(1))
    return projection(result)


class WholeResult(SerDes):
    """The whole map result as `OPSERDE:<results, comma-joined>`, and back."""

    def serialize(self, value, serdes_context):
        return "OPSERDE:" + ",".join(value.get_results())

    def deserialize(self, data, serdes_context):
        return data.removeprefix("OPSERDE:").split(",")


def _op_serde(context, name):
    found = context.map(
        ["x", "y"],
        lambda child, item, index, items: item.upper(),
        name=name,
        config=MapConfig(max_concurrency=1, serdes=WholeResult(), item_serdes=JsonSerDes()),
    )
    return found if isinstance(found, list) else found.get_results()


@durable_execution
def h_9_19(event, context: DurableContext):
    return _op_serde(context, "op-serde")


@durable_execution
def h_9_20(event, context: DurableContext):
    results = _op_serde(context, "op-serde-replay")
    context.wait(Duration.from_seconds(1))
    return results
