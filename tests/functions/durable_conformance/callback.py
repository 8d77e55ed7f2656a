"""Lamina's own handlers for AWS's durable execution conformance requirements, suite callback
(4-x): one function per requirement id, `h_<suite>_<n>`, written from the requirement's
description (aws-durable-execution-conformance-tests on PyPI)."""

import datetime
import json

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import CallbackConfig, Duration
from aws_durable_execution_sdk_python.serdes import SerDes


@durable_execution
def h_4_1(event, context: DurableContext):
    return context.create_callback(name=event).result()


@durable_execution
def h_4_2(event, context: DurableContext):
    return context.create_callback(name="approval").result()


@durable_execution
def h_4_3(event, context: DurableContext):
    return context.create_callback(
        name=event, config=CallbackConfig(timeout=Duration.from_seconds(5))
    ).result()


@durable_execution
def h_4_4(event, context: DurableContext):
    return context.create_callback(
        name=event, config=CallbackConfig(heartbeat_timeout=Duration.from_seconds(5))
    ).result()


@durable_execution
def h_4_5(event, context: DurableContext):
    return context.create_callback(
        name=event, config=CallbackConfig(heartbeat_timeout=Duration.from_seconds(10))
    ).result()


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


@durable_execution
def h_4_7(event, context: DurableContext):
    callback = context.create_callback(name=event)
    context.step(lambda _: "announced")
    return callback.result()


@durable_execution
def h_4_8(event, context: DurableContext):
    callback = context.create_callback(
        name=event, config=CallbackConfig(timeout=Duration.from_seconds(5))
    )
    context.step(lambda _: "announced")
    return callback.result()


@durable_execution
def h_4_9(event, context: DurableContext):
    callback = context.create_callback(name=event)
    context.wait(Duration.from_seconds(5))
    return callback.result()


@durable_execution
def h_4_10(event, context: DurableContext):
    callback = context.create_callback(name=event)
    context.wait(Duration.from_seconds(5))
    return callback.result()


@durable_execution
def h_4_11(event, context: DurableContext):
    callback = context.create_callback(
        name=event, config=CallbackConfig(timeout=Duration.from_seconds(3))
    )
    context.wait(Duration.from_seconds(6))
    return callback.result()


@durable_execution
def h_4_14(event, context: DurableContext):
    try:
        message = context.create_callback(
            name=event, config=CallbackConfig(timeout=Duration.from_seconds(3))
        ).result()
    except Exception as error:  # noqa: BLE001 - the requirement: the timeout is recovered
        message = f"callback timed out: {error}"
    context.wait(Duration.from_seconds(2))
    return message


class Received(SerDes):
    """A JSON callback payload as a typed object, its ISO timestamp as epoch seconds."""

    def serialize(self, value, serdes_context):
        return json.dumps(value)

    def deserialize(self, data, serdes_context):
        body = json.loads(data)
        stamp = datetime.datetime.fromisoformat(body["timestamp"].replace("Z", "+00:00"))
        return {"id": body["id"], "message": body["message"], "timestamp": int(stamp.timestamp())}


@durable_execution
def h_4_15(event, context: DurableContext):
    received = context.create_callback(
        name=event, config=CallbackConfig(serdes=Received())
    ).result()
    return {"received": received}


class Number(SerDes):
    def serialize(self, value, serdes_context):
        return str(value)

    def deserialize(self, data, serdes_context):
        return int(json.loads(data))


@durable_execution
def h_4_16(event, context: DurableContext):
    count = context.create_callback(name=event, config=CallbackConfig(serdes=Number())).result()
    return {"count": count, "doubled": count * 2}
