"""Lamina's own handlers for AWS's durable execution conformance requirements, suite invoke
(5-x): one function per requirement id, `h_<suite>_<n>`, written from the requirement's
description (aws-durable-execution-conformance-tests on PyPI)."""

import json

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration, InvokeConfig
from aws_durable_execution_sdk_python.serdes import SerDes
from common import ECHO, FAILING


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


@durable_execution
def h_5_7(event, context: DurableContext):
    large = {"blob": "x" * 200_000}  # near the 256 KB asynchronous payload limit
    return len(context.invoke(ECHO, large)["blob"])


@durable_execution
def h_5_8(event, context: DurableContext):
    return context.invoke(ECHO, event["payload"], config=InvokeConfig(tenant_id=event["tenantId"]))


class UppercasePayload(SerDes):
    """The outgoing payload's strings uppercased."""

    def serialize(self, value, serdes_context):
        return json.dumps({k: v.upper() if isinstance(v, str) else v for k, v in value.items()})

    def deserialize(self, data, serdes_context):
        return json.loads(data)


@durable_execution
def h_5_15(event, context: DurableContext):
    return context.invoke(ECHO, event, config=InvokeConfig(serdes_payload=UppercasePayload()))


class UppercaseResult(SerDes):
    """The returned result uppercased as received (its JSON text, quotes and all)."""

    def serialize(self, value, serdes_context):
        return value

    def deserialize(self, data, serdes_context):
        return data.upper()


@durable_execution
def h_5_16(event, context: DurableContext):
    return context.invoke(ECHO, event, config=InvokeConfig(serdes_result=UppercaseResult()))
