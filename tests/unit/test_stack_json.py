"""A stack's stored form: built from pieces kept between writes (each resource's JSON until
it changes, the templates' while they are in use), it must read back as the stack itself
after every kind of change a deploy makes."""

from __future__ import annotations

import dataclasses
import json

from lamina.domain.stacks import Stack, StackResource


def stored(stack: Stack) -> dict:
    return json.loads(stack.to_json())


def test_stored_form_follows_every_change_and_reads_back():
    record = StackResource("Fn", "AWS::Lambda::Function", "fn-1", {"Timeout": 3})
    stack = Stack(
        "app",
        "arn:stack",
        "CREATE_IN_PROGRESS",
        {"Resources": {"Fn": {}}},
        resources={"Fn": record},
        options={"original": {"Resources": {}}},
    )
    assert stored(stack) == json.loads(json.dumps(dataclasses.asdict(stack)))
    first = stack.to_json()
    record.status, record.attributes = "CREATE_COMPLETE", {"Arn": "arn:fn"}
    stack.resources["Q"] = StackResource("Q", "AWS::SQS::Queue", "url")
    stack.status, stack.event_seq = "CREATE_COMPLETE", 7
    stack.template = {"Resources": {"Fn": {}, "Q": {}}}
    stack.options["cleanup"] = [record.to_dict()]
    stack.previous = {"template": {"Resources": {}}}
    after = stored(stack)
    assert after != json.loads(first)
    assert after == json.loads(json.dumps(dataclasses.asdict(stack)))
    assert after["resources"]["Fn"]["attributes"] == {"Arn": "arn:fn"}
    assert Stack.from_dict(after) == stack
