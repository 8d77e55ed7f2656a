"""Lamina's own handlers for AWS's durable execution conformance requirements, suite wait
(2-x): one function per requirement id, `h_<suite>_<n>`, written from the requirement's
description (aws-durable-execution-conformance-tests on PyPI)."""

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration


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
