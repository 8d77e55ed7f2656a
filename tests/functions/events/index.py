"""Handlers for schedule and HTTP API tests."""

import base64
import json
import os
import time


def record(event, context):
    """A scheduled invocation: one line per run in $RUNS_DIR/runs.jsonl."""
    with open(os.path.join(os.environ["RUNS_DIR"], "runs.jsonl"), "a") as handle:
        handle.write(
            json.dumps(
                {"request_id": context.aws_request_id, "event": event, "engine": os.getppid()}
            )
            + "\n"
        )
    return "ok"


def echo(event, context):
    """An API route: answers with the event it got (payload 1.0 / 2.0 shape)."""
    return {
        "statusCode": 200,
        "headers": {
            "Content-Type": "application/json",
            "X-Route": event.get("routeKey") or event.get("resource") or "",
        },
        "body": json.dumps(event),
    }


def bare(event, context):
    """A result without statusCode (HTTP API payload 2.0: a 200 JSON response)."""
    return {"hello": "world", "path": event.get("rawPath")}


def custom(event, context):
    """Status, headers, multi-value headers, cookies and a binary body, as asked."""
    return {
        "statusCode": 201,
        "headers": {"X-One": "1", "Content-Type": "application/octet-stream"},
        "multiValueHeaders": {"X-Many": ["a", "b"]},
        "cookies": ["session=abc; Path=/", "theme=dark"],
        "body": base64.b64encode(b"\x00\x01binary\xff").decode(),
        "isBase64Encoded": True,
    }


def malformed(event, context):
    return {"statusCode": "not a number", "body": {"not": "a string"}}


def boom(event, context):
    raise RuntimeError("the function failed")


def slow(event, context):
    time.sleep(float((event.get("queryStringParameters") or {}).get("seconds", "3")))
    return {"statusCode": 200, "body": "late"}


def custom_v1(event, context):
    """`custom` without cookies: the members a REST API's proxy result may have."""
    answer = custom(event, context)
    del answer["cookies"]
    return answer
